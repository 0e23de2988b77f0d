"""compare two nets on the same inputs: every blob of the forward pass, bitwise then max |Δ|."""

import caffe
import numpy as np
import pytest
from PIL import Image

from compare.cli import main
from compare.errors import CompareError
from compare.forward import compare_forward
from core.caffe_files import CaffeFileError
from testkit.tiny_nets import random_caffemodel, write_tiny_deploy


@pytest.fixture
def setup(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt")
    weights = random_caffemodel(deploy, tmp_path / "a.caffemodel", seed=3)
    rng = np.random.default_rng(0)
    image = tmp_path / "image.png"
    Image.fromarray(rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)).save(image)
    return deploy, weights, image


def _status(result):
    return {row[1]: row[4] for row in result.rows}


def test_same_net_and_weights_are_identical(tmp_path, setup, capsys):
    deploy, weights, image = setup
    array = tmp_path / "input.npy"
    np.save(array, np.random.default_rng(1).normal(size=(3, 14, 16)).astype(np.float32))
    argv = ["--net-a", str(deploy), "--weights-a", str(weights), "--weights-b", str(weights),
            "--input", str(image), str(array)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("IDENTICAL")
    result = compare_forward(deploy, weights, deploy, weights, [image, array])
    assert {row[0] for row in result.rows} == {"image.png", "input.npy"}
    assert set(_status(result)) >= {"data", "conv1", "pool1", "score_fr", "upscore", "score"}
    assert ("image.png", "score", (1, 3, 18, 22), (1, 3, 18, 22), "identical", 0, 0.0, 0) \
        in result.rows


def test_one_flipped_weight_bit_shows_where_it_enters(tmp_path, setup):
    deploy, weights, image = setup
    net = caffe.Net(str(deploy), str(weights), caffe.TEST)
    net.params["score_fr"][0].data.view(np.int32).flat[0] ^= 1 << 22  # a high mantissa bit
    net.save(str(tmp_path / "b.caffemodel"))
    result = compare_forward(deploy, weights, deploy, tmp_path / "b.caffemodel", [image])
    assert not result.identical
    status = _status(result)
    assert status["conv1"] == "identical" and status["pool1"] == "identical"
    assert status["score_fr"] == "differs" and status["score"] == "differs"
    score_row = next(row for row in result.rows if row[1] == "score")
    assert score_row[6] > 0 and score_row[7] > 0


def test_nets_with_different_blobs(tmp_path, setup):
    deploy, weights, image = setup
    other = write_tiny_deploy(tmp_path / "other.prototxt", extra_layer=True)
    other_weights = random_caffemodel(other, tmp_path / "b.caffemodel", seed=3)
    result = compare_forward(deploy, weights, other, other_weights, [image])
    assert not result.identical
    assert _status(result)["conv1b"] == "extra in B"


def test_bad_inputs_are_clear_errors_not_aborts(tmp_path, setup, capsys):
    deploy, weights, image = setup
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(grey)
    with pytest.raises(CompareError, match=r"grey\.png: image mode L, expected an RGB image"):
        compare_forward(deploy, weights, deploy, weights, [grey])
    wide = write_tiny_deploy(tmp_path / "wide.prototxt", width=6)
    wide_weights = random_caffemodel(wide, tmp_path / "wide.caffemodel")
    # Caffe itself would abort the process here (CHECK in CopyTrainedLayersFrom)
    with pytest.raises(CaffeFileError, match=r"wide\.caffemodel: layer conv1 blob 0 has shape "
                                         r"\(6, 3, 3, 3\), .*deploy\.prototxt expects "
                                         r"\(4, 3, 3, 3\)"):
        compare_forward(deploy, weights, deploy, wide_weights, [image])
    four = tmp_path / "four.npy"
    np.save(four, np.zeros((4, 8, 8), dtype=np.float32))
    assert main(["--net-a", str(deploy), "--weights-a", str(weights), "--input", str(four)]) == 2
    assert "four.npy: input 'data' of net A is 1×3×20×24" in capsys.readouterr().err
