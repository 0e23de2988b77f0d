"""Finished results carry a digest manifest (core/manifest.py): a finished run's
final.caffemodel and score.json are vouched for by result.manifest.json, written last, with
the request the run answered. A rerun of the same request is "done already" only once the
digests verify; a different request is refused, not skipped or re-scored; a damaged final
file is refused by the rerun, `make score` and `make zoo`, naming the file and both digests.
Real trainings: voc-fcn32s at width 1/16 on 32×40 synthetic pictures, one iteration."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compare.runs import load_run
from core.manifest import RESULT_MANIFEST, sha256
from data.synthetic import make_dataset
from training.schedule import main as schedule
from training.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
WIDTH = 0.0625


def train_args(data, runs, *more):
    return ["voc-fcn32s", "--data", str(data), "--runs", str(runs), "--weights", "none",
            "--iters", "1", "--test-every", "0", "--width", str(WIDTH), "--lr", "1e-6",
            "--quiet", *more]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_dataset("voc", root, n_train=2, n_val=2, num_classes=3, size=(32, 40), seed=4)


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert schedule(train_args(data, runs)) == 0
    return runs / "voc-fcn32s"


def copy_of(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "runs" / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_finished_run_vouches_for_its_weights_and_score(finished):
    manifest = json.loads((finished / RESULT_MANIFEST).read_text())
    for name in ("final.caffemodel", "score.json"):
        assert manifest["files"][name]["sha256"] == sha256(finished / name)
    assert manifest["request"]["iters"] == 1 and manifest["request"]["width"] == WIDTH


@pytest.mark.fault("correct", guards="lost")
def test_the_same_request_again_is_done_already_and_not_rescored(data, finished, tmp_path,
                                                                  capsys):
    run = copy_of(finished, tmp_path)
    score_before = (run / "score.json").stat().st_mtime_ns
    assert schedule(train_args(data, run.parent)) == 0
    out = capsys.readouterr().out
    assert "done already" in out and "verified" in out
    assert (run / "score.json").stat().st_mtime_ns == score_before


@pytest.mark.parametrize("change, says", [
    (("--iters", "2"), "iters: 1 recorded, 2 asked"),
    (("--width", "0.125"), "width: 0.0625 recorded, 0.125 asked"),
    (("--seed", "9"), "seed:"),
])
@pytest.mark.fault("clear error", guards="lost")
def test_another_request_on_a_finished_run_is_refused(data, finished, tmp_path, capsys,
                                                      change, says):
    run = copy_of(finished, tmp_path)
    before = {p.name: sha256(p) for p in run.iterdir() if p.is_file()}
    flag, value = change
    args = train_args(data, run.parent)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    assert schedule(args) == 1
    err = capsys.readouterr().err
    assert "holds a finished run of another request" in err and says in err
    assert {p.name: sha256(p) for p in run.iterdir() if p.is_file()} == before


@pytest.mark.fault("clear error", guards="lost")
def test_other_data_on_a_finished_run_is_refused_and_score_json_kept(finished, tmp_path,
                                                                     capsys):
    other = make_dataset("voc", tmp_path / "other", n_train=2, n_val=2, num_classes=3,
                         size=(32, 40), seed=5)
    run = copy_of(finished, tmp_path)
    score = (run / "score.json").read_bytes()
    assert schedule(train_args(other, run.parent)) == 1
    assert "data: " in capsys.readouterr().err
    assert (run / "score.json").read_bytes() == score


def flip_a_bit(path: Path) -> tuple[str, str]:
    expected = sha256(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    return expected, sha256(path)


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_damaged_final_weights_is_refused_by_rerun_score_and_zoo(data, finished, tmp_path,
                                                                   capsys):
    run = copy_of(finished, tmp_path)
    final = run / "final.caffemodel"
    expected, found = flip_a_bit(final)
    assert schedule(train_args(data, run.parent)) == 1
    err = capsys.readouterr().err
    assert f"{final}: sha256 {found}, but" in err and f"records {expected}" in err
    score = subprocess.run([sys.executable, "-m", "evaluation.score", "--net", "voc-fcn32s",
                            "--weights", str(final), "--data", str(data), "--width",
                            str(WIDTH)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert score.returncode == 1 and f"records {expected}" in score.stderr, score.stderr
    zoo = subprocess.run([sys.executable, "-m", "zoo.export", "--net", "voc-fcn32s",
                          "--weights", str(final), "--out", str(tmp_path / "zoo")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert zoo.returncode == 2 and f"records {expected}" in zoo.stderr, zoo.stderr
    assert not (tmp_path / "zoo" / "readme.md").exists()


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_final_weights_without_a_manifest_are_not_taken_as_done(data, finished, tmp_path,
                                                                 capsys):
    run = copy_of(finished, tmp_path)
    (run / RESULT_MANIFEST).unlink()
    assert schedule(train_args(data, run.parent)) == 1
    assert f"no {RESULT_MANIFEST} beside it" in capsys.readouterr().err


@pytest.mark.fault("correct", guards="lost")
def test_a_torn_last_log_line_is_cut_before_resuming_appends(data, tmp_path):
    run = tmp_path / "run"
    config = TrainConfig("voc-fcn32s", data, run_dir=run, iters=1, test_every=0,
                         width=WIDTH, overrides={"base_lr": 1e-6}, progress=False)
    train(config)
    log = run / "train.jsonl"
    whole = log.read_bytes()
    log.write_bytes(whole[:-9])  # killed while writing the last record
    config.iters, config.resume = 2, True
    train(config)
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole: none glued
    assert records[-1]["type"] == "done" and records[-1]["iter"] == 2
    assert "removed a torn last record" in (run / "train.log").read_text()
    assert load_run(log)[1]  # make compare reads the run


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_resuming_a_finished_run_verifies_its_final_weights(data, finished, tmp_path):
    """`python -m training.train --resume` on a finished run whose final.caffemodel was
    damaged since: refused naming the file and both digests, not silently retrained over."""
    run = copy_of(finished, tmp_path)
    final = run / "final.caffemodel"
    expected, found = flip_a_bit(final)
    damaged = final.read_bytes()
    done = subprocess.run([sys.executable, "-m", "training.train", "voc-fcn32s", "--data",
                           str(data), "--run-dir", str(run), "--resume", "--iters", "1",
                           "--test-every", "0", "--width", str(WIDTH), "--lr", "1e-6",
                           "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert f"{final}: sha256 {found}, but" in done.stderr and f"records {expected}" in done.stderr
    assert final.read_bytes() == damaged
