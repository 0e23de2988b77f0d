"""training.snapshots' own rules, most checked on files alone (no training): a manifest
vouches for its iteration and both files, a write reaches the disk before its rename (and a
full disk is named), orphans are cleaned only under the run's lock, and a named snapshot is
verified too. restore's checks past the manifest run on a tiny net's real solver (a few
milliseconds a step)."""

import errno
import json
import os
import shutil
from pathlib import Path

import caffe
import numpy as np
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from core.manifest import describe
from testkit.tiny_nets import write_solver, write_tiny_train
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


def test_cleaning_removes_part_files_of_the_run_and_its_snapshots_and_staged_files_only(
        tmp_path):
    run = tmp_path / "run"
    staging = run / "snapshots" / snapshots.STAGING
    (staging / "a folder").mkdir(parents=True)
    orphans = [run / "final.caffemodel.x1.part", run / "snapshots" / "m.json.x2.part",
               staging / "train_iter_8.solverstate"]
    kept = [run / "final.caffemodel", run / "snapshots" / "train_iter_4.caffemodel",
            run / "notes.part.txt", staging / "a folder" / "inside.part"]
    for size, path in enumerate(orphans + kept, start=1):
        path.write_bytes(b"\0" * size)
    with snapshots.RunLock(run):
        removed = snapshots.clean_orphans(run)
    assert sorted(removed) == sorted((path, size) for size, path in enumerate(orphans, 1))
    assert not any(p.exists() for p in orphans) and all(p.exists() for p in kept)


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
    ("truncate", "bytes, the manifest says"), ("grown", "bytes, the manifest says"),
    ("same size", "sha256 differs"),
    ("missing state", "missing"), ("unreadable", "unreadable manifest")])
def test_verify_names_what_is_wrong(tmp_path, damage, says):
    snapshot = vouched_pair(tmp_path, 4)
    if damage == "truncate":
        snapshot.caffemodel.write_bytes(snapshot.caffemodel.read_bytes()[:-1])
    elif damage == "grown":
        snapshot.caffemodel.write_bytes(snapshot.caffemodel.read_bytes() + b"\0")
    elif damage == "same size":
        data = bytearray(snapshot.solverstate.read_bytes())
        data[0] ^= 1
        snapshot.solverstate.write_bytes(bytes(data))
    elif damage == "missing state":
        snapshot.solverstate.unlink()
    else:
        snapshot.manifest.write_text("{not json")
    assert says in snapshots.verify(snapshot)


def test_any_same_size_damage_is_caught_whichever_way_its_digest_sorts(tmp_path):
    snapshot = vouched_pair(tmp_path, 4)
    whole = snapshot.solverstate.read_bytes()
    for byte in range(len(whole)):  # seven digests, some above the recorded one, some below
        data = bytearray(whole)
        data[byte] ^= 1
        snapshot.solverstate.write_bytes(bytes(data))
        assert "sha256 differs" in snapshots.verify(snapshot)


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


def test_the_run_lock_makes_a_missing_run_folder_and_its_parents(tmp_path):
    run = tmp_path / "runs" / "voc" / "voc-fcn32s"
    with snapshots.RunLock(run):
        assert snapshots.holds(run) and (run / snapshots.LOCK_NAME).is_file()


def test_a_held_run_folder_with_an_empty_lock_file_is_refused_all_the_same(tmp_path):
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    with open(run / snapshots.LOCK_NAME, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # taken, its line not written yet
        with pytest.raises(snapshots.RunBusy, match="in use by another process: another "):
            with snapshots.RunLock(run):
                pass


def test_a_lock_file_left_by_a_dead_process_is_rewritten_for_the_new_holder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / snapshots.LOCK_NAME).write_text("pid 1 on a machine long gone since 1999\n")
    with snapshots.RunLock(run):
        assert (run / snapshots.LOCK_NAME).read_text().startswith(f"pid {os.getpid()} on ")


