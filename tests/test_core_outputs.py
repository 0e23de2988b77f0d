"""core.outputs on paths alone: an output that is an input (by any name: a symlink, a hard
link, ~), lies inside an input folder or directly holds an input file is refused even when
forced; an earlier result is refused unless forced, and then named. The commands that make
this check are in test_faults_outputs.py."""

import os

import pytest

from core.errors import InputError
from core.outputs import FORCE_HINT, Output, check_outputs, existing_result


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "run" / "final.caffemodel"
    path.parent.mkdir()
    path.write_bytes(b"weights")
    return path


def refusal(outputs, inputs, force=False) -> str:
    with pytest.raises(InputError) as raised:
        check_outputs(outputs, inputs, force=force)
    return str(raised.value)


def test_an_output_at_an_input_is_refused_by_any_name(weights, tmp_path, monkeypatch):
    hard, soft = tmp_path / "hard.caffemodel", tmp_path / "soft.caffemodel"
    os.link(weights, hard)
    soft.symlink_to(weights)
    monkeypatch.setenv("HOME", str(tmp_path))
    for out, given in [(weights, weights), (hard, weights), (weights, hard), (soft, weights),
                       (tmp_path / "run" / ".." / "run" / "final.caffemodel", weights),
                       ("~/run/final.caffemodel", weights), (weights, "~/hard.caffemodel")]:
        message = refusal([Output("JSON=/--json", out)], {"the weights (--weights)": given},
                          force=True)
        assert message == (f"{out}: cannot be written (JSON=/--json): it is the weights "
                           f"(--weights) ({given}) that this command reads; give another path")
    assert weights.read_bytes() == b"weights"


def test_an_output_at_an_input_not_written_yet_is_refused(tmp_path):
    missing = tmp_path / "labels.png"
    assert "it is the labels" in refusal([Output("OUT=", missing)], {"the labels": missing})


def test_an_output_inside_an_input_folder_is_refused_forced_or_not(tmp_path):
    root = tmp_path / "data"
    (root / "labels").mkdir(parents=True)
    for out in (root / "labels" / "preds", root / "x.json", root):
        message = refusal([Output("SAVE=/--save", out, folder=True)],
                          {"the data root": root}, force=True)
        assert message.endswith(f"(SAVE=/--save): it {'is' if out == root else 'lies inside'} "
                                f"the data root ({root})" + (" that" if out == root else
                                                              ", which") +
                                " this command reads; give another path")


def test_a_folder_output_holding_an_input_file_is_refused(weights):
    message = refusal([Output("OUT=/--out", weights.parent, folder=True)],
                      {"the weights (WEIGHTS=/--weights)": weights}, force=True)
    assert message == (f"{weights.parent}: cannot be written (OUT=/--out): it holds the "
                       f"weights (WEIGHTS=/--weights) ({weights}), which this command reads; "
                       f"give another path")


