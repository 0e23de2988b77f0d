"""training.runlog on files alone: a torn last line (a run killed while writing it) is cut from
train.jsonl or ended in train.log before a resume appends, whole logs are left byte for
byte, every record is valid JSON, and the text log keeps the release's score.py lines that
zoo/scores.py reads back."""

import errno
import json
import re

import pytest

from training import runlog
from training.runlog import RunLog, mend_torn_end, read_records

WHOLE = b'{"type": "start", "iter": 0}\n{"type": "step", "iter": 1, "loss": 2.5}\n'


@pytest.mark.parametrize("json_lines", [True, False])
def test_a_whole_or_empty_or_missing_log_is_left_as_it_is(tmp_path, json_lines):
    log = tmp_path / "log"
    assert mend_torn_end(log, json_lines) == 0 and not log.exists()
    log.write_bytes(b"")
    assert mend_torn_end(log, json_lines) == 0 and log.read_bytes() == b""
    log.write_bytes(WHOLE)
    assert mend_torn_end(log, json_lines) == 0 and log.read_bytes() == WHOLE
    log.write_bytes(b"\n")
    assert mend_torn_end(log, json_lines) == 0 and log.read_bytes() == b"\n"


@pytest.mark.parametrize("torn", [b'{"type": "step", "it', b"{", b'{"a": "\xc3',
                                  b"\0\0\0", b'{"type": "step"\t'])
def test_a_torn_json_record_is_cut_to_the_last_whole_line(tmp_path, torn):
    log = tmp_path / "train.jsonl"
    log.write_bytes(WHOLE + torn)
    assert mend_torn_end(log, json_lines=True) == len(torn)
    assert log.read_bytes() == WHOLE


def test_a_torn_first_and_only_json_record_leaves_an_empty_log(tmp_path):
    log = tmp_path / "train.jsonl"
    log.write_bytes(b'{"type": "sta')
    assert mend_torn_end(log, json_lines=True) == 13
    assert log.read_bytes() == b""


def test_a_whole_record_missing_only_its_newline_is_kept_and_ended(tmp_path):
    log = tmp_path / "train.jsonl"
    log.write_bytes(WHOLE + b'{"type": "done", "iter": 2}')
    assert mend_torn_end(log, json_lines=True) == 0
    assert log.read_bytes() == WHOLE + b'{"type": "done", "iter": 2}\n'


@pytest.mark.parametrize("text", [b"x", b"2026-12-06 Iteration 4, lr = 1e-10, lo",
                                  b"first line\nhalf a sec"])
def test_a_torn_text_line_is_ended_never_cut(tmp_path, text):
    log = tmp_path / "train.log"
    log.write_bytes(text)
    assert mend_torn_end(log, json_lines=False) == 0
    assert log.read_bytes() == text + b"\n"


def test_a_resumed_log_cuts_the_torn_record_says_so_and_appends_whole_lines(tmp_path):
    (tmp_path / "train.jsonl").write_bytes(WHOLE + b'{"type": "step", "iter": 2, "lo')
    (tmp_path / "train.log").write_bytes(b"2026-12-06 00:00:00 started\n2026-12-06 Itera")
    with RunLog(tmp_path, echo=False) as log:
        log.record("resume", iter=1)
    lines = (tmp_path / "train.jsonl").read_bytes().splitlines(keepends=True)
    assert b"".join(lines[:2]) == WHOLE and len(lines) == 3
    assert json.loads(lines[2])["type"] == "resume"
    text = (tmp_path / "train.log").read_text().splitlines()
    assert text[:2] == ["2026-12-06 00:00:00 started", "2026-12-06 Itera"]  # ended, kept
    assert text[2].endswith(f" {tmp_path / 'train.jsonl'}: removed a torn last record (31 "
                            f"bytes, a run stopped while writing it) before appending")
    assert len(text) == 3


def test_an_untorn_resume_says_nothing_and_a_new_run_folder_is_made(tmp_path):
    run = tmp_path / "runs" / "voc-fcn32s"
    with RunLog(run, echo=False):
        pass
    assert (run / "train.log").read_text() == "" and (run / "train.jsonl").read_text() == ""
    (run / "train.jsonl").write_bytes(WHOLE)
    with RunLog(run, echo=False):
        pass
    assert (run / "train.log").read_text() == ""
    assert (run / "train.jsonl").read_bytes() == WHOLE


def test_records_are_valid_json_with_nan_and_infinities_as_null(tmp_path, monkeypatch):
    clock = iter([1000.0, 1001.23456])
    monkeypatch.setattr(runlog.time, "time", lambda: next(clock))
    with RunLog(tmp_path, echo=False) as log:
        log.record("test", loss=float("nan"), rate=1.5, scores={"a": float("inf"), "b": 0.25,
                                                              "c": {"d": float("-inf")}})
    line = (tmp_path / "train.jsonl").read_text()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"type": "test", "time": 1.235, "loss": None, "rate": 1.5,
                                "scores": {"a": None, "b": 0.25, "c": {"d": None}}}


