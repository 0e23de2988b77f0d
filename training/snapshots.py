"""Snapshots that are whole or absent, and one run per folder.

Caffe's own snapshot writes in place, so a run killed mid-write leaves a truncated file
that a resume then aborts on. Here Caffe snapshots into a staging folder; the caffemodel
is renamed into snapshots/ first, the solverstate (pointing at it) next, and last a
manifest holding both files' sha256 and the iteration. Only a pair whose manifest
verifies is resumed from: a pair cut short, mixed with another run's files or damaged
later is passed over for the previous intact one, and the run says so.

A run folder is held by one process at a time (RunLock: flock on <run>/.lock, released by
the kernel when the holder exits, however it exits), so two trainings never interleave
their snapshots, logs and final weights.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import resource
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from caffe.proto import caffe_pb2
from google.protobuf.message import DecodeError

from core.caffe_files import check_fits, read_caffemodel
from core.errors import ReportedError
from core.manifest import describe, sha256, write_atomically

STAGING = ".staging"
PREFIX = "train"
LOCK_NAME = ".lock"
_NAME = re.compile(rf"^{PREFIX}_iter_(\d+)\.solverstate$")
_MIB = 1 << 20


class RunBusy(ReportedError, RuntimeError):
    """Another process holds the run folder."""


class SnapshotSpaceError(OSError):
    """Not enough disk space for a snapshot or the final weights; nothing was written."""


@dataclass(frozen=True)
class Snapshot:
    iteration: int
    caffemodel: Path
    solverstate: Path

    @property
    def manifest(self) -> Path:
        return manifest_path(self.solverstate)


def manifest_path(solverstate: Path) -> Path:
    """train_iter_N.solverstate → train_iter_N.manifest.json beside it."""
    return Path(solverstate).with_suffix(".manifest.json")


# --- one run per folder -----------------------------------------------------------------
_HELD: dict[Path, list] = {}  # run folder → [open lock file, depth] (re-entrant per process)


class RunLock:
    """An exclusive flock on <run_dir>/.lock for as long as the run lasts. The kernel
    drops it when the holder exits (kill -9 included), so a lock file left behind by a
    dead process never blocks. Re-entrant within one process (the schedule holds a stage's
    folder while it prepares the weights and trains)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir).resolve()

    def __enter__(self) -> RunLock:
        held = _HELD.get(self.run_dir)
        if held is not None:
            held[1] += 1
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.run_dir / LOCK_NAME, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunBusy(f"{self.run_dir} is in use by {holder}: another training is "
                          f"running in this folder. Wait for it to finish (or stop it), or "
                          f"give this run its own folder (RUNS=… / --run-dir)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        _HELD[self.run_dir] = [handle, 1]
        return self

    def __exit__(self, *exc) -> None:
        held = _HELD[self.run_dir]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[self.run_dir]
            held[0].truncate(0)
            held[0].close()  # closing the last descriptor releases the flock


def holds(run_dir: Path) -> bool:
    return Path(run_dir).resolve() in _HELD


def clean_orphans(run_dir: Path) -> list[tuple[Path, int]]:
    """Remove what a killed run left half-written: Caffe's staging files and *.part files
    (each as large as the weights). Only under the run's lock: no live writer owns them.
    Returns (path, bytes) for each file removed."""
    run_dir = Path(run_dir)
    if not holds(run_dir):
        raise RuntimeError(f"{run_dir}: cleaning needs the run's lock")
    snapshot_dir = run_dir / "snapshots"
    candidates = [*run_dir.glob("*.part"), *snapshot_dir.glob("*.part"),
                  *(snapshot_dir / STAGING).glob("*")]
    removed = []
    for path in candidates:
        if path.is_file():
            removed.append((path, path.stat().st_size))
            path.unlink()
    return removed


# --- writing ----------------------------------------------------------------------------
def staging_prefix(snapshot_dir: Path) -> Path:
    """The snapshot_prefix to give Caffe: a staging folder inside snapshot_dir."""
    staging = Path(snapshot_dir) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    return staging / PREFIX


def _replace_atomically(data: bytes, path: Path) -> None:
    try:
        write_atomically(data, path)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise SnapshotSpaceError(errno.ENOSPC, f"{path}: no space left on the disk to "
                                     f"write {len(data) / _MIB:.1f} MiB") from None
        raise


def param_bytes(net) -> int:
    """Bytes of float32 parameter data in `net` (a caffemodel's size, and a solverstate's
    for one history blob per parameter, less a little framing)."""
    return 4 * sum(blob.data.size for blobs in net.params.values() for blob in blobs)


def check_space(folder: Path, needed: int, what: str, intact: str = "",
                largest: int | None = None) -> None:
    """Raise SnapshotSpaceError before Caffe writes `what` into `folder` if the disk cannot
    hold `needed` bytes, or the process's file-size limit (ulimit -f) is below the `largest`
    file it writes: Caffe's writer aborts the process on either (io.cpp CHECK) and leaves a
    half-written staging file."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    largest = needed if largest is None else largest
    if limit != resource.RLIM_INFINITY and limit < largest:
        raise SnapshotSpaceError(
            errno.EFBIG, f"{folder}: the file-size limit (ulimit -f) is {limit / _MIB:.1f} MiB, "
            f"and {what} writes a file of about {largest / _MIB:.1f} MiB. Nothing was written"
            f"{'; ' + intact if intact else ''}. Raise the limit (ulimit -f unlimited) and "
            f"resume with the same command")
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise SnapshotSpaceError(
            errno.ENOSPC, f"{folder}: not enough disk space for {what}: needs about "
            f"{needed / _MIB:.1f} MiB, {free / _MIB:.1f} MiB free. Nothing was written"
            f"{'; ' + intact if intact else ''}. Free some space (or move the run) and "
            f"resume with the same command")


def take(solver, snapshot_dir: Path) -> Snapshot:
    """Snapshot `solver` (whose snapshot_prefix is staging_prefix(snapshot_dir)): weights,
    then the solverstate, then the manifest that vouches for both."""
    snapshot_dir = Path(snapshot_dir)
    staging = staging_prefix(snapshot_dir)
    weights = param_bytes(solver.net)
    previous = available(snapshot_dir)
    check_space(snapshot_dir, 3 * weights + 4 * _MIB, f"the snapshot at iteration {solver.iter}",
                f"the earlier snapshot {previous[-1].solverstate} is intact" if previous
                else "", largest=weights + _MIB)
    solver.snapshot()
    stem = f"{PREFIX}_iter_{solver.iter}"
    staged_model = staging.parent / f"{stem}.caffemodel"
    staged_state = staging.parent / f"{stem}.solverstate"
    if not staged_model.is_file() or not staged_state.is_file():
        raise RuntimeError(f"Caffe did not write {staged_model} and {staged_state}")
    model, state_path = snapshot_dir / staged_model.name, snapshot_dir / staged_state.name
    manifest_path(state_path).unlink(missing_ok=True)  # a pair being replaced is not vouched
    os.replace(staged_model, model)
    state = caffe_pb2.SolverState()
    state.ParseFromString(staged_state.read_bytes())
    state.learned_net = model.name  # beside the state; resolved on restore
    _replace_atomically(state.SerializeToString(), state_path)
    staged_state.unlink()
    manifest = {"iteration": solver.iter, "caffemodel": describe(model),
                "solverstate": describe(state_path)}
    _replace_atomically((json.dumps(manifest, indent=1) + "\n").encode(),
                        manifest_path(state_path))
    return Snapshot(solver.iter, model, state_path)


def save_weights(net, path: Path) -> Path:
    """net.save, atomically (the final weights a later stage starts from)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_space(path.parent, param_bytes(net) + 4 * _MIB, f"the weights {path}",
                "the snapshots are intact")
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    os.close(handle)
    try:
        net.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- reading ----------------------------------------------------------------------------
def available(snapshot_dir: Path) -> list[Snapshot]:
    """Snapshots in snapshot_dir whose pair and manifest were all written, oldest first
    (not yet verified: see verify / latest_intact)."""
    found = []
    for state in Path(snapshot_dir).glob(f"{PREFIX}_iter_*.solverstate"):
        match = _NAME.match(state.name)
        model = state.with_suffix(".caffemodel")
        if match and model.is_file() and manifest_path(state).is_file():
            found.append(Snapshot(int(match.group(1)), model, state))
    return sorted(found, key=lambda s: s.iteration)


def verify(snapshot: Snapshot) -> str | None:
    """None when both files are what the manifest says; else what is wrong."""
    try:
        manifest = json.loads(snapshot.manifest.read_text())
    except (OSError, ValueError) as e:
        return f"{snapshot.manifest}: unreadable manifest ({e})"
    if manifest.get("iteration") != snapshot.iteration:
        return f"{snapshot.manifest}: names iteration {manifest.get('iteration')}"
    for key, path in (("caffemodel", snapshot.caffemodel), ("solverstate", snapshot.solverstate)):
        want = manifest.get(key) or {}
        if not path.is_file():
            return f"{path}: missing"
        size = path.stat().st_size
        if size != want.get("bytes"):
            return f"{path}: {size} bytes, the manifest says {want.get('bytes')} (truncated?)"
        if sha256(path) != want.get("sha256"):
            return f"{path}: sha256 differs from the manifest's (damaged, or another run's file)"
    return None


def latest_intact(snapshot_dir: Path) -> tuple[Snapshot | None, list[str]]:
    """The newest snapshot whose manifest verifies, and why each newer one was passed over
    (including pairs that never got a manifest: a run killed while writing them)."""
    snapshot_dir = Path(snapshot_dir)
    complete = {s.iteration for s in available(snapshot_dir)}
    passed = [f"{state}: no manifest (the run stopped while writing this snapshot)"
              for state in sorted(snapshot_dir.glob(f"{PREFIX}_iter_*.solverstate"))
              if _NAME.match(state.name) and int(_NAME.match(state.name).group(1))
              not in complete]
    for snapshot in reversed(available(snapshot_dir)):
        problem = verify(snapshot)
        if problem is None:
            newer = [p for p in passed if _iteration_of(p) > snapshot.iteration]
            return snapshot, newer
        passed.append(problem)
    return None, passed


def _iteration_of(message: str) -> int:
    match = re.search(rf"{PREFIX}_iter_(\d+)\.", message)
    return int(match.group(1)) if match else -1


def read_state(path: Path) -> caffe_pb2.SolverState:
    path = Path(path)
    state = caffe_pb2.SolverState()
    try:
        state.ParseFromString(path.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: solverstate not found") from None
    except DecodeError as e:
        raise ValueError(f"{path}: not a readable solverstate ({e})") from None
    return state


def restore(solver, state_path: Path) -> int:
    """Resume `solver` from a solverstate written by take() (or by Caffe: learned_net is
    looked up beside the state when its own path does not exist). Checks the weights and
    the momentum history fit the net first, and when a manifest is beside it, that both
    files are the ones it vouches for; returns the iteration resumed at."""

    state_path = Path(state_path)
    match = _NAME.match(state_path.name)
    if match and manifest_path(state_path).is_file():
        problem = verify(Snapshot(int(match.group(1)), state_path.with_suffix(".caffemodel"),
                                  state_path))
        if problem:
            raise ValueError(f"{state_path}: not resumable: {problem}")
    state = read_state(state_path)
    if not state.learned_net:
        raise ValueError(f"{state_path}: names no caffemodel (learned_net is empty)")
    model = Path(state.learned_net)
    if not model.is_absolute():
        model = state_path.parent / model
    if not model.is_file():
        model = state_path.parent / Path(state.learned_net).name
    if not model.is_file():
        raise FileNotFoundError(f"{state_path}: its weights {state.learned_net} are missing")
    check_fits(solver.net, read_caffemodel(model), str(model))
    params = [blob for blobs in solver.net.params.values() for blob in blobs]
    if len(state.history) != len(params):
        raise ValueError(f"{state_path}: {len(state.history)} history blobs, the net has "
                         f"{len(params)} parameter blobs: a snapshot of another net?")
    for i, (history, param) in enumerate(zip(state.history, params)):
        shape = tuple(history.shape.dim)
        if shape != tuple(param.data.shape):
            raise ValueError(f"{state_path}: history blob {i} has shape {shape}, the net's "
                             f"parameter has {tuple(param.data.shape)}")
    state.learned_net = str(model.resolve())
    with tempfile.TemporaryDirectory(prefix="fcn-restore-") as tmp:
        resolved = Path(tmp) / state_path.name
        resolved.write_bytes(state.SerializeToString())
        solver.restore(str(resolved))
    return solver.iter
