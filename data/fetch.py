"""Fetch a dataset into the data root: download (resumable, verified), unpack, place,
derive and check its splits.

    python -m data.fetch voc --root datasets

Archives are kept in <root>/downloads (delete them after a successful run if space is
short); a download that cannot reach its host says where to put the file by hand, and a
re-run picks it up from there.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from core.catalog import FOLDERS, PASCALCONTEXT_FULL_NAMES
from core.defaults import DATA_ROOT
from core.download import fetch, file_digest, sidecar
from core.errors import cli_main
from data.archives import ArchiveError, extract, find_folder, move_into
from data.sources import NYUD_SPLITS_FILE, SOURCES, Place
from data.splits import (
    SplitError,
    check_pascalcontext,
    derive_nyud,
    derive_seg11valid,
    derive_siftflow,
    read_ids,
)


def place(item: Place, root: Path, downloads: Path, *, progress: bool = True) -> Path:
    """Download one item and put its contents at root/item.dest (skipped if already there)."""
    dest = root / item.dest
    if item.markers and all((dest / m).exists() for m in item.markers):
        return dest
    if not item.markers and dest.is_file():
        return dest
    d = item.download
    archive = fetch(d.url, downloads / d.filename, md5=d.md5, sha256=d.sha256, size=d.size,
                    progress=progress)
    if not (d.md5 or d.sha256):
        print(f"{archive.name}: no published checksum; accepted by "
              f"{sidecar(archive).read_text().splitlines()[-1].removeprefix('# verified by: ')}"
              f", sha256 {file_digest(archive, 'sha256')} recorded in {sidecar(archive).name} "
              f"(pin it in data/sources.py)", file=sys.stderr)
    if not item.markers:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, dest)
        return dest
    staging = downloads / f"{d.filename}.unpacked"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        extract(archive, staging, progress=progress)
        move_into(find_folder(staging, *item.markers), dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def siftflow_test_list(siftflow: Path) -> Path:
    """The dataset's own test list: a text file naming 200 of its images."""
    images = {p.stem for p in (siftflow / "Images").rglob("*.jpg")}
    for candidate in sorted(siftflow.rglob("*.txt")):
        if candidate.name in ("trainval.txt", "test.txt"):
            continue
        names = [Path(n.replace("\\", "/")).stem for n in read_ids(candidate)]
        if len(names) == 200 and set(names) <= images:
            return candidate
    raise SplitError(f"{siftflow}: no 200-image test list found in the dataset; derive the "
                     f"splits with `python -m data.splits siftflow --test-list FILE`")


def finish(name: str, root: Path, check_release: bool = True) -> str:
    """Dataset-specific steps after placing the files: splits, checks."""
    if name == "voc":
        path = derive_seg11valid(root / FOLDERS["voc2011"], root / FOLDERS["sbdd"],
                                 check_release=check_release)
        return f"{path}: {len(read_ids(path))} images"
    if name == "pascalcontext":
        labels = root / FOLDERS["pascalcontext"] / PASCALCONTEXT_FULL_NAMES
        if not labels.is_file():
            raise ArchiveError(f"{labels} is missing (the 459 '<n>: <name>' lines of "
                               f"PASCAL-Context); put it there by hand")
        return f"VOC2010 Main splits {check_pascalcontext(root / FOLDERS['voc2010'])}"
    if name == "nyud":
        nyud = root / FOLDERS["nyud"]
        result = derive_nyud(nyud, splits_mat=nyud / NYUD_SPLITS_FILE,
                             check_release=check_release)
        return f"NYUDv2 splits: {result}"
    if name == "siftflow":
        siftflow = root / FOLDERS["siftflow"]
        result = derive_siftflow(siftflow, siftflow_test_list(siftflow),
                                 check_release=check_release)
        return f"SIFT Flow splits: {result}"
    raise ValueError(name)


def fetch_dataset(name: str, root: Path, *, downloads: Path | None = None,
                  places: tuple[Place, ...] | None = None, check_release: bool = True,
                  progress: bool = True) -> str:
    """Everything `make data-fetch DATASET=name` does; returns a one-line summary."""
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(SOURCES)}")
    root = Path(root)
    downloads = Path(downloads) if downloads else root / "downloads"
    for item in places if places is not None else SOURCES[name]:
        place(item, root, downloads, progress=progress)
    return finish(name, root, check_release)


@cli_main("data-fetch")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(SOURCES))
    parser.add_argument("--root", type=Path, default=DATA_ROOT, help="data root")
    parser.add_argument("--downloads", type=Path, help="archive folder (<root>/downloads)")
    args = parser.parse_args(argv)
    print(fetch_dataset(args.dataset, args.root, downloads=args.downloads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