def test_steps_go_to_the_json_log_every_one_and_to_the_text_log_every_display(tmp_path):
    with RunLog(tmp_path, display=3, echo=False) as log:
        for i in range(1, 8):
            log.step(i, {"loss": 1.5, "aux": 0.25 * i}, 1e-10)
    steps = read_records(tmp_path / "train.jsonl", "step")
    assert [(r["iter"], r["loss"], r["lr"]) for r in steps] == [
        (i, 1.5 + 0.25 * i, 1e-10) for i in range(1, 8)]
    assert steps[0]["losses"] == {"loss": 1.5, "aux": 0.25}
    text = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in text] == [
        "Iteration 3, lr = 1e-10, loss = 1.5, aux = 0.75",
        "Iteration 6, lr = 1e-10, loss = 1.5, aux = 1.5"]
    with RunLog(tmp_path / "quiet", display=0, echo=False) as log:
        log.step(1, {"loss": 1.0}, 0.1)
    assert (tmp_path / "quiet" / "train.log").read_text() == ""


METRICS = {"pixel_accuracy": 0.9, "mean_accuracy": 0.5, "mean_iu": 0.4, "fw_iu": 0.8,
           "background_mean_iu": 0.3}


def test_a_test_writes_the_release_score_lines_per_head_and_its_record(tmp_path, capsys):
    result = {"images": 2, "loss": {"loss": 9.0, "geo_loss": 1.0}, "label": METRICS,
              "geo": {**METRICS, "mean_iu": 0.25}, "sem": METRICS, "extra": {"no": "metrics"}}
    with RunLog(tmp_path) as log:  # echoes by default
        log.test(40, result, "seg11valid")
    assert log.text.closed and log.json.closed
    text = re.sub(r">>> [^I]*Iteration", ">>> Iteration",
                  (tmp_path / "train.log").read_text())
    assert text.splitlines() == [
        ">>> Iteration 40 loss 10.0",
        ">>> Iteration 40 overall accuracy 0.9", ">>> Iteration 40 mean accuracy 0.5",
        ">>> Iteration 40 mean IU 0.4", ">>> Iteration 40 fwavacc 0.8",
        ">>> Iteration 40 geo overall accuracy 0.9", ">>> Iteration 40 geo mean accuracy 0.5",
        ">>> Iteration 40 geo mean IU 0.25", ">>> Iteration 40 geo fwavacc 0.8",
        ">>> Iteration 40 sem overall accuracy 0.9", ">>> Iteration 40 sem mean accuracy 0.5",
        ">>> Iteration 40 sem mean IU 0.4", ">>> Iteration 40 sem fwavacc 0.8"]
    record = read_records(tmp_path / "train.jsonl", "test")[0]
    assert record["iter"] == 40 and record["split"] == "seg11valid"
    assert record["label"] == METRICS and record["images"] == 2
    out = capsys.readouterr().out
    assert out.startswith("test @ 40 on seg11valid: loss 10; label: pixel acc 0.9000 mean "
                          "acc 0.5000 mean IU 0.4000 f.w. IU 0.8000 (all-background mean IU "
                          "0.3000); geo: ")
    with RunLog(tmp_path / "quiet", echo=False) as log:
        log.test(40, {"label": METRICS}, "val")
        log.say("said")
    assert capsys.readouterr().out == ""


def test_a_full_disk_names_the_log_and_closing_after_it_does_not_raise(tmp_path):
    (tmp_path / "train.jsonl").symlink_to("/dev/full")  # every write: no space left
    log = RunLog(tmp_path, echo=False)
    with pytest.raises(OSError, match=r"train\.jsonl: cannot append to the log \(No space") \
            as raised:
        log.record("step", iter=1)
    assert raised.value.errno == errno.ENOSPC
    log.close()


def test_read_records_skips_blank_and_torn_lines_and_filters_by_kind(tmp_path):
    log = tmp_path / "train.jsonl"
    log.write_text('{"type": "step", "iter": 1}\n\n  \n{"type": "test", "iter": 1}\n'
                   '{"iter": 2}\n{"type": "step", "iter": 2}\n{"type": "st')
    assert [r["iter"] for r in read_records(log, "step")] == [1, 2]
    assert [r.get("type") for r in read_records(log)] == ["step", "test", None, "step"]
    assert read_records(log, "done") == []
    with pytest.raises(FileNotFoundError, match="no JSON-lines log"):
        read_records(tmp_path / "missing.jsonl")


def test_by_default_every_twentieth_step_reaches_the_text_log(tmp_path):
    with RunLog(tmp_path, echo=False) as log:
        for i in range(1, 42):
            log.step(i, {"loss": 1.0}, 0.1)
    text = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split(" ")[3] for line in text] == ["20,", "40,"]


def test_a_bad_line_inside_an_older_log_hides_none_of_the_records_after_it(tmp_path):
    log = tmp_path / "train.jsonl"  # written before torn lines were mended: one glued line
    log.write_text('{"type": "step", "iter": 1}\n{"type": "step", "it{"type": "resume"}\n'
                   '{"type": "step", "iter": 2}\n')
    assert [r["type"] for r in read_records(log)] == ["step", "step"]
    assert read_records(log, "step")[-1]["iter"] == 2
