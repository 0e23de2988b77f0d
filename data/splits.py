"""Split lists derived from the datasets' own files, checked against the release's digests.

The release ships its lists; we derive ours from what the user downloaded and compare:
- seg11valid: VOC2011 segmentation val minus SBD train, sorted: 736 images, the very
  bytes of the release's list.
- NYUDv2: the official train/test split (splits.mat, 1-based indices; image k is
  img_<5000+k>). The release's lists (in its prepared archive) split train into train
  and val and are in their own order; trainval = train then val.
- SIFT Flow: the dataset's 200-image test list; trainval = every annotated image not in
  it (highway_bost181 and street_urb506 have no annotations).
- PASCAL-Context: VOC2010's ImageSets/Main train (4998) and val (5105), used as they are.

Two digests per list: `exact` (the release's file, order included: a seeded run visits
the release's images only with its order) and `members` (sha256 of the sorted ids, one
per line; the derived list's bytes where we sort).

    python -m data.splits voc --root datasets
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from core.catalog import DATASETS, FOLDERS
from core.defaults import DATA_ROOT
from core.errors import InputError, cli_main

# The folders' layouts, as the data layers read them (core.catalog).
SBDD = DATASETS["voc"].train_layer.layout
VOC = DATASETS["voc"].test_layer.layout
NYUD = DATASETS["nyud"].train_layer.layout
SIFTFLOW = DATASETS["siftflow"].train_layer.layout
PASCALCONTEXT = DATASETS["pascalcontext"].train_layer.layout

SIFTFLOW_UNANNOTATED = ("highway_bost181", "street_urb506")
SIFTFLOW_ABSENT_FROM_TEST = ("cow", "desert", "moon")  # semantic classes 9, 11, 16 (1-based)
NYUD_FIRST_IMAGE = 5001  # img_5001 is image 1 of the labelled set
NYUD_IMAGES = 1449       # the labelled set: splits.mat's indices run from 1 to this


@dataclass(frozen=True)
class Expected:
    count: int
    exact: str | None    # sha256 of the release's file
    members: str          # sha256 of "\n".join(sorted(ids)) + "\n"


RELEASE = {
    "voc/seg11valid": Expected(
        736, "4ca991bd72c251fd2485eaa9e29536502ea3800d1b1c17c151fd6a04bcfbc2cc",
        "4ca991bd72c251fd2485eaa9e29536502ea3800d1b1c17c151fd6a04bcfbc2cc"),
    "nyud/train": Expected(
        381, "8db94b4a9b33494c20319c6e79073aa7b842a683e6d263c3873d6ee95cebf759",
        "2aa7e4beb40682604d7457b636d20b9210ce55460f24c4f20cb3765bee35f794"),
    "nyud/val": Expected(
        414, "cd278b1232fe5c2347994a9a3c13cd916aa2e72def51b9698993a2e8936797f5",
        "cd278b1232fe5c2347994a9a3c13cd916aa2e72def51b9698993a2e8936797f5"),
    "nyud/trainval": Expected(
        795, None, "915511f7a52b6a40c7eda6d69c00529b6e76c4ebd59f688f77e21e178c019fc2"),
    "nyud/test": Expected(
        654, "f717536bdff71424f6f7cd0674cf6ac4381b2cffaaf942230b962a9f40671e7a",
        "3cabba2c952d83ca4e44e4070771c666a28e41e129d7b3033839c4f9a808b426"),
    "siftflow/trainval": Expected(
        2486, "4321de2b164556875661a66c64e6b5ebe1493a6e3dfa51d93700e3d17dbedfe7",
        "587d2b5f510e869c83c048f491db37aa63118f116594ce5b45addfc93b66524b"),
    "siftflow/test": Expected(
        200, "d9d024d06b1ed2139b0e1bdbc78ede9897c3389cd588cd5c37268a931c1d36ae",
        "05cef92d019f81ce4b80a227bd68421248bf507b305e4ccb16432bf7bbab362e"),
}
PASCALCONTEXT_COUNTS = {"train": 4998, "val": 5105}


class SplitError(InputError):
    """A derived split that does not match the release, or inputs it cannot come from."""


def list_bytes(ids: list[str]) -> bytes:
    return "".join(f"{i}\n" for i in ids).encode()


def members_digest(ids: list[str]) -> str:
    return hashlib.sha256(list_bytes(sorted(ids))).hexdigest()


def read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise SplitError(f"{path}: split list not found")
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()
            if line.strip()]


def write_ids(path: Path, ids: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(list_bytes(ids))
    return path


def check(name: str, ids: list[str], path: Path | None = None) -> str:
    """Compare a list with the release's; return 'exact' or 'members', else raise."""
    want = RELEASE[name]
    where = f"{name} ({path})" if path else name
    if len(ids) != want.count:
        raise SplitError(f"{where}: {len(ids)} images, the release's list has {want.count}")
    if len(set(ids)) != len(ids):
        raise SplitError(f"{where}: duplicate ids")
    if want.exact and hashlib.sha256(list_bytes(ids)).hexdigest() == want.exact:
        return "exact"
    if members_digest(ids) != want.members:
        raise SplitError(f"{where}: same count as the release's list but different images "
                         f"(sorted-ids sha256 {members_digest(ids)}, expected {want.members})")
    return "members"


