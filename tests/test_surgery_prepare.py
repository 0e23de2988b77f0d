"""An experiment's starting weights (surgery.prepare) for each kind of init the release
performs, on width-reduced versions of the project's own nets."""

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe.proto import caffe_pb2

from core.caffe_files import read_params
from nets.experiments import build
from surgery import SurgeryError, upsample_filt
from surgery.prepare import main, prepare
from testkit.classifiers import write_prototxt

WIDTH = 1 / 16


def deploy(tmp_path, experiment):
    return write_prototxt(build(experiment, "deploy", width=WIDTH, size=(64, 64)),
                          tmp_path / f"{experiment}.prototxt")


def trained_weights(tmp_path, experiment, seed, without=()):
    """Random weights for every layer of the experiment's net (as if trained), saved."""
    net = caffe.Net(deploy(tmp_path, experiment), caffe.TEST)
    rng = np.random.RandomState(seed)
    params = {}
    for name, blobs in net.params.items():
        if name in without:
            continue
        params[name] = [rng.normal(size=b.data.shape).astype(np.float32) for b in blobs]
        for b, values in zip(blobs, params[name]):
            b.data[...] = values
    path = tmp_path / f"{experiment}-{seed}.caffemodel"
    net.save(str(path))
    drop_layers(path, without)
    return path, params


def drop_layers(path, names):
    """Rewrite a caffemodel without the named layers (as a base that lacks them)."""
    saved = caffe_pb2.NetParameter()
    saved.ParseFromString(path.read_bytes())
    kept = [layer for layer in saved.layer if layer.name not in names]
    del saved.layer[:]
    saved.layer.extend(kept)
    path.write_bytes(saved.SerializeToString())


def test_staged_16s_from_32s_keeps_score_fr_and_zeroes_score_pool4(tmp_path):
    base, params = trained_weights(tmp_path, "voc-fcn32s", seed=0)
    out = tmp_path / "16s-start.caffemodel"
    report = prepare(deploy(tmp_path, "voc-fcn16s"), out, base=base, mode="staged")
    assert "score_fr" in report.copied and report.dropped == ["upscore"]
    assert report.left_at_init == ["upscore2", "score_pool4", "upscore16"]
    start = read_params(out)
    np.testing.assert_array_equal(start["score_fr"][0], params["score_fr"][0])
    np.testing.assert_array_equal(start["conv3_1"][0], params["conv3_1"][0])
    assert not any(b.any() for b in start["score_pool4"])
    np.testing.assert_array_equal(start["upscore16"][0][5, 5], upsample_filt(32))
    np.testing.assert_array_equal(start["upscore16"][0][5, 6], 0)


def test_staged_needs_a_trained_stage(tmp_path):
    base, _ = trained_weights(tmp_path, "voc-fcn32s", seed=0,
                              without=("score_fr", "upscore"))
    with pytest.raises(SurgeryError, match="holds no score layer"):
        prepare(deploy(tmp_path, "voc-fcn16s"), tmp_path / "x.caffemodel", base=base,
                mode="staged")


def test_a_body_layer_without_weights_is_refused(tmp_path):
    base, _ = trained_weights(tmp_path, "voc-fcn32s", seed=0,
                              without=("fc7", "score_fr", "upscore"))
    with pytest.raises(SurgeryError, match=r"cover no \['fc7'\].*start at their fillers"):
        prepare(deploy(tmp_path, "voc-fcn32s"), tmp_path / "x.caffemodel", base=base)
    report = prepare(deploy(tmp_path, "voc-fcn32s"), tmp_path / "x.caffemodel", base=base,
                     allow_missing=True, verbose=False)
    assert report.left_at_init == ["fc7", "score_fr", "upscore"]


