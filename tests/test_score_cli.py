"""Scoring a caffemodel on a split through the command line: metrics against a numpy
recount from the saved predictions and the ground-truth files, and SIFT Flow's
present-classes rule."""

import json

import caffe
import numpy as np
import pytest
import scipy.io
from PIL import Image

from data.synthetic import make_dataset
from evaluation.metrics import fast_hist, present_classes, scores
from evaluation.score import main, score_weights
from nets.generate import write_experiment
from testkit.labels import read_label
from training.init import random_init

WIDTH = 0.125


def weights_for(experiment: str, folder, seed: int = 7):
    """Seeded quick-run weights with small random score layers (a varied prediction)."""
    paths = write_experiment(experiment, folder, width=WIDTH)
    net = caffe.Net(str(paths["deploy"]), caffe.TEST)
    random_init(net, seed)
    rng = np.random.RandomState(seed)
    for name in net.params:
        if name.startswith("score"):
            net.params[name][0].data[...] = rng.normal(0, 1e-3, net.params[name][0].data.shape)
    path = folder / "weights.caffemodel"
    net.save(str(path))
    return path


def test_score_cli_matches_a_recount(tmp_path, capsys):
    root = make_dataset("voc", tmp_path / "data", n_train=2, n_val=4, seed=5)
    weights = weights_for("voc-fcn8s", tmp_path / "model")
    save, report = tmp_path / "predictions", tmp_path / "scores.json"
    assert main(["--net", "voc-fcn8s", "--weights", str(weights), "--data", str(root),
                 "--width", str(WIDTH), "--save", str(save), "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "label: pixel acc" in printed and "background" in printed  # the class table
    voc = root / "pascal/VOC2011"
    ids = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()
    hist = np.zeros((21, 21), np.int64)
    for name in ids:
        truth = np.asarray(Image.open(voc / f"SegmentationClass/{name}.png"))
        prediction = read_label(save / f"{name}.png")
        assert prediction.shape == truth.shape
        hist += fast_hist(truth, prediction, 21)
    expected = scores(hist)
    result = json.loads(report.read_text())
    assert result["images"] == len(ids)
    # what decided these bits travels with them (core/fingerprint.py)
    assert result["fingerprint"]["data"]["items"] == len(ids)
    assert result["fingerprint"]["weights"].startswith("sha256:")
    assert result["fingerprint"]["numerics"] in ("pinned", "system")
    for key, value in expected.as_dict().items():
        assert result["label"][key] == pytest.approx(value)


def test_siftflow_semantics_over_present_classes(tmp_path):
    root = make_dataset("siftflow", tmp_path / "data", n_train=2, n_val=3, seed=6)
    weights = weights_for("siftflow-fcn32s", tmp_path / "model")
    result = score_weights("siftflow-fcn32s", weights, root, width=WIDTH, progress=False)
    folder = root / "sift-flow"
    test_ids = (folder / "test.txt").read_text().split()
    present = set()
    for name in test_ids:
        [mat] = folder.glob(f"SemanticLabels/*/{name}.mat")
        labels = scipy.io.loadmat(mat)["S"]
        present |= {int(v) - 1 for v in np.unique(labels) if v > 0}  # 1..33 → 0..32
    hist = result.hists["sem"]
    assert set(present_classes(hist).tolist()) == present
    out = result.as_dict()
    assert out["sem"]["classes_scored"] == len(present)
    assert out["sem"]["mean_iu"] == pytest.approx(scores(hist, sorted(present)).mean_iu)
    assert set(out) >= {"sem", "geo", "loss"}


def test_unknown_split_names_the_list(tmp_path, capsys):
    root = make_dataset("voc", tmp_path / "data", n_train=1, n_val=1, seed=8)
    assert main(["--net", "voc-fcn8s", "--weights", str(tmp_path / "w.caffemodel"),
                 "--data", str(root), "--split", "nosuch"]) == 1
    assert "nosuch.txt: split list not found" in capsys.readouterr().err


def test_a_one_stream_nyud_net_is_scored_with_the_memory_check(tmp_path):
    """The memory check sizes the net's own input blob: a one-stream NYUD net calls its
    input 'data' while its data layer names the channel 'color' (the check once looked up
    'color' and ended the paper run's Table 5 chain in a KeyError)."""
    root = make_dataset("nyud", tmp_path / "data", n_train=2, n_val=2, num_classes=5,
                        size=(48, 64), seed=3)
    weights = weights_for("nyud-fcn32s-color", tmp_path / "model")
    result = score_weights("nyud-fcn32s-color", weights, root, width=WIDTH, memory=True,
                           progress=False)
    assert result.images == 2
    assert 0 < result.hists["label"].sum() <= 2 * 48 * 64
