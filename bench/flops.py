"""FLOPs of a caffe.Net, counted from its convolution, deconvolution and inner-product shapes.

These layers are GEMMs in Caffe (im2col/col2im around one sgemm per image), so their
multiply-adds are what the sgemm bound applies to; ReLU, pooling, cropping and biases are
left out (well under 1 % of VGG16's work) and show up as the gap to the bound.
A multiply-add counts as 2 FLOPs. Backward does one GEMM of the forward's size for the
weight gradient when the layer learns (lr_mult > 0) and one for the bottom gradient when
the bottom needs it (not for the data layer's image), as Caffe decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from caffe.proto import caffe_pb2

GEMM_LAYERS = ("Convolution", "Deconvolution", "InnerProduct")
NO_GRADIENT_TO = {"SoftmaxWithLoss": {1}, "SigmoidCrossEntropyLoss": {1}, "Crop": {1}}


@dataclass(frozen=True)
class LayerFlops:
    name: str
    type: str
    forward: int           # FLOPs of the forward GEMMs
    weight_gradient: int   # 0 when the layer's weights are frozen
    bottom_gradient: int   # 0 when nothing below needs a gradient


def _learns(layer: caffe_pb2.LayerParameter) -> bool:
    """Caffe computes a weight gradient unless the weight's lr_mult is 0 (default 1)."""
    return not layer.param or layer.param[0].lr_mult != 0


def _forward_flops(kind: str, weight_shape, bottom_shape, top_shape) -> int:
    weights = 1
    for d in weight_shape:
        weights *= d
    if kind == "InnerProduct":  # one row of weights per output, per sample
        return 2 * weights * bottom_shape[0]
    # convolution: each output pixel uses every weight once (per group, weights already
    # hold Cin/group); deconvolution is the transpose: each *input* pixel uses every weight
    spatial_shape = top_shape if kind == "Convolution" else bottom_shape
    spatial = 1
    for d in spatial_shape[2:]:
        spatial *= d
    return 2 * weights * spatial * bottom_shape[0]


def layer_flops(net, net_param: caffe_pb2.NetParameter) -> list[LayerFlops]:
    """Per-layer FLOPs of the GEMM layers of a reshaped caffe.Net built from net_param."""
    declared = {layer.name: layer for layer in net_param.layer}
    needs_gradient: set[str] = set()
    counts = []
    for name, layer in zip(net._layer_names, net.layers):
        spec = declared.get(name)
        learns = spec is not None and layer.type in GEMM_LAYERS + ("Scale", "BatchNorm") \
            and _learns(spec) and len(layer.blobs) > 0
        bottoms = list(net.bottom_names[name])
        skip = NO_GRADIENT_TO.get(layer.type, set())
        bottom_needs = any(b in needs_gradient for i, b in enumerate(bottoms) if i not in skip)
        if learns or bottom_needs:
            needs_gradient.update(net.top_names[name])
        if layer.type not in GEMM_LAYERS:
            continue
        forward = _forward_flops(layer.type, layer.blobs[0].data.shape,
                                 net.blobs[bottoms[0]].data.shape,
                                 net.blobs[net.top_names[name][0]].data.shape)
        counts.append(LayerFlops(name, layer.type, forward, forward if learns else 0,
                                 forward if bottom_needs else 0))
    return counts


def total_flops(counts: list[LayerFlops]) -> dict[str, int]:
    """Forward and forward+backward totals."""
    forward = sum(c.forward for c in counts)
    backward = sum(c.weight_gradient + c.bottom_gradient for c in counts)
    return {"forward": forward, "forward_backward": forward + backward}


