"""`make paper JOBS=N`: independent chains side by side in local processes, one BLAS
thread share each.

The miniature's nets are small: their GEMMs keep two BLAS threads only partly busy, and
two chains of one thread each train ~1.7× as many steps a second on 2 cores as one chain
of two threads (paper/README.md). Chains never share a stage (paper.plan.components), so, as on a
Ray cluster, the processes need no coordination beyond the run folder. A process runs
exactly the serial run's unit (paper.chains.work) or one backbone's pre-training and
surgery (paper.miniature.mini_bases); the pinned numerics give the same bits at any thread
count, so the report is the serial run's, byte for byte.

A worker is one process per CPU share, kept for the whole run: the driver sends it one job
at a time on its stdin and reads a line back when the job ends, so Python, numpy and Caffe
load once per worker, not once per chain (~1 s of CPU each, which made the tests' shortened
miniature run over a minute). A job's output goes to its own log file.

Each worker runs in its own session (a terminal's Ctrl-C reaches only this driver) and
is stopped through its own training loop: the driver passes on the one signal it got
(SIGINT or SIGTERM), waits for every worker to finish its iteration and snapshot, and
exits 130/143; the same command resumes. A worker whose driver dies gets SIGTERM from the
kernel (core.processes.stopping_with_parent). A chain that diverges or meets bad data
stops only itself, as in the serial run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.defaults import REPO, quiet_caffe_log
from core.errors import ReportedError, cli_main
from core.processes import (
    last_error,
    stop_and_wait,
    stop_signals,
    stopped,
    stopping_with_parent,
    usable_cpus,
)
from paper.plan import TABLES, Settings, say

CHAIN_FAULT = 3     # a worker's exit code for a chain that diverged or met bad data
POLL_S = 0.5
STOP_WAIT_S = 600   # how long stopped workers get to finish their iteration and snapshot


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
        if key == "lr_scales":
            return tuple((name, scale) for name, scale in value)
        return value
    return Settings(**{k: restore(k, v) for k, v in payload.items()})


class ChainFault(ReportedError, RuntimeError):
    """This worker's chain diverged or met bad data: the driver goes on with the others."""

    exit_code = CHAIN_FAULT


@dataclass
class Job:
    """One task: a chain ('chain', its targets) or a backbone's bases ('bases')."""
    kind: str
    names: list[str]
    needs: set[str] = field(default_factory=set)   # bases that must exist first
    log: Path | None = None
    began: float = 0.0

    @property
    def label(self) -> str:
        return " + ".join(self.names) if self.kind == "chain" else (
            f"bases {', '.join(self.names)}")


@dataclass
class Worker:
    """One worker process and the job it is doing (None: idle)."""
    process: subprocess.Popen
    job: Job | None = None


def run_side_by_side(jobs: list[Job], payload: dict, workers: int, logs: Path) -> list[str]:
    """Run the jobs, `workers` at a time, each as soon as the bases it needs are made,
    each worker's output in logs/<job>.log; returns the failed chains (a chain fault stops
    only its own job). Any other worker failure is raised once the running jobs are done."""
    pool = Workers(jobs, payload, workers, logs)
    with stop_signals() as received:
        try:
            pool.run()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (make's, or the kernel's: make died)
            signum = received[0] if received else signal.SIGINT
            pool.stop(signum)
            raise KeyboardInterrupt(f"{signal.Signals(signum).name}; {len(pool.running)} "
                                    f"worker(s) stopped", signum) from None
    if pool.broken:
        raise RuntimeError("paper: worker(s) failed: " + "; ".join(pool.broken)
                           + "; run the same command again to resume")
    return pool.failed


