"""Each fault case declares what the user gets, and the declaration is checked, not trusted.

    @pytest.mark.fault("clear error", guards="lost")   # or "correct"; guards: what the
    def test_…():                                      # case's assertions rule out

A case's class is checked against what the test saw: every subprocess it ran (its exit
status and output, recorded around subprocess.Popen), every line the project's entry points
printed in-process (`<prog>: error: …`, through cli_main, or argparse's usage error) and
every ReportedError raised.

- traceback: "Traceback (most recent call last)" in any output (a bug, whatever the class);
- abort: a glog CHECK, a C++ terminate, or a process ended by SIGABRT/SIGSEGV;
- clear error (declared): at least one step failed the project's way: a non-zero exit with
  a `<prog>: error: …` line, an in-process main() printing one, a ReportedError, or a
  ValueError/OSError/RuntimeError/MemoryError (the kinds cli_main reports in one line) or
  an argument type's ArgumentTypeError (argparse's usage error) with a message caught by
  the test's pytest.raises (the test's own assertions say it reached the user); else the
  case is *silent*;
- correct (declared): no step printed an error line (a ReportedError the project catches
  itself, as when a damaged snapshot is passed over, is no failure); else *not correct*;
- a failing assertion is the case's `guards` class (lost, trusted-corrupt, silent, …): what
  the assertions were there to rule out.

`make faults` runs tests/test_faults_*.py with `--fault-report`: one line per case with its
class, and a non-zero exit for any case outside "clear error" and "correct". Under
`make test` the same checks run (a wrong class fails its test); only the lines are left out.
"""

from __future__ import annotations

import argparse
import builtins
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

CLASSES = ("clear error", "correct")
# what a case's assertions rule out ("unclear": a misleading message or none where one
# line was due)
GUARDS = ("silent", "lost", "trusted-corrupt", "abort", "traceback", "unclear")
TRACEBACK = "Traceback (most recent call last)"
# what an abort leaves in the output (glog's fatal line and stack banner, a C++ terminate,
# the shell's or make's word for SIGABRT/SIGSEGV); a clear error may quote glog's "Check
# failed: …" text, so that alone is not one
ABORT = re.compile(r"^F\d{4} \d\d:\d\d:\d\d\.\d+ |\*\*\* Check failure stack trace|"
                   r"terminate called after|Segmentation fault|core dumped|\] (Aborted|Error 134|"
                   r"Error 139)\b", re.MULTILINE)
ABORT_STATUSES = {-signal.SIGABRT, -signal.SIGSEGV, 128 + signal.SIGABRT,
                  128 + signal.SIGSEGV}
TESTS = str(Path(__file__).resolve().parent)
REPO = str(Path(__file__).resolve().parents[1])
ERROR_LINE = re.compile(r"^[\w.\-/ ]+: error: \S", re.MULTILINE)
OUTCOMES = pytest.StashKey[dict]()
# what the entry points turn into one `<prog>: error: …` line (ReportedError is recorded
# where it is made; these where a test catches them as the command's refusal): cli_main's
# kinds, and an argument type's ArgumentTypeError, which argparse prints as its usage error
ONE_LINE = (ValueError, OSError, RuntimeError, MemoryError, argparse.ArgumentTypeError)


def pytest_addoption(parser) -> None:
    parser.addoption("--fault-report", action="store_true",
                     help="one line per fault case with its checked class (make faults)")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "fault(kind, guards): the class a fault case "
                            "declares (tests/fault_classes.py checks it)")
    config.stash[OUTCOMES] = {}


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


class Evidence:
    """What one test saw: (exit status or None, output) per step, ReportedErrors raised."""

    def __init__(self) -> None:
        self.steps: list[tuple[int | None, str]] = []
        self.reported: list[str] = []

    def outputs(self) -> str:
        return "\n".join(text for _, text in self.steps)

    def verdict(self, declared: str) -> str:
        """The class the evidence shows for a case that declared `declared`."""
        text = self.outputs()
        if TRACEBACK in text:
            return "traceback"
        if ABORT.search(text) or any(code in ABORT_STATUSES for code, _ in self.steps):
            return "abort"
        said = any(ERROR_LINE.search(out) and code != 0 for code, out in self.steps)
        if declared == "clear error":
            return "clear error" if said or self.reported else "silent"
        # a ReportedError caught inside the project (a snapshot passed over) is no failure
        return "not correct" if said else "correct"


class _Caught:
    """pytest.raises' context, recording the exception it caught: one of the kinds every
    entry point reports in one line (cli_main's ReportedError and its `also` types)."""

    def __init__(self, context, evidence: Evidence):
        self.context, self.evidence = context, evidence

    def __enter__(self):
        return self.context.__enter__()

    def __exit__(self, kind, value, traceback) -> bool:
        caught = self.context.__exit__(kind, value, traceback)
        if caught and isinstance(value, ONE_LINE) and str(value).strip():
            self.evidence.reported.append(f"{kind.__name__}: {value}")
        return caught