def test_color_d_fourth_channel_is_the_mean_of_the_colour_filters(tmp_path):
    base, params = trained_weights(tmp_path, "nyud-fcn32s-color", seed=1,
                                   without=("score_fr", "upscore"))
    out = tmp_path / "color-d.caffemodel"
    report = prepare(deploy(tmp_path, "nyud-fcn32s-color-d"), out, base=base, mode="color-d")
    assert "conv1_1_bgrd" in report.copied
    start = read_params(out)
    weights = start["conv1_1_bgrd"][0]
    assert weights.shape[1] == 4
    np.testing.assert_array_equal(weights[:, :3], params["conv1_1"][0])
    np.testing.assert_allclose(weights[:, 3], params["conv1_1"][0].mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(start["conv1_1_bgrd"][1], params["conv1_1"][1])
    assert not any(b.any() for b in start["score_fr"])


def test_late_fusion_takes_each_stream_with_its_suffix(tmp_path):
    color, color_params = trained_weights(tmp_path, "nyud-fcn32s-color", seed=2)
    hha, hha_params = trained_weights(tmp_path, "nyud-fcn32s-hha", seed=3)
    out = tmp_path / "color-hha.caffemodel"
    report = prepare(deploy(tmp_path, "nyud-fcn32s-color-hha"), out, mode="late-fusion",
                     streams={"color": color, "hha": hha})
    assert report.left_at_init == ["upscore"]
    start = read_params(out)
    np.testing.assert_array_equal(start["conv1_1color"][0], color_params["conv1_1"][0])
    np.testing.assert_array_equal(start["conv1_1hha"][0], hha_params["conv1_1"][0])
    np.testing.assert_array_equal(start["score_frhha"][0], hha_params["score_fr"][0])


def test_a_new_score_layer_that_is_not_zero_is_refused(tmp_path):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    n.conv1 = L.Convolution(n.data, num_output=4, kernel_size=3)
    n.score = L.Convolution(n.conv1, num_output=2, kernel_size=1,
                            weight_filler=dict(type="constant", value=0.5))
    proto = write_prototxt(n.to_proto(), tmp_path / "net.prototxt")
    net = caffe.Net(proto, caffe.TEST)
    net.params["conv1"][0].data[...] = 1
    net.save(str(tmp_path / "base.caffemodel"))
    drop_layers(tmp_path / "base.caffemodel", ["score"])
    with pytest.raises(SurgeryError, match=r"new score layers \['score'\] are not zero"):
        prepare(proto, tmp_path / "out.caffemodel", base=tmp_path / "base.caffemodel",
                verbose=False)


def test_command_line(tmp_path, capsys):
    base, _ = trained_weights(tmp_path, "voc-fcn32s", seed=4, without=("score_fr", "upscore"))
    out = tmp_path / "start.caffemodel"
    assert main(["--net", deploy(tmp_path, "voc-fcn32s"), "--base", str(base),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "left at init (not in source)    2  score_fr, upscore" in printed
    assert "bilinear kernels: upscore" in printed and out.is_file()
    train = write_prototxt(build("voc-fcn32s", "train", width=WIDTH), tmp_path / "train.prototxt")
    assert main(["--net", train, "--base", str(base), "--out", str(out)]) == 1
    assert "reads data through ['data (Python)']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--net", train, "--out", str(out), "--mode", "late-fusion", "--stream", "color"])


def test_every_vgg16_experiment_starts_from_a_converted_classifier(tmp_path):
    """The names surgery produces are the names the project's nets use: a width-reduced
    VGG16 classifier, converted, starts every VGG16 experiment in its own mode, and staged
    ones from their previous stage, leaving only score, upsampling and scaling layers."""
    from nets.classifiers import vgg16_classifier
    from nets.experiments import EXPERIMENTS
    from surgery.convert import convolutionalize

    caffe.set_random_seed(0)
    classifier = write_prototxt(vgg16_classifier(width=1 / 32, num_classes=10),
                                tmp_path / "classifier.prototxt")
    caffe.Net(classifier, caffe.TEST).save(str(tmp_path / "classifier.caffemodel"))
    convolutionalize(classifier, tmp_path / "classifier.caffemodel",
                     tmp_path / "vgg16-fcn.caffemodel", drop=("fc8", "prob"), verbose=False)
    # the from-scratch control (voc-fcn32s-scratch) starts from the same classifier before
    # its pre-training, converted the same way: this test's classifier is untrained anyway
    bases = {"vgg16-fcn": tmp_path / "vgg16-fcn.caffemodel",
             "vgg16-fcn-untrained": tmp_path / "vgg16-fcn.caffemodel"}
    starts = dict(bases)
    for exp in EXPERIMENTS.values():
        if exp.backbone != "vgg16":
            continue
        net = write_prototxt(build(exp.name, "deploy", width=1 / 32, size=(64, 64)),
                             tmp_path / f"{exp.name}.prototxt")
        out = tmp_path / f"{exp.name}.caffemodel"
        if exp.fusion == "late":
            streams = {EXPERIMENTS[s].modalities[0]: starts[s] for s in exp.streams}
            report = prepare(net, out, mode="late-fusion", streams=streams, verbose=False)
        else:
            mode = ("color-d" if exp.fusion == "early" else
                    "staged" if exp.base in EXPERIMENTS else "fcn")
            report = prepare(net, out, base=starts[exp.base], mode=mode, verbose=False)
        starts[exp.name] = out
        layers = caffe.Net(net, caffe.TEST).layer_dict
        assert all(name.startswith("score") or layers[name].type in ("Deconvolution", "Scale")
                   for name in report.left_at_init), (exp.name, report.left_at_init)
        assert any(name.startswith("score") for name in report.left_at_init) \
            or exp.base in EXPERIMENTS or exp.fusion == "late", exp.name
    assert len(starts) == len(bases) + sum(e.backbone == "vgg16" for e in EXPERIMENTS.values())
