"""The demo's trainings side by side: lanes of commands, each lane one after the other,
the lanes at once, each with its share of the CPUs.

The demo's nets are small (VGG16 ÷ 16 on 224-pixel pictures): two BLAS threads keep one
training only partly busy, and on 2 cores two one-thread trainings side by side do ~1.7×
the steps a second of one two-thread training (paper/README.md, "Budget"). The pinned
numerics give the same bits at any thread count (caffe-recipe/NUMERICS.md), so the table
is the serial run's, bit for bit.

Each command runs in its own session, so a terminal's Ctrl-C reaches only this driver,
which passes the one signal it got (SIGINT or SIGTERM) on to every running command so that
its training gets it once (_pass_on) and stops after its iteration with a snapshot. The driver
waits for them, bounded by STOP_WAIT_S (a second signal kills them), and the same command
resumes. A driver killed outright takes its commands along: the kernel sends each make
SIGTERM (core.processes.signal_when_parent_dies), which make passes on to its training.
A command that fails stops the others the same way and is reported in one line with its
last error and its log. With the output in log files, each running command's progress is
said once a minute, read off the progress bar its training draws into its log.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import ReportedError
from core.processes import last_error, signal_when_parent_dies, stop_and_wait, stop_signals

POLL_S = 0.2
STOP_WAIT_S = 60    # a demo iteration and its snapshot take well under a second
PROGRESS_S = 60     # how often the lanes' progress is said, read off their logs
BAR = re.compile(r"([\w.-]+):\s+\d+%\|[^|\n\r]*\|\s*(\d+)/(\d+)")   # a progress bar in a log


class LaneFailed(ReportedError, RuntimeError):
    """A command of a lane exited with an error; the others were stopped."""


@dataclass(frozen=True)
class Command:
    """One command of a lane: its name in messages, its argv, and the file its output goes
    to (None: this process's own stdout and stderr)."""
    name: str
    argv: list[str]
    log: Path | None = None


@dataclass
class Lane:
    """Commands run one after the other with `threads` CPUs' worth of BLAS and Caffe
    threads."""
    commands: list[Command]
    threads: int
    process: subprocess.Popen | None = None
    began: float = 0.0
    log_start: int = 0          # the current command's log size when it started
    finished: int = 0           # commands done: the current one is the next

    @property
    def current(self) -> Command:
        return self.commands[self.finished]


def thread_shares(cpus: int, lanes: int) -> list[int]:
    """Each lane's threads: the CPUs split as evenly as they go, the first lane (the
    longest) getting any odd one, and at least one each."""
    return [max(1, cpus // lanes + (1 if i < cpus % lanes else 0)) for i in range(lanes)]


def progress_of(log: Path | None) -> str | None:
    """'<stage> <iteration>/<iterations>' from the last progress bar a training drew into
    its log (every 30 s there), or None before the first."""
    if log is None or not log.is_file():
        return None
    with open(log, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
        bars = BAR.findall(f.read().decode(errors="replace"))
    return f"{bars[-1][0]} {bars[-1][1]}/{bars[-1][2]}" if bars else None


def run_lanes(lanes: list[Lane], env: Mapping[str, str], cwd: Path | None = None,
              say: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> None:
    """Run every lane to its end; raise LaneFailed if a command fails, or
    KeyboardInterrupt(name, signum) if this process got SIGINT or SIGTERM, in both cases
    after the running commands have stopped."""
    with stop_signals() as received:
        try:
            for lane in lanes:
                _start(lane, env, cwd, say)
            said_progress = time.monotonic()
            while any(lane.process is not None for lane in lanes):
                time.sleep(POLL_S)
                if time.monotonic() - said_progress >= PROGRESS_S:
                    said_progress = time.monotonic()
                    _say_progress(lanes, say)
                for lane in lanes:
                    if lane.process is None or (code := lane.process.poll()) is None:
                        continue
                    command = lane.current
                    if code != 0:
                        lane.process = None
                        running = _stop(lanes, signal.SIGTERM)
                        raise LaneFailed(
                            f"{command.name} failed (exit {code}): "
                            f"{_error_of(command, lane.log_start)}"
                            + (f" (log: {command.log})" if command.log else "")
                            + (f"; stopped {', '.join(running)}" if running else "")
                            + "; run the same command again to resume")
                    say(f"done {command.name} in {time.time() - lane.began:.0f} s")
                    lane.finished += 1
                    lane.process = None
                    if lane.finished < len(lane.commands):
                        _start(lane, env, cwd, say)
        except KeyboardInterrupt:
            signum = received[0] if received else signal.SIGINT
            running = _stop(lanes, signum)
            raise KeyboardInterrupt(f"{signal.Signals(signum).name}; stopped "
                                    f"{', '.join(running) or 'nothing running'}",
                                    signum) from None


def _say_progress(lanes: list[Lane], say: Callable[[str], None]) -> None:
    running = [(lane.current.name, progress_of(lane.current.log)) for lane in lanes
               if lane.process is not None]
    if any(bar for _, bar in running):
        say("progress: " + "; ".join(f"{name}: {bar or 'starting'}" for name, bar in running))


def _start(lane: Lane, env: Mapping[str, str], cwd: Path | None,
           say: Callable[[str], None]) -> None:
    command = lane.current
    threads = str(lane.threads)
    lane_env = {**env, "OPENBLAS_NUM_THREADS": env.get("OPENBLAS_NUM_THREADS", threads),
                "CAFFE_NUM_THREADS": env.get("CAFFE_NUM_THREADS", threads)}
    output = None
    if command.log is not None:
        command.log.parent.mkdir(parents=True, exist_ok=True)
        output = open(command.log, "a")
        lane.log_start = output.tell()
    say(" ".join(command.argv) + (f"   ({lane_env['OPENBLAS_NUM_THREADS']} thread(s); "
                                   f"log: {command.log})" if command.log else ""))
    try:
        lane.process = subprocess.Popen(command.argv, env=lane_env, cwd=cwd, stdout=output,
                                        stderr=output, start_new_session=True,
                                        preexec_fn=signal_when_parent_dies)
    finally:
        if output is not None:
            output.close()
    lane.began = time.time()


def _stop(lanes: list[Lane], signum: int) -> list[str]:
    """Pass `signum` on to every running command (_pass_on) and wait for them, bounded
    by STOP_WAIT_S (a second interrupt, or the bound, kills them); the names stopped."""
    running = [lane for lane in lanes if lane.process is not None]
    stop_and_wait([lane.process for lane in running], signum, STOP_WAIT_S, send=_pass_on)
    for lane in running:
        lane.process = None
    return [lane.current.name for lane in running]


def _error_of(command: Command, log_start: int) -> str:
    """A failed command's own last error line, from what its run appended to its log."""
    if command.log is None:
        return "its error is above"
    return last_error(command.log, log_start) or "no error line"


def _pass_on(process: subprocess.Popen, signum: int) -> None:
    """Give a command (make, with its training) one signal that reaches its training once.
    GNU make passes SIGTERM on to its children itself, so SIGTERM goes to make alone: sent
    to the group too, the training would get it twice, and a second signal aborts a
    training without its snapshot. SIGINT make passes to no child (it counts on the
    terminal signalling the whole group), so SIGINT goes to the group, as a terminal's
    Ctrl-C would."""
    if signum == signal.SIGTERM:
        process.send_signal(signum)
    else:       # SIGINT, and the SIGKILL of stop_and_wait: make and its training at once
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