# --- PASCAL VOC ---------------------------------------------------------------------------
def derive_seg11valid(voc2011: Path, sbdd: Path, *, check_release: bool = True) -> Path:
    """Write VOC2011/ImageSets/Segmentation/seg11valid.txt = seg val minus SBD train."""
    val = read_ids(Path(voc2011) / VOC.split_file("val")[1])
    train = set(read_ids(Path(sbdd) / SBDD.split_file("train")[1]))
    ids = sorted(set(val) - train)
    if not ids:
        raise SplitError(f"every VOC2011 val image of {voc2011} is in SBD train {sbdd}")
    if check_release:
        check("voc/seg11valid", ids)
    return write_ids(Path(voc2011) / VOC.split_file("seg11valid")[1], ids)


# --- NYUDv2 -------------------------------------------------------------------------------
def nyud_official_split(splits_mat: Path) -> tuple[list[str], list[str]]:
    """(trainval, test) ids from the official splits.mat (trainNdxs, testNdxs, 1-based)."""
    try:
        mat = scipy.io.loadmat(str(splits_mat))
        train, test = (np.asarray(mat[k]).ravel().astype(int) for k in ("trainNdxs",
                                                                          "testNdxs"))
    except (OSError, ValueError, KeyError, MatReadError, NotImplementedError) as e:
        # MatReadError: not a MATLAB file at all; NotImplementedError: a v7.3 (HDF5) one
        raise SplitError(f"{splits_mat}: not the NYUDv2 splits.mat with trainNdxs and "
                         f"testNdxs ({e})") from None
    outside = sorted({int(k) for k in (*train, *test) if not 1 <= k <= NYUD_IMAGES})
    if outside:   # 0 would name the last image, 1450 none: never a silent or raw failure
        raise SplitError(f"{splits_mat}: indices {outside[:5]} are outside NYUDv2's 1 to "
                         f"{NYUD_IMAGES} (1-based); is it the NYUDv2 splits.mat?")
    name = [str(NYUD_FIRST_IMAGE - 1 + k) for k in range(1, NYUD_IMAGES + 1)]
    return [name[k - 1] for k in sorted(train)], [name[k - 1] for k in sorted(test)]


def derive_nyud(nyud: Path, *, splits_mat: Path | None = None,
                check_release: bool = True) -> dict[str, str]:
    """Write nyud/trainval.txt and test.txt; return how each matched the release.

    With the release's train.txt / val.txt / test.txt present (its prepared archive),
    they are checked and trainval = train + val in their order; otherwise the lists come
    from the official splits.mat, sorted.
    """
    nyud = Path(nyud)
    listing = {s: nyud / NYUD.split_file(s)[1] for s in ("train", "val", "trainval", "test")}
    result = {}
    if all(listing[s].is_file() for s in ("train", "val", "test")):
        lists = {s: read_ids(listing[s]) for s in ("train", "val", "test")}
        if check_release:
            for s, ids in lists.items():
                result[s] = check(f"nyud/{s}", ids, listing[s])
        trainval, test = lists["train"] + lists["val"], lists["test"]
    elif splits_mat is not None:
        trainval, test = nyud_official_split(Path(splits_mat))
        write_ids(listing["test"], test)
    else:
        raise SplitError(f"{nyud}: neither the release's train/val/test lists nor a "
                         f"splits.mat to derive them from")
    if check_release:
        result["trainval"] = check("nyud/trainval", trainval)
        result["test"] = check("nyud/test", test)
    write_ids(listing["trainval"], trainval)
    return result


