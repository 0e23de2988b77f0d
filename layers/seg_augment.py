"""Optional input changes the paper's analyses need; every one is off by default.

Masking (Section 6.1, Table 8) and random mirroring / translation "jitter" (Section 4.4).
"""

from __future__ import annotations

import numpy as np
from seg_dataset import SegDataset
from seg_io import VOID, DataError

MASKS = ("fg", "bg", "both")


class Augment:
    """Mask foreground/background, random mirror, random translation; all off by default.

    mask 'fg' sets object pixels (classes > 0, and void, which outlines objects) to the
    mean, i.e. 0 after subtraction; 'bg' does the same to background pixels; 'both' keeps
    shape alone: background at the mean, foreground white in the colour input. Mirroring
    flips every top; jitter translates every top by up to `jitter` pixels in each
    direction, filling inputs with the mean and labels with void.
    """

    def __init__(self, params: dict, dataset: SegDataset, where: str):
        self.mask = params.get("mask")
        if self.mask not in (None, *MASKS):
            raise DataError(f"{where}: mask must be one of {MASKS}, found {self.mask!r}")
        self.mirror = bool(params.get("mirror", False))
        self.jitter = int(params.get("jitter", 0) or 0)
        if self.jitter < 0:
            raise DataError(f"{where}: jitter must be >= 0 pixels, found {self.jitter}")
        self.labels = [n for n in dataset.top_names() if n in dataset.label_classes]
        if self.mask and not (self.labels and dataset.background_is_zero):
            raise DataError(f"{where}: masking needs a label top whose class 0 is "
                            f"background (VOC, SBDD, PASCAL-Context)")
        self.means = dataset.input_means()
        # each example's draws depend only on (seed, example number): skipping is exact
        seed = params.get("seed")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        if (self.mirror or self.jitter) and not (isinstance(seed, int) and seed >= 0):
            raise DataError(f"{where}: mirror and jitter need a seed that is an integer "
                            f">= 0, found {seed!r}")
        self.seed = seed

    @property
    def active(self) -> bool:
        return bool(self.mask or self.mirror or self.jitter)

    def __call__(self, tops: dict[str, np.ndarray], number: int) -> dict[str, np.ndarray]:
        """Augment the `number`-th example the layer serves."""
        rng = np.random.default_rng([self.seed, number])
        if self.mask:
            tops = self._mask(tops)
        if self.jitter:
            dy, dx = rng.integers(-self.jitter, self.jitter + 1, size=2)
            tops = {k: shift(v, int(dy), int(dx), VOID if k in self.labels else 0)
                    for k, v in tops.items()}
        if self.mirror and rng.random() < 0.5:
            tops = {k: np.ascontiguousarray(v[..., ::-1]) for k, v in tops.items()}
        return tops

    def _mask(self, tops: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        label = tops[self.labels[0]][0]
        foreground = label != 0
        out = dict(tops)
        for name, array in tops.items():
            if name in self.labels:
                continue
            array = array.copy()
            if self.mask == "fg":
                array[:, foreground] = 0
            elif self.mask == "bg":
                array[:, ~foreground] = 0
            else:
                array[...] = 0
                if name in self.means:
                    white = (255 - self.means[name]).astype(array.dtype)
                    array[:, foreground] = white[:, None]
            out[name] = array
        return out


def shift(array: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """Translate the last two axes by (dy, dx), filling what is uncovered."""
    out = np.full_like(array, fill)
    h, w = array.shape[-2:]
    src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    out[..., dst_y, dst_x] = array[..., src_y, src_x]
    return out
