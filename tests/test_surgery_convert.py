"""Classifier → FCN (Section 3.1): the convolutionalized net computes the classifier on
every patch; V1 files (the 2014 VGG16 format) convert like current ones."""

import caffe
import numpy as np
import pytest
from caffe import layers as L
from google.protobuf import text_format

from core.caffe_files import CaffeFileError, read_prototxt
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
    # the classifier's fillers stay in the definition written (msra weights, uniform bias)
    assert kinds["fc6"].convolution_param.weight_filler.type == "msra"
    assert kinds["fc7"].convolution_param.bias_filler.min == pytest.approx(-0.1)

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


def fcn_net(base_prototxt, path, fc7_outputs=None, prefix=""):
    """The converted definition with a 1×1 score layer on fc7 (an FCN net's own layer);
    `fc7_outputs` changes fc7's width, `prefix` renames every layer."""
    net = read_prototxt(base_prototxt)
    score = net.layer.add(name="score_fr", type="Convolution", bottom=["fc7"], top=["score_fr"])
    score.convolution_param.num_output = 5
    score.convolution_param.kernel_size.append(1)
    for layer in net.layer:
        if fc7_outputs and layer.name == "fc7":
            layer.convolution_param.num_output = fc7_outputs
        layer.name = prefix + layer.name
    path.write_text(text_format.MessageToString(net))
    return path


def test_the_base_is_checked_against_the_fcn_net_it_starts(tmp_path, capsys):
    from surgery import SurgeryError
    from surgery.convert import check_base_fits

    proto, _ = make_classifier(tmp_path)
    convolutionalize(proto, tmp_path / "cls.caffemodel", tmp_path / "base.caffemodel",
                     verbose=False)
    base = caffe.Net(str(tmp_path / "base.prototxt"), caffe.TEST)
    fits = fcn_net(tmp_path / "base.prototxt", tmp_path / "fcn.prototxt")
    assert check_base_fits(base, fits) == ["score_fr"]
    assert capsys.readouterr().out == (f"{fits}: 8 layers from these weights; to initialise "
                                       f"there: score_fr\n")
    assert check_base_fits(base, tmp_path / "base.prototxt", verbose=False) == []
    assert capsys.readouterr().out == ""
    check_base_fits(base, tmp_path / "base.prototxt")
    assert capsys.readouterr().out.endswith("to initialise there: none\n")

    for outputs in (10, 16):   # narrower and wider than the converted fc7
        wider = fcn_net(tmp_path / "base.prototxt", tmp_path / "wider.prototxt", outputs)
        with pytest.raises(SurgeryError, match=(
                rf"wider.prototxt: layer fc7 has blobs \[\({outputs}, 12, 1, 1\), "
                rf"\({outputs},\)\], the converted net \[\(12, 12, 1, 1\), \(12,\)\]")):
            check_base_fits(base, wider)
    broken = read_prototxt(fits)
    broken.layer[-1].convolution_param.kernel_size[0] = 0   # Caffe would abort building it
    (tmp_path / "broken.prototxt").write_text(text_format.MessageToString(broken))
    with pytest.raises(CaffeFileError, match="broken.prototxt: Caffe cannot build layer "
                                             "score_fr"):
        check_base_fits(base, tmp_path / "broken.prototxt")
    other = fcn_net(tmp_path / "base.prototxt", tmp_path / "other.prototxt", prefix="x_")
    with pytest.raises(SurgeryError, match="other.prototxt shares no layer name with the "
                                           "converted net"):
        check_base_fits(base, other)
    # the conversion checks before it writes: a base that does not fit is never kept
    out = tmp_path / "checked.caffemodel"
    with pytest.raises(SurgeryError, match="layer fc7 has blobs"):
        convolutionalize(proto, tmp_path / "cls.caffemodel", out, check_against=wider,
                         verbose=False)
    assert not out.exists()
    convolutionalize(proto, tmp_path / "cls.caffemodel", out, check_against=fits,
                     verbose=False)
    assert out.read_bytes() == (tmp_path / "base.caffemodel").read_bytes()


def test_a_head_dropped_midway_leaves_the_layers_after_it(tmp_path):
    """GoogLeNet's auxiliary classifiers sit between its stages: dropping one (and what
    reads it) keeps every later layer of the main path."""
    net = small_classifier(SIZE)
    at = [layer.name for layer in net.layer].index("pool2") + 1
    layers = list(net.layer)
    aux = caffe.NetSpec()
    aux.pool2 = L.Input(shape=dict(dim=[1, 6, 16, 16]))   # discarded: a stand-in
    aux.aux_fc = L.InnerProduct(aux.pool2, num_output=5, weight_filler=dict(type="msra"))
    aux.aux_prob = L.Softmax(aux.aux_fc)
    del net.layer[:]
    net.layer.extend(layers[:at] + list(aux.to_proto().layer)[1:] + layers[at:])
    caffe.set_random_seed(0)
    proto = write_prototxt(net, tmp_path / "aux.prototxt")
    caffe.Net(proto, caffe.TEST).save(str(tmp_path / "aux.caffemodel"))
    report = convolutionalize(proto, tmp_path / "aux.caffemodel", tmp_path / "base.caffemodel",
                              drop=("aux_fc", "fc8"), verbose=False)
    names = [layer.name for layer in read_prototxt(tmp_path / "base.prototxt").layer]
    assert names == [layer.name for layer in layers if layer.name not in ("fc8", "prob")]
    assert report.dropped == ["aux_fc", "fc8"] and report.coerced == ["fc6", "fc7"]


