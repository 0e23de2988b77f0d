"""compare on caffemodels: blob by blob bitwise, max |Δ| and ULP, missing layers, shapes."""

import shutil

import caffe
import numpy as np
import pytest

from compare.cli import compare_files, main
from core.caffe_files import CaffeFileError, read_caffemodel
from testkit.tiny_nets import flip_bit, random_caffemodel, write_tiny_deploy


@pytest.fixture
def model(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt")
    return deploy, random_caffemodel(deploy, tmp_path / "a.caffemodel", seed=1)


def _rows_for(result, layer):
    return [row for row in result.rows if row[0] == layer]


def test_identical_files_exit_zero(tmp_path, model, capsys):
    _, a = model
    b = shutil.copy(a, tmp_path / "b.caffemodel")
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "same bytes: 8 layers, 5 blobs" in out and out.strip().endswith("IDENTICAL")


def test_reader_matches_pycaffe_bit_for_bit(model):
    deploy, weights = model
    net = caffe.Net(str(deploy), str(weights), caffe.TEST)
    layers = read_caffemodel(weights)
    for name, params in net.params.items():
        for blob, param in zip(layers[name].blobs, params):
            assert blob.shape == param.data.shape
            assert blob.array().tobytes() == param.data.tobytes()


def test_one_bit_in_one_blob(tmp_path, model):
    deploy, a = model
    net = caffe.Net(str(deploy), str(a), caffe.TEST)
    bits = net.params["score_fr"][0].data.view(np.int32)
    bits.flat[5] ^= 1                      # the lowest mantissa bit of one weight
    net.save(str(tmp_path / "b.caffemodel"))
    result = compare_files(a, tmp_path / "b.caffemodel")
    assert not result.identical
    (changed,) = [row for row in result.rows if row[4] != "identical"]
    assert changed[:2] == ("score_fr", 0)
    assert changed[5] == f"1/{net.params['score_fr'][0].data.size}"
    assert changed[7] == 1                                     # one ULP
    assert 0 < changed[6] < 1e-6                               # max |Δ|
    assert all(row[4] == "identical" for row in _rows_for(result, "conv1"))


def test_any_flipped_bit_in_the_file_is_caught(tmp_path, model):
    _, a = model
    size = a.stat().st_size
    for n, byte in enumerate(range(0, size, max(1, size // 23))):
        b = flip_bit(a, tmp_path / f"flip{n}.caffemodel", byte, bit=n % 8)
        assert main([str(a), str(b)]) in (1, 2), f"bit {n % 8} of byte {byte} not caught"


def test_missing_and_extra_layers_and_shapes(tmp_path, model):
    _, a = model
    other = write_tiny_deploy(tmp_path / "other.prototxt", extra_layer=True, width=5)
    b = random_caffemodel(other, tmp_path / "b.caffemodel", seed=1)
    result = compare_files(a, b)
    assert not result.identical
    assert ("conv1b", "-", None, None, "extra in B", None, None, None) in result.rows
    shape_rows = [r for r in _rows_for(result, "conv1") if r[1] == 0]
    assert shape_rows[0][2:5] == ((4, 3, 3, 3), (5, 3, 3, 3), "shape differs")
    reverse = compare_files(b, a)
    assert ("conv1b", "-", None, None, "missing in B", None, None, None) in reverse.rows


def test_truncated_or_wrong_file_is_a_clear_error(tmp_path, model, capsys):
    deploy, a = model
    truncated = tmp_path / "cut.caffemodel"
    truncated.write_bytes(a.read_bytes()[:-7])
    with pytest.raises(CaffeFileError, match=r"cut\.caffemodel: the file is cut off at byte \d+: "
                       r"the layer .score. .*needs 7 more bytes"):
        read_caffemodel(truncated)
    assert main([str(a), str(truncated)]) == 2
    assert "cut.caffemodel" in capsys.readouterr().err
    with pytest.raises(CaffeFileError, match="deploy.prototxt: not a readable caffemodel"):
        compare_files(deploy, a, kind="caffemodel")
