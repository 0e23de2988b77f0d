"""Unpacking downloaded archives safely, and finding the dataset folder inside them.

Archives differ in how deep the data sits (VOC2011 under TrainVal/VOCdevkit/, SBD under
benchmark_RELEASE/), so a dataset folder is found by what it contains, not by a path
typed in. Members that would land outside the target (absolute paths, "..", links out)
are refused.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from core.errors import MACHINE_ERRORS, InputError, reason


class ArchiveError(InputError):
    """An archive that cannot be unpacked, or that lacks what the dataset needs."""


def extract(archive: Path, target: Path, *, progress: bool = True) -> Path:
    """Unpack a .tar / .tar.gz / .tgz / .zip into `target` (created); return `target`."""
    from tqdm import tqdm

    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                members = z.infolist()
                for info in members:
                    check_member(info.filename, archive, target)
                for info in tqdm(members, desc=archive.name, unit="file", disable=not progress,
                                 leave=False):
                    z.extract(info, target)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                members = t.getmembers()
                for member in members:
                    check_member(member.name, archive, target)
                for member in tqdm(members, desc=archive.name, unit="file",
                                   disable=not progress, leave=False):
                    t.extract(member, target, filter="data")
        else:
            raise ArchiveError(f"{archive}: neither a tar nor a zip archive")
    except OSError as e:
        if e.errno in MACHINE_ERRORS:  # the archive is fine; the target is not writable
            raise OSError(e.errno, f"{target}: cannot unpack {archive.name} here "
                                   f"({reason(e)})") from None
        raise ArchiveError(f"{archive}: cannot be unpacked ({reason(e)}); delete it and "
                           f"fetch again") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise ArchiveError(f"{archive}: cannot be unpacked ({e}); delete it and "
                           f"fetch again") from None
    return target


def check_member(name: str, archive: Path, target: Path) -> None:
    path = (target / name).resolve()
    if name.startswith("/") or not path.is_relative_to(target.resolve()):
        raise ArchiveError(f"{archive}: member {name!r} would be written outside {target}")


def find_folder(top: Path, *markers: str) -> Path:
    """The shallowest folder under `top` (itself included) that holds every marker path."""
    candidates = [top, *sorted((p for p in top.rglob("*") if p.is_dir()),
                               key=lambda p: (len(p.parts), str(p)))]
    for folder in candidates:
        if all((folder / m).exists() for m in markers):
            return folder
    raise ArchiveError(f"{top}: no folder holding {list(markers)}; is this the right "
                       f"archive?")


def move_into(source: Path, dest: Path) -> Path:
    """Move folder `source` to `dest`, merging into an existing `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in sorted(Path(source).iterdir()):
        target = dest / item.name
        if target.is_dir() and item.is_dir():
            move_into(item, target)
        else:
            if target.exists():
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink()
            shutil.move(str(item), str(target))
    return dest
