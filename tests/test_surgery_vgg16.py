"""The full-size VGG16 classifier (138M parameters, random) converts, and the FCN nets the
project generates start from the result with nothing uninitialised but their score layers
(and the upsampling layers, which get bilinear kernels). Nothing runs forward at full size."""

from pathlib import Path

import caffe
import numpy as np

from core.caffe_files import read_params
from nets.classifiers import vgg16_classifier
from surgery import upsample_filt
from surgery.convert import convolutionalize
from surgery.prepare import prepare
from testkit.classifiers import write_prototxt

NETS = Path(__file__).resolve().parents[1] / "nets"
VGG16_PARAMS = 138_357_544


def test_full_size_vgg16_converts_and_fcn8s_starts_from_it(tmp_path):
    caffe.set_random_seed(0)
    deploy = write_prototxt(vgg16_classifier(), tmp_path / "vgg16.prototxt")
    classifier = caffe.Net(deploy, caffe.TEST)
    assert sum(b.data.size for v in classifier.params.values() for b in v) == VGG16_PARAMS
    fc6_sample = classifier.params["fc6"][0].data[:3, :5000].copy()
    conv5_3 = classifier.params["conv5_3"][0].data.copy()
    classifier.save(str(tmp_path / "vgg16.caffemodel"))
    del classifier

    report = convolutionalize(deploy, tmp_path / "vgg16.caffemodel",
                              tmp_path / "vgg16-fcn.caffemodel",
                              check_against=NETS / "voc-fcn32s" / "deploy.prototxt")
    assert report.coerced == ["fc6", "fc7"] and report.dropped == ["fc8"]
    assert report.reshapes["fc6"] == "(4096, 25088) → (4096, 512, 7, 7)"
    base = read_params(tmp_path / "vgg16-fcn.caffemodel")
    assert list(base) == [f"conv{s}_{i}" for s, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                          for i in range(1, n + 1)] + ["fc6", "fc7"]

    start = tmp_path / "voc-fcn8s-start.caffemodel"
    report = prepare(NETS / "voc-fcn8s" / "deploy.prototxt", start,
                     base=tmp_path / "vgg16-fcn.caffemodel")
    assert report.left_at_init == ["score_fr", "upscore2", "score_pool4", "upscore_pool4",
                                   "score_pool3", "upscore8"]
    assert report.dropped == []
    weights = read_params(start)
    for name in ("score_fr", "score_pool4", "score_pool3"):
        assert all(not b.any() for b in weights[name])
    np.testing.assert_array_equal(weights["upscore8"][0][7, 7], upsample_filt(16))
    np.testing.assert_array_equal(weights["upscore2"][0][3, 3], upsample_filt(4))
    np.testing.assert_array_equal(weights["conv5_3"][0], conv5_3)
    np.testing.assert_array_equal(weights["fc6"][0].reshape(4096, -1)[:3, :5000], fc6_sample)
