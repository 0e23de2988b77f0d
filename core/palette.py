"""Label maps as pictures: the VOC colour map, palette PNGs, overlays, and back.

The VOC devkit colours class k by spreading k's bits over the high bits of R, G and B
(bit 0 → R, 1 → G, 2 → B, then the next three one bit lower); void (255) comes out cream
(224, 224, 192). A palette PNG stores the class index per pixel and shows it in colour, so
a saved prediction is both viewable and scoreable (VOC's ground truth is stored the same
way). One definition for the project: label PNGs of the SBD converter and the synthetic
sets, predictions of the scorer and of infer, renderings compared bit for bit.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import writing


def voc_palette() -> list[int]:
    """The 256-entry colour map as a flat [R0, G0, B0, R1, ...] list (Image.putpalette)."""
    palette = []
    for k in range(256):
        r = g = b = 0
        bits = k
        for shift in range(7, -1, -1):  # bit j of each colour triple goes high to low
            r |= (bits & 1) << shift
            g |= ((bits >> 1) & 1) << shift
            b |= ((bits >> 2) & 1) << shift
            bits >>= 3
        palette += [r, g, b]
    return palette


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
    return save_picture(label_image(label), path, "writing a label picture")


def save_picture(image: Image.Image, path: Path | str, what: str, **options) -> Path:
    """Write `image` to `path` (format by its suffix) whole or not at all: it is encoded in
    memory and written with Python's own writes, since PIL's encoders write to the file
    descriptor and a write cut short by a full disk or the file-size limit can pass
    unnoticed (a truncated JPEG, exit 0); here it is an error naming the file and `what`
    was being done, and the file begun is removed (core.errors.writing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = io.BytesIO()
    image.save(encoded, format=Image.registered_extensions()[path.suffix.lower()], **options)
    with writing(path, what), open(path, "wb") as out:
        out.write(encoded.getbuffer())
    return path


def colorize(label: np.ndarray) -> np.ndarray:
    """H×W class map (values 0..255) → H×W×3 RGB uint8 in the VOC colours."""
    label = np.asarray(label)
    if label.size and (label.max() > 255 or label.min() < 0):
        raise ValueError("class indices must lie in 0..255 to have a VOC colour")
    return palette_array()[label.astype(np.intp)]


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


def colours_to_indices(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class indices of an H×W×3 VOC-coloured image (0 where unknown) and a mask of the
    pixels whose colour is not in the map (the 256 colours are distinct)."""
    palette = palette_array().astype(np.int64)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    order = np.argsort(keys)
    rgb = np.asarray(rgb, dtype=np.int64)
    pixels = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    slot = np.minimum(np.searchsorted(keys[order], pixels), len(keys) - 1)
    indices = order[slot]
    unknown = keys[indices] != pixels
    return np.where(unknown, 0, indices).astype(np.uint8), unknown