# --- SIFT Flow ------------------------------------------------------------------------------
def siftflow_images(siftflow: Path) -> tuple[list[str], list[str]]:
    """(annotated, unannotated) image ids: annotated ones have both label files."""
    pattern = SIFTFLOW.file("data", "*")
    images = sorted(p.stem for p in siftflow.glob(pattern))
    if not images:
        raise SplitError(f"{siftflow}: no images under {Path(pattern).parent}")
    labelled = [i for i in images
                if (siftflow / SIFTFLOW.file("sem", i)).is_file()
                and (siftflow / SIFTFLOW.file("geo", i)).is_file()]
    return labelled, sorted(set(images) - set(labelled))


def derive_siftflow(siftflow: Path, test_list: Path, *,
                    check_release: bool = True) -> dict[str, str]:
    """Write sift-flow/test.txt (the dataset's test list, its order) and trainval.txt
    (every other annotated image, sorted); return how each matched the release."""
    siftflow = Path(siftflow)
    test = [Path(line.replace("\\", "/")).stem for line in read_ids(Path(test_list))]
    annotated, unannotated = siftflow_images(siftflow)
    missing = sorted(set(test) - set(annotated))
    if missing:
        raise SplitError(f"{test_list}: test images without image or labels under "
                         f"{siftflow}: {missing[:5]}")
    trainval = sorted(set(annotated) - set(test))
    result = {}
    if check_release:
        unexpected = sorted(set(unannotated) - set(SIFTFLOW_UNANNOTATED))
        if unexpected:
            raise SplitError(f"{siftflow}: images without labels besides the two known ones "
                             f"{SIFTFLOW_UNANNOTATED}: {unexpected[:5]}")
        result = {"trainval": check("siftflow/trainval", trainval),
                  "test": check("siftflow/test", test)}
    write_ids(siftflow / SIFTFLOW.split_file("trainval")[1], trainval)
    write_ids(siftflow / SIFTFLOW.split_file("test")[1], test)
    return result


# --- PASCAL-Context -------------------------------------------------------------------------
def check_pascalcontext(voc2010: Path) -> dict[str, int]:
    """The Main train/val lists the layer reads: present, and of the known sizes."""
    counts = {}
    for split, want in PASCALCONTEXT_COUNTS.items():
        path = Path(voc2010) / PASCALCONTEXT.split_file(split)[1]
        counts[split] = len(read_ids(path))
        if counts[split] != want:
            raise SplitError(f"{path}: {counts[split]} images, VOC2010's has {want}")
    return counts


@cli_main("splits")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("voc", "nyud", "siftflow", "pascalcontext"))
    parser.add_argument("--root", type=Path, default=DATA_ROOT, help="data root")
    parser.add_argument("--splits-mat", type=Path, help="NYUDv2's official splits.mat")
    parser.add_argument("--test-list", type=Path, help="SIFT Flow's test image list")
    parser.add_argument("--no-check", action="store_true",
                        help="derive without comparing with the release (other data)")
    args = parser.parse_args(argv)
    check_release = not args.no_check
    if args.dataset == "voc":
        path = derive_seg11valid(args.root / FOLDERS["voc2011"], args.root / FOLDERS["sbdd"],
                                 check_release=check_release)
        print(f"{path}: {len(read_ids(path))} images"
              + (", identical to the release's list" if check_release else ""))
    elif args.dataset == "nyud":
        print(derive_nyud(args.root / FOLDERS["nyud"], splits_mat=args.splits_mat,
                          check_release=check_release))
    elif args.dataset == "siftflow":
        if args.test_list is None:
            parser.error("siftflow needs --test-list (the dataset's test images)")
        print(derive_siftflow(args.root / FOLDERS["siftflow"], args.test_list,
                              check_release=check_release))
    else:
        print(check_pascalcontext(args.root / FOLDERS["voc2010"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