@pytest.fixture(autouse=True)
def fault_evidence(request, monkeypatch):
    """Record the evidence of a test marked `fault` (nothing for other tests)."""
    mark = request.node.get_closest_marker("fault")
    if mark is None:
        yield None
        return
    evidence = Evidence()
    real_communicate, real_wait = subprocess.Popen.communicate, subprocess.Popen.wait

    def communicate(self, *args, **kwargs):
        out, err = real_communicate(self, *args, **kwargs)
        if _started_by_the_test():
            evidence.steps.append((self.returncode, _text(out) + "\n" + _text(err)))
        return out, err

    def wait(self, *args, **kwargs):
        code = real_wait(self, *args, **kwargs)
        if _started_by_the_test():
            evidence.steps.append((code, ""))
        return code

    real_print = builtins.print

    def printing(*args, **kwargs):
        if kwargs.get("file") is sys.stderr:
            evidence.steps.append((None, " ".join(map(str, args))))
        return real_print(*args, **kwargs)

    real_exit = argparse.ArgumentParser.exit

    def exiting(self, status=0, message=None):   # argparse's usage error: `<prog>: error: …`
        evidence.steps.append((status, message or ""))
        return real_exit(self, status, message)

    from core.errors import ReportedError
    real_init = ReportedError.__init__

    def reported(self, *args, **kwargs):
        evidence.reported.append(str(args[0]) if args else type(self).__name__)
        real_init(self, *args, **kwargs)

    real_raises = pytest.raises

    def raises(expected, *args, **kwargs):   # what the test caught as the refusal
        context = real_raises(expected, *args, **kwargs)
        return context if args else _Caught(context, evidence)

    monkeypatch.setattr(pytest, "raises", raises)
    monkeypatch.setattr(subprocess.Popen, "communicate", communicate)
    monkeypatch.setattr(subprocess.Popen, "wait", wait)
    monkeypatch.setattr(builtins, "print", printing)
    monkeypatch.setattr(argparse.ArgumentParser, "exit", exiting)
    monkeypatch.setattr(ReportedError, "__init__", reported)
    yield evidence


def _started_by_the_test() -> bool:
    """Whether the first caller outside subprocess is the test (tests/, or a test outside
    the repository), not project code, which runs children of its own on purpose (Caffe
    probes a net in a child process, and reports what it saw)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename == subprocess.__file__:
        frame = frame.f_back
    where = frame.f_code.co_filename if frame is not None else ""
    return where.startswith(TESTS + "/") or not where.startswith(REPO + "/")


def _declared(item) -> tuple[str, str]:
    mark = item.get_closest_marker("fault")
    kind = mark.args[0] if mark.args else mark.kwargs.get("kind")
    guards = mark.kwargs.get("guards", "silent")
    if kind not in CLASSES or guards not in GUARDS:
        raise pytest.UsageError(f"{item.nodeid}: fault({kind!r}, guards={guards!r}): the "
                                f"class is one of {CLASSES}, guards one of {GUARDS}")
    return kind, guards


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """After the test body: its class from the evidence; a mismatch fails the test."""
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or item.get_closest_marker("fault") is None:
        return
    kind, guards = _declared(item)
    if report.skipped:
        found = "skipped"
    elif report.failed:
        found = guards
    else:
        evidence = item.funcargs.get("fault_evidence")
        found = evidence.verdict(kind)
        if found != kind:
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid}: declared {kind!r}, but the evidence shows "
                               f"{found!r}:\n{evidence.outputs()[-3000:]}\n"
                               f"ReportedErrors: {evidence.reported[:5]}")
    item.config.stash[OUTCOMES][item.nodeid] = found


def pytest_runtest_setup(item) -> None:
    """Under --fault-report every case must declare its class."""
    if item.config.getoption("--fault-report") and item.get_closest_marker("fault") is None:
        item.config.stash[OUTCOMES][item.nodeid] = "undeclared"
        pytest.fail("no @pytest.mark.fault(class, guards=…) on this fault case "
                    "(tests/fault_classes.py)")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not config.getoption("--fault-report"):
        return
    outcomes = config.stash[OUTCOMES]
    write = terminalreporter.write_line
    write("")
    for nodeid, found in outcomes.items():
        write(f"{found:<16s} {nodeid}")
    bad = {n: f for n, f in outcomes.items() if f not in (*CLASSES, "skipped")}
    counts = {c: sum(1 for f in outcomes.values() if f == c) for c in (*CLASSES, "skipped")}
    write(f"faults: {counts['clear error']} clear error, {counts['correct']} correct, "
          f"{counts['skipped']} skipped, {len(bad)} outside both")
