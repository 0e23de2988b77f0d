"""Bilinear upsampling (Section 3.3): a Deconvolution with interp kernels, stride f and
kernel 2f, is bilinear interpolation of its input, computed here independently."""

import caffe
import numpy as np
import pytest
from caffe import layers as L
from scipy.interpolate import RegularGridInterpolator

from surgery import SurgeryError, interp, upsample_filt
from testkit.classifiers import write_prototxt


def deconv_net(tmp_path, c_in, c_out, kernel, stride, *, group=1, h=6, w=7, bias=False,
               kernel_w=None):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, c_in, h, w]))
    size = dict(kernel_size=kernel) if kernel_w is None else dict(kernel_h=kernel,
                                                                  kernel_w=kernel_w)
    n.up = L.Deconvolution(n.data, convolution_param=dict(
        num_output=c_out, stride=stride, group=group, bias_term=bias,
        weight_filler=dict(type="gaussian", std=1), bias_filler=dict(type="constant", value=3),
        **size))
    return caffe.Net(write_prototxt(n.to_proto(), tmp_path / "up.prototxt"), caffe.TEST)


def bilinear_reference(x, factor, out_shape):
    """Bilinear interpolation of each channel of x at the input coordinates a kernel-2f,
    stride-f deconvolution's outputs sit on: output o ↔ input (o - (2f - 1) / 2) / f.
    Returns values and the mask of interior outputs (inside the input's grid)."""
    ys = (np.arange(out_shape[0]) - (2 * factor - 1) / 2) / factor
    xs = (np.arange(out_shape[1]) - (2 * factor - 1) / 2) / factor
    inside = np.outer((ys >= 0) & (ys <= x.shape[1] - 1), (xs >= 0) & (xs <= x.shape[2] - 1))
    yy, xx = np.meshgrid(np.clip(ys, 0, x.shape[1] - 1), np.clip(xs, 0, x.shape[2] - 1),
                         indexing="ij")
    values = np.stack([
        RegularGridInterpolator((np.arange(x.shape[1]), np.arange(x.shape[2])), channel)(
            np.stack([yy, xx], -1)) for channel in x])
    return values, inside


@pytest.mark.parametrize("factor", [2, 4, 8, 32])
def test_deconvolution_with_interp_is_bilinear_interpolation(tmp_path, factor):
    channels = 3
    net = deconv_net(tmp_path, channels, channels, 2 * factor, factor, bias=True)
    assert interp(net) == ["up"]
    x = np.random.RandomState(factor).rand(1, channels, 6, 7).astype(np.float32)
    net.blobs["data"].data[...] = x
    out = net.forward()["up"][0]
    expected, inside = bilinear_reference(x[0], factor, out.shape[1:])
    assert inside.sum() >= 5 * 6 * factor * factor  # the interior really is compared
    np.testing.assert_allclose(out[:, inside], expected[:, inside], rtol=1e-6, atol=1e-6)
    assert np.all(net.params["up"][1].data == 0)  # bias zeroed


def test_upsample_filt_values():
    np.testing.assert_allclose(upsample_filt(4)[1:3, 1:3], 0.5625)
    np.testing.assert_allclose(upsample_filt(4)[0], [0.0625, 0.1875, 0.1875, 0.0625])
    odd = upsample_filt(3)
    assert odd[1, 1] == 1.0 and odd[0, 0] == 0.25
    assert upsample_filt(64).dtype == np.float32
    # stride f, kernel 2f: every output pixel's weights sum to one (a partition of unity)
    k = upsample_filt(8)
    np.testing.assert_allclose(k[:4, :4] + k[4:, :4] + k[:4, 4:] + k[4:, 4:], 1.0, rtol=1e-6)


def test_classes_stay_apart_on_the_diagonal(tmp_path):
    net = deconv_net(tmp_path, 4, 4, 4, 2)
    interp(net)
    weights = net.params["up"][0].data
    off_diagonal = weights.copy()
    off_diagonal[range(4), range(4)] = 0
    assert not off_diagonal.any()
    for c in range(4):
        np.testing.assert_array_equal(weights[c, c], upsample_filt(4))


def test_depthwise_and_single_input_layers(tmp_path):
    depthwise = deconv_net(tmp_path, 5, 5, 4, 2, group=5)
    interp(depthwise)
    assert depthwise.params["up"][0].data.shape == (5, 1, 4, 4)
    np.testing.assert_array_equal(depthwise.params["up"][0].data[:, 0],
                                  np.broadcast_to(upsample_filt(4), (5, 4, 4)))
    single = deconv_net(tmp_path, 1, 3, 4, 2)
    interp(single)
    x = np.random.RandomState(0).rand(1, 1, 6, 7).astype(np.float32)
    single.blobs["data"].data[...] = x
    out = single.forward()["up"][0]
    np.testing.assert_allclose(out[0], out[2])  # the one input upsampled into each output


def test_interp_refuses_what_is_not_bilinear(tmp_path):
    with pytest.raises(SurgeryError, match=r"layer up maps 3 channels to 5 \(group 1\)"):
        interp(deconv_net(tmp_path, 3, 5, 4, 2))
    with pytest.raises(SurgeryError, match="4×6 kernel; bilinear upsampling needs a square"):
        interp(deconv_net(tmp_path, 3, 3, 4, 2, kernel_w=6))
    net = deconv_net(tmp_path, 3, 3, 4, 2)
    with pytest.raises(SurgeryError, match="no layer 'nope'"):
        interp(net, ["nope"])


def test_a_kernel_needs_a_size():
    """upsample_filt(0) is refused (make mutate survivor: `size < 0`)."""
    for size in (0, -2):
        with pytest.raises(SurgeryError, match=rf"kernel size must be positive, got {size}"):
            upsample_filt(size)
    assert upsample_filt(1).tolist() == [[1.0]]


def test_odd_kernels_centre_on_the_middle_tap():
    """Size 5 (odd, like FCN-AlexNet's and GoogLeNet's 63): factor 3, centre 2, ramp
    1 - |i - 2| / 3 (make mutate survivor: `size - 2 == 1` for `size % 2 == 1`)."""
    ramp = np.array([1, 2, 3, 2, 1], np.float32) / 3
    np.testing.assert_allclose(upsample_filt(5), np.outer(ramp, ramp), rtol=1e-6)
