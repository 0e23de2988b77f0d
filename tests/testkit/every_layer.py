"""One small deploy net with every layer kind the exporters translate, and the pooling cases
where frameworks differ (tests/test_export_layers.py runs it against Caffe at many sizes;
tests/test_export_graph.py reads its graph without ONNX or PyTorch)."""

from __future__ import annotations


def every_layer_net():
    """Ceil mode clipping the last window (with and without padding), floor mode, average
    pooling's divisor at the border, global pooling, GoogLeNet's stride-1 padded pooling,
    grouped/dilated convolution, grouped deconvolution without bias, Crop with an offset,
    Eltwise SUM with coefficients, PROD and MAX, Scale with bias, Concat, LRN, Softmax,
    InnerProduct, leaky ReLU, in-place layers and Dropout."""
    import caffe
    from caffe import layers as L
    from caffe import params as P
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    n.c1 = L.Convolution(n.data, num_output=8, kernel_size=3, pad=6)
    n.r1 = L.ReLU(n.c1, negative_slope=0.1, in_place=True)
    n.p1 = L.Pooling(n.r1, pool=P.Pooling.MAX, kernel_size=3, stride=2, pad=1)  # ceil, clips
    n.n1 = L.LRN(n.p1, local_size=3, alpha=0.5, beta=0.75, k=1.5)
    n.c2 = L.Convolution(n.n1, num_output=8, kernel_size=3, group=4, dilation=2, pad=2)
    n.d2 = L.Dropout(n.c2, in_place=True)
    n.a1 = L.Pooling(n.c2, pool=P.Pooling.AVE, kernel_size=3, stride=2, pad=1)
    n.a2 = L.Pooling(n.c2, pool=P.Pooling.AVE, kernel_size=3, stride=2)
    n.f1 = L.Pooling(n.c2, pool=P.Pooling.MAX, kernel_size=3, stride=2, pad=1,
                     round_mode=P.Pooling.FLOOR)
    n.m2 = L.Pooling(n.c2, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    for name, pool, ks, pad in (("q1", P.Pooling.MAX, 2, 1), ("q2", P.Pooling.AVE, 2, 1),
                                ("q3", P.Pooling.MAX, 3, 2), ("q4", P.Pooling.AVE, 3, 2)):
        n[name] = L.Pooling(n.c2, pool=pool, kernel_size=ks, stride=2, pad=pad)  # clips
    n.q5 = L.Pooling(n.c2, pool=P.Pooling.AVE, kernel_size=3, stride=2, pad=2,
                     round_mode=P.Pooling.FLOOR)
    n.i1 = L.Pooling(n.c2, pool=P.Pooling.MAX, kernel_size=3, stride=1, pad=1)  # GoogLeNet's
    n.u1 = L.Deconvolution(n.a1, convolution_param=dict(num_output=8, kernel_size=4, stride=2,
                                                        group=2, bias_term=False))
    n.u1c = L.Crop(n.u1, n.c2, axis=2, offset=1)
    n.e1 = L.Eltwise(n.u1c, n.c2, operation=P.Eltwise.SUM, coeff=[0.5, -2])
    n.e2 = L.Eltwise(n.e1, n.c2, operation=P.Eltwise.PROD)
    n.e3 = L.Eltwise(n.e2, n.c2, n.e1, operation=P.Eltwise.MAX)
    n.s1 = L.Scale(n.e3, bias_term=True)
    n.cat = L.Concat(n.s1, n.c2, n.i1)
    n.prob = L.Softmax(n.cat)
    n.up2 = L.Deconvolution(n.m2, convolution_param=dict(num_output=4, kernel_size=2, stride=2))
    n.g = L.Pooling(n.c2, pool=P.Pooling.AVE, global_pooling=True)
    n.fc = L.InnerProduct(n.g, num_output=5)
    return n.to_proto()
