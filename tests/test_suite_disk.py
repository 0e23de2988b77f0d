"""The suite's own temporary files: a passing run leaves nothing behind.

A whole run writes ~19 GB under pytest's tmp_path dirs; with pytest's default retention (every
test's dirs of the last three runs) three runs filled a CI disk. pyproject.toml keeps only the
dirs of failed tests. These tests run a small pytest session under this project's configuration
with its own temporary root and look at what stays there.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """
def test_writes_a_megabyte(tmp_path):
    (tmp_path / "blob").write_bytes(bytes(1 << 20))

def test_keeps_its_evidence(tmp_path):
    (tmp_path / "evidence").write_text("kept")
    assert FAIL is False
"""


def _run_session(tmp_path: Path, fail: bool) -> list[Path]:
    tests = tmp_path / "sample"
    tests.mkdir()
    (tests / "test_sample.py").write_text(SAMPLE.replace("FAIL", str(fail)))
    temproot = tmp_path / "temproot"
    temproot.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTEST_DEBUG_TEMPROOT": str(temproot), "HOME": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tests),
            str(tests),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == (1 if fail else 0), done.stdout + done.stderr
    return sorted(p for p in temproot.rglob("*") if p.is_file())


def test_a_passing_run_leaves_no_files_in_the_temporary_root(tmp_path: Path) -> None:
    assert _run_session(tmp_path, fail=False) == []


def test_a_failing_run_keeps_the_failed_tests_files_only(tmp_path: Path) -> None:
    left = _run_session(tmp_path, fail=True)
    assert [p.name for p in left] == ["evidence"]