@pytest.mark.parametrize("error, expected", [(errno.ENOSPC, snapshots.SnapshotSpaceError),
                                             (errno.EIO, OSError), (errno.EROFS, OSError)])
def test_a_full_disk_during_an_atomic_write_is_named_and_leaves_the_old_file(
        tmp_path, monkeypatch, error, expected):
    target = tmp_path / "train_iter_4.solverstate"
    target.write_bytes(b"the earlier state")

    def fail(fd):
        raise OSError(error, os.strerror(error))
    monkeypatch.setattr(snapshots.os, "fsync", fail)
    with pytest.raises(OSError) as raised:
        snapshots._replace_atomically(b"\0" * (3 * snapshots._MIB // 2), target)
    assert type(raised.value) is expected and raised.value.errno == error
    if error == errno.ENOSPC:
        assert str(raised.value) == (f"[Errno {errno.ENOSPC}] {target}: no space left on the "
                                     f"disk to write 1.5 MiB")
    assert target.read_bytes() == b"the earlier state"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


# --- restore on a real solver -------------------------------------------------------------
def tiny_solver(folder: Path, snapshot_dir: Path, width: int = 4):
    """A real SGD solver of a four-channel conv/deconv net on DummyData, snapshotting into
    snapshot_dir's staging folder as training.train sets it up."""
    folder.mkdir(parents=True, exist_ok=True)
    train_net = write_tiny_train(folder / f"train{width}.prototxt", width=width)
    path = write_solver(folder / f"solver{width}.prototxt", train_net)
    param = text_format.Merge(path.read_text(), caffe_pb2.SolverParameter())
    param.snapshot_prefix = str(snapshots.staging_prefix(snapshot_dir))
    path.write_text(str(param))
    return caffe.SGDSolver(str(path))


def params_of(solver) -> list[np.ndarray]:
    return [blob.data.copy() for blobs in solver.net.params.values() for blob in blobs]


@pytest.fixture
def taken(tmp_path):
    """A snapshot taken by snapshots.take after 3 steps, and the weights one more step gives."""
    solver = tiny_solver(tmp_path / "nets", tmp_path / "snapshots")
    solver.step(3)
    snapshot = snapshots.take(solver, tmp_path / "snapshots")
    weights = params_of(solver)
    caffe.set_random_seed(7)  # the next step's data and dropout, the same after a restore
    solver.step(1)
    return snapshot, weights, params_of(solver)


def test_restore_resumes_a_taken_snapshot_at_its_iteration_weights_and_momentum(tmp_path,
                                                                                taken):
    snapshot, weights, after_one_more = taken
    assert snapshots.verify(snapshot) is None and snapshot.iteration == 3
    state_bytes = snapshot.solverstate.read_bytes()
    fresh = tiny_solver(tmp_path / "nets", tmp_path / "other")
    assert snapshots.restore(fresh, snapshot.solverstate) == 3 == fresh.iter
    assert all(np.array_equal(a, b) for a, b in zip(params_of(fresh), weights))
    caffe.set_random_seed(7)
    fresh.step(1)  # the momentum history came back too: the next step is the same step
    assert all(np.array_equal(a, b) for a, b in zip(params_of(fresh), after_one_more))
    assert snapshot.solverstate.read_bytes() == state_bytes  # resolved in a copy, not here


def rewrite_state(snapshot: snapshots.Snapshot, change) -> Path:
    """The snapshot's solverstate changed by `change(state)`, as Caffe's own would be
    (no manifest: a snapshot Caffe wrote, or one from before manifests)."""
    state = snapshots.read_state(snapshot.solverstate)
    change(state)
    snapshot.solverstate.write_bytes(state.SerializeToString())
    snapshot.manifest.unlink()
    return snapshot.solverstate


@pytest.mark.parametrize("where", ["beside, by name", "absolute, elsewhere",
                                   "moved: absolute path gone", "relative subfolder",
                                   "relative, gone: found by name"])
def test_restore_finds_the_weights_a_solverstate_names(tmp_path, taken, where):
    snapshot, weights, _ = taken
    model = snapshot.caffemodel
    if where == "absolute, elsewhere":
        moved = tmp_path / "elsewhere" / "w.caffemodel"
        moved.parent.mkdir()
        shutil.move(model, moved)
        learned = str(moved)
    elif where == "moved: absolute path gone":
        learned = str(tmp_path / "gone" / model.name)
    elif where == "relative subfolder":
        moved = model.parent / "weights" / "w.caffemodel"
        moved.parent.mkdir()
        shutil.move(model, moved)
        learned = "weights/w.caffemodel"
    elif where == "relative, gone: found by name":
        learned = f"gone/{model.name}"
    else:
        learned = model.name
    state_path = rewrite_state(snapshot, lambda s: setattr(s, "learned_net", learned))
    fresh = tiny_solver(tmp_path / "nets", tmp_path / "other")
    assert snapshots.restore(fresh, state_path) == 3
    assert all(np.array_equal(a, b) for a, b in zip(params_of(fresh), weights))


def test_restore_refuses_a_solverstate_naming_no_weights_or_missing_ones(tmp_path, taken):
    snapshot, _, _ = taken
    fresh = tiny_solver(tmp_path / "nets", tmp_path / "other")
    state_path = rewrite_state(snapshot, lambda s: setattr(s, "learned_net", ""))
    with pytest.raises(ValueError, match="names no caffemodel"):
        snapshots.restore(fresh, state_path)
    state = snapshots.read_state(state_path)
    state.learned_net = snapshot.caffemodel.name
    state_path.write_bytes(state.SerializeToString())
    snapshot.caffemodel.unlink()
    with pytest.raises(FileNotFoundError, match=f"its weights {snapshot.caffemodel.name} "
                                                f"are missing"):
        snapshots.restore(fresh, state_path)
    assert fresh.iter == 0


@pytest.mark.parametrize("change, says", [
    ("drop one", "4 history blobs, the net has 5 parameter blobs"),
    ("add one", "6 history blobs, the net has 5 parameter blobs"),
    ("wider", r"history blob 2 has shape \(4, 4, 1, 1\), the net's parameter has "
              r"\(3, 4, 1, 1\)"),
    ("narrower", r"history blob 2 has shape \(2, 4, 1, 1\)")])
def test_restore_refuses_momentum_history_that_does_not_fit_the_net(tmp_path, taken, change,
                                                                    says):
    snapshot, _, _ = taken

    def damage(state):
        if change == "drop one":
            del state.history[-1]
        elif change == "add one":
            state.history.add().CopyFrom(state.history[0])
        else:
            state.history[2].shape.dim[0] = 4 if change == "wider" else 2
    state_path = rewrite_state(snapshot, damage)
    fresh = tiny_solver(tmp_path / "nets", tmp_path / "other")
    with pytest.raises(ValueError, match=says):
        snapshots.restore(fresh, state_path)
    assert fresh.iter == 0


def test_restore_refuses_weights_of_another_net_before_caffe_aborts(tmp_path, taken):
    snapshot, _, _ = taken
    wider = tiny_solver(tmp_path / "nets", tmp_path / "other", width=5)
    with pytest.raises(ValueError, match="conv1 blob 0 has shape"):
        snapshots.restore(wider, snapshot.solverstate)


def test_a_state_not_named_like_a_snapshot_skips_the_manifest_check(tmp_path, taken):
    snapshot, weights, _ = taken
    renamed = snapshot.solverstate.with_name("mine.solverstate")
    shutil.copy(snapshot.solverstate, renamed)
    snapshots.manifest_path(renamed).write_text("{not a manifest of this state")
    fresh = tiny_solver(tmp_path / "nets", tmp_path / "other")
    assert snapshots.restore(fresh, renamed) == 3


# --- writing: take and save_weights on a real solver --------------------------------------
# the tiny net's parameters: conv1 4×3×3×3 + 4, score_fr 3×4×1×1 + 3, upscore 3×3×4×4
TINY_PARAM_BYTES = 4 * (108 + 4 + 12 + 3 + 144)


def free_space(monkeypatch, free: int) -> None:
    """The disk under every folder reports `free` bytes free (what check_space reads)."""
    real = shutil.disk_usage
    monkeypatch.setattr(snapshots.shutil, "disk_usage",
                        lambda folder: real(folder)._replace(free=free))


def test_take_moves_a_vouched_pair_out_of_staging_naming_its_weights_beside_it(tmp_path):
    solver = tiny_solver(tmp_path / "nets", tmp_path / "snapshots")
    assert snapshots.param_bytes(solver.net) == TINY_PARAM_BYTES
    solver.step(2)
    snapshot = snapshots.take(solver, tmp_path / "snapshots")
    assert snapshot == snapshots.Snapshot(2, tmp_path / "snapshots" / "train_iter_2.caffemodel",
                                          tmp_path / "snapshots" / "train_iter_2.solverstate")
    assert snapshots.verify(snapshot) is None
    assert snapshots.read_state(snapshot.solverstate).learned_net == "train_iter_2.caffemodel"
    assert list((tmp_path / "snapshots" / snapshots.STAGING).iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "snapshots").glob("train*")) == [
        "train_iter_2.caffemodel", "train_iter_2.manifest.json", "train_iter_2.solverstate"]
    solver.step(1)  # the next one beside it; the first stays vouched for
    assert snapshots.take(solver, tmp_path / "snapshots").iteration == 3
    assert [s.iteration for s in snapshots.available(tmp_path / "snapshots")] == [2, 3]
    assert snapshots.verify(snapshot) is None


def test_a_solver_snapshotting_elsewhere_is_an_error_not_an_unvouched_pair(tmp_path):
    solver = tiny_solver(tmp_path / "nets", tmp_path / "elsewhere")
    with pytest.raises(RuntimeError, match="Caffe did not write"):
        snapshots.take(solver, tmp_path / "snapshots")
    assert snapshots.available(tmp_path / "snapshots") == []


def test_take_needs_three_weights_and_4_mib_free_and_names_the_earlier_snapshot(
        tmp_path, monkeypatch):
    solver = tiny_solver(tmp_path / "nets", tmp_path / "snapshots")
    needed = 3 * TINY_PARAM_BYTES + 4 * 2**20
    free_space(monkeypatch, needed - 1)
    with pytest.raises(snapshots.SnapshotSpaceError) as raised:
        snapshots.take(solver, tmp_path / "snapshots")
    assert raised.value.errno == errno.ENOSPC
    assert str(raised.value).endswith(
        f"{tmp_path / 'snapshots'}: not enough disk space for the snapshot at iteration 0: "
        f"needs about 4.0 MiB, 4.0 MiB free. Nothing was written. Free some space (or move "
        f"the run) and resume with the same command")
    free_space(monkeypatch, needed)
    snapshots.take(solver, tmp_path / "snapshots")
    solver.step(1)
    latest = snapshots.take(solver, tmp_path / "snapshots")
    solver.step(1)
    free_space(monkeypatch, needed - 1)
    with pytest.raises(snapshots.SnapshotSpaceError, match=f"Nothing was written; the earlier "
                                                           f"snapshot {latest.solverstate} is "
                                                           f"intact. Free some"):
        snapshots.take(solver, tmp_path / "snapshots")
    assert [s.iteration for s in snapshots.available(tmp_path / "snapshots")] == [0, 1]


def test_a_file_size_limit_below_one_snapshot_file_is_refused_before_caffe_writes(
        tmp_path):
    import resource

    solver = tiny_solver(tmp_path / "nets", tmp_path / "snapshots")
    largest = TINY_PARAM_BYTES + 2**20
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest - 1, hard))
        with pytest.raises(snapshots.SnapshotSpaceError) as raised:
            snapshots.take(solver, tmp_path / "snapshots")
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest, hard))
        snapshot = snapshots.take(solver, tmp_path / "snapshots")
        solver.step(1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest - 1, hard))
        with pytest.raises(snapshots.SnapshotSpaceError,
                           match=f"Nothing was written; the earlier snapshot "
                                 f"{snapshot.solverstate} is intact. Raise the limit"):
            snapshots.take(solver, tmp_path / "snapshots")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert raised.value.errno == errno.EFBIG
    assert str(raised.value).endswith(
        f"the file-size limit (ulimit -f) is {(largest - 1) / 2**20:.1f} MiB, and the snapshot "
        f"at iteration 0 writes a file of about {largest / 2**20:.1f} MiB. Nothing was "
        f"written. Raise the limit (ulimit -f unlimited) and resume with the same command")
    assert snapshots.verify(snapshot) is None


