"""Outputs never overwrite inputs: the one check every command makes on its output paths
before any work (score, infer, synthetic, training's run folders, zoo export and fetch,
the ONNX/PyTorch exports). An output that is one of the command's inputs (the weights, a picture),
that lies inside an input folder (a data root: predictions among the ground truth), or a
folder that directly holds an input file is refused; an output that already holds a result
is refused unless the user forces it, and then the command says what it replaces."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import PROBE_PREFIX, InputError, check_writable, check_writable_folder

FORCE_HINT = "FORCE=1 (make) / --force"


@dataclass(frozen=True)
class Output:
    """One output of a command: the option that names it (as the user typed it, e.g.
    "JSON=/--json"), its path, and whether it is a folder the command writes files into.
    `resumable`: what the output already holds is the command's own earlier work, which it
    verifies and resumes itself (a training's run folder, a fetch's verified copy), so it
    is not refused as an earlier result; inputs are still refused."""

    option: str
    path: Path
    folder: bool = False
    resumable: bool = False


def _real(path: Path) -> Path:
    """The path with symlinks followed (also for a path that does not exist yet)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _conflict(out: Output, real_out: Path, name: str, given: Path) -> str | None:
    """Why writing `out` would overwrite or mix with the input `name` at `given`, or None."""
    real_in = _real(given)
    if _same(real_out, real_in):
        return f"it is {name} ({given}) that this command reads"
    if real_in.is_dir() and real_out.is_relative_to(real_in):
        return f"it lies inside {name} ({given}), which this command reads"
    if out.folder and real_in.is_file() and _same(real_in.parent, real_out):
        return f"it holds {name} ({given}), which this command reads"
    return None


def existing_result(out: Output) -> str | None:
    """What `out` already holds that writing it would replace, in words, or None."""
    path = Path(out.path)
    try:
        if out.folder:
            if path.is_dir():
                # a probe left by a process killed while checking is no result
                count = sum(1 for entry in path.iterdir()
                            if not entry.name.startswith(PROBE_PREFIX))
                if count:
                    return (f"the folder {path} already holds {count} "
                            f"entr{'y' if count == 1 else 'ies'}")
            return None
        if path.is_file() and path.stat().st_size > 0:
            return f"{path} already exists ({path.stat().st_size} bytes)"
    except OSError:  # a path the system refuses (a name too long): check_writable names it
        return None
    return None


def check_outputs(outputs: Sequence[Output], inputs: Mapping[str, Path | str | None],
                  force: bool = False) -> list[str]:
    """Refuse (InputError) before any work an output that is, lies inside, or directly holds
    one of `inputs` (named for the message: {"the weights (--weights)": path}), whatever
    `force` says; refuse one that already holds a result unless `force`, and return the
    lines saying what forced outputs replace (for the command to print). Each output must
    also be writable (core.errors.check_writable)."""
    replacing = []
    given = {name: Path(path) for name, path in inputs.items() if path is not None}
    for out in outputs:
        real_out = _real(out.path)
        for name, path in given.items():
            why = _conflict(out, real_out, name, path)
            if why:
                raise InputError(f"{out.path}: cannot be written ({out.option}): {why}; "
                                 f"give another path")
        held = None if out.resumable else existing_result(out)
        if held and not force:
            raise InputError(f"{out.path}: {held}, an earlier result ({out.option}); give "
                             f"another path, or {FORCE_HINT} to write over it")
        if held:
            replacing.append(f"replacing what {held} ({out.option}, forced)")
        if out.folder:
            check_writable_folder(out.path, out.option)
        else:
            check_writable(out.path, out.option)
    return replacing
