"""Snapshots that are whole or absent: caffemodel + solverstate written aside, then renamed.

Caffe's own snapshot writes in place, so a run killed mid-write leaves a truncated file
that a resume then aborts on. Here Caffe snapshots into a staging folder; the caffemodel
is renamed into snapshots/ first and the solverstate (pointing at it) last, so a
solverstate's presence means its pair is complete. Resuming checks the pair against the
net before Caffe reads it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from caffe.proto import caffe_pb2
from google.protobuf.message import DecodeError

STAGING = ".staging"
PREFIX = "train"
_NAME = re.compile(rf"^{PREFIX}_iter_(\d+)\.solverstate$")


@dataclass(frozen=True)
class Snapshot:
    iteration: int
    caffemodel: Path
    solverstate: Path


def staging_prefix(snapshot_dir: Path) -> Path:
    """The snapshot_prefix to give Caffe: a staging folder inside snapshot_dir."""
    staging = Path(snapshot_dir) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    return staging / PREFIX


def _replace_atomically(data: bytes, path: Path) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def take(solver, snapshot_dir: Path) -> Snapshot:
    """Snapshot `solver` (whose snapshot_prefix is staging_prefix(snapshot_dir))."""
    snapshot_dir = Path(snapshot_dir)
    staging = staging_prefix(snapshot_dir)
    solver.snapshot()
    stem = f"{PREFIX}_iter_{solver.iter}"
    staged_model = staging.parent / f"{stem}.caffemodel"
    staged_state = staging.parent / f"{stem}.solverstate"
    if not staged_model.is_file() or not staged_state.is_file():
        raise RuntimeError(f"Caffe did not write {staged_model} and {staged_state}")
    model, state_path = snapshot_dir / staged_model.name, snapshot_dir / staged_state.name
    os.replace(staged_model, model)
    state = caffe_pb2.SolverState()
    state.ParseFromString(staged_state.read_bytes())
    state.learned_net = model.name  # beside the state; resolved on restore
    _replace_atomically(state.SerializeToString(), state_path)
    staged_state.unlink()
    return Snapshot(solver.iter, model, state_path)


def save_weights(net, path: Path) -> Path:
    """net.save, atomically (the final weights a later stage starts from)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    os.close(handle)
    try:
        net.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def available(snapshot_dir: Path) -> list[Snapshot]:
    """Complete snapshots in snapshot_dir, oldest first."""
    found = []
    for state in Path(snapshot_dir).glob(f"{PREFIX}_iter_*.solverstate"):
        match = _NAME.match(state.name)
        model = state.with_suffix(".caffemodel")
        if match and model.is_file():
            found.append(Snapshot(int(match.group(1)), model, state))
    return sorted(found, key=lambda s: s.iteration)


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
    the momentum history fit the net first; returns the iteration resumed at."""
    from core.caffe_files import check_fits, read_caffemodel

    state_path = Path(state_path)
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
