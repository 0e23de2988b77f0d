"""Learning curves from the JSON-lines log, and the log's tolerance of a torn last line."""

import json

import numpy as np
import pytest
from PIL import Image

from training.curves import curves, main, running_mean
from training.runlog import RunLog, read_records


def test_running_mean():
    assert np.allclose(running_mean(np.array([2.0, 4.0, 6.0, 8.0]), 2), [2, 3, 5, 7])
    assert running_mean(np.array([]), 3).size == 0


def test_log_then_plot(tmp_path):
    with RunLog(tmp_path, display=2, echo=False) as log:
        for i in range(1, 7):
            log.step(i, {"loss": 100.0 / i}, 1e-10)
        log.test(6, {"images": 2, "loss": {"loss": 9.0},
                     "label": {"pixel_accuracy": 0.9, "mean_accuracy": 0.5, "mean_iu": 0.4,
                               "fw_iu": 0.8, "background_mean_iu": 0.3}}, "seg11valid")
    with open(tmp_path / "train.jsonl", "a") as f:
        f.write('{"type": "step", "iter": 7, "lo')  # a run killed mid-write
    assert [r["iter"] for r in read_records(tmp_path / "train.jsonl", "step")] == list(range(1, 7))
    data = curves(tmp_path / "train.jsonl")
    assert data["loss"][-1] == pytest.approx(100 / 6)
    assert list(data["test_iter"]) == [6] and data["mean_iu:label"][0] == 0.4
    text = (tmp_path / "train.log").read_text()
    assert "Iteration 6 mean IU 0.4" in text and "Iteration 3," not in text  # display=2
    assert main([str(tmp_path)]) == 0
    assert Image.open(tmp_path / "curves.png").size[0] > 400
    record = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[1])
    assert record["type"] == "step" and record["lr"] == 1e-10


def test_nan_is_written_as_null(tmp_path):
    with RunLog(tmp_path, echo=False) as log:
        log.record("test", value=float("nan"))
    assert read_records(tmp_path / "train.jsonl")[0]["value"] is None


def test_no_log_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "no JSON-lines log" in capsys.readouterr().err
