"""Compare two segmentations as class-index maps: index PNGs and VOC-coloured RGB alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from compare.errors import CompareError
from compare.table import Comparison
from core.catalog import VOID
from core.palette import colours_to_indices

INDEX_MODES = {"P": "palette PNG", "L": "grey index PNG", "I": "32-bit index image",
               "I;16": "16-bit index image"}


def load_label_map(path: Path | str) -> tuple[np.ndarray, str]:
    """A segmentation image as an (H, W) class-index array, and how it was encoded.

    Palette and grey images hold class indices; RGB(A) images are read as VOC colours,
    and any other colour is an error naming the file, the colour and where it is.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError) as e:
        raise CompareError(f"{path}: cannot read as an image ({e})") from e
    if image.mode in INDEX_MODES:
        indices = np.array(image)
        if indices.min(initial=0) < 0:
            raise CompareError(f"{path}: negative class index {indices.min()}")
        return indices.astype(np.int64), INDEX_MODES[image.mode]
    if image.mode == "RGBA":
        alpha = np.array(image)[..., 3]
        if (alpha != 255).any():
            raise CompareError(f"{path}: RGBA with transparent pixels is not a label rendering")
        image = image.convert("RGB")
    if image.mode != "RGB":
        raise CompareError(f"{path}: image mode {image.mode} is neither an index nor an RGB label")
    rgb = np.array(image)
    indices, unknown = colours_to_indices(rgb)
    if unknown.any():
        row, col = (int(v) for v in np.argwhere(unknown)[0])
        colour = tuple(int(v) for v in rgb[row, col])
        raise CompareError(f"{path}: {int(unknown.sum())} pixels have colours outside the VOC "
                       f"palette, e.g. RGB {colour} at row {row}, column {col} "
                       "(a JPEG or a resized rendering?)")
    return indices.astype(np.int64), "VOC-coloured RGB"


def agreement_and_mean_iu(a: np.ndarray, b: np.ndarray, void: int = VOID
                          ) -> tuple[float, float, int]:
    """Pixel agreement and mean IU of b against a over pixels void in neither.

    IU averages over classes present in either map; returns (agreement, mean IU, pixels).
    """
    valid = (a != void) & (b != void)
    la, lb = a[valid], b[valid]
    if la.size == 0:
        return float("nan"), float("nan"), 0
    size = int(max(la.max(), lb.max())) + 1
    hist = np.bincount(la * size + lb, minlength=size * size).reshape(size, size)
    intersection = np.diag(hist)
    union = hist.sum(0) + hist.sum(1) - intersection
    present = union > 0
    return (float(intersection.sum() / la.size), float(np.mean(intersection[present]
                                                               / union[present])), la.size)


def compare_segmentation(a: Path, b: Path) -> Comparison:
    """Identical means equal class indices at every pixel, whatever the encodings."""
    map_a, encoding_a = load_label_map(a)
    map_b, encoding_b = load_label_map(b)
    result = Comparison("segmentation", str(a), str(b), identical=False,
                        columns=("check", "A", "B"))
    result.rows.append(("encoding", encoding_a, encoding_b))
    result.rows.append(("size (H×W)", map_a.shape, map_b.shape))
    if map_a.shape != map_b.shape:
        result.notes.append("sizes differ: no pixel comparison")
        return result
    classes_a = ", ".join(str(c) for c in np.unique(map_a))
    classes_b = ", ".join(str(c) for c in np.unique(map_b))
    result.rows.append(("classes", classes_a, classes_b))
    differ = map_a != map_b
    n_differ = int(differ.sum())
    result.identical = n_differ == 0
    result.rows.append(("differing pixels", f"{n_differ} of {map_a.size}", ""))
    if n_differ:
        row, col = (int(v) for v in np.argwhere(differ)[0])
        result.rows.append(("first differing pixel", f"row {row}, col {col}: {map_a[row, col]}",
                            f"{map_b[row, col]}"))
    agreement, mean_iu, pixels = agreement_and_mean_iu(map_a, map_b)
    result.rows.append(("agreement (non-void)", f"{agreement:.6f}", f"over {pixels} pixels"))
    result.rows.append(("mean IU of B vs A", f"{mean_iu:.6f}", ""))
    if result.identical and encoding_a != encoding_b:
        result.notes.append("same class at every pixel; only the encodings differ")
    return result
