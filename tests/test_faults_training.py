"""Fault injection on real trainings (width 1/16, 32×40 pictures, 6 iterations): kill -9 at
every step of a snapshot write, SIGTERM, a double Ctrl-C, two runs on one folder, damaged
snapshots, divergence, bad data mid-run, changed settings on resume. Each asserts what is
on disk afterwards and that a resumed run ends with the uninterrupted run's exact bytes."""

import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from seg_data import release_randint

from core.manifest import record_result
from data.synthetic import make_dataset
from training import snapshots
from training.runlog import read_records
from training.schedule import ScheduleConfig, chain, run_schedule, stage_lr
from training.train import Diverged, TrainConfig, request_of, train

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "tests" / "fault_runner.py"
WIDTH = "0.0625"
ITERS = 6
ENV = {**os.environ, "GLOG_minloglevel": "2"}


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_dataset("voc", root, n_train=4, n_val=2, num_classes=3, size=(32, 40), seed=5)


def cli_args(voc, run, *extra):
    return ["voc-fcn32s", "--data", str(voc), "--run-dir", str(run), "--width", WIDTH,
            "--lr", "1e-6", "--momentum", "0.9", "--test-every", "0", "--snapshot-every",
            "2", "--iters", str(ITERS), "--quiet", *extra]


