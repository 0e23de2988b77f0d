"""Surgery: Section 3.1's equivalence, Section 3.3's bilinear upsampling, transplants
from V1 files, the full-size VGG16 conversion, and clear errors for bad weights."""

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe import params as P
from caffe.proto import caffe_pb2
from scipy.interpolate import RegularGridInterpolator

from nets.classifiers import vgg16_classifier
from nets.experiments import build
from nets.prototxt import to_prototxt
from surgery import SurgeryError, interp, transplant, upsample_filt
from surgery.convert import convolutionalize
from surgery.prepare import prepare
from surgery.weights import load_weights, read_caffemodel


def small_classifier(size, classes=5):
    """VGG-shaped (3×3 conv pairs, 2×2 pools, fc6/fc7/fc8) without padding, so each output
    cell of its convolutional form sees exactly one classifier input patch."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, size, size]))
    top = n.data
    for stage, nout in enumerate((4, 6, 8), start=1):
        for i in (1, 2):
            n[f"conv{stage}_{i}"] = top = L.Convolution(
                top, num_output=nout, kernel_size=3, weight_filler=dict(type="msra"),
                bias_filler=dict(type="uniform", min=-0.1, max=0.1))
            n[f"relu{stage}_{i}"] = top = L.ReLU(top, in_place=True)
        n[f"pool{stage}"] = top = L.Pooling(top, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    for name, nout in (("fc6", 12), ("fc7", 12), ("fc8", classes)):
        n[name] = top = L.InnerProduct(top, num_output=nout, weight_filler=dict(type="msra"),
                                       bias_filler=dict(type="uniform", min=-0.1, max=0.1))
        if name != "fc8":
            n["relu" + name[2]] = top = L.ReLU(top, in_place=True)
    return n.to_proto()


def write_net(path, net_param):
    path.write_text(to_prototxt(net_param))
    return str(path)


def test_convolutionalized_classifier_equals_classifier_on_each_patch(tmp_path):
    caffe.set_random_seed(0)
    size, stride, extra = 76, 8, 3  # 76 → 6×6 pool3; 76 + 8·3 → a 4×4 output map
    classifier = caffe.Net(write_net(tmp_path / "cls.prototxt", small_classifier(size)),
                           caffe.TEST)
    classifier.save(str(tmp_path / "cls.caffemodel"))
    report = convolutionalize(tmp_path / "cls.prototxt", tmp_path / "cls.caffemodel",
                              tmp_path / "fcn.caffemodel", drop=())
    assert report.coerced == ["fc6", "fc7", "fc8"]
    fcn = caffe.Net(str(tmp_path / "fcn.prototxt"), caffe.TEST,
                    weights=str(tmp_path / "fcn.caffemodel"))
    big = size + stride * extra
    image = np.random.RandomState(1).uniform(-1, 1, (1, 3, big, big)).astype(np.float32)
    fcn.blobs["data"].reshape(*image.shape)
    fcn.reshape()
    fcn.blobs["data"].data[...] = image
    grid = fcn.forward()["fc8"][0]
    assert grid.shape[1:] == (extra + 1, extra + 1)
    for i in range(extra + 1):
        for j in range(extra + 1):
            patch = image[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            classifier.blobs["data"].data[...] = patch
            expected = classifier.forward()["fc8"][0]
            np.testing.assert_allclose(grid[:, i, j], expected, rtol=1e-5, atol=1e-5)


def test_interp_deconvolution_is_bilinear_interpolation(tmp_path):
    factor, channels = 4, 3
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, channels, 6, 7]))
    n.up = L.Deconvolution(n.data, convolution_param=dict(
        num_output=channels, kernel_size=2 * factor, stride=factor, bias_term=False))
    net = caffe.Net(write_net(tmp_path / "up.prototxt", n.to_proto()), caffe.TEST)
    assert interp(net) == ["up"]
    x = np.random.RandomState(0).rand(1, channels, 6, 7).astype(np.float32)
    net.blobs["data"].data[...] = x
    out = net.forward()["up"][0]
    # independently: a kernel-2f, stride-f deconvolution puts output pixel o at input
    # coordinate (o - (2f - 1) / 2) / f; bilinear interpolation there, interior pixels only
    ys = (np.arange(out.shape[1]) - (2 * factor - 1) / 2) / factor
    xs = (np.arange(out.shape[2]) - (2 * factor - 1) / 2) / factor
    for c in range(channels):
        f = RegularGridInterpolator((np.arange(6), np.arange(7)), x[0, c])
        inside_y = (ys >= 0) & (ys <= 5)
        inside_x = (xs >= 0) & (xs <= 6)
        yy, xx = np.meshgrid(ys[inside_y], xs[inside_x], indexing="ij")
        expected = f(np.stack([yy, xx], -1))
        np.testing.assert_allclose(out[c][np.ix_(inside_y, inside_x)], expected, atol=1e-5)
    np.testing.assert_allclose(upsample_filt(4)[1:3, 1:3], 0.5625)


def test_transplant_from_a_v1_caffemodel(tmp_path):
    old = caffe_pb2.NetParameter()
    layer = old.layers.add()  # V1: `layers`, legacy 4-d blob dims
    layer.name, layer.type = "fc6", caffe_pb2.V1LayerParameter.INNER_PRODUCT
    weights = np.arange(8 * 12, dtype=np.float32).reshape(8, 12)
    blob = layer.blobs.add()
    blob.num, blob.channels, blob.height, blob.width = 1, 1, 8, 12
    blob.data.extend(weights.ravel())
    bias = layer.blobs.add()
    bias.num, bias.channels, bias.height, bias.width = 1, 1, 1, 8
    bias.data.extend(np.ones(8, np.float32))
    (tmp_path / "v1.caffemodel").write_bytes(old.SerializeToString())

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 4, 4]))
    n.conv = L.Convolution(n.data, num_output=3, kernel_size=2)
    n.fc6 = L.Convolution(n.conv, num_output=8, kernel_size=2)
    net = caffe.Net(write_net(tmp_path / "net.prototxt", n.to_proto()), caffe.TEST)
    report = transplant(net, read_caffemodel(tmp_path / "v1.caffemodel"), verbose=False)
    assert report.coerced == ["fc6"] and report.left_at_init == ["conv"]
    np.testing.assert_array_equal(net.params["fc6"][0].data.reshape(8, 12), weights)

    n.fc6 = L.Convolution(n.conv, num_output=8, kernel_size=3)  # 8×3×3×3: 216 ≠ 96 values
    wrong = caffe.Net(write_net(tmp_path / "wrong.prototxt", n.to_proto()), caffe.TEST)
    with pytest.raises(SurgeryError, match=r"layer fc6 blob 0: target shape \(8, 3, 3, 3\)"):
        transplant(wrong, read_caffemodel(tmp_path / "v1.caffemodel"), verbose=False)


def test_full_size_vgg16_converts_and_fcn8s_loads_it(tmp_path):
    write_net(tmp_path / "vgg16.prototxt", vgg16_classifier())
    classifier = caffe.Net(str(tmp_path / "vgg16.prototxt"), caffe.TEST)
    assert sum(b.data.size for v in classifier.params.values() for b in v) == 138_357_544
    classifier.save(str(tmp_path / "vgg16.caffemodel"))
    del classifier
    report = convolutionalize(tmp_path / "vgg16.prototxt", tmp_path / "vgg16.caffemodel",
                              tmp_path / "vgg16-fcn.caffemodel")
    assert report.coerced == ["fc6", "fc7"] and report.dropped == ["fc8"]
    deploy = write_net(tmp_path / "fcn8s.prototxt", build("voc-fcn8s", "deploy", size=(1, 1)))
    prepare(deploy, tmp_path / "start.caffemodel", base=tmp_path / "vgg16-fcn.caffemodel")
    start = read_caffemodel(tmp_path / "start.caffemodel", values=False)
    base = read_caffemodel(tmp_path / "vgg16-fcn.caffemodel", values=False)
    fresh = sorted(set(start) - set(base))
    assert fresh == sorted(["score_fr", "score_pool4", "score_pool3", "upscore2",
                            "upscore_pool4", "upscore8"])


def test_bad_weights_give_one_clear_error(tmp_path):
    caffe.set_random_seed(0)
    proto = write_net(tmp_path / "cls.prototxt", small_classifier(76))
    caffe.Net(proto, caffe.TEST).save(str(tmp_path / "cls.caffemodel"))
    whole = (tmp_path / "cls.caffemodel").read_bytes()
    (tmp_path / "cut.caffemodel").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SurgeryError, match=r"cut.caffemodel: not a readable caffemodel"):
        convolutionalize(proto, tmp_path / "cut.caffemodel", tmp_path / "out.caffemodel")
    other = write_net(tmp_path / "other.prototxt", small_classifier(76, classes=7))
    net = caffe.Net(other, caffe.TEST)
    with pytest.raises(SurgeryError, match=r"layer fc8 blob 0 has shape \(5, 12\).*wrong prototxt"):
        load_weights(net, tmp_path / "cls.caffemodel")
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 4, 4]))
    n.up = L.Deconvolution(n.data, convolution_param=dict(num_output=5, kernel_size=4, stride=2))
    bad = caffe.Net(write_net(tmp_path / "up.prototxt", n.to_proto()), caffe.TEST)
    with pytest.raises(SurgeryError, match="maps 3 channels to 5"):
        interp(bad)