def test_save_weights_writes_what_net_save_writes_atomically_into_new_folders(tmp_path):
    solver = tiny_solver(tmp_path / "nets", tmp_path / "snapshots")
    solver.step(1)
    solver.net.save(str(tmp_path / "direct.caffemodel"))
    final = tmp_path / "runs" / "voc-fcn32s" / "final.caffemodel"
    assert snapshots.save_weights(solver.net, final) == final
    assert final.read_bytes() == (tmp_path / "direct.caffemodel").read_bytes()
    assert [p.name for p in final.parent.iterdir()] == ["final.caffemodel"]


def test_save_weights_checks_the_space_first_and_leaves_no_part_when_it_fails(tmp_path,
                                                                               monkeypatch):
    solver = tiny_solver(tmp_path / "nets", tmp_path / "snapshots")
    final = tmp_path / "run" / "final.caffemodel"
    free_space(monkeypatch, TINY_PARAM_BYTES + 4 * 2**20 - 1)
    with pytest.raises(snapshots.SnapshotSpaceError, match=f"not enough disk space for the "
                                                           f"weights {final}: .* Nothing was "
                                                           f"written; the snapshots are intact"):
        snapshots.save_weights(solver.net, final)
    free_space(monkeypatch, TINY_PARAM_BYTES + 4 * 2**20)

    real_replace = os.replace

    def interrupted(source, target, after: bool):
        if after:
            real_replace(source, target)
        raise KeyboardInterrupt
    for after in (False, True):  # Ctrl-C before the rename, or just after it
        monkeypatch.setattr(snapshots.os, "replace",
                            lambda a, b, after=after: interrupted(a, b, after))
        with pytest.raises(KeyboardInterrupt):
            snapshots.save_weights(solver.net, final)
        assert [p.name for p in final.parent.iterdir()] == (["final.caffemodel"] if after
                                                            else [])


def test_check_space_says_how_much_is_needed_and_free_to_a_tenth_of_a_mib(tmp_path,
                                                                         monkeypatch):
    free_space(monkeypatch, 2**19)
    with pytest.raises(snapshots.SnapshotSpaceError, match=r"needs about 1\.5 MiB, 0\.5 MiB "
                                                           r"free\. Nothing was written\. "):
        snapshots.check_space(tmp_path, 3 * 2**19, "the weights")
    snapshots.check_space(tmp_path, 2**19, "the weights")  # exactly enough


def test_check_space_compares_the_file_size_limit_with_the_largest_file(tmp_path):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**19, hard))
        with pytest.raises(snapshots.SnapshotSpaceError, match=r"is 0\.5 MiB, and the weights "
                                                               r"writes a file of about 1\.5 "
                                                               r"MiB\. Nothing"):
            snapshots.check_space(tmp_path, 2**18, "the weights", largest=3 * 2**19)
        snapshots.check_space(tmp_path, 2**18, "the weights", largest=2**18)  # below it
        with pytest.raises(snapshots.SnapshotSpaceError, match="file-size limit"):
            snapshots.check_space(tmp_path, 3 * 2**19, "the weights")  # largest: all needed
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
