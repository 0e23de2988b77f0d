"""Label maps read back from pictures, for the tests that check what was written: a palette
or greyscale PNG as stored, or a rendering in the VOC colours mapped back to indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.palette import colours_to_indices


def read_label(path: Path | str) -> np.ndarray:
    """A label map from a palette/greyscale PNG (indices as stored) or an RGB rendering in
    the VOC colours (mapped back to indices); ValueError naming the file otherwise."""
    path = Path(path)
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None
    if image.mode in ("P", "L"):
        return np.asarray(image)
    if image.mode not in ("RGB", "RGBA"):
        raise ValueError(f"{path}: mode {image.mode}; expected a palette, greyscale or RGB "
                         f"label image")
    return rgb_to_label(np.asarray(image.convert("RGB")), where=str(path))


def rgb_to_label(rgb: np.ndarray, where: str = "image") -> np.ndarray:
    """Class indices of an H×W×3 image drawn in the VOC colours; ValueError naming `where`
    and some of the colours outside the map otherwise."""
    indices, unknown = colours_to_indices(rgb)
    if unknown.any():
        rgb = np.asarray(rgb, dtype=np.int64)
        colours = np.unique(rgb[unknown].reshape(-1, 3), axis=0)
        shown = ", ".join(f"({r}, {g}, {b})" for r, g, b in colours[:3].tolist())
        raise ValueError(f"{where}: {len(colours)} colour(s) outside the VOC colour map, "
                         f"e.g. {shown}")
    return indices
