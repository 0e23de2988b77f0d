"""Inference on pictures of any size: the label map has the input's H×W, odd sizes
included, from an experiment name or a deploy prototxt, one file or a folder."""

import caffe
import numpy as np
import pytest
from PIL import Image

from evaluation.infer import load_segmenter, main
from nets.generate import write_experiment
from testkit.labels import read_label
from training.init import random_init

WIDTH = 0.125
SIZES = [(37, 53), (101, 67), (7, 3)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A width-reduced FCN-8s deploy net with seeded quick-run weights (its predictions
    are not background everywhere, so a crop error would show)."""
    folder = tmp_path_factory.mktemp("model")
    deploy = write_experiment("voc-fcn8s", folder, width=WIDTH)["deploy"]
    net = caffe.Net(str(deploy), caffe.TEST)
    random_init(net, seed=5)
    rng = np.random.RandomState(5)
    for name in ("score_fr", "score_pool4", "score_pool3"):
        net.params[name][0].data[...] = rng.normal(0, 1e-3, net.params[name][0].data.shape)
    weights = folder / "weights.caffemodel"
    net.save(str(weights))
    return deploy, weights


@pytest.fixture
def pictures(tmp_path):
    rng = np.random.RandomState(0)
    folder = tmp_path / "pictures"
    folder.mkdir()
    for h, w in SIZES:  # a dark and a bright half, with noise
        picture = rng.randint(0, 60, (h, w, 3))
        picture[:, w // 2:] += 190
        Image.fromarray(picture.astype(np.uint8)).save(folder / f"odd_{h}x{w}.png")
    return folder


def test_output_has_the_input_size(model, pictures, tmp_path, capsys):
    _, weights = model
    out = tmp_path / "out"
    assert main([str(pictures), "--net", "voc-fcn8s", "--weights", str(weights),
                 "--width", str(WIDTH), "--out", str(out)]) == 0
    for h, w in SIZES:
        label = read_label(out / f"odd_{h}x{w}.png")
        assert label.shape == (h, w)
        assert Image.open(out / f"odd_{h}x{w}_overlay.jpg").size == (w, h)
    printed = capsys.readouterr().out
    assert "odd_37x53.png: 37×53 in" in printed and "ms per image" in printed


def test_prototxt_and_name_agree(model, pictures):
    deploy, weights = model
    picture = np.asarray(Image.open(pictures / "odd_101x67.png").convert("RGB"))
    by_name = load_segmenter("voc-fcn8s", weights, width=WIDTH)(picture)["score"]
    by_file = load_segmenter(str(deploy), weights)(picture)["score"]
    assert by_name.shape == (101, 67)
    np.testing.assert_array_equal(by_name, by_file)
    assert len(np.unique(by_name)) > 1  # not a constant map


def test_bad_inputs(model, tmp_path, capsys):
    _, weights = model
    assert main([str(tmp_path / "absent.jpg"), "--net", "voc-fcn8s", "--weights",
                 str(weights), "--width", str(WIDTH), "--out", str(tmp_path / "o")]) == 1
    assert "absent.jpg: no such image or folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="takes 2 inputs"):
        load_segmenter("nyud-fcn32s-color-hha", weights, width=WIDTH)
