"""The FLOP counter against hand-computed counts, and the sgemm probe against numpy."""

import caffe
import numpy as np
import pytest
from caffe import layers as L

from bench.blas import caffe_library, linked_blas, open_blas, sgemm, sgemm_gflops
from bench.flops import layer_flops, total_flops
from bench.probe import caffe_root


def small_net(tmp_path):
    """data 1×3×8×10 → conv (4, 3×3, pad 1) → grouped conv (6, 3×3, group 2) →
    frozen deconv (2, 4×4, stride 2) → inner product (5), with a loss so backward runs."""
    n = caffe.NetSpec()
    n.data, n.label = L.Input(shape=[dict(dim=[1, 3, 8, 10]), dict(dim=[1, 1])], ntop=2)
    n.conv = L.Convolution(n.data, num_output=4, kernel_size=3, pad=1)
    n.grouped = L.Convolution(n.conv, num_output=6, kernel_size=3, pad=1, group=2)
    n.up = L.Deconvolution(n.grouped, convolution_param=dict(num_output=2, kernel_size=4,
                                                             stride=2, bias_term=False),
                           param=[dict(lr_mult=0)])
    n.fc = L.InnerProduct(n.up, num_output=5)
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    proto = n.to_proto()
    path = tmp_path / "small.prototxt"
    path.write_text(str(proto))
    return caffe.Net(str(path), caffe.TRAIN), proto


def test_counts_match_hand_computation(tmp_path):
    net, proto = small_net(tmp_path)
    counts = {c.name: c for c in layer_flops(net, proto)}
    assert net.blobs["up"].data.shape == (1, 2, 18, 22)
    # 2 · out channels · (in channels · k²) · output pixels
    assert counts["conv"].forward == 2 * 4 * (3 * 9) * (8 * 10)
    # groups: each output channel sees in/group = 2 channels
    assert counts["grouped"].forward == 2 * 6 * (2 * 9) * (8 * 10)
    # deconvolution: every input pixel spreads over out · k² outputs
    assert counts["up"].forward == 2 * 6 * (2 * 16) * (8 * 10)
    assert counts["fc"].forward == 2 * 5 * (2 * 18 * 22)


def test_backward_follows_caffe(tmp_path):
    net, proto = small_net(tmp_path)
    counts = {c.name: c for c in layer_flops(net, proto)}
    # the image needs no gradient; frozen (lr_mult 0) weights get none
    assert counts["conv"].bottom_gradient == 0
    assert counts["conv"].weight_gradient == counts["conv"].forward
    assert counts["up"].weight_gradient == 0
    assert counts["up"].bottom_gradient == counts["up"].forward
    totals = total_flops(list(counts.values()))
    assert totals["forward_backward"] == totals["forward"] + sum(
        c.weight_gradient + c.bottom_gradient for c in counts.values())
    assert totals["forward_backward"] < 3 * totals["forward"]


@pytest.fixture(scope="module")
def blas():
    path = linked_blas(caffe_library(caffe_root()))
    return path, open_blas(path)


def test_probe_measures_the_blas_caffe_links(blas):
    path, _ = blas
    assert "blas" in path.name.lower()
    assert "numpy" not in str(path) and ".libs" not in str(path)  # not numpy's bundled copy


def test_sgemm_is_row_major_matrix_product(blas):
    _, lib = blas
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 5), dtype=np.float32)
    b = rng.standard_normal((5, 3), dtype=np.float32)
    out = sgemm(lib, a, b, np.empty((7, 3), np.float32))
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="float32"):
        sgemm(lib, a.astype(np.float64), b, np.empty((7, 3), np.float32))
    with pytest.raises(ValueError, match="do not agree"):
        sgemm(lib, a, b.T.copy(), np.empty((7, 3), np.float32))


def test_sgemm_rate_is_reported(blas):
    _, lib = blas
    result = sgemm_gflops(lib, n=128, repeats=3)
    assert result["n"] == 128 and len(result["runs"]) == 3
    assert result["gflops"] > 0
