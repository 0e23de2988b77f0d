"""The fault-class check (tests/fault_classes.py) is honest: a case is classed by what it
saw, not by what it declares. A pytest run over a file of made-up cases, each a real
subprocess: a silent "refusal", a traceback, an abort, a clear error, a failed assertion,
an undeclared case, refusals caught by pytest.raises and a correct one."""

import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

CASES = '''
import subprocess, sys
import pytest

def child(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

@pytest.mark.fault("clear error", guards="silent")
def test_a_refusal_that_says_nothing():
    assert child("pass").returncode == 0

@pytest.mark.fault("correct", guards="lost")
def test_a_traceback():
    child("1 / 0")

@pytest.mark.fault("correct", guards="lost")
def test_an_abort():
    child("import os; os.abort()")

@pytest.mark.fault("clear error", guards="lost")
def test_a_clear_error():
    done = child("import sys; print('tool: error: x.png: no such file; give another', "
                 "file=sys.stderr); sys.exit(1)")
    assert done.returncode == 1

@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_an_assertion_that_fails():
    assert child("print('accepted')").stdout == "refused"

@pytest.mark.fault("correct", guards="silent")
def test_an_error_line_in_a_correct_case():
    child("import sys; print('tool: error: refused', file=sys.stderr); sys.exit(1)")

def test_undeclared():
    pass

@pytest.mark.fault("clear error", guards="silent")
def test_an_argument_type_refusal():
    import argparse
    with pytest.raises(argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError("N must be an integer ≥ 1, found 0")

@pytest.mark.fault("clear error", guards="silent")
def test_a_refusal_of_another_kind_caught():
    with pytest.raises(KeyError):
        raise KeyError("n")

@pytest.mark.fault("correct", guards="silent")
def test_a_correct_case():
    assert child("print('ok')").returncode == 0
'''


def test_each_case_gets_the_class_its_evidence_shows(tmp_path):
    (tmp_path / "test_cases.py").write_text(CASES)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "fault_classes", "--fault-report", "test_cases.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"})
    found = dict(reversed(m.groups()) for m in re.finditer(
        r"^([a-z][a-z -]+?) +test_cases\.py::(\w+)$", done.stdout, re.MULTILINE))
    assert found == {
        "test_a_refusal_that_says_nothing": "silent",
        "test_a_traceback": "traceback",
        "test_an_abort": "abort",
        "test_a_clear_error": "clear error",
        "test_an_assertion_that_fails": "trusted-corrupt",
        "test_an_error_line_in_a_correct_case": "not correct",
        "test_undeclared": "undeclared",
        "test_an_argument_type_refusal": "clear error",
        "test_a_refusal_of_another_kind_caught": "silent",
        "test_a_correct_case": "correct",
    }, done.stdout[-3000:]
    assert done.returncode == 1
    assert "faults: 2 clear error, 1 correct, 0 skipped, 7 outside both" in done.stdout
