"""PASCAL VOC's label colours, to turn RGB renderings back into class indices and back.

The VOC devkit colours class i by spreading i's bits over the high bits of R, G and B
(bit 0 → R, 1 → G, 2 → B, then the next three one bit lower); 255 (void) is (224, 224, 192).
"""

from __future__ import annotations

import numpy as np

VOID = 255


def voc_palette(size: int = 256) -> np.ndarray:
    """The (size, 3) uint8 colour table the VOC devkit's labelcolormap builds."""
    colours = np.zeros((size, 3), dtype=np.uint8)
    for index in range(size):
        value, rgb = index, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        colours[index] = rgb
    return colours


def colours_to_indices(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class indices of an (H, W, 3) VOC-coloured image, and a mask of unknown colours."""
    palette = voc_palette().astype(np.int64)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    order = np.argsort(keys)
    pixel_keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) \
        | rgb[..., 2].astype(np.int64)
    slot = np.minimum(np.searchsorted(keys[order], pixel_keys), len(keys) - 1)
    indices = order[slot]
    unknown = keys[indices] != pixel_keys
    return np.where(unknown, 0, indices).astype(np.uint8), unknown


def indices_to_colours(indices: np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 VOC-coloured rendering of a class-index map."""
    if indices.max(initial=0) > 255 or indices.min(initial=0) < 0:
        raise ValueError("class indices must lie in 0..255 to have a VOC colour")
    return voc_palette()[indices.astype(np.intp)]
