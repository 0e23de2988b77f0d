"""`make paper` stops as a whole (core.processes.stopping_with_parent): a make that dies
(killed, or its terminal gone) no longer leaves the runner training every remaining chain
detached — the kernel sends the runner SIGTERM (PR_SET_PDEATHSIG) and it stops through
the training loop's own stop (finish the iteration, snapshot, a `stopped` record); Ctrl-C
(SIGINT to make's process group) stops it the same way, and the same command resumes.
Real make, real training (the short miniature's Table 2)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.synthetic import make_dataset
from training.runlog import read_records

REPO = Path(__file__).resolve().parents[1]


def start_paper(runs: Path, out: Path, jobs: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "--no-print-directory", "-o", "setup", "-o", "venv", "paper", "MINI=1",
         "SHORT=1", "TABLES=2", f"RUNS={runs}", "ITERS=100000", f"JOBS={jobs}"],
        cwd=REPO, stdout=open(out, "a"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "GLOG_minloglevel": "2"})


def stop_if_left(pid: int) -> None:
    """A failing run of this test leaves no training behind."""
    if not gone(pid):
        os.kill(pid, signal.SIGKILL)


def wait_for(condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, f"waited {seconds} s for {what}"
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def steps_logged(runs: Path) -> bool:
    return any(read_records(log, "step") for log in runs.glob("*/train.jsonl"))


@pytest.mark.fault("correct", guards="lost")
def test_make_paper_stops_with_make_killed_or_interrupted_and_resumes(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out.txt"
    make = start_paper(runs, out)
    wait_for(lambda: steps_logged(runs), 240, "the first training steps")
    [runner] = children(make.pid)
    os.kill(make.pid, signal.SIGKILL)  # make gone at once, as the issue saw it
    make.wait(timeout=60)
    try:
        wait_for(lambda: gone(runner), 60, f"the runner {runner} to stop with make")
    finally:
        stop_if_left(runner)
    [log] = list(runs.glob("*/train.jsonl"))  # no other chain started
    assert read_records(log, "stopped")[-1]["signal"] == "SIGTERM"
    assert not list(runs.rglob("report.md"))
    stopped_at = read_records(log, "stopped")[-1]["iter"]

    make = start_paper(runs, out)  # the same command resumes; Ctrl-C stops it again
    wait_for(lambda: "resuming in" in out.read_text(), 240, "the rerun to resume")
    [runner] = children(make.pid)
    wait_for(lambda: read_records(log, "step")[-1]["iter"] > stopped_at, 120,
             "a resumed step")
    os.killpg(make.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
    make.wait(timeout=60)
    try:
        wait_for(lambda: gone(runner), 60, f"the runner {runner} to stop with make")
    finally:
        stop_if_left(runner)
    assert [r["signal"] for r in read_records(log, "stopped")] == ["SIGTERM", "SIGINT"]
    assert list(runs.glob("*/train.jsonl")) == [log]
    assert "paper: stopped" in out.read_text()


def wait_all_gone(pids: tuple[int, ...], what: str) -> None:
    """Each process ends within 90 s; one that does not is killed (no training left behind)."""
    try:
        for pid in pids:
            wait_for(lambda pid=pid: gone(pid), 90, f"{pid} {what}")
    finally:
        for pid in pids:
            stop_if_left(pid)


def training_logs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.glob("*/train.jsonl") if read_records(p, "step"))


@pytest.mark.fault("correct", guards="lost")
def test_make_paper_with_two_workers_stops_them_both_and_resumes(tmp_path):
    """JOBS=2 (paper.processes): the workers run in their own sessions, so the driver
    passes on the one signal it got — the kernel's SIGTERM when make is killed, the
    terminal's SIGINT — and each worker stops through its training loop; the same command
    resumes both chains."""
    runs, out = tmp_path / "runs", tmp_path / "out.txt"
    make = start_paper(runs, out, jobs=2)
    wait_for(lambda: len(training_logs(runs)) == 2, 300, "two chains' first steps")
    [runner] = children(make.pid)
    workers = children(runner)
    assert len(workers) == 2
    os.kill(make.pid, signal.SIGKILL)
    make.wait(timeout=60)
    wait_all_gone((runner, *workers), "to stop with make")
    logs = training_logs(runs)
    assert len(logs) == 2 and not list(runs.rglob("report.md"))
    stopped_at = {}
    for log in logs:
        assert read_records(log, "stopped")[-1]["signal"] == "SIGTERM", log
        stopped_at[log] = read_records(log, "stopped")[-1]["iter"]

    def worker_text() -> str:
        return "".join(p.read_text() for p in (runs / "paper" / "logs").glob("*.log"))

    make = start_paper(runs, out, jobs=2)
    wait_for(lambda: worker_text().count("resuming in") >= 2, 300, "both chains to resume")
    [runner] = children(make.pid)
    workers = children(runner)
    wait_for(lambda: all(read_records(log, "step")[-1]["iter"] > stopped_at[log]
                         for log in logs), 180, "a resumed step in both")
    os.killpg(make.pid, signal.SIGINT)  # a terminal's Ctrl-C: make and the driver only
    make.wait(timeout=120)
    wait_all_gone((runner, *workers), "to stop on Ctrl-C")
    for log in logs:
        assert [r["signal"] for r in read_records(log, "stopped")] == ["SIGTERM", "SIGINT"]
    assert training_logs(runs) == logs
    assert "paper: stopped" in out.read_text()


@pytest.mark.fault("correct", guards="lost")
def test_a_make_training_killed_stops_its_schedule_too(tmp_path):
    data = make_dataset("voc", tmp_path / "data", n_train=2, n_val=1, num_classes=3,
                        size=(32, 40), seed=2)
    runs = tmp_path / "runs"
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-o", "setup", "-o", "venv", "voc-fcn32s",
         f"DATA={data}", f"RUNS={runs}", "WEIGHTS=none", "ITERS=100000", "WIDTH=0.0625",
         "LR=1e-6", "TEST_EVERY=0"], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "GLOG_minloglevel": "2"})
    wait_for(lambda: steps_logged(runs), 240, "the first training steps")
    [runner] = children(make.pid)
    os.kill(make.pid, signal.SIGKILL)
    make.wait(timeout=60)
    try:
        wait_for(lambda: gone(runner), 60, f"the schedule {runner} to stop with make")
    finally:
        stop_if_left(runner)
    records = read_records(runs / "voc-fcn32s" / "train.jsonl", "stopped")
    assert records[-1]["signal"] == "SIGTERM"


@pytest.mark.fault("correct", guards="traceback")
def test_ctrl_c_leaves_a_process_prefetch_worker_serving_the_iteration_being_finished(
        tmp_path):
    """Ctrl-C reaches the data worker too (one process group); the worker leaves it to the
    training loop, which finishes its iteration with the worker's examples, then closes it."""
    data = make_dataset("voc", tmp_path / "data", n_train=4, n_val=1, num_classes=3,
                        size=(32, 40), seed=5)
    script = f"""
import os, signal, sys, time
from pathlib import Path
from bench.data_layers import data_layer_net
params = {{"sbdd_dir": {str(data / "sbdd/dataset")!r}, "seed": 1, "split": "train",
          "mean": (104.0, 117.0, 123.0), "prefetch": "process"}}
net = data_layer_net(Path({str(tmp_path / "n.prototxt")!r}), "voc_layers",
                     "SBDDSegDataLayer", repr(params), ["data", "label"])
stop = []   # the training loop's handler, set once the net (and its worker) exists
signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
net.forward()
worker = net.layers[0].prefetch.worker
os.killpg(0, signal.SIGINT)                 # what a terminal's Ctrl-C sends
time.sleep(1.0)
net.forward()                               # the iteration being finished, and one more
net.forward()
print("stopped", stop, "worker alive", worker.is_alive(), flush=True)
net.layers[0].prefetch.close()
print("worker exit", worker.exitcode, flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, start_new_session=True, cwd=REPO,
                          env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"stopped [{int(signal.SIGINT)}] worker alive True" in done.stdout
    assert "worker exit 0" in done.stdout
