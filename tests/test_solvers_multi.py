"""The same loop for multi-task (SIFT Flow: semantics + geometry) and multi-modal (NYUD
late fusion) nets, and a clean stop on Ctrl-C through the command line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.caffe_files import read_params
from data.synthetic import make_dataset
from solvers import snapshots
from solvers.runlog import read_records
from solvers.schedule import ScheduleConfig, run_schedule
from solvers.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
WIDTH = 0.125
QUICK = dict(base_lr=1e-6, momentum=0.9)


def test_siftflow_trains_both_heads(tmp_path):
    root = make_dataset("siftflow", tmp_path / "data", n_train=4, n_val=3, seed=1)
    outcome = train(TrainConfig("siftflow-fcn32s", root, run_dir=tmp_path / "run",
                                weights=None, iters=3, test_every=0, width=WIDTH,
                                overrides=QUICK, progress=False))
    steps = read_records(tmp_path / "run" / "train.jsonl", "step")
    assert [s["iter"] for s in steps] == [1, 2, 3]
    assert set(steps[0]["losses"]) == {"loss", "loss_geo"}
    assert steps[0]["loss"] == pytest.approx(sum(steps[0]["losses"].values()))
    test = outcome.last_test
    assert test["images"] == 3
    assert set(test["geo"]) >= {"pixel_accuracy", "mean_iu"}
    assert 1 <= test["sem"]["classes_scored"] < 33  # only the classes present in the split


def test_nyud_late_fusion_starts_from_both_streams(tmp_path):
    root = make_dataset("nyud", tmp_path / "data", n_train=3, n_val=2, seed=2)
    runs = tmp_path / "runs"
    summary = run_schedule(ScheduleConfig(
        "nyud-fcn32s-color-hha", root, runs=runs, weights="none", iters=2, test_every=0,
        width=WIDTH, lr=1e-6, overrides={"momentum": 0.9}, progress=False, score=False))
    assert [s["experiment"] for s in summary["stages"]] == [
        "nyud-fcn32s-color", "nyud-fcn32s-hha", "nyud-fcn32s-color-hha"]
    init = read_params(runs / "nyud-fcn32s-color-hha" / "init.caffemodel")
    for stream, modality in (("nyud-fcn32s-color", "color"), ("nyud-fcn32s-hha", "hha")):
        final = read_params(runs / stream / "final.caffemodel")
        for layer in ("conv1_1", "fc7", "score_fr"):
            np.testing.assert_array_equal(init[layer + modality][0], final[layer][0])
    # the fusion stage's lr is the release's 1e-12 against the streams' 1e-10
    starts = [read_records(runs / s / "train.jsonl", "start")[0]["base_lr"]
              for s in ("nyud-fcn32s-color", "nyud-fcn32s-color-hha")]
    assert starts == pytest.approx([1e-6, 1e-8])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "solvers.train", *args, "--width", str(WIDTH),
            "--lr", "1e-6", "--momentum", "0.9", "--test-every", "0", "--quiet"]


def _steps(log: Path) -> int:
    try:
        return len(read_records(log, "step"))
    except FileNotFoundError:
        return 0


def test_ctrl_c_snapshots_and_resumes(tmp_path):
    root = make_dataset("voc", tmp_path / "data", n_train=4, n_val=2, seed=3)
    run = tmp_path / "run"
    env = {**os.environ, "GLOG_minloglevel": "2"}
    args = ["voc-fcn32s", "--data", str(root), "--run-dir", str(run)]
    process = subprocess.Popen(_cli(*args, "--weights", "none", "--iters", "10000"),
                               cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while _steps(run / "train.jsonl") < 3 and process.poll() is None:
        assert time.time() < deadline, "training never got going"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    stopped = read_records(run / "train.jsonl", "stopped")[0]["iter"]
    assert stopped >= 3 and snapshots.available(run / "snapshots")[-1].iteration == stopped
    assert not (run / "final.caffemodel").exists()
    done = subprocess.run(_cli(*args, "--resume", "--iters", str(stopped + 2)), cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    iters = [s["iter"] for s in read_records(run / "train.jsonl", "step")]
    assert iters[-2:] == [stopped + 1, stopped + 2]
    assert (run / "final.caffemodel").is_file()


def test_gpu_request_on_a_cpu_build_is_a_clear_error(tmp_path):
    root = make_dataset("voc", tmp_path / "data", n_train=2, n_val=1, seed=4)
    done = subprocess.run(_cli("voc-fcn32s", "--data", str(root), "--run-dir",
                               str(tmp_path / "run"), "--weights", "none", "--iters", "1",
                               "--gpu", "0"),
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GLOG_minloglevel": "2"})
    if done.returncode == 0:  # a GPU build on a machine with a GPU
        pytest.skip("this Caffe can use GPU 0")
    assert done.returncode == 1
    assert "GPU 0 is not usable" in done.stderr and "CPU-only" in done.stderr
