"""`make paper JOBS=N`: independent chains side by side in local processes, one BLAS
thread share each.

The miniature's nets are small: their GEMMs keep two BLAS threads only partly busy, and
two chains of one thread each train ~1.7× as many steps a second on 2 cores as one chain
of two threads (paper/README.md). Chains never share a stage (paper.plan.components), so, as on a
Ray cluster, the processes need no coordination beyond the run folder. A process runs
exactly the serial run's unit (paper.chains.work) or one backbone's pre-training and
surgery (paper.miniature.mini_bases); the pinned numerics give the same bits at any thread
count, so the report is the serial run's, byte for byte.

Each worker runs in its own session (a terminal's Ctrl-C reaches only this driver) and
is stopped through its own training loop: the driver passes on the one signal it got
(SIGINT or SIGTERM), waits for every worker to finish its iteration and snapshot, and
exits 130/143; the same command resumes. A worker whose driver dies gets SIGTERM from the
kernel (training.schedule.stopping_with_parent). A chain that diverges or meets bad data
stops only itself, as in the serial run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.defaults import REPO, quiet_caffe_log
from core.errors import ReportedError, cli_main
from paper.plan import TABLES, Settings, say

CHAIN_FAULT = 3     # a worker's exit code for a chain that diverged or met bad data
POLL_S = 0.5
STOP_WAIT_S = 600   # how long stopped workers get to finish their iteration and snapshot


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def settings_payload(settings: Settings) -> dict:
    """Settings as JSON (a Ray task's and a worker's argument)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}


def settings_from(payload: dict) -> Settings:
    def restore(key: str, value):
        if key in ("data", "runs", "base_dir"):
            return Path(value)
        if key == "picture":
            return tuple(value)
        if key == "solver_changes":
            return tuple((name, tuple(tuple(kv) for kv in changes)) for name, changes in value)
        return value
    return Settings(**{k: restore(k, v) for k, v in payload.items()})


class ChainFault(ReportedError, RuntimeError):
    """This worker's chain diverged or met bad data: the driver goes on with the others."""

    exit_code = CHAIN_FAULT


@dataclass
class Job:
    """One worker's task: a chain ('chain', its targets) or a backbone's bases ('bases')."""
    kind: str
    names: list[str]
    needs: set[str] = field(default_factory=set)   # bases that must exist first
    process: subprocess.Popen | None = None
    log: Path | None = None
    began: float = 0.0

    @property
    def label(self) -> str:
        return " + ".join(self.names) if self.kind == "chain" else (
            f"bases {', '.join(self.names)}")