def test_outputs_beside_or_above_inputs_are_not_overwrites(weights, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    outputs = [Output("JSON=/--json", weights.parent / "score.json"),
               Output("SAVE=/--save", tmp_path / "preds", folder=True),
               Output("OUT=/--out", tmp_path, folder=True),  # holds the run folder, not a file
               Output("LOG=", tmp_path / "data.log")]
    inputs = {"the weights": weights, "the data root": root, "the net": tmp_path / "missing",
              "no picture": None}
    assert check_outputs(outputs, inputs, force=True) == [
        f"replacing what the folder {tmp_path} already holds 3 entries (OUT=/--out, forced)"]
    assert not (weights.parent / "score.json").exists()  # checked, not made
    assert list((tmp_path / "preds").iterdir()) == []  # its probe removed


def test_an_existing_output_where_an_input_is_missing_is_no_conflict(tmp_path):
    out = tmp_path / "score.json"
    out.write_text("")
    assert check_outputs([Output("JSON=", out)], {"the weights": tmp_path / "none"}) == []


def test_an_earlier_result_needs_force_and_forcing_names_it(tmp_path):
    earlier, preds = tmp_path / "score.json", tmp_path / "preds"
    earlier.write_text('{"mean_iu": 0.5}\n')
    preds.mkdir()
    (preds / "a.png").write_bytes(b"p")
    outputs = [Output("JSON=/--json", earlier), Output("SAVE=/--save", preds, folder=True)]
    with pytest.raises(InputError) as raised:
        check_outputs(outputs, {})  # not forced unless asked
    assert str(raised.value) == (f"{earlier}: {earlier} already exists (17 bytes), an "
                                    f"earlier result (JSON=/--json); give another path, or "
                                    f"{FORCE_HINT} to write over it")
    (preds / "b.png").write_bytes(b"p")
    assert check_outputs(outputs, {}, force=True) == [
        f"replacing what {earlier} already exists (17 bytes) (JSON=/--json, forced)",
        f"replacing what the folder {preds} already holds 2 entries (SAVE=/--save, forced)"]
    assert earlier.read_text() == '{"mean_iu": 0.5}\n'


def test_what_counts_as_an_earlier_result(tmp_path):
    empty_file, empty_folder = tmp_path / "empty.json", tmp_path / "empty"
    empty_file.write_bytes(b"")
    empty_folder.mkdir()
    assert existing_result(Output("JSON=", empty_file)) is None
    assert existing_result(Output("JSON=", tmp_path / "missing.json")) is None
    assert existing_result(Output("SAVE=", empty_folder, folder=True)) is None
    assert existing_result(Output("SAVE=", tmp_path / "missing", folder=True)) is None
    (empty_folder / "one").mkdir()
    assert existing_result(Output("SAVE=", empty_folder, folder=True)) == \
        f"the folder {empty_folder} already holds 1 entry"
    one_byte = tmp_path / "one.json"
    one_byte.write_bytes(b"1")
    assert existing_result(Output("JSON=", one_byte)) == f"{one_byte} already exists (1 bytes)"


@pytest.mark.parametrize("folder", [False, True])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, folder):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "sub"
    message = refusal([Output("OUT=/--out", out, folder=folder)], {})
    assert "cannot be written" in message and message.endswith("(OUT=/--out)")
    assert message.startswith(f"{out}: ")


def test_an_existing_output_folder_is_written_into_not_over(tmp_path):
    preds = tmp_path / "preds"
    preds.mkdir()
    assert check_outputs([Output("SAVE=", preds, folder=True)], {}) == []
    assert list(preds.iterdir()) == []


@pytest.mark.parametrize("folder", [False, True])
def test_a_name_the_system_refuses_is_one_clear_error_naming_it(weights, tmp_path, folder):
    out = tmp_path / ("x" * 300)  # longer than a file name may be
    message = refusal([Output("OUT=/--out", out, folder=folder)], {"the weights": weights})
    assert message.startswith(f"{out}: cannot be written (File name too long); give another "
                              f"path")


def test_a_folder_probed_by_two_processes_at_once_keeps_nothing_behind(tmp_path, monkeypatch):
    """Two `make paper JOBS=2` workers start chains in one runs folder at the same moment.
    Here the other worker's probe was there when this one looked and was removed just after:
    a probe shared by name was then made again and left, and the next run into that folder
    found it 'already holds 1 entry'. Each process's probe is its own."""
    from pathlib import Path

    runs = tmp_path / "runs"
    exists = Path.exists

    def the_other_workers_probe_is_there(self):
        return self.name.startswith(".fcn-output-probe") or exists(self)

    monkeypatch.setattr(Path, "exists", the_other_workers_probe_is_there)
    assert check_outputs([Output("RUNS=/--run-dir", runs, folder=True)], {}) == []
    assert list(runs.iterdir()) == []


def test_a_probe_left_by_a_killed_process_is_no_earlier_result(tmp_path):
    """kill -9 between making its probe and removing it leaves the probe: the folder still
    holds no result, so writing into it needs no FORCE."""
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / ".fcn-output-probe-k1ll3d").touch()
    out = Output("SAVE=/--save", preds, folder=True)
    assert existing_result(out) is None
    assert check_outputs([out], {}) == []
    (preds / "a.png").touch()
    assert existing_result(out) == f"the folder {preds} already holds 1 entry"
