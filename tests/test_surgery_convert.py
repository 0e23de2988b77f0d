"""Classifier → FCN (Section 3.1): the convolutionalized net computes the classifier on
every patch; V1 files (the 2014 VGG16 format) convert like current ones."""

import caffe
import numpy as np
import pytest
from google.protobuf import text_format

from core.caffe_files import read_prototxt
from surgery.convert import convolutionalize
from testkit.classifiers import (
    net_params,
    small_classifier,
    to_v1_caffemodel,
    to_v1_prototxt,
    write_prototxt,
)

SIZE, STRIDE = 76, 8  # 76 → 6×6 at pool3; the net's total stride is 8


def make_classifier(tmp_path, seed=0):
    caffe.set_random_seed(seed)
    proto = write_prototxt(small_classifier(SIZE), tmp_path / "cls.prototxt")
    net = caffe.Net(proto, caffe.TEST)
    net.save(str(tmp_path / "cls.caffemodel"))
    return proto, net


def test_each_output_cell_equals_the_classifier_on_its_patch(tmp_path):
    proto, classifier = make_classifier(tmp_path)
    report = convolutionalize(proto, tmp_path / "cls.caffemodel", tmp_path / "fcn.caffemodel",
                              drop=(), verbose=False)
    assert report.coerced == ["fc6", "fc7", "fc8"]
    assert report.reshapes["fc6"] == "(12, 288) → (12, 8, 6, 6)"
    assert report.left_at_init == [] and report.dropped == []
    definition = read_prototxt(tmp_path / "fcn.prototxt")
    kinds = {layer.name: layer for layer in definition.layer}
    assert kinds["fc6"].type == "Convolution"
    assert list(kinds["fc6"].convolution_param.kernel_size) == [6]
    assert list(kinds["fc7"].convolution_param.kernel_size) == [1]

    fcn = caffe.Net(str(tmp_path / "fcn.prototxt"), caffe.TEST,
                    weights=str(tmp_path / "fcn.caffemodel"))
    cells = 4
    big = SIZE + STRIDE * (cells - 1)
    image = np.random.RandomState(1).uniform(-1, 1, (1, 3, big, big)).astype(np.float32)
    fcn.blobs["data"].reshape(*image.shape)
    fcn.blobs["data"].data[...] = image
    grid = fcn.forward()["prob"][0].copy()
    scores = fcn.blobs["fc8"].data[0]
    assert grid.shape == (5, cells, cells)
    assert scores.std(axis=(1, 2)).min() > 1e-3  # the cells really see different patches
    for i in range(cells):
        for j in range(cells):
            patch = image[:, :, i * STRIDE:i * STRIDE + SIZE, j * STRIDE:j * STRIDE + SIZE]
            classifier.blobs["data"].data[...] = patch
            prob = classifier.forward()["prob"][0]
            np.testing.assert_allclose(scores[:, i, j], classifier.blobs["fc8"].data[0],
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(grid[:, i, j], prob, rtol=1e-5, atol=1e-7)


def test_dropping_fc8_drops_what_reads_it_and_keeps_names(tmp_path):
    proto, _ = make_classifier(tmp_path)
    report = convolutionalize(proto, tmp_path / "cls.caffemodel", tmp_path / "base.caffemodel",
                              verbose=False)
    assert report.dropped == ["fc8"] and report.coerced == ["fc6", "fc7"]
    names = [layer.name for layer in read_prototxt(tmp_path / "base.prototxt").layer]
    assert names[-1] == "relu7" and "prob" not in names and "fc8" not in names


def test_v1_prototxt_and_v1_caffemodel_convert_like_v2(tmp_path):
    proto, classifier = make_classifier(tmp_path, seed=3)
    (tmp_path / "v1.prototxt").write_text(to_v1_prototxt(read_prototxt(proto)))
    assert "layers {" in (tmp_path / "v1.prototxt").read_text()
    assert "input_dim: 76" in (tmp_path / "v1.prototxt").read_text()
    (tmp_path / "v1.caffemodel").write_bytes(to_v1_caffemodel(net_params(classifier)))
    convolutionalize(tmp_path / "v1.prototxt", tmp_path / "v1.caffemodel",
                     tmp_path / "from-v1.caffemodel", verbose=False)
    convolutionalize(proto, tmp_path / "cls.caffemodel", tmp_path / "from-v2.caffemodel",
                     verbose=False)
    a = caffe.Net(str(tmp_path / "from-v2.prototxt"), caffe.TEST,
                  weights=str(tmp_path / "from-v1.caffemodel"))
    b = caffe.Net(str(tmp_path / "from-v2.prototxt"), caffe.TEST,
                  weights=str(tmp_path / "from-v2.caffemodel"))
    assert list(a.params) == list(b.params)
    for name in a.params:
        for x, y in zip(a.params[name], b.params[name]):
            np.testing.assert_array_equal(x.data, y.data)
    np.testing.assert_array_equal(a.params["fc6"][0].data.reshape(12, -1),
                                  classifier.params["fc6"][0].data)


def test_deploy_batch_does_not_matter(tmp_path):
    proto, _ = make_classifier(tmp_path)
    definition = read_prototxt(proto)
    definition.layer[0].input_param.shape[0].dim[0] = 10  # as the zoo's deploy files
    (tmp_path / "ten.prototxt").write_text(text_format.MessageToString(definition))
    convolutionalize(tmp_path / "ten.prototxt", tmp_path / "cls.caffemodel",
                     tmp_path / "out.caffemodel", verbose=False)
    written = read_prototxt(tmp_path / "out.prototxt")
    assert written.layer[0].input_param.shape[0].dim[0] == 1


def test_unknown_drop_layer_is_an_error(tmp_path):
    from surgery import SurgeryError

    proto, _ = make_classifier(tmp_path)
    with pytest.raises(SurgeryError, match=r"no layer \['fc9'\] to drop"):
        convolutionalize(proto, tmp_path / "cls.caffemodel", tmp_path / "o.caffemodel",
                         drop=("fc9",), verbose=False)