def train_cli(*args, runner=None, timeout=300):
    command = ([sys.executable, str(RUNNER), *runner, "--"] if runner
               else [sys.executable, "-m", "training.train"])
    return subprocess.run([*command, *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def reference(voc, tmp_path_factory):
    """The uninterrupted run: snapshots at 2, 4, 6 and the final weights."""
    run = tmp_path_factory.mktemp("reference") / "run"
    done = train_cli(*cli_args(voc, run, "--weights", "none"))
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def records(run, kind):
    return read_records(run / "train.jsonl", kind)


# --- kill -9 inside every write of a snapshot --------------------------------------------
# (point, iteration killed at, snapshots intact after the kill, iteration resumed from)
KILLS = [("staged", 4, [2], 2), ("model", 4, [2], 2), ("state-part", 4, [2], 2),
         ("state", 4, [2], 2), ("manifest-part", 4, [2], 2), ("final-part", 6, [2, 4, 6], 6)]


@pytest.mark.parametrize("point,at,intact,resumed", KILLS, ids=[k[0] for k in KILLS])
@pytest.mark.fault("correct", guards="lost")
def test_kill_9_inside_a_snapshot_write_resumes_to_identical_weights(
        voc, reference, tmp_path, point, at, intact, resumed):
    run = tmp_path / "run"
    killed = train_cli(*cli_args(voc, run, "--weights", "none"), runner=[point, str(at)])
    assert killed.returncode == -signal.SIGKILL
    assert not (run / "final.caffemodel").exists()
    assert [s.iteration for s in snapshots.available(run / "snapshots")
            if snapshots.verify(s) is None] == intact
    done = train_cli(*cli_args(voc, run, "--resume"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert records(run, "resume")[-1]["iter"] == resumed
    assert sha(run / "final.caffemodel") == sha(reference / "final.caffemodel")
    for iteration in (2, 4, 6):  # every snapshot is the uninterrupted run's, byte for byte
        name = f"train_iter_{iteration}.caffemodel"
        assert sha(run / "snapshots" / name) == sha(reference / "snapshots" / name)
    leftovers = [p.name for p in run.rglob("*.part")] + \
        [p.name for p in (run / "snapshots" / snapshots.STAGING).iterdir()]
    assert leftovers == []


# --- signals ------------------------------------------------------------------------------
def start_long_run(voc, run, runner=None):
    args = cli_args(voc, run, "--weights", "none")
    args[args.index("--iters") + 1] = "100000"
    command = ([sys.executable, str(RUNNER), *runner, "--"] if runner
               else [sys.executable, "-m", "training.train"])
    process = subprocess.Popen([*command, *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while process.poll() is None:
        try:
            if len(records(run, "step")) >= 3:
                return process
        except FileNotFoundError:
            pass
        assert time.time() < deadline, "training never got going"
        time.sleep(0.1)
    raise AssertionError(process.communicate()[1][-3000:])


@pytest.mark.fault("correct", guards="lost")
def test_sigterm_stops_with_a_snapshot_like_ctrl_c(voc, tmp_path):
    run = tmp_path / "run"
    process = start_long_run(voc, run)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    stopped = records(run, "stopped")[-1]
    assert stopped["signal"] == "SIGTERM"
    latest = snapshots.available(run / "snapshots")[-1]
    assert latest.iteration == stopped["iter"] and snapshots.verify(latest) is None
    assert "SIGTERM: stopping after this iteration" in err


@pytest.mark.fault("correct", guards="traceback")
def test_second_ctrl_c_aborts_without_a_snapshot_and_says_so(voc, tmp_path):
    """The second Ctrl-C lands while the stop snapshot waits on a slow disk (3 s)."""
    run = tmp_path / "run"
    process = start_long_run(voc, run, runner=["slow-snapshot", "0"])
    process.send_signal(signal.SIGINT)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "aborted without a snapshot" in err and "Traceback" not in err
    aborted = records(run, "aborted")[-1]["iter"]
    assert not records(run, "stopped")
    kept = snapshots.available(run / "snapshots")
    assert kept and all(s.iteration < aborted for s in kept)
    assert all(snapshots.verify(s) is None for s in kept)
    assert not list(run.rglob("*.part"))


# --- one run per folder -------------------------------------------------------------------
@pytest.mark.fault("clear error", guards="lost")
def test_a_second_run_in_the_same_folder_is_refused_naming_the_first(voc, tmp_path):
    run = tmp_path / "run"
    first = start_long_run(voc, run)
    try:
        nets = {p: p.read_bytes() for p in (run / "nets").iterdir()}
        second = train_cli(*cli_args(voc, run, "--resume"))
        assert second.returncode == 1
        assert f"is in use by pid {first.pid}" in second.stderr
        assert "another training is running in this folder" in second.stderr
        assert {p: p.read_bytes() for p in (run / "nets").iterdir()} == nets
        assert first.poll() is None  # the first one trains on
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    assert len(records(run, "start")) == 1 and not records(run, "resume")


@pytest.mark.fault("correct", guards="silent")
def test_a_lock_left_by_a_dead_process_does_not_block(voc, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "final.caffemodel").unlink()
    (run / snapshots.LOCK_NAME).write_text("pid 999999 on elsewhere since 2020-01-01\n")
    done = train_cli(*cli_args(voc, run, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.fault("clear error", guards="lost")
def test_a_held_lock_is_refused_even_for_the_same_settings(voc, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    with open(run / snapshots.LOCK_NAME, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("pid 4242 on testhost since now\n")
        lock.flush()
        done = train_cli(*cli_args(voc, run, "--resume"))
    assert done.returncode == 1
    assert "in use by pid 4242 on testhost" in done.stderr


# --- damaged snapshots --------------------------------------------------------------------
def resumable_copy(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "final.caffemodel").unlink()
    return run


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_truncated_latest_snapshot_falls_back_to_the_previous_pair(voc, reference, tmp_path):
    run = resumable_copy(reference, tmp_path)
    model = run / "snapshots" / "train_iter_6.caffemodel"
    model.write_bytes(model.read_bytes()[:-100])
    done = train_cli(*cli_args(voc, run, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "passing over a snapshot" in done.stdout + (run / "train.log").read_text()
    assert "truncated?" in records(run, "snapshot_skipped")[0]["message"]
    assert records(run, "resume")[-1]["iter"] == 4
    assert sha(run / "final.caffemodel") == sha(reference / "final.caffemodel")


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_pair_mixing_two_runs_is_never_resumed(voc, reference, tmp_path):
    other = tmp_path / "other"
    done = train_cli(*cli_args(voc, other, "--weights", "none", "--seed", "7"))
    assert done.returncode == 0, done.stderr[-2000:]
    run = resumable_copy(reference, tmp_path)
    name = "train_iter_6.solverstate"
    shutil.copy(other / "snapshots" / name, run / "snapshots" / name)
    done = train_cli(*cli_args(voc, run, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "another run's file" in records(run, "snapshot_skipped")[0]["message"]
    assert records(run, "resume")[-1]["iter"] == 4
    assert sha(run / "final.caffemodel") == sha(reference / "final.caffemodel")


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_no_intact_snapshot_is_a_clear_error(voc, reference, tmp_path):
    run = resumable_copy(reference, tmp_path)
    for model in (run / "snapshots").glob("*.caffemodel"):
        model.write_bytes(b"")
    done = train_cli(*cli_args(voc, run, "--resume"))
    assert done.returncode == 1
    assert "no intact snapshot to resume from" in done.stderr
    assert not (run / "final.caffemodel").exists()


# --- settings and leftovers -------------------------------------------------------------
@pytest.mark.fault("clear error", guards="lost")
def test_resume_with_another_width_refuses_before_touching_anything(voc, reference, tmp_path):
    run = resumable_copy(reference, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    args = cli_args(voc, run, "--resume")
    args[args.index("--width") + 1] = "0.125"
    done = train_cli(*args)
    assert done.returncode == 1
    assert "resuming with other settings" in done.stderr and "Nothing was changed" in done.stderr
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


@pytest.mark.fault("clear error", guards="lost")
def test_a_fresh_start_over_an_earlier_run_is_refused(voc, reference, tmp_path):
    run = resumable_copy(reference, tmp_path)
    done = train_cli(*cli_args(voc, run, "--weights", "none"))
    assert done.returncode == 1 and "holds an earlier run" in done.stderr


@pytest.mark.fault("correct", guards="lost")
def test_orphaned_part_and_staging_files_are_cleaned_under_the_lock(voc, reference, tmp_path):
    run = resumable_copy(reference, tmp_path)
    orphans = [run / "snapshots" / "train_iter_8.solverstate.abc.part",
               run / "snapshots" / snapshots.STAGING / "train_iter_8.caffemodel",
               run / "final.caffemodel.xyz.part"]
    for orphan in orphans:
        orphan.write_bytes(b"\0" * 1000)
    done = train_cli(*cli_args(voc, run, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert not any(orphan.exists() for orphan in orphans)
    assert "removed 3 half-written file(s)" in (run / "train.log").read_text()


# --- divergence --------------------------------------------------------------------------
def nan_weights(reference, out):
    from caffe.proto import caffe_pb2

    net = caffe_pb2.NetParameter()
    net.ParseFromString((reference / "final.caffemodel").read_bytes())
    for layer in net.layer:
        if layer.name == "fc7":
            layer.blobs[0].data[0] = float("nan")
    out.write_bytes(net.SerializeToString())
    return out


@pytest.mark.fault("clear error", guards="silent")
def test_a_diverging_run_stops_keeps_the_last_finite_snapshot_and_writes_no_final(
        voc, tmp_path):
    run = tmp_path / "run"
    args = cli_args(voc, run, "--weights", "none")
    args[args.index("--lr") + 1] = "1e4"
    done = train_cli(*args)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "diverged" in done.stderr and "Lower the learning rate" in done.stderr
    assert not (run / "final.caffemodel").exists()
    diverged = records(run, "diverged")[-1]
    kept = snapshots.available(run / "snapshots")
    assert all(s.iteration < diverged["iter"] for s in kept)
    from core.caffe_files import read_params as read_caffemodel

    for snapshot in kept:
        assert all(np.isfinite(b).all() for blobs in read_caffemodel(snapshot.caffemodel)
                   .values() for b in blobs)


@pytest.mark.fault("clear error", guards="silent")
def test_nan_starting_weights_are_refused(voc, reference, tmp_path):
    weights = nan_weights(reference, tmp_path / "nan.caffemodel")
    done = train_cli(*cli_args(voc, tmp_path / "run", "--weights", str(weights)))
    assert done.returncode == 3
    assert "starting weights" in done.stderr and "fc7" in done.stderr


@pytest.mark.fault("clear error", guards="silent")
def test_a_chain_never_starts_a_stage_from_diverged_weights(voc, reference, tmp_path):
    runs = tmp_path / "runs"
    (runs / "voc-fcn32s").mkdir(parents=True)
    final = nan_weights(reference, runs / "voc-fcn32s" / "final.caffemodel")  # older code's
    config = ScheduleConfig("voc-fcn16s", voc, runs=runs, weights="none", iters=2,
                            test_every=0, width=float(WIDTH), lr=1e-6, progress=False)
    first = TrainConfig("voc-fcn32s", voc, iters=2, width=float(WIDTH), overrides={
        "base_lr": stage_lr(config, chain("voc-fcn16s"), "voc-fcn32s")})
    record_result(final.parent, [final], request_of(first))  # vouched for, as done
    with pytest.raises(Diverged, match=r"voc-fcn32s.*NaN.*fc7"):
        run_schedule(config)
    assert not (runs / "voc-fcn16s" / "init.caffemodel").exists()
    assert not (runs / "voc-fcn16s" / "final.caffemodel").exists()

    diverging = ScheduleConfig("voc-fcn16s", voc, runs=tmp_path / "runs2", weights="none",
                               iters=4, test_every=0, width=float(WIDTH), lr=1e4,
                               progress=False)
    with pytest.raises(Diverged, match="voc-fcn32s diverged"):
        run_schedule(diverging)
    assert not (tmp_path / "runs2" / "voc-fcn32s" / "final.caffemodel").exists()
    assert not (tmp_path / "runs2" / "voc-fcn16s").exists()


@pytest.mark.fault("correct", guards="silent")
def test_scores_of_nan_weights_are_valid_json_marked_not_finite(voc, reference, tmp_path):
    weights = nan_weights(reference, tmp_path / "nan.caffemodel")
    out = tmp_path / "score.json"
    done = subprocess.run([sys.executable, "-m", "evaluation.score", "--net", "voc-fcn32s",
                           "--weights", str(weights), "--data", str(voc), "--width", WIDTH,
                           "--json", str(out)], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    def refuse(constant):
        raise AssertionError(f"{constant} in score.json")

    scores = json.loads(out.read_text(), parse_constant=refuse)
    assert "label.mean_iu" in scores["non_finite"] or "loss.loss" in scores["non_finite"]
    assert "not-a-number scores" in done.stderr


# --- bad data in the middle of a run -----------------------------------------------------
@pytest.mark.fault("clear error", guards="lost")
def test_a_bad_file_mid_run_is_logged_with_a_snapshot_then_resumes_exactly(
        voc, reference, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(voc, data)
    names = (data / "sbdd/dataset/train.txt").read_text().split()
    draw = random.Random(1337)  # the training layer's order (seeded as the release's)
    order = [release_randint(draw, len(names)) for _ in range(ITERS)]
    first_read_late = next(j for j in range(1, ITERS) if order[j] not in order[:j])
    victim = data / "sbdd/dataset/img" / f"{names[order[first_read_late]]}.jpg"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 3])
    run = tmp_path / "run"
    done = train_cli(*cli_args(data, run, "--weights", "none"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert str(victim) in done.stderr and "make check-data" in done.stderr
    error = records(run, "data_error")[-1]
    assert str(victim) in error["message"] and error["iter"] == first_read_late
    assert str(victim) in (run / "train.log").read_text()
    latest = snapshots.available(run / "snapshots")[-1]
    assert latest.iteration == error["iter"] and snapshots.verify(latest) is None
    victim.write_bytes(good)
    done = train_cli(*cli_args(data, run, "--resume"))
    assert done.returncode == 0, done.stderr[-2000:]
    # the damaged dataset had another path: compare the weights, not the nets' text
    from core.caffe_files import read_params as read_caffemodel

    a, b = read_caffemodel(run / "final.caffemodel"), read_caffemodel(
        reference / "final.caffemodel")
    for layer in a:
        for x, y in zip(a[layer], b[layer]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.fault("clear error", guards="silent")
def test_a_long_run_checks_its_data_first_and_lists_every_bad_file(voc, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("FCN_DATA_CHECK_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(voc, data)
    names = (data / "sbdd/dataset/train.txt").read_text().split()
    bad = [data / "sbdd/dataset/img" / f"{n}.jpg" for n in names[:2]]
    for path in bad:
        path.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError) as error:  # 1000 iterations: checked without asking
        train(TrainConfig("voc-fcn32s", data, run_dir=tmp_path / "run", weights=None,
                          iters=1000, test_every=0, width=float(WIDTH), progress=False))
    assert all(str(path) in str(error.value) for path in bad)
    assert "2 bad file(s)" in str(error.value)
    assert not records(tmp_path / "run", "step")


@pytest.mark.fault("correct", guards="silent")
def test_progress_into_a_log_file_draws_few_bars(voc, tmp_path):
    """Into a pipe (a log file), the bar redraws every 30 s, not at every iteration."""
    args = cli_args(voc, tmp_path / "run", "--weights", "none")
    args.remove("--quiet")
    args[args.index("--iters") + 1] = "20"
    done = train_cli(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    bars = [part for part in done.stderr.replace("\r", "\n").splitlines()
            if "voc-fcn32s:" in part and ("it/s" in part or "s/it" in part)]
    assert len(bars) <= 3, bars


@pytest.mark.fault("clear error", guards="abort")
def test_a_long_run_refuses_pictures_too_large_for_memory_before_caffe_allocates(
        voc, tmp_path, monkeypatch):
    monkeypatch.setenv("FCN_DATA_CHECK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"largest picture of voc-fcn32s's splits: a training "
                                         r"step on a 32×40 picture needs about .* GiB .* more "
                                         r"than the 0\.01 GiB"):
        train(TrainConfig("voc-fcn32s", voc, run_dir=tmp_path / "run", weights=None,
                          iters=1000, test_every=0, width=float(WIDTH),
                          memory_limit=10 * 2**20, progress=False))
    assert not records(tmp_path / "run", "step")
    from evaluation.runtime import training_bytes

    deploy = tmp_path / "run" / "nets" / "deploy.prototxt"
    assert training_bytes(deploy, 320, 400) > 3 * training_bytes(deploy, 32, 40)
    with pytest.raises(MemoryError, match="2\\^31 values"):  # Caffe itself would abort
        training_bytes(deploy, 30000, 30000, limit=2**50)


@pytest.mark.fault("clear error", guards="abort")
def test_a_file_size_limit_below_a_snapshot_is_an_error_not_an_abort(voc, tmp_path):
    """`ulimit -f` below a snapshot's size: Caffe's writer would abort (glog CHECK) with a
    half-written staging file; the check before it names the limit and the fix."""
    import resource

    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))

    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "training.train",
                           *cli_args(voc, run, "--weights", "none")], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300, preexec_fn=limit_files)
    assert done.returncode == 1, done.stderr
    assert "the file-size limit (ulimit -f) is 1.0 MiB" in done.stderr
    assert "Raise the limit (ulimit -f unlimited)" in done.stderr
    assert "Check failed" not in done.stderr and "Traceback" not in done.stderr
    assert not [p for p in (run / "snapshots").rglob("*") if p.is_file()]
    errors = read_records(run / "train.jsonl", "error")
    assert errors and errors[-1]["cause"] == "file-size limit"