class Workers:
    """The driver's side: the worker processes, the jobs waiting and the bases made."""

    def __init__(self, jobs: list[Job], payload: dict, workers: int, logs: Path):
        self.waiting: list[Job] = list(jobs)
        self.pool: list[Worker] = []
        self.failed: list[str] = []     # chain faults: the others go on
        self.broken: list[str] = []     # anything else: nothing new starts
        self.made: set[str] = set()
        self.payload, self.workers, self.logs = payload, workers, logs
        env = quiet_caffe_log({**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'layers'}"})
        env.setdefault("OPENBLAS_NUM_THREADS", str(max(1, usable_cpus() // workers)))
        env.setdefault("CAFFE_NUM_THREADS", env["OPENBLAS_NUM_THREADS"])
        self.env = env
        self.selector = selectors.DefaultSelector()

    @property
    def running(self) -> list[Job]:
        return [w.job for w in self.pool if w.job is not None]

    def run(self) -> None:
        """Give each idle worker a job that is ready, collect what ended, until nothing runs
        or waits; then let the workers go."""
        self.logs.mkdir(parents=True, exist_ok=True)
        while self.waiting or self.running:
            while not self.broken and (worker := self.idle_worker()) is not None:
                ready = next((j for j in self.waiting if j.needs <= self.made), None)
                if ready is None:
                    break
                self.start(worker, ready)
            if not self.running:
                if self.waiting and not self.broken:
                    self.release()
                    lacking = set().union(*(j.needs - self.made for j in self.waiting))
                    raise RuntimeError(f"chains wait for bases no job makes: {sorted(lacking)}")
                break
            self.collect_ended()
        self.release()

    def idle_worker(self) -> Worker | None:
        """An idle worker, started here when fewer than `workers` exist."""
        idle = next((w for w in self.pool if w.job is None), None)
        if idle is None and len(self.pool) < self.workers:
            process = subprocess.Popen(
                [sys.executable, "-m", "paper.processes", "serve", json.dumps(self.payload)],
                env=self.env, cwd=REPO, start_new_session=True, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, bufsize=1)   # stderr: the driver's, until
            # the first job's log takes it (a worker that cannot start says why there)
            idle = Worker(process)
            self.pool.append(idle)
            self.selector.register(process.stdout, selectors.EVENT_READ, idle)
        return idle

    def start(self, worker: Worker, job: Job) -> None:
        self.waiting.remove(job)
        job.log = self.logs / f"{job.kind}-{'+'.join(job.names)}.log"
        job.began = time.time()
        worker.job = job
        worker.process.stdin.write(json.dumps({"kind": job.kind, "names": job.names,
                                               "log": str(job.log)}) + "\n")
        worker.process.stdin.flush()
        say(f"started {job.label} ({len(self.running)} of {self.workers} workers, "
            f"{self.env['OPENBLAS_NUM_THREADS']} BLAS thread(s) each)")

    def collect_ended(self) -> None:
        """Wait up to POLL_S for a worker to report its job's exit code (or to end: a
        worker killed, or one that stopped), and record what ended."""
        for key, _ in self.selector.select(timeout=POLL_S):
            worker: Worker = key.data
            line = worker.process.stdout.readline()
            if line:
                self.collect(worker, json.loads(line)["code"])
            else:  # the worker ended: its job (if any) ends with the worker's exit code
                self.selector.unregister(worker.process.stdout)
                self.pool.remove(worker)
                code = worker.process.wait()
                if worker.job is not None:
                    self.collect(worker, code)

    def collect(self, worker: Worker, code: int) -> None:
        """An ended job: its bases made, its chain failed, or the run broken (its last
        error line, read off its log)."""
        job, worker.job = worker.job, None
        error = last_error(job.log)
        if code == 0:
            if job.kind == "bases":
                self.made |= set(job.names)
            say(f"done {job.label} in {time.time() - job.began:.0f} s")
        elif code == CHAIN_FAULT:
            self.failed.append(f"{job.label}: {error or 'failed'}")
            say(f"chain {job.label} failed; going on with the others")
        else:
            self.broken.append(f"{job.label} (exit {code}): "
                               f"{error or 'no message'} (log: {job.log})")

    def release(self) -> None:
        """No more jobs: each worker's stdin closed, and each waited for."""
        for worker in self.pool:
            with contextlib.suppress(OSError):
                worker.process.stdin.close()
        for worker in self.pool:
            worker.process.wait()
        self.selector.close()

    def stop(self, signum: int) -> None:
        """Stop the workers, busy ones through their own training loops (one signal
        each), and wait until they have, bounded by STOP_WAIT_S; a second interrupt, or
        the bound, kills them."""
        say(f"stopping {len(self.running)} worker(s) after their current iteration (again "
            f"to kill them at once)")
        stop_and_wait([worker.process for worker in self.pool], signum, STOP_WAIT_S)


def payload_of(settings: Settings, equal_images: set[str], tables: list[str],
               mini_name: str) -> dict:
    """What every worker is told besides its job's names."""
    return {"settings": settings_payload(settings), "equal_images":
            sorted(equal_images), "tables": tables, "mini": mini_name}


# --- the worker side ---------------------------------------------------------------------------
def do_job(kind: str, names: list[str], payload: dict) -> None:
    """One job, as the serial run does it: pre-train one backbone's bases, or train and
    score one chain."""
    settings = settings_from(payload["settings"])
    if kind == "bases":
        from paper.miniature import mini_bases
        from paper.plan import MINI, SHORT

        mini_bases(settings, SHORT if payload["mini"] == "short" else MINI, set(names))
    else:
        from paper.chains import work

        groups = [g for key in payload["tables"] for g in TABLES[key]]
        work(names, settings, set(payload["equal_images"]), groups)


@cli_main("paper-worker", also=(ValueError, OSError, RuntimeError))
def job_main(kind: str, names: list[str], payload: dict) -> int:
    """One job's exit code: 0, CHAIN_FAULT, 130/143 stopped, 1 any other error (one
    `paper-worker: error: …` line in the job's log)."""
    from training.train import DataFault, Diverged

    try:
        do_job(kind, names, payload)
    except (Diverged, DataFault) as e:
        raise ChainFault(str(e)) from None
    except KeyboardInterrupt as e:
        return stopped("paper-worker", e)
    return 0


def serve(payload: dict, jobs: Iterator[str], results) -> int:
    """The worker's loop: each job line read (kind, names, log), its output into its log,
    its exit code written to `results`; ends at the end of input, or with the first job
    that neither finished nor failed its chain (stopped, or an error of the run). Between
    jobs fds 1 and 2 are the driver's stderr again: what an idle worker says (stopped by
    Ctrl-C) is not written into the log of the job it last ran."""
    between_jobs = os.dup(2)
    for line in jobs:
        job = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        with open(job["log"], "w") as log:   # Caffe's own lines (fd 2) go there too
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        code = job_main(job["kind"], job["names"], payload)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(between_jobs, 1)   # never the driver's pipe (fd 1 at the start): code lines only
        os.dup2(between_jobs, 2)
        results.write(json.dumps({"code": code}) + "\n")
        results.flush()
        if code not in (0, CHAIN_FAULT):
            return code
    return 0


@cli_main("paper-worker", also=(ValueError,))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="One worker of `make paper JOBS=N` (started by paper.run, not by hand): "
                    "reads jobs, one JSON line each ({kind: chain|bases, names, log}), on "
                    "stdin, does each (train and score one chain, or pre-train one "
                    "backbone's bases) with its output in its log, and writes "
                    "{code: exit code} on stdout when it ends.")
    parser.add_argument("mode", choices=("serve",))
    parser.add_argument("payload", help="JSON: settings, equal_images, tables, mini")
    args = parser.parse_args(argv)
    results = os.fdopen(os.dup(1), "w")    # the driver's pipe; fds 1 and 2 go to job logs
    # the driver passes its SIGINT on even when it was started with SIGINT ignored (nohup,
    # a shell's background job), which Python would otherwise leave ignored here: an idle
    # worker then never stopped and the driver waited STOP_WAIT_S before killing it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with stopping_with_parent():
        try:
            return serve(json.loads(args.payload), sys.stdin, results)
        except KeyboardInterrupt as e:     # stopped between jobs
            return stopped("paper-worker", e)


if __name__ == "__main__":
    sys.exit(main())
