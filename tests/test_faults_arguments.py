"""Every number is checked at the command line (core/arguments.py, nets.experiments.check_width):
a value outside its range is one usage error naming the argument and the allowed range,
before any run folder is made — never a run that trains on `max_iter -3` or one-channel
layers, nor argparse's "expected one argument" for a negative rate."""

import os
import subprocess
from pathlib import Path

import pytest

from evaluation.score import main as score
from training.schedule import main as schedule
from training.train import main as train

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("flag, value, says", [
    ("--iters", "0", "ITERS=/--iters must be an integer ≥ 1, found 0"),
    ("--iters", "-3", "ITERS=/--iters must be an integer ≥ 1, found -3"),
    ("--width", "0", "WIDTH=/--width must be a number in (0, 1], found 0"),
    ("--width", "1.5", "WIDTH=/--width must be a number in (0, 1], found 1.5"),
    ("--lr", "nan", "LR=/--lr must be a finite number > 0, found nan"),
    ("--lr", "-1e-6", "LR=/--lr must be a finite number > 0, found -1e-6"),
    ("--lr", "inf", "LR=/--lr must be a finite number > 0, found inf"),
    ("--momentum", "1", "MOMENTUM=/--momentum must be a number in [0, 1), found 1"),
    ("--momentum", "-0.1", "MOMENTUM=/--momentum must be a number in [0, 1), found -0.1"),
    ("--lr-drop", "0", "LR_DROP=/--lr-drop must be a finite number > 0, found 0"),
    ("--test-every", "-1", "TEST_EVERY=/--test-every must be an integer ≥ 0, found -1"),
])
@pytest.mark.fault("clear error", guards="silent")
def test_a_number_out_of_range_is_a_usage_error_naming_its_range(tmp_path, capsys, flag,
                                                                 value, says):
    with pytest.raises(SystemExit) as stopped:
        schedule(["voc-fcn32s", "--data", str(tmp_path), "--runs", str(tmp_path / "runs"),
                  f"{flag}={value}"])
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("main", [train, score])
@pytest.mark.fault("clear error", guards="silent")
def test_the_other_commands_check_the_same_ranges(tmp_path, capsys, main):
    args = (["voc-fcn32s", "--data", str(tmp_path), "--weights", "none", "--iters=0"]
            if main is train else
            ["--net", "voc-fcn32s", "--weights", "w", "--data", str(tmp_path), "--width=0"])
    with pytest.raises(SystemExit):
        main(args)
    assert "must be" in capsys.readouterr().err


@pytest.mark.fault("clear error", guards="silent")
def test_a_width_that_leaves_a_layer_without_a_channel_is_refused(tmp_path, capsys):
    assert schedule(["voc-fcn32s", "--data", str(tmp_path), "--runs", str(tmp_path / "runs"),
                     "--width=0.005"]) == 1
    err = capsys.readouterr().err
    assert "WIDTH=/--width 0.005 leaves 2 layer(s) of voc-fcn32s without a channel" in err
    assert "conv1_1 has 64 at width 1" in err and "above 0.0078125" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.fault("clear error", guards="unclear")
def test_make_passes_a_negative_rate_to_the_range_check(tmp_path):
    done = subprocess.run(["make", "--no-print-directory", "-o", "setup", "-o", "venv",
                           "voc-fcn32s", f"DATA={tmp_path}", f"RUNS={tmp_path / 'runs'}",
                           "LR=-1e-6", "ITERS=1"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode != 0
    assert "LR=/--lr must be a finite number > 0, found -1e-6" in done.stderr
    assert "expected one argument" not in done.stderr


@pytest.mark.fault("clear error", guards="silent")
def test_make_paper_checks_its_iterations_too(tmp_path):
    done = subprocess.run(["make", "--no-print-directory", "-o", "setup", "-o", "venv",
                           "paper", "MINI=1", f"RUNS={tmp_path / 'runs'}", "ITERS=-3"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ITERS=/--iters must be an integer ≥ 1, found -3" in done.stderr
    assert not (tmp_path / "runs").exists()
