"""Table 4: the VOC test set's predictions in the layout the evaluation server accepts.

    python -m paper.submission --weights W.caffemodel --year 2012 [--data DATA] [--out DIR]

Reads DATA/pascal/VOC<year>/ImageSets/Segmentation/test.txt and JPEGImages/ (the test
tarball's layout), labels every picture at its own size with the deploy net, and writes
  OUT/results/VOC<year>/Segmentation/comp6_test_cls/<id>.png   palette PNGs, VOC colours
  OUT/voc<year>-comp6-results.tar.gz                            what the server takes
comp6 is the development kit's "trained on data of your choosing" competition (the paper's
nets use SBD's extra labels, so comp5, VOC data only, would be wrong). The test labels are
not public: the server scores the archive; the paper's numbers are in core/paper_numbers.py.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
import tarfile
from pathlib import Path

from core.catalog import DATASETS, FOLDERS
from core.defaults import DATA_ROOT, RUNS_DIR
from core.errors import cli_main
from core.palette import save_label_png
from evaluation.infer import load_segmenter, read_rgb
from evaluation.runtime import select_device

YEARS = ("2011", "2012")
COMPETITION = "comp6"
VOC = DATASETS["voc"].test_layer.layout  # a VOC<year> folder's layout, as the layer reads it


def test_ids(voc_dir: Path) -> list[str]:
    listing = voc_dir / VOC.split_file("test")[1]
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: the test split list is missing; unpack the VOC "
                                f"test tarball (VOC<year>test.tar, from the evaluation "
                                f"server after registering) under {voc_dir.parent}")
    ids = listing.read_text().split()
    if not ids:
        raise ValueError(f"{listing} lists no images")
    return ids


def results_dir(out: Path, year: str) -> Path:
    return out / "results" / f"VOC{year}" / "Segmentation" / f"{COMPETITION}_test_cls"


def write_predictions(weights: Path, year: str, data: Path, out: Path, *,
                      net: str = "voc-fcn8s", width: float = 1.0,
                      progress: bool = True) -> tuple[Path, Path]:
    """Label every test picture; returns (the PNG folder, the archive)."""

    if year not in YEARS:
        raise ValueError(f"YEAR must be one of {', '.join(YEARS)}, found {year!r}")
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: weights not found (WEIGHTS= a trained "
                                f"{net}, e.g. runs/{net}/final.caffemodel)")
    voc_dir = Path(data) / FOLDERS["pascal"] / f"VOC{year}"
    ids = test_ids(voc_dir)
    missing = [i for i in ids if not (voc_dir / VOC.file("data", i)).is_file()]
    if missing:
        raise FileNotFoundError(f"{voc_dir / VOC.file('data', missing[0])}: "
                                f"{len(missing)} test image(s) listed in test.txt are missing")
    segmenter = load_segmenter(net, weights, width=width)
    folder = results_dir(Path(out), year)
    first = segmenter.score_blobs[0]
    for k, image_id in enumerate(ids, 1):
        rgb = read_rgb(voc_dir / VOC.file("data", image_id))
        save_label_png(segmenter(rgb)[first], folder / f"{image_id}.png")
        if progress and (k % 100 == 0 or k == len(ids)):
            print(f"[submission] {k}/{len(ids)}", file=sys.stderr, flush=True)
    return folder, archive(Path(out), year)


def archive(out: Path, year: str) -> Path:
    """results/… as a gzipped tar with fixed owners and times: same PNGs, same bytes."""
    path = out / f"voc{year}-comp6-results.tar.gz"
    folder = results_dir(out, year)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        parts = folder.relative_to(out).parts
        for depth in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:depth]))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for png in sorted(folder.glob("*.png")):
            info = tarfile.TarInfo(str(png.relative_to(out)))
            data = png.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0,
                                             filename="") as gz:
        gz.write(buffer.getvalue())
    os.replace(tmp, path)
    return path


@cli_main("voc-submission", also=(ValueError, OSError, RuntimeError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="VOC test-set predictions in the "
                                     "development kit's layout, and the archive to upload.")
    parser.add_argument("--weights", required=True, type=Path, help="trained caffemodel")
    parser.add_argument("--year", required=True, choices=YEARS)
    parser.add_argument("--data", type=Path, default=DATA_ROOT,
                        help="data root holding pascal/VOC<year>/ (the test tarball's)")
    parser.add_argument("--net", default="voc-fcn8s", help="experiment the weights are of")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--gpu", type=int, metavar="N")
    parser.add_argument("--out", type=Path, help="default runs/voc-submission-<year>")
    args = parser.parse_args(argv)

    select_device(args.gpu)
    folder, tarball = write_predictions(
        args.weights, args.year, args.data,
        args.out or RUNS_DIR / f"voc-submission-{args.year}", net=args.net,
        width=args.width)
    print(f"predictions: {folder}\narchive: {tarball}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
