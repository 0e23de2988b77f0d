"""What every driver of child processes needs: the CPUs it may use, the stop signals as an
interrupt, and children that stop when their parent dies.

The drivers (`make paper JOBS=N`'s workers, the demo's side-by-side trainings, a training
schedule under make) each start long Caffe runs; these are the three facts they share."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def usable_cpus() -> int:
    """The CPUs in this process's affinity mask (`taskset`, container limits), else all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


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


try:   # looked up once, here: a Popen preexec_fn runs in a fork and should only call it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):   # not Linux
    _prctl = None


def signal_when_parent_dies(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel to send this process `signum` when its parent dies (Linux prctl
    PR_SET_PDEATHSIG), so a driver killed with -9 leaves nothing running on; elsewhere a
    no-op (the parent's own signals still reach). Safe as a Popen preexec_fn."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name, signum)


@contextlib.contextmanager
def stopping_with_parent() -> Iterator[None]:
    """A long run stops, resumably, when whoever started it stops. make passes SIGTERM to
    its children but not SIGINT (`kill -INT <make>` leaves the child training detached):
    the kernel is asked to send SIGTERM when the parent dies (Linux prctl
    PR_SET_PDEATHSIG), and a SIGTERM outside the training loop (which has its own
    handler: finish the iteration, snapshot) becomes an interrupt like Ctrl-C, so the
    run stops at once with 143 and resumes on the next run."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    signal_when_parent_dies(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stopped(program: str, interrupt: KeyboardInterrupt) -> int:
    """Say where a stopped run can resume and return the shell's code for the signal that
    stopped it (130 SIGINT, 143 SIGTERM): the schedules and the drivers raise the interrupt
    with their message and the signal number."""
    args = interrupt.args
    print(f"{program}: stopped ({args[0] if args else 'interrupt'}); run the same command "
          f"again to resume", file=sys.stderr)
    return 128 + (args[1] if len(args) > 1 and args[1] else signal.SIGINT)


def last_error(log: Path, start: int = 0) -> str | None:
    """The last `<prog>: error: …` report a child wrote to its log from byte `start` on
    (the message after "error: "), or None if it wrote none."""
    if not log.is_file():
        return None
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    errors = [line.split("error: ", 1)[1] for line in text.splitlines() if "error: " in line]
    return errors[-1] if errors else None


def stop_and_wait(processes: list[subprocess.Popen], signum: int, bound_s: float,
                  send: Callable[[subprocess.Popen, int], None] = subprocess.Popen.send_signal
                  ) -> None:
    """Send every process `signum` (through `send`) and wait until each has ended, bounded
    by `bound_s` in all; a second interrupt while waiting, or the bound, kills the ones
    left (SIGKILL, through `send` too)."""
    for process in processes:
        send(process, signum)
    deadline = time.monotonic() + bound_s
    try:
        for process in processes:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        pass
    for process in processes:
        if process.poll() is None:
            send(process, signal.SIGKILL)
            process.wait()