@pytest.mark.parametrize("height, width", [(76, 92), (92, 76)])
def test_a_classifier_of_oblong_input_gets_an_oblong_kernel(tmp_path, height, width):
    net = small_classifier(SIZE)
    net.layer[0].input_param.shape[0].dim[2:] = [height, width]
    caffe.set_random_seed(1)
    proto = write_prototxt(net, tmp_path / "oblong.prototxt")
    classifier = caffe.Net(proto, caffe.TEST)
    classifier.save(str(tmp_path / "oblong.caffemodel"))
    convolutionalize(proto, tmp_path / "oblong.caffemodel", tmp_path / "fcn.caffemodel",
                     drop=(), verbose=False)
    fc6 = {layer.name: layer for layer in read_prototxt(tmp_path / "fcn.prototxt").layer}["fc6"]
    kernel = tuple((((side - 4) // 2 - 4) // 2 - 4) // 2 for side in (height, width))
    assert (fc6.convolution_param.kernel_h, fc6.convolution_param.kernel_w) == kernel
    assert list(fc6.convolution_param.kernel_size) == []
    fcn = caffe.Net(str(tmp_path / "fcn.prototxt"), caffe.TEST,
                    weights=str(tmp_path / "fcn.caffemodel"))
    image = np.random.RandomState(2).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
    fcn.blobs["data"].data[...] = classifier.blobs["data"].data[...] = image
    fcn.forward()
    classifier.forward()
    np.testing.assert_allclose(fcn.blobs["fc8"].data.reshape(-1),
                               classifier.blobs["fc8"].data.reshape(-1), rtol=1e-5, atol=1e-6)


def one_layer_classifier(tmp_path, dims, **inner_product):
    """An Input of shape `dims` read by one InnerProduct layer, and its weights."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=dims))
    n.fc6 = L.InnerProduct(n.data, num_output=4, weight_filler=dict(type="msra"),
                           **inner_product)
    proto = write_prototxt(n.to_proto(), tmp_path / "one.prototxt")
    caffe.Net(proto, caffe.TEST).save(str(tmp_path / "one.caffemodel"))
    return proto, tmp_path / "one.caffemodel"


@pytest.mark.parametrize("dims, inner_product, message", [
    ([1, 3, 5], {}, r"input of shape \(1, 3, 5\) is neither N×C×H×W nor N×C"),
    ([1, 3, 5, 5, 2], {}, r"input of shape \(1, 3, 5, 5, 2\) is neither N×C×H×W nor N×C"),
    ([1, 3, 5, 5], {"transpose": True}, "an InnerProduct with axis 1 or transposed weights"),
    ([1, 3, 5, 5], {"axis": 2}, "an InnerProduct with axis 2 or transposed weights"),
    ([1, 3, 5, 5], {"axis": 0}, "an InnerProduct with axis 0 or transposed weights"),
])
def test_an_inner_product_without_a_convolution_form_is_refused(tmp_path, dims, inner_product,
                                                                 message):
    from surgery import SurgeryError

    proto, weights = one_layer_classifier(tmp_path, dims, **inner_product)
    with pytest.raises(SurgeryError, match=f"layer fc6: {message}"):
        convolutionalize(proto, weights, tmp_path / "o.caffemodel", drop=(), verbose=False)
    assert not (tmp_path / "o.caffemodel").exists()


def test_the_command_line_prints_the_report_and_the_file_written(tmp_path, capsys):
    from surgery.convert import main

    proto, _ = make_classifier(tmp_path)
    out = tmp_path / "new" / "base.caffemodel"
    assert main([proto, str(tmp_path / "cls.caffemodel"), str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("coerced (reshaped)              2  fc6 (12, 288) → (12, 8,")
    assert printed[-1] == str(out) and out.is_file() and out.with_suffix(".prototxt").is_file()
    # the definition may go elsewhere: the weights' own folder is made too
    elsewhere = tmp_path / "defs" / "base.prototxt"
    deeper = tmp_path / "a" / "b" / "base.caffemodel"
    convolutionalize(proto, tmp_path / "cls.caffemodel", deeper, out_prototxt=elsewhere,
                     verbose=False)
    assert deeper.read_bytes() == out.read_bytes() and elsewhere.is_file()
