"""training.snapshots' own rules, each checked on files alone (no training): a manifest
vouches for its iteration and both files, a write reaches the disk before its rename,
orphans are cleaned only under the run's lock, and a named snapshot is verified too."""

import json
import os
from pathlib import Path

import pytest

from training import snapshots


def vouched_pair(folder: Path, iteration: int) -> snapshots.Snapshot:
    """A caffemodel / solverstate pair with a manifest that vouches for both (the bytes are
    not Caffe's: verify reads sizes and digests only)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{snapshots.PREFIX}_iter_{iteration}"
    model, state = stem.with_suffix(".caffemodel"), stem.with_suffix(".solverstate")
    model.write_bytes(b"weights %d" % iteration)
    state.write_bytes(b"state %d" % iteration)
    manifest = {"iteration": iteration, "caffemodel": snapshots._describe(model),
                "solverstate": snapshots._describe(state)}
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
