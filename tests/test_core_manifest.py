"""core.manifest on files alone: a result manifest vouches for a finished run's files and the
request it answered, is written whole or not at all, and a file damaged or replaced since
(or a manifest that cannot be read) is refused with the file, the digests and the fix named.
The runs that write and read them are in test_faults_results.py."""

import errno
import hashlib
import json
import os

import pytest

from core import manifest
from core.errors import InputError
from core.manifest import (
    RESULT_MANIFEST,
    check_request,
    describe,
    read_result,
    record_result,
    verify_result_file,
    write_atomically,
)

REQUEST = {"data": "/data/voc", "iters": 4, "width": 0.0625, "seed": 1337}


def test_describe_names_the_size_and_full_sha256(tmp_path):
    path = tmp_path / "final.caffemodel"
    data = bytes(range(256)) * 300  # larger than one read buffer
    path.write_bytes(data)
    assert manifest.sha256(path) == hashlib.sha256(data).hexdigest()
    assert describe(path) == {"name": "final.caffemodel", "bytes": 76800,
                              "sha256": hashlib.sha256(data).hexdigest()}


def test_write_atomically_replaces_whole_and_leaves_nothing_beside(tmp_path):
    path = tmp_path / RESULT_MANIFEST
    path.write_bytes(b"old")
    write_atomically(b"new\n", path)
    assert path.read_bytes() == b"new\n"
    assert [p.name for p in tmp_path.iterdir()] == [RESULT_MANIFEST]


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_part(tmp_path, monkeypatch):
    path = tmp_path / RESULT_MANIFEST
    path.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(manifest.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(b"new\n", path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [RESULT_MANIFEST]


def test_an_interrupt_right_after_the_rename_is_not_masked_by_the_clean_up(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / RESULT_MANIFEST
    real_replace = os.replace

    def replace_then_interrupted(source, target):
        real_replace(source, target)
        raise KeyboardInterrupt  # Ctrl-C between the rename and the end of the write
    monkeypatch.setattr(manifest.os, "replace", replace_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(b"new\n", path)
    assert path.read_bytes() == b"new\n"
    assert [p.name for p in tmp_path.iterdir()] == [RESULT_MANIFEST]


def finished_run(folder, request=REQUEST):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "final.caffemodel").write_bytes(b"weights")
    (folder / "score.json").write_text('{"mean_iu": 0.5}\n')
    return record_result(folder, [folder / "final.caffemodel", folder / "score.json"], request)


def test_a_result_manifest_lists_each_file_and_the_request(tmp_path):
    path = finished_run(tmp_path)
    assert path == tmp_path / RESULT_MANIFEST
    recorded = read_result(tmp_path)
    assert recorded == {"request": REQUEST,
                        "files": {"final.caffemodel": describe(tmp_path / "final.caffemodel"),
                                  "score.json": describe(tmp_path / "score.json")}}
    assert path.read_text().endswith("}\n")


def test_the_same_manifest_whatever_order_the_request_was_built_in(tmp_path):
    first = finished_run(tmp_path / "a", dict(REQUEST)).read_bytes()
    reordered = dict(reversed(list(REQUEST.items())))
    assert finished_run(tmp_path / "b", reordered).read_bytes() == first


def test_a_later_record_for_the_same_request_keeps_the_earlier_files(tmp_path):
    finished_run(tmp_path)
    (tmp_path / "score.json").write_text('{"mean_iu": 0.6}\n')  # rescored
    (tmp_path / "extra.png").write_bytes(b"png")
    record_result(tmp_path, [tmp_path / "score.json", tmp_path / "extra.png"], REQUEST)
    files = read_result(tmp_path)["files"]
    assert sorted(files) == ["extra.png", "final.caffemodel", "score.json"]
    assert files["score.json"] == describe(tmp_path / "score.json")


def test_a_record_for_another_request_lists_only_its_own_files(tmp_path):
    finished_run(tmp_path)
    other = {**REQUEST, "iters": 8}
    record_result(tmp_path, [tmp_path / "score.json"], other)
    recorded = read_result(tmp_path)
    assert recorded["request"] == other and list(recorded["files"]) == ["score.json"]


def test_no_manifest_is_none_and_a_manifest_without_files_is_unreadable(tmp_path):
    assert read_result(tmp_path) is None
    (tmp_path / RESULT_MANIFEST).mkdir()  # not a file: as good as none
    assert read_result(tmp_path) is None


@pytest.mark.parametrize("text, says", [
    (b"{not json", "Expecting property name"), (b"[1, 2]", "object has no attribute"),
    (b'{"request": {}}', "no 'files' table"), (b'{"files": []}', "no 'files' table"),
    (b"\xff\xfe\x00garbage", "decode")])
def test_an_unreadable_result_manifest_is_one_clear_error(tmp_path, text, says):
    path = tmp_path / RESULT_MANIFEST
    path.write_bytes(text)
    with pytest.raises(InputError) as raised:
        read_result(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{path}: unreadable result manifest (")
    assert says in message and "train again in a new folder" in message


def test_a_vouched_file_verifies_and_one_from_elsewhere_is_not_vouched_for(tmp_path):
    finished_run(tmp_path)
    assert verify_result_file(tmp_path / "final.caffemodel") is True
    (tmp_path / "other.caffemodel").write_bytes(b"weights")
    assert verify_result_file(tmp_path / "other.caffemodel") is False
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "final.caffemodel").write_bytes(b"anything")
    assert verify_result_file(elsewhere / "final.caffemodel") is False


@pytest.mark.parametrize("damage", [b"weightz", b"weights, and more"])
def test_a_file_changed_since_its_run_finished_is_refused_naming_both_digests(tmp_path,
                                                                              damage):
    finished_run(tmp_path)
    path = tmp_path / "final.caffemodel"
    path.write_bytes(damage)
    with pytest.raises(InputError) as raised:
        verify_result_file(path)
    assert str(raised.value) == (
        f"{path}: sha256 {hashlib.sha256(damage).hexdigest()}, but "
        f"{tmp_path / RESULT_MANIFEST} records {hashlib.sha256(b'weights').hexdigest()} "
        f"({len(damage)} bytes, recorded 7): the file was damaged or replaced after the run "
        f"finished; restore it, or train again in a new folder")


def test_a_manifest_entry_without_a_digest_is_refused_not_trusted(tmp_path):
    finished_run(tmp_path)
    path = tmp_path / RESULT_MANIFEST
    recorded = json.loads(path.read_text())
    del recorded["files"]["final.caffemodel"]["sha256"]
    path.write_text(json.dumps(recorded))
    with pytest.raises(InputError, match="records None"):
        verify_result_file(tmp_path / "final.caffemodel")


def test_the_same_request_passes_and_another_names_each_setting_that_differs(tmp_path):
    finished_run(tmp_path)
    check_request(tmp_path, dict(REQUEST))
    check_request(tmp_path, {"iters": 4})  # only what is asked is compared
    with pytest.raises(InputError) as raised:
        check_request(tmp_path, {**REQUEST, "iters": 8, "width": 1.0, "net": "fcn8s"})
    assert str(raised.value) == (
        f"{tmp_path} holds a finished run of another request (iters: 4 recorded, 8 asked; "
        f"width: 0.0625 recorded, 1.0 asked; net: None recorded, 'fcn8s' asked); give the "
        f"new request its own folder (RUNS=), or ask the same again")


def test_a_request_checked_against_a_folder_without_a_manifest_differs_in_everything(tmp_path):
    with pytest.raises(InputError, match=r"\(iters: None recorded, 4 asked\)"):
        check_request(tmp_path, {"iters": 4})
    check_request(tmp_path, {})
