"""training.snapshots' own rules, each checked on files alone (no training): a manifest
vouches for its iteration and both files, a write reaches the disk before its rename,
orphans are cleaned only under the run's lock, and a named snapshot is verified too."""

import json
import os
from pathlib import Path

import pytest

from core.manifest import describe
from training import snapshots


def vouched_pair(folder: Path, iteration: int) -> snapshots.Snapshot:
    """A caffemodel / solverstate pair with a manifest that vouches for both (the bytes are
    not Caffe's: verify reads sizes and digests only)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{snapshots.PREFIX}_iter_{iteration}"
    model, state = stem.with_suffix(".caffemodel"), stem.with_suffix(".solverstate")
    model.write_bytes(b"weights %d" % iteration)
    state.write_bytes(b"state %d" % iteration)
    manifest = {"iteration": iteration, "caffemodel": describe(model),
                "solverstate": describe(state)}
    snapshots.manifest_path(state).write_text(json.dumps(manifest))
    return snapshots.Snapshot(iteration, model, state)


def test_a_manifest_naming_another_iteration_does_not_verify(tmp_path):
    snapshot = vouched_pair(tmp_path, 4)
    assert snapshots.verify(snapshot) is None
    manifest = json.loads(snapshot.manifest.read_text())
    manifest["iteration"] = 6  # digests still match: only the iteration is wrong
    snapshot.manifest.write_text(json.dumps(manifest))
    assert "names iteration 6" in snapshots.verify(snapshot)
    found, passed = snapshots.latest_intact(tmp_path)
    assert found is None and "names iteration 6" in passed[0]


def test_each_atomic_write_is_synced_before_its_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(snapshots.os, "fsync",
                        lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(snapshots.os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    target = tmp_path / "manifest.json"
    snapshots._replace_atomically(b"{}\n", target)
    assert events == ["fsync", "replace"] and target.read_bytes() == b"{}\n"
    assert not list(tmp_path.glob("*.part"))


def test_cleaning_orphans_needs_the_runs_lock(tmp_path):
    run = tmp_path / "run"
    orphan = run / "snapshots" / snapshots.STAGING / "train_iter_8.caffemodel"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"\0" * 10)
    with pytest.raises(RuntimeError, match="needs the run's lock"):
        snapshots.clean_orphans(run)
    assert orphan.exists()
    with snapshots.RunLock(run):
        assert snapshots.clean_orphans(run) == [(orphan, 10)]
    assert not orphan.exists()


@pytest.mark.parametrize("damage", ["iteration", "weights"])
def test_resuming_from_a_named_snapshot_verifies_its_manifest_first(tmp_path, damage):
    snapshot = vouched_pair(tmp_path, 4)
    if damage == "iteration":
        manifest = json.loads(snapshot.manifest.read_text())
        manifest["iteration"] = 2
        snapshot.manifest.write_text(json.dumps(manifest))
    else:
        snapshot.caffemodel.write_bytes(b"weights of another run")
    # refused before the solver is touched: no solver is needed to see it
    with pytest.raises(ValueError, match="not resumable"):
        snapshots.restore(None, snapshot.solverstate)


def test_the_run_lock_is_exclusive_re_entrant_and_released_on_the_last_exit(tmp_path):
    import fcntl

    run = tmp_path / "run"
    with snapshots.RunLock(run):
        with snapshots.RunLock(run):  # the schedule holds a stage's folder twice
            assert snapshots.holds(run)
        assert snapshots.holds(run)  # the inner exit keeps it
        with open(run / snapshots.LOCK_NAME) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert f"pid {os.getpid()} on " in (run / snapshots.LOCK_NAME).read_text()
    assert not snapshots.holds(run)
    with open(run / snapshots.LOCK_NAME) as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: free to take
        assert other.read() == ""  # the holder's line is cleared


def test_a_held_run_folder_is_refused_naming_its_holder(tmp_path):
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    with open(run / snapshots.LOCK_NAME, "w") as holder:
        holder.write("pid 4242 on elsewhere since then\n")
        holder.flush()
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(snapshots.RunBusy, match="in use by pid 4242 on elsewhere"):
            with snapshots.RunLock(run):
                pass
    assert not snapshots.holds(run)


def test_available_lists_only_complete_pairs_oldest_first_by_number(tmp_path):
    for iteration in (10, 9, 100):
        vouched_pair(tmp_path, iteration)
    no_manifest = vouched_pair(tmp_path, 200)
    no_manifest.manifest.unlink()
    no_model = vouched_pair(tmp_path, 300)
    no_model.caffemodel.unlink()
    (tmp_path / "other_iter_5.solverstate").write_bytes(b"")
    assert [s.iteration for s in snapshots.available(tmp_path)] == [9, 10, 100]


@pytest.mark.parametrize("damage,says", [
    ("truncate", "bytes, the manifest says"), ("same size", "sha256 differs"),
    ("missing state", "missing"), ("unreadable", "unreadable manifest")])
def test_verify_names_what_is_wrong(tmp_path, damage, says):
    snapshot = vouched_pair(tmp_path, 4)
    if damage == "truncate":
        snapshot.caffemodel.write_bytes(snapshot.caffemodel.read_bytes()[:-1])
    elif damage == "same size":
        data = bytearray(snapshot.solverstate.read_bytes())
        data[0] ^= 1
        snapshot.solverstate.write_bytes(bytes(data))
    elif damage == "missing state":
        snapshot.solverstate.unlink()
    else:
        snapshot.manifest.write_text("{not json")
    assert says in snapshots.verify(snapshot)


def test_latest_intact_passes_over_newer_damaged_and_unvouched_pairs_only(tmp_path):
    for iteration in (2, 4, 6, 8):
        vouched_pair(tmp_path, iteration)
    vouched_pair(tmp_path, 6).caffemodel.write_bytes(b"damaged")
    vouched_pair(tmp_path, 8).manifest.unlink()
    damaged_old = vouched_pair(tmp_path, 2)
    damaged_old.caffemodel.write_bytes(b"older damage is not reported")
    found, passed = snapshots.latest_intact(tmp_path)
    assert found.iteration == 4
    assert len(passed) == 2
    assert "train_iter_8.solverstate: no manifest" in passed[0]
    assert "train_iter_6.caffemodel" in passed[1]


def test_an_older_unvouched_pair_is_not_reported_as_passed_over(tmp_path):
    vouched_pair(tmp_path, 1).manifest.unlink()  # an older run's half-written pair
    vouched_pair(tmp_path, 4)
    found, passed = snapshots.latest_intact(tmp_path)
    assert found.iteration == 4 and passed == []


def test_a_lock_file_left_by_a_dead_process_is_rewritten_for_the_new_holder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / snapshots.LOCK_NAME).write_text("pid 1 on a machine long gone since 1999\n")
    with snapshots.RunLock(run):
        assert (run / snapshots.LOCK_NAME).read_text().startswith(f"pid {os.getpid()} on ")
