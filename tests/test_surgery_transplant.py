"""transplant and expand_score: by layer name, reshaping only where the values fit, from
nets, arrays or V1/V2 caffemodels, with a report of what happened to every layer."""

import caffe
import numpy as np
import pytest
from caffe import layers as L

from core.caffe_files import read_params
from surgery import SurgeryError, expand_score, transplant
from testkit.classifiers import to_v1_caffemodel, write_prototxt


def small_fcn(tmp_path, name="net", fc6_kernel=2, classes=3, suffix=""):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 4, 4]))
    n["conv" + suffix] = L.Convolution(n.data, num_output=3, kernel_size=2)
    n["fc6" + suffix] = L.Convolution(n["conv" + suffix], num_output=8, kernel_size=fc6_kernel)
    n["score" + suffix] = L.Convolution(n["fc6" + suffix], num_output=classes, kernel_size=1)
    return caffe.Net(write_prototxt(n.to_proto(), tmp_path / f"{name}.prototxt"), caffe.TEST)


def v1_classifier_file(tmp_path):
    """A V1 caffemodel as the 2014 zoo wrote them: fc6 is 8×12 with legacy dims 1×1×8×12."""
    rng = np.random.RandomState(0)
    params = {"fc6": [rng.rand(8, 12).astype(np.float32), rng.rand(8).astype(np.float32)],
              "fc8": [rng.rand(5, 8).astype(np.float32), rng.rand(5).astype(np.float32)]}
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(to_v1_caffemodel(params))
    return path, params


def test_v1_caffemodel_fc_weights_become_convolution_weights(tmp_path, capsys):
    path, params = v1_classifier_file(tmp_path)
    assert read_params(path)["fc6"][0].shape == (1, 1, 8, 12)  # legacy dims
    net = small_fcn(tmp_path)
    report = transplant(net, path)
    assert report.coerced == ["fc6"] and report.copied == []
    assert report.dropped == ["fc8"] and report.left_at_init == ["conv", "score"]
    np.testing.assert_array_equal(net.params["fc6"][0].data.reshape(8, 12), params["fc6"][0])
    np.testing.assert_array_equal(net.params["fc6"][1].data, params["fc6"][1])
    printed = capsys.readouterr().out
    assert "coerced (reshaped)" in printed and "fc6 (1, 1, 8, 12) → (8, 3, 2, 2)" in printed


def test_v2_net_to_net_with_suffix_copies(tmp_path):
    caffe.set_random_seed(1)
    source = small_fcn(tmp_path, "a")
    for blobs in source.params.values():
        for b in blobs:
            b.data[...] = np.random.RandomState(2).rand(*b.data.shape)
    target = small_fcn(tmp_path, "b", suffix="hha")
    report = transplant(target, source, suffix="hha", verbose=False)
    assert report.copied == ["convhha", "fc6hha", "scorehha"] and report.left_at_init == []
    np.testing.assert_array_equal(target.params["fc6hha"][0].data, source.params["fc6"][0].data)
    source.save(str(tmp_path / "a.caffemodel"))
    again = small_fcn(tmp_path, "c", suffix="hha")
    assert transplant(again, tmp_path / "a.caffemodel", suffix="hha", verbose=False).copied \
        == report.copied


def test_different_value_counts_are_an_error_naming_both_shapes(tmp_path):
    path, _ = v1_classifier_file(tmp_path)
    wrong = small_fcn(tmp_path, fc6_kernel=3)  # 8×3×3×3 = 216 values, the source has 96
    with pytest.raises(SurgeryError, match=r"layer fc6 blob 0: target shape \(8, 3, 3, 3\) "
                                           r"\(216 values\) cannot take source fc6 shape "
                                           r"\(1, 1, 8, 12\) \(96 values\)"):
        transplant(wrong, path, verbose=False)
    bias_only = {"fc6": [np.zeros((8, 3, 2, 2), np.float32)]}
    with pytest.raises(SurgeryError, match="layer fc6: the target has 2 parameter blobs"):
        transplant(small_fcn(tmp_path, "d"), bias_only, verbose=False)


def test_expand_score_keeps_the_old_classes_first(tmp_path):
    old = small_fcn(tmp_path, "old", classes=3)
    old.params["score"][0].data[...] = np.arange(3 * 8).reshape(3, 8, 1, 1)
    old.params["score"][1].data[...] = [1, 2, 3]
    new = small_fcn(tmp_path, "new", classes=5)
    new.params["score"][0].data[...] = -1
    expand_score(new, "score", old, "score")
    np.testing.assert_array_equal(new.params["score"][0].data[:3], old.params["score"][0].data)
    assert np.all(new.params["score"][0].data[3:] == -1)
    np.testing.assert_array_equal(new.params["score"][1].data[:3], [1, 2, 3])
    with pytest.raises(SurgeryError, match="scores 5 classes, score only 3"):
        expand_score(old, "score", new, "score")
    with pytest.raises(SurgeryError, match="differ beyond the class axis"):
        expand_score(new, "score", {"score": [np.zeros((2, 7, 1, 1)), np.zeros(2)]}, "score")


def test_a_dropped_layer_does_not_stop_the_copy(tmp_path):
    """A source layer the target lacks, first in the source, is dropped and the copy goes
    on (make mutate survivor: `continue` → `break` left every later layer at init)."""
    net = small_fcn(tmp_path)
    weights = [np.full(b.data.shape, 0.5, np.float32) for b in net.params["score"]]
    report = transplant(net, {"fc8": [np.ones(2, np.float32)], "score": weights},
                        verbose=False)
    assert report.dropped == ["fc8"] and report.copied == ["score"]
    np.testing.assert_array_equal(net.params["score"][0].data, weights[0])
