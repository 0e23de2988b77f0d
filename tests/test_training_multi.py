"""The same loop for multi-task (SIFT Flow: semantics + geometry) and multi-modal (NYUD
late fusion) nets, and a clean stop on Ctrl-C through the command line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import caffe
import numpy as np
import pytest

from core.caffe_files import read_params
from data.synthetic import make_dataset
from training import snapshots
from training.runlog import read_records
from training.schedule import ScheduleConfig, run_schedule
from training.train import TrainConfig, train

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
    return [sys.executable, "-m", "training.train", *args, "--width", str(WIDTH),
            "--lr", "1e-6", "--momentum", "0.9", "--test-every", "0", "--quiet"]


def _steps(log: Path) -> int:
    try:
        return len(read_records(log, "step"))
    except FileNotFoundError:
        return 0


def test_ctrl_c_snapshots_and_resumes(tmp_path):
    """Ctrl-C, then --resume, repeats the uninterrupted run: every step's loss and the final
    weights bit for bit. Mutant this kills (the iteration numbers alone let it through):
    a resume that does not advance the data layer (fast_forward by 0)."""
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
    steps = read_records(run / "train.jsonl", "step")
    assert [s["iter"] for s in steps] == list(range(1, stopped + 3))
    assert (run / "final.caffemodel").is_file()

    straight = train(TrainConfig("voc-fcn32s", root, run_dir=tmp_path / "straight",
                                 weights=None, iters=stopped + 2, test_every=0, width=WIDTH,
                                 overrides=QUICK, progress=False))
    assert [s["loss"] for s in steps] == [
        s["loss"] for s in read_records(tmp_path / "straight" / "train.jsonl", "step")]
    resumed = read_params(run / "final.caffemodel")
    uninterrupted = read_params(straight.final_weights)
    assert resumed.keys() == uninterrupted.keys()
    for layer in resumed:
        for x, y in zip(resumed[layer], uninterrupted[layer]):
            np.testing.assert_array_equal(x, y)


def cpu_only_build() -> bool:
    """Whether the pycaffe in use was built CPU_ONLY, read from the build itself: the CMake
    cache of the build its module comes from (<entry>/src/python/caffe and <entry>/build in
    the recipe's cache entry; a build folder beside or above the module elsewhere)."""
    for folder in Path(caffe.__file__).resolve().parents:
        for cache in (folder / "CMakeCache.txt", folder / "build" / "CMakeCache.txt"):
            if cache.is_file():
                settings = dict(line.split("=", 1) for line in cache.read_text().splitlines()
                                if "=" in line and not line.startswith(("#", "//")))
                return settings.get("CPU_ONLY:BOOL") == "ON"
    raise AssertionError(f"no CMakeCache.txt around {caffe.__file__}: which build is this?")


def test_gpu_request_on_a_cpu_build_is_a_clear_error(tmp_path):
    """Decided from the build, not from the run's result: on a CPU_ONLY Caffe, --gpu 0 must
    fail with one clear error. Mutant this kills: --gpu silently ignored (the run then
    exits 0 on the CPU, which the old test took for a GPU build and skipped)."""
    if not cpu_only_build():
        pytest.skip("this pycaffe is a CUDA build; the CPU-only refusal does not apply")
    root = make_dataset("voc", tmp_path / "data", n_train=2, n_val=1, seed=4)
    done = subprocess.run(_cli("voc-fcn32s", "--data", str(root), "--run-dir",
                               str(tmp_path / "run"), "--weights", "none", "--iters", "1",
                               "--gpu", "0"),
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode == 1, done.stderr[-2000:]
    assert "GPU 0 is not usable" in done.stderr and "CPU-only" in done.stderr
    assert "make caffe CUDA=1" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "final.caffemodel").exists()
