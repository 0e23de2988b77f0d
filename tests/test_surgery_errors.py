"""Bad input gives one clear Python error naming the file and the cause, never a Caffe
CHECK abort: the command-line runs below would die with SIGABRT (rc 134) otherwise."""

import os
import subprocess
import sys
from pathlib import Path

import caffe
import pytest
from caffe import layers as L

from core.caffe_files import CaffeFileError, load_weights, read_params
from surgery.convert import convolutionalize
from testkit.classifiers import small_classifier, write_prototxt

REPO = Path(__file__).resolve().parents[1]


def classifier_files(tmp_path, classes=5):
    caffe.set_random_seed(0)
    proto = write_prototxt(small_classifier(76, classes=classes),
                           tmp_path / f"cls{classes}.prototxt")
    weights = tmp_path / f"cls{classes}.caffemodel"
    caffe.Net(proto, caffe.TEST).save(str(weights))
    return proto, weights


def run_cli(module, *args):
    env = {**os.environ, "GLOG_minloglevel": "2", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_truncated_caffemodel(tmp_path):
    proto, weights = classifier_files(tmp_path)
    whole = weights.read_bytes()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CaffeFileError, match=r"cut.caffemodel: the file is cut off at byte "):
        convolutionalize(proto, cut, tmp_path / "out.caffemodel", verbose=False)
    done = run_cli("surgery.convert", proto, cut, tmp_path / "out.caffemodel")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"surgery-convert: error: {cut}: the file is cut off at byte")
    with pytest.raises(CaffeFileError, match="caffemodel not found"):
        read_params(tmp_path / "missing.caffemodel")


def test_wrong_prototxt_for_the_weights(tmp_path):
    _, weights = classifier_files(tmp_path, classes=5)
    other, _ = classifier_files(tmp_path, classes=7)
    expected = (r"layer fc8 blob 0 has shape \(5, 12\), the net expects \(7, 12\): weights of "
                r"another net")
    with pytest.raises(CaffeFileError, match=expected):
        convolutionalize(other, weights, tmp_path / "out.caffemodel", verbose=False)
    with pytest.raises(CaffeFileError, match=expected):
        load_weights(caffe.Net(other, caffe.TEST), weights)
    done = run_cli("surgery.convert", other, weights, tmp_path / "out.caffemodel")
    assert done.returncode == 1 and "weights of another net; give the net" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_classifier_weights_given_to_the_fcn_net_directly(tmp_path):
    # same number of values, other shape: Caffe's copy_from would abort on it
    proto, weights = classifier_files(tmp_path)
    convolutionalize(proto, weights, tmp_path / "fcn.caffemodel", verbose=False)
    fcn = caffe.Net(str(tmp_path / "fcn.prototxt"), caffe.TEST)
    with pytest.raises(CaffeFileError, match=r"layer fc6 blob 0 has shape \(12, 288\), the net "
                                           r"expects \(12, 8, 6, 6\)"):
        load_weights(fcn, weights)


def test_deconvolution_with_unequal_channels_in_a_net_to_prepare(tmp_path):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    n.conv1 = L.Convolution(n.data, num_output=4, kernel_size=3)
    n.up = L.Deconvolution(n.conv1, convolution_param=dict(num_output=2, kernel_size=4,
                                                           stride=2, bias_term=False))
    proto = write_prototxt(n.to_proto(), tmp_path / "net.prototxt")
    caffe.Net(proto, caffe.TEST).save(str(tmp_path / "base.caffemodel"))
    done = run_cli("surgery.prepare", "--net", proto, "--base", tmp_path / "base.caffemodel",
                   "--out", tmp_path / "out.caffemodel")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "surgery-prepare: error: interp: layer up maps 4 channels to 2 (group 1); bilinear "
        "upsampling needs equal channels or a single input channel"]


def test_definitions_caffe_would_abort_on(tmp_path):
    _, weights = classifier_files(tmp_path)
    garbage = tmp_path / "garbage.prototxt"
    garbage.write_text("layer { name: 'x' type: \n")
    with pytest.raises(CaffeFileError, match="garbage.prototxt: not a Caffe net definition"):
        convolutionalize(garbage, weights, tmp_path / "o.caffemodel")
    unknown = small_classifier(76)
    unknown.layer[1].type = "Convolution3000"
    path = write_prototxt(unknown, tmp_path / "unknown.prototxt")
    with pytest.raises(CaffeFileError, match="type 'Convolution3000', which this Caffe build"):
        convolutionalize(path, weights, tmp_path / "o.caffemodel")
    dangling = small_classifier(76)
    dangling.layer[1].bottom[0] = "image"
    path = write_prototxt(dangling, tmp_path / "dangling.prototxt")
    with pytest.raises(CaffeFileError, match=r"conv1_1 reads \[.image.\], which no input"):
        convolutionalize(path, weights, tmp_path / "o.caffemodel")
    with pytest.raises(CaffeFileError, match="missing.prototxt: prototxt not found"):
        convolutionalize(tmp_path / "missing.prototxt", weights, tmp_path / "o.caffemodel")
    # what only building the net shows: an InnerProduct's axis past a 1-D input's last
    one_d = caffe.NetSpec()
    one_d.data = L.Input(shape=dict(dim=[4]))
    one_d.fc6 = L.InnerProduct(one_d.data, num_output=12)
    path = write_prototxt(one_d.to_proto(), tmp_path / "one_d.prototxt")
    with pytest.raises(CaffeFileError, match=r"one_d.prototxt: Caffe cannot build layer fc6: "
                                             r"Check failed: axis_index < num_axes\(\)"):
        convolutionalize(path, weights, tmp_path / "o.caffemodel", drop=())
    done = run_cli("surgery.convert", path, weights, tmp_path / "o.caffemodel", "--drop")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "one_d.prototxt: Caffe cannot build layer fc6" in done.stderr


def test_blob_with_fewer_values_than_its_shape(tmp_path):
    from caffe.proto import caffe_pb2

    net = caffe_pb2.NetParameter()
    layer = net.layer.add(name="fc6")
    blob = layer.blobs.add()
    blob.shape.dim.extend([4, 3])
    blob.data.extend([1.0] * 11)
    (tmp_path / "short.caffemodel").write_bytes(net.SerializeToString())
    with pytest.raises(CaffeFileError, match=r"layer fc6: blob of shape \(4, 3\) holds 44 bytes"):
        read_params(tmp_path / "short.caffemodel")
