"""Digests that vouch for files: written last, beside the files, so that a reader can tell
a finished result from one damaged, cut or replaced since. Snapshots
(training/snapshots.py) vouch for each caffemodel/solverstate pair this way; a finished
run vouches for its final.caffemodel and score.json in `result.manifest.json`, which also
records the request (data, iterations, width, net, seed, rates) the run answered, so a rerun
can tell "done already" from "asked something else"; a verified export (export/cli.py)
vouches for its files, source weights and verification in `<stem>.manifest.json`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from core.download import file_digest
from core.errors import InputError

RESULT_MANIFEST = "result.manifest.json"


def sha256(path: Path) -> str:
    """A file's full sha256 in hex, as manifests record it (core.download's reader)."""
    return file_digest(Path(path), "sha256")


def describe(path: Path) -> dict:
    """A file's name, size and sha256, as a manifest lists it."""
    path = Path(path)
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256(path)}


def write_atomically(data: bytes, path: Path) -> None:
    """Write `data` to `path` whole or not at all (a temporary file beside it, synced, then
    renamed over it); nothing half-written is left under any name."""
    path = Path(path)
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


def _read_manifest(path: Path, kind: str, fix: str) -> dict:
    """A manifest's JSON with its 'files' table, or one InputError naming the file."""
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("files"), dict):
            raise ValueError("no 'files' table")
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable {kind} manifest ({e}); {fix}") from None
    return manifest


def read_result(folder: Path) -> dict | None:
    """The result manifest of a run folder, or None where it has none."""
    path = Path(folder) / RESULT_MANIFEST
    if not path.is_file():
        return None
    return _read_manifest(path, "result", "the run's results cannot be vouched for: train "
                          "again in a new folder")


def record_result(folder: Path, files: list[Path], request: dict) -> Path:
    """Vouch for a finished run's `files` (in `folder`) and the `request` it answered; the
    files listed before for the same request stay listed. Call it after the files are
    written: the manifest is the last thing a finished result gets."""
    folder = Path(folder)
    earlier = read_result(folder)
    listed = earlier["files"] if earlier and earlier.get("request") == request else {}
    listed.update({Path(f).name: describe(f) for f in files})
    path = folder / RESULT_MANIFEST
    write_atomically((json.dumps({"request": request, "files": listed}, indent=1,
                                 sort_keys=True) + "\n").encode(), path)
    return path


def verify_result_file(path: Path) -> bool:
    """Raise InputError naming the file, the recorded and the found digest when the result
    manifest beside `path` lists it and the file differs; True when it was verified, False
    when no manifest beside it lists it (weights from elsewhere)."""
    path = Path(path)
    manifest = read_result(path.parent)
    return _check_listed(path, manifest, path.parent / RESULT_MANIFEST,
                         "the file was damaged or replaced after the run finished; restore "
                         "it, or train again in a new folder")


def _check_listed(path: Path, manifest: dict | None, manifest_path: Path, fix: str) -> bool:
    """verify_result_file's and verify_export's check: False when `manifest` does not list
    `path`, True when it matches, else InputError naming both digests and `fix`."""
    want = (manifest or {}).get("files", {}).get(path.name)
    if not want:
        return False
    if not path.is_file():
        raise InputError(f"{path}: missing, though {manifest_path} lists it (sha256 "
                         f"{want.get('sha256')}, {want.get('bytes')} bytes): {fix}")
    found = sha256(path)
    if found != want.get("sha256"):
        raise InputError(
            f"{path}: sha256 {found}, but {manifest_path} records "
            f"{want.get('sha256')} ({path.stat().st_size} bytes, recorded {want.get('bytes')}): "
            f"{fix}")
    return True


def export_manifest(path: Path) -> Path:
    """Where an export's manifest lies: beside its main file, `<stem>.manifest.json`."""
    path = Path(path)
    return path.with_name(path.stem + ".manifest.json")


def record_export(path: Path, files: list[Path], facts: dict) -> Path:
    """Vouch for a verified export's `files` (path's and those beside it) and `facts`
    (source weights, net, width, verification, versions); call it last, once the files
    are in place."""
    target = export_manifest(path)
    write_atomically((json.dumps({**facts, "files": {Path(f).name: describe(f) for f in files}},
                                 indent=1, sort_keys=True) + "\n").encode(), target)
    return target


def verify_export(path: Path) -> bool:
    """Raise InputError naming the file and both digests when the export manifest beside
    `path` lists it with another digest; True when verified, False when none lists it."""
    path = Path(path)
    target = export_manifest(path)
    if not target.is_file():
        return False
    manifest = _read_manifest(target, "export", "export again")
    return _check_listed(path, manifest, target, "the export was damaged or replaced after "
                         "it was verified; export again (make onnx / make torch)")


def check_request(folder: Path, request: dict) -> None:
    """Raise InputError when the finished run in `folder` answered another request than
    `request`, naming each setting that differs (recorded → asked)."""
    manifest = read_result(folder)
    recorded = (manifest or {}).get("request", {})
    differs = [f"{key}: {recorded.get(key)!r} recorded, {value!r} asked"
               for key, value in request.items() if recorded.get(key) != value]
    if differs:
        raise InputError(f"{folder} holds a finished run of another request "
                         f"({'; '.join(differs)}); give the new request its own folder "
                         f"(RUNS=), or ask the same again")


def check_recorded_width(weights: Path, width: float | None) -> None:
    """Raise InputError when `weights` are a finished run's whose result manifest records
    another WIDTH than `width`, the one the net is being built at: say the run's width
    instead of letting the shapes disagree."""
    if width is None:
        return
    weights = Path(weights)
    manifest = read_result(weights.parent)
    if not manifest or weights.name not in manifest.get("files", {}):
        return
    recorded = manifest.get("request", {}).get("width")
    if recorded is not None and recorded != width:
        raise InputError(f"{weights}: the run folder {weights.parent} was trained at "
                         f"WIDTH={recorded:g} (its {RESULT_MANIFEST}), the net is built at "
                         f"WIDTH={width:g}; give WIDTH={recorded:g} (--width {recorded:g})")
