"""Every number is checked at the command line (core/arguments.py, nets.experiments.check_width):
a value outside its range is one usage error naming the argument and the allowed range,
before any run folder is made — never a run that trains on `max_iter -3` or one-channel
layers, nor argparse's "expected one argument" for a negative rate."""

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from core import arguments
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


# --- the types themselves (core/arguments.py), at each range's edges ------------------------
@pytest.mark.parametrize("parse, accepted, refused", [
    (arguments.iterations(), {"1": 1, "7": 7}, ["0", "-1", "1.5", "x", ""]),
    (arguments.interval("TEST_EVERY=/--test-every"), {"0": 0, "1": 1}, ["-1", "0.5"]),
    (arguments.width(), {"1": 1.0, "0.5": 0.5, "1e-9": 1e-9},
     ["0", "-0.5", "1.0001", "nan", "inf", "-inf", "x"]),
    (arguments.momentum(), {"0": 0.0, "0.99": 0.99}, ["1", "1.5", "-1e-9", "nan"]),
    (arguments.rate("LR=/--lr"), {"1e-10": 1e-10, "2": 2.0}, ["0", "-1e-6", "nan", "inf"])],
    ids=["iterations", "interval", "width", "momentum", "rate"])
@pytest.mark.fault("clear error", guards="silent")
def test_each_range_check_accepts_its_edges_and_refuses_past_them(parse, accepted, refused):
    for text, value in accepted.items():
        parsed = parse(text)
        assert parsed == value and type(parsed) is type(value)
    for text in refused:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


@pytest.mark.fault("clear error", guards="unclear")
def test_a_refusal_names_the_argument_its_range_and_what_was_typed():
    parse = arguments.checked(float, "SIZE=/--size", "a number in [2, 3]", lambda v: 2 <= v <= 3)
    assert parse("2.5") == 2.5 and parse.__name__ == "SIZE=/--size"
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse("4")
    assert str(raised.value) == "SIZE=/--size must be a number in [2, 3], found 4"
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse("four")
    assert str(raised.value) == "SIZE=/--size must be a number in [2, 3], found 'four'"
    assert arguments.checked(int, "N", "any", lambda v: True)("-5") == -5
