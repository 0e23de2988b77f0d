"""Upper bounds on mean IU at a given output stride (Section 6.3): `make iu-bounds`.

    python -m analyses.iu_bounds --data DATA [--split seg11valid] [--dataset voc]

Each ground truth is downsampled by a factor f and upsampled back, and the result is scored
against the original with the paper's mean IU (one histogram over the split, void ignored).

How labels are downsampled: the *mode* of each f×f block (its most frequent non-void class;
ties to the lower class; a block that is all void stays void and is ignored), blocks tiled
from the top-left pixel, edge blocks cut by the border. Why: a prediction at stride f is
one class per f×f cell once replicated back, and the block's mode is the class that labels
most of its pixels correctly, the best such a coarse prediction can do (the paper's "best
results obtainable"). `--method nearest` takes each block's centre pixel instead (plain
subsampling): it loses small objects by luck of the grid and gives lower bounds.
How labels are upsampled: each coarse label is replicated over its block (nearest); labels
are categories, so there is nothing to interpolate. The bounds are approximate, as the
paper says: an FCN interpolates scores, not labels, and can draw edges inside a cell.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from core import paper_numbers
from core.catalog import VOID
from core.errors import cli_main
from evaluation.labels import split_labels
from evaluation.metrics import fast_hist, scores

FACTORS = (128, 64, 32, 16, 8, 4)
# Section 6.3's figures on PASCAL VOC seg11valid, from the paper's numbers (one place)
PAPER = {int(row.row): row.value(paper_numbers.MEAN_IU) for row in paper_numbers.rows("bounds")}
METHODS = ("mode", "nearest")


def downsample(label: np.ndarray, factor: int, method: str = "mode") -> np.ndarray:
    """One label per f×f block: the mode of its non-void pixels (void if it has none), or
    with method 'nearest' its centre pixel (the middle of the part inside the image)."""
    if factor < 1:
        raise ValueError(f"the factor must be >= 1, found {factor}")
    if method == "nearest":
        return label[np.ix_(*(_centres(n, factor) for n in label.shape))]
    if method != "mode":
        raise ValueError(f"method must be one of {METHODS}, found {method!r}")
    h, w = label.shape
    bh, bw = -(-h // factor), -(-w // factor)
    block = ((np.arange(h) // factor)[:, None] * bw + np.arange(w) // factor).ravel()
    values = label.ravel().astype(np.int64)
    labelled = values != VOID
    classes = int(values[labelled].max()) + 1 if labelled.any() else 1
    counts = np.bincount(block[labelled] * classes + values[labelled],
                         minlength=bh * bw * classes).reshape(bh * bw, classes)
    coarse = counts.argmax(1)  # the first maximum: ties go to the lower class
    coarse[counts.max(1) == 0] = VOID
    return coarse.reshape(bh, bw).astype(label.dtype)


def _centres(length: int, factor: int) -> np.ndarray:
    """The middle index of each block of `factor` along an axis (edge blocks cut short)."""
    starts = np.arange(0, length, factor)
    return (starts + np.minimum(starts + factor, length) - 1) // 2


def upsample(coarse: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Replicate each coarse label over its f×f block and cut to `shape`."""
    return np.repeat(np.repeat(coarse, factor, 0), factor, 1)[:shape[0], :shape[1]]


def bound_hist(label: np.ndarray, factor: int, num_classes: int,
               method: str = "mode") -> np.ndarray:
    """The confusion histogram of the down-and-up-sampled label against the original."""
    approx = upsample(downsample(label, factor, method), factor, label.shape)
    # a void block predicts nothing; its pixels are void in the truth too (mode) or, with
    # 'nearest', any class: score them as background, the class an FCN falls back on
    approx = np.where(approx == VOID, 0, approx)
    return fast_hist(label, approx, num_classes)


def iu_bounds(labels, num_classes: int, factors=FACTORS, method: str = "mode") -> dict:
    """Mean IU (percent) of each factor's down-and-up-sampled labels over `labels`."""
    hists = {f: np.zeros((num_classes, num_classes), np.int64) for f in factors}
    for label in labels:
        for f in factors:
            hists[f] += bound_hist(label, f, num_classes, method)
    return {f: 100 * scores(hists[f]).mean_iu for f in factors}


def table(bounds: dict, paper: dict | None = None) -> str:
    lines = ["factor  mean IU" + ("   paper" if paper else "")]
    for f, value in bounds.items():
        line = f"{f:>6}  {value:7.1f}"
        if paper:
            line += f"  {paper[f]:6.1f}" if f in paper else f"  {'-':>6}"
        lines.append(line)
    return "\n".join(lines)


@cli_main("iu-bounds", also=(ValueError, OSError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Section 6.3's upper bounds: mean IU of ground truth downsampled by each "
                    "factor and upsampled back, against the original.")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (like data/)")
    parser.add_argument("--dataset", default="voc", help="dataset (default voc)")
    parser.add_argument("--split", default="seg11valid", help="split (default seg11valid, "
                                                              "the paper's 736 images)")
    parser.add_argument("--factors", type=int, nargs="+", default=list(FACTORS))
    parser.add_argument("--method", choices=METHODS, default="mode",
                        help="block mode (default) or nearest (centre pixel)")
    parser.add_argument("--json", type=Path, help="also write the bounds as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    count, num_classes, labels = split_labels(args.dataset, args.data, args.split, "test",
                                              progress=not args.quiet)
    bounds = iu_bounds(labels, num_classes, args.factors, args.method)
    paper = PAPER if (args.dataset, args.split) == ("voc", "seg11valid") else None
    print(f"{args.dataset} {args.split}: {count} images, {args.method} downsampling")
    print(table(bounds, paper))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"dataset": args.dataset, "split": args.split,
                                         "images": count, "method": args.method,
                                         "mean_iu": bounds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
