"""The PASCAL VOC colour map: class k's colour spreads k's bits over R, G and B.

One definition for the project (label PNGs written by the SBD converter and the synthetic
datasets, predictions saved by the scorer). Index 255, void, comes out cream (224, 224, 192).
"""

from __future__ import annotations


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
