"""`make compare` of two runs separates numbers from provenance (compare/runs.py): runs
whose scores and final weights are the same bits are "identical in numbers" (exit 0) however
their folders, data paths or solver text differ, and those differences are named; other
numbers are DIFFERENT (compare.cli exit 1); a damaged result is refused (exit 2). Real trainings:
voc-fcn32s at width 1/16 on 32×40 synthetic pictures, two iterations."""

import shutil
import subprocess
from pathlib import Path

import pytest

from data.synthetic import make_dataset
from testkit.tiny_nets import flip_bit
from training.schedule import main as schedule

REPO = Path(__file__).resolve().parents[1]


def trained(data: Path, runs: Path, *more: str) -> Path:
    assert schedule(["voc-fcn32s", "--data", str(data), "--runs", str(runs), "--weights",
                     "none", "--iters", "2", "--test-every", "0", "--width", "0.0625",
                     "--lr", "1e-4", "--quiet", *more]) == 0
    return runs / "voc-fcn32s"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs: A; B the same request on a copy of A's data elsewhere, in another RUNS;
    C with another seed."""
    root = tmp_path_factory.mktemp("compare")
    data = make_dataset("voc", root / "data", n_train=2, n_val=2, num_classes=3,
                        size=(32, 40), seed=4)
    copy = shutil.copytree(data, root / "elsewhere" / "data copy")
    return (trained(data, root / "runs-a"), trained(copy, root / "runs-b"),
            trained(data, root / "runs-c", "--seed", "9"))


def compare(a: Path, b: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-o", "built", "compare",
                           f"A={a}", f"B={b}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.fault("correct", guards="unclear")
def test_runs_with_the_same_numbers_are_identical_in_numbers_naming_the_provenance(runs):
    a, b, _ = runs
    done = compare(a, b)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "IDENTICAL IN NUMBERS"
    assert any(line.startswith("numbers: identical (") and "weight blobs compared" in line
               for line in lines)
    provenance = done.stdout.split("provenance (differs without deciding the verdict):")[1]
    for field in ("request.data", "fingerprint.net", "fingerprint.solver",
                  "weights.data (python_param.param_str['sbdd_dir'])"):
        assert field in provenance, done.stdout  # the data's path, the net and solver text
    assert "fingerprint.data" not in provenance     # the data's contents are the same
    assert "DIFFERENT" not in done.stderr


@pytest.mark.fault("correct", guards="silent")
def test_runs_with_other_numbers_are_different_naming_the_weights(runs):
    a, _, c = runs
    done = compare(a, c)
    assert done.returncode == 2                     # make's own status for a failed recipe
    assert done.stdout.splitlines()[-1] == "DIFFERENT"
    assert any(line.startswith("weights.") and "values differ" in line
               for line in done.stdout.splitlines())
    assert "make compare: DIFFERENT (compare.cli exit 1)" in done.stderr


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_run_whose_final_weights_were_damaged_is_refused_not_compared(runs, tmp_path):
    a, b, _ = runs
    damaged = Path(shutil.copytree(b, tmp_path / "b", ignore=shutil.ignore_patterns(".lock")))
    final = damaged / "final.caffemodel"
    flip_bit(final, final, byte=final.stat().st_size - 3)
    done = compare(a, damaged)
    assert done.returncode == 2                     # compare.cli's 2, as COMPARE_STATUS says
    assert f"compare: error: {final}: sha256 " in done.stderr
    assert "make compare: BAD INPUT (compare.cli exit 2)" in done.stderr
