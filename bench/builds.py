"""The recipe's Caffe with and without its speed and memory patches, side by side.

The default build carries caffe-recipe/patches/0002–0004 (column copy, threaded max
pooling, one shared column buffer). The bench compares it with the *same recipe minus
those patches*: a separate cache entry (`make caffe-unpatched` builds it, about 6 minutes
on 2 cores; the bench uses it when it is there). Its key is found by running build.sh from
a copy of caffe-recipe/ whose series lacks the speed patches, so the two entries differ in
nothing else (same source, flags, BLAS). The unpatched im2col.cpp is also recovered
without a build, by reversing patch 0002 (after the later patches that change the same
files, 0007) on the patched source (bench.flags times both).

The pinned OpenBLAS before its thread-count-invariance patch (patches/openblas/) is the
other side-by-side build: only the library (`build.sh --blas-only` from a copy whose
OpenBLAS series is empty, its own cache entry, about 1.5 minutes on 2 busy cores), which
the same libcaffe loads under its BLAS name for bench.threads' "before invariance" row.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from core.defaults import REPO
from core.errors import ReportedError

RECIPE = REPO / "caffe-recipe"
SPEED_PATCHES = ("0002-im2col-col2im-border-once-and-threads.patch",
                 "0003-max-pooling-forward-threads.patch",
                 "0004-shared-col-buffer.patch")
COLUMN_PATCH = SPEED_PATCHES[0]


class BuildError(ReportedError, RuntimeError):
    """A side-by-side build could not be made."""


def patches_needed(patch: Path) -> set[str]:
    """The numbers of the patches a patch's header says it needs ("Needs 0003")."""
    return set(re.findall(r"\bNeeds (\d{4})\b", patch.read_text().split("\n--- ", 1)[0]))


def unpatched_recipe(into: Path) -> Path:
    """A copy of caffe-recipe/ in `into` whose series omits the speed patches and the
    patches written on top of them (0005, a fix to 0003's loop, changes no finite bits)."""
    copy = Path(into) / "caffe-recipe"
    shutil.copytree(RECIPE, copy)
    series = copy / "patches/series"
    dropped = {p[:4] for p in SPEED_PATCHES}
    kept = []
    for p in filter(None, series.read_text().splitlines()):
        if p[:4] in dropped or patches_needed(copy / "patches" / p) & dropped:
            dropped.add(p[:4])
        else:
            kept.append(p)
    series.write_text("".join(f"{p}\n" for p in kept))
    return copy


def recipe_without_blas_patches(into: Path) -> Path:
    """A copy of caffe-recipe/ in `into` whose OpenBLAS series is empty: the pinned library
    as it was before patches/openblas/ (its key differs, so it is cached apart)."""
    copy = Path(into) / "caffe-recipe"
    shutil.copytree(RECIPE, copy)
    (copy / "patches/openblas/series").write_text("")
    return copy


def build_unpatched_blas(venv: Path = REPO / ".venv") -> Path:
    """Build (or reuse: a cached one answers at once) the pinned OpenBLAS without its
    patches; its folder (the library is in lib/). Raises BuildError saying why not (on a
    CPU without AVX2/FMA the recipe links the system OpenBLAS and has no pinned one)."""
    messages = []
    with tempfile.TemporaryDirectory() as tmp:
        recipe = recipe_without_blas_patches(Path(tmp))
        with subprocess.Popen(["bash", str(recipe / "build.sh"), "--venv", str(venv),
                               "--blas-only"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "CUDA": "0"}) as done:
            for line in done.stderr:  # build.sh's progress, passed on as it comes
                print(line, end="", file=sys.stderr)
                messages.append(line.strip())
            folder = done.stdout.read().strip()
    if done.returncode != 0 or not folder:
        raise BuildError("the pinned OpenBLAS without its patches did not build: " +
                         (messages[-1] if messages else f"exit status {done.returncode}"))
    return Path(folder.splitlines()[-1])


def unpatched_entry(venv: Path = REPO / ".venv") -> Path:
    """The cache folder the unpatched recipe maps to (built or not)."""
    with tempfile.TemporaryDirectory() as tmp:
        recipe = unpatched_recipe(Path(tmp))
        done = subprocess.run(["bash", str(recipe / "build.sh"), "--venv", str(venv),
                               "--print-dir"], capture_output=True, text=True, check=True,
                              env={**os.environ, "CUDA": "0"})
    return Path(done.stdout.strip())


def unpatched_build(venv: Path = REPO / ".venv") -> Path | None:
    """The unpatched entry when it is built (has its .complete marker), else None."""
    entry = unpatched_entry(venv)
    return entry if (entry / ".complete").exists() else None


def build_unpatched(venv: Path = REPO / ".venv") -> Path:
    """Build (or reuse) the unpatched entry without switching the venv to it."""
    with tempfile.TemporaryDirectory() as tmp:
        recipe = unpatched_recipe(Path(tmp))
        subprocess.run(["bash", str(recipe / "build.sh"), "--venv", str(venv), "--no-expose"],
                       check=True, env={**os.environ, "CUDA": "0"})
    return unpatched_entry(venv)


def environment(entry: Path) -> dict[str, str]:
    """Environment overrides that make a child Python import `entry`'s pycaffe (ahead of
    the venv's .pth) and tell the bench which build it runs."""
    python = str(Path(entry) / "src/python")
    path = os.pathsep.join(p for p in (python, os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "BENCH_CAFFE_ROOT": str(entry)}


def patched_files(text: str) -> list[str]:
    """The files a patch's text changes (its "+++ b/" lines), relative to Caffe's source."""
    return [line[len("+++ b/"):].split("\t")[0] for line in text.splitlines()
            if line.startswith("+++ b/")]


def file_sections(text: str, names: set[str]) -> str:
    """The parts of a patch's text that change `names` (its header and other files left
    out), so `patch` can take them back out of a folder holding only those files."""
    lines = text.splitlines(keepends=True)
    starts = [i for i in range(len(lines) - 1)
              if lines[i].startswith("--- ") and lines[i + 1].startswith("+++ b/")]
    kept = []
    for start, end in zip(starts, starts[1:] + [len(lines)]):
        if patched_files(lines[start + 1])[0] in names:
            kept.extend(lines[start:end])
    return "".join(kept)


def reversed_source(caffe_root: Path, relative: str, patch: str, into: Path) -> Path:
    """`relative` (e.g. src/caffe/util/im2col.cpp) of the build at caffe_root with our
    `patch` taken back out: the code as Caffe had it, written under `into`. The later
    patches of the series that change the same files come out first (0007 adds to
    im2col.cpp inside 0002's hunks, and its code uses 0002's)."""
    into = Path(into)
    touched = set(patched_files((RECIPE / "patches" / patch).read_text()))
    for name in touched:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(caffe_root) / "src" / name, target)
    series = [p for p in (RECIPE / "patches" / "series").read_text().split() if p]
    for applied in reversed(series[series.index(patch):]):
        text = file_sections((RECIPE / "patches" / applied).read_text(), touched)
        if not text:
            continue
        done = subprocess.run(["patch", "-R", "-p1", "-s", "--no-backup-if-mismatch", "-d",
                               str(into)], input=text, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"reversing {applied} on {caffe_root}/src failed: "
                               f"{(done.stdout + done.stderr).strip()}")
    return into / relative
