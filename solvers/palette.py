"""Label maps as pictures: palette PNGs in the VOC colour map, overlays, and back.

A palette PNG stores the class index per pixel and shows it in colour, so a saved
prediction is both viewable and scoreable (VOC's ground truth is stored the same way).
The colour map is data.palette.voc_palette, the one definition in the project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from data.palette import voc_palette


def palette_array() -> np.ndarray:
    """The VOC colour map as a 256×3 uint8 array (index 255, void, is 224 224 192)."""
    return np.asarray(voc_palette(), dtype=np.uint8).reshape(256, 3)


def label_image(label: np.ndarray) -> Image.Image:
    """An H×W class map (values 0..255) as a palette ('P' mode) image."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"a label map is 2-D, found shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"label values {label.min()}..{label.max()} do not fit a palette PNG")
    image = Image.fromarray(label.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    return image


def save_label_png(label: np.ndarray, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    label_image(label).save(path)
    return path


def colorize(label: np.ndarray) -> np.ndarray:
    """H×W class map → H×W×3 RGB in the VOC colours."""
    return palette_array()[np.asarray(label, dtype=np.uint8)]


def overlay(rgb: np.ndarray, label: np.ndarray, alpha: float = 0.5,
            background: int | None = 0) -> np.ndarray:
    """The picture with the prediction's colours blended in (`background` pixels left as
    they are), H×W×3 uint8."""
    rgb = np.asarray(rgb)
    if rgb.shape[:2] != np.shape(label):
        raise ValueError(f"image is {rgb.shape[0]}×{rgb.shape[1]} but the label is "
                         f"{np.shape(label)[0]}×{np.shape(label)[1]}")
    blended = (1 - alpha) * rgb.astype(np.float64) + alpha * colorize(label)
    if background is not None:
        keep = np.asarray(label) == background
        blended[keep] = rgb[keep]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


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
    """Class indices of an H×W×3 image drawn in the VOC colours."""
    palette = palette_array().astype(np.int64)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {int(k): i for i, k in reversed(list(enumerate(keys)))}  # first index wins
    rgb = np.asarray(rgb, dtype=np.int64)
    pixels = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours, inverse = np.unique(pixels, return_inverse=True)
    unknown = [c for c in colours if int(c) not in lookup]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:3])
        raise ValueError(f"{where}: {len(unknown)} colour(s) outside the VOC colour map, "
                         f"e.g. {shown}")
    indices = np.array([lookup[int(c)] for c in colours], dtype=np.uint8)
    return indices[inverse].reshape(pixels.shape)