def run_side_by_side(jobs: list[Job], payload: dict, workers: int, logs: Path,
                     made: set[str] | None = None) -> list[str]:
    """Run the jobs, `workers` at a time, each as soon as the bases it needs are made,
    each worker's output in logs/<job>.log; returns the failed chains (a chain fault stops
    only its own job). Any other worker failure is raised once the running jobs are done."""
    threads = max(1, usable_cpus() // workers)
    env = quiet_caffe_log({**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'layers'}"})
    env.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    env.setdefault("CAFFE_NUM_THREADS", env["OPENBLAS_NUM_THREADS"])
    made = set(made or ())
    logs.mkdir(parents=True, exist_ok=True)
    waiting, running, failed, broken = list(jobs), [], [], []
    with stop_signals() as received:
        try:
            _run(waiting, running, failed, broken, made, workers, env, logs, payload)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (make's, or the kernel's: make died)
            signum = received[0] if received else signal.SIGINT
            _stop(running, signum)
            raise KeyboardInterrupt(f"{signal.Signals(signum).name}; {len(running)} "
                                    f"worker(s) stopped", signum) from None
    if broken:
        raise RuntimeError("paper: worker(s) failed: " + "; ".join(broken)
                           + "; run the same command again to resume")
    return failed


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """Within: SIGINT and SIGTERM raise KeyboardInterrupt(name, signum), and the signals
    received are kept in the yielded list, so a driver knows which one to pass on to what
    it started; the handlers from before are restored after."""
    received: list[int] = []

    def stop_signal(signum, frame) -> None:
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name, signum)

    previous = {s: signal.signal(s, stop_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(waiting: list[Job], running: list[Job], failed: list[str], broken: list[str],
         made: set[str], workers: int, env: dict, logs: Path, payload: dict) -> None:
    """The driver's loop: start what is ready, collect what ended (into the lists given)."""
    while waiting or running:
        while len(running) < workers and not broken:
            ready = next((j for j in waiting if j.needs <= made), None)
            if ready is None:
                break
            waiting.remove(ready)
            ready.log = logs / f"{ready.kind}-{'+'.join(ready.names)}.log"
            with open(ready.log, "w") as log:
                ready.process = subprocess.Popen(
                    [sys.executable, "-m", "paper.processes", ready.kind,
                     json.dumps({"names": ready.names, **payload})],
                    env=env, cwd=REPO, start_new_session=True, stdout=log,
                    stderr=subprocess.STDOUT)
            ready.began = time.time()
            running.append(ready)
            say(f"started {ready.label} ({len(running)} of {workers} workers, "
                f"{env['OPENBLAS_NUM_THREADS']} BLAS thread(s) each)")
        if not running:
            if waiting and not broken:
                lacking = sorted(set().union(*(j.needs - made for j in waiting)))
                raise RuntimeError(f"chains wait for bases no job makes: {lacking}")
            break
        time.sleep(POLL_S)
        for job in [j for j in running if j.process.poll() is not None]:
            running.remove(job)
            errors = [line.split("error: ", 1)[1] for line in
                      job.log.read_text(errors="replace").splitlines() if "error: " in line]
            code = job.process.returncode
            if code == 0:
                made |= set(job.names) if job.kind == "bases" else set()
                say(f"done {job.label} in {time.time() - job.began:.0f} s")
            elif code == CHAIN_FAULT:
                failed.append(f"{job.label}: {errors[-1] if errors else 'failed'}")
                say(f"chain {job.label} failed; going on with the others")
            else:
                broken.append(f"{job.label} (exit {code}): "
                              f"{errors[-1] if errors else 'no message'} (log: "
                              f"{job.log})")


def _stop(running: list[Job], signum: int) -> None:
    """Stop the workers through their own training loops (one signal each) and wait until
    they have, bounded by STOP_WAIT_S; a second interrupt, or the bound, kills them."""
    say(f"stopping {len(running)} worker(s) after their current iteration (again to kill "
        f"them at once)")
    for job in running:
        job.process.send_signal(signum)
    deadline = time.monotonic() + STOP_WAIT_S
    try:
        for job in running:
            job.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        pass
    for job in running:
        if job.process.poll() is None:
            job.process.kill()
            job.process.wait()


# --- the worker side ---------------------------------------------------------------------------
@cli_main("paper-worker", also=(ValueError, OSError, RuntimeError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="One worker of `make paper JOBS=N` (started by paper.run, not by hand): "
                    "train and score one chain, or pre-train one backbone's bases.")
    parser.add_argument("kind", choices=("chain", "bases"))
    parser.add_argument("payload", help="JSON: names, settings, equal_images, tables, mini")
    args = parser.parse_args(argv)
    payload = json.loads(args.payload)
    settings = settings_from(payload["settings"])
    # training.schedule imports Caffe: loaded on use, so this module imports without it
    from training.schedule import stopped, stopping_with_parent
    from training.train import DataFault, Diverged

    try:
        with stopping_with_parent():
            if args.kind == "bases":
                from paper.miniature import mini_bases
                from paper.plan import MINI, SHORT

                mini = SHORT if payload["mini"] == "short" else MINI
                mini_bases(settings, mini, set(payload["names"]))
            else:
                from paper.chains import work

                groups = [g for key in payload["tables"] for g in TABLES[key]]
                work(payload["names"], settings, set(payload["equal_images"]), groups)
    except (Diverged, DataFault) as e:
        raise ChainFault(str(e)) from None
    except KeyboardInterrupt as e:
        return stopped("paper-worker", e)
    return 0


def payload_of(settings: Settings, equal_images: set[str], tables: list[str],
               mini_name: str) -> dict:
    return {"settings": settings_payload(settings), "equal_images":
            sorted(equal_images), "tables": tables, "mini": mini_name}


if __name__ == "__main__":
    sys.exit(main())
