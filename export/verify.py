"""Verification, not trust: an exported model beside Caffe's own forward pass.

Both run on the same pictures at several sizes; for every output blob the report gives

- max abs: max |caffe − exported| over the whole blob;
- max rel: max abs divided by max |caffe| over the same blob (the largest error measured
  against the blob's own scale; an elementwise ratio would divide by scores that cross zero);
- argmax: the fraction of pixels whose highest-scoring class differs.

An export passes when, at every size and for every output, max rel ≤ 1e-5 and the argmax
agrees on at least 99.99 % of the pixels, and the shapes are equal.

Pictures are the synthetic scenes of data/synthetic.py (or a given image resized), fed as
the data layers do — BGR, float32 — minus their own per-channel mean: the dataset's mean
is subtracted outside the net, and any realistic range of values serves the comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.defaults import SEED
from data.synthetic import make_scene

RTOL = 1e-5               # max |caffe − exported| / max |caffe|, per output blob
MIN_ARGMAX_AGREEMENT = 0.9999
SIZES = ((1, 1), (37, 501), (500, 375), (1001, 999))   # H×W, odd on purpose

Forward = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Comparison:
    size: tuple[int, int]
    blob: str
    shape: tuple[int, ...]              # Caffe's
    other_shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    argmax_differs: float               # fraction of pixels

    def passed(self, rtol: float = RTOL, min_agreement: float = MIN_ARGMAX_AGREEMENT) -> bool:
        return (self.shape == self.other_shape and self.max_rel <= rtol
                and 1 - self.argmax_differs >= min_agreement)


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """'1x1,37x501' -> ((1, 1), (37, 501)): heights × widths."""
    sizes = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        try:
            h, w = (int(v) for v in item.lower().replace("×", "x").split("x"))
        except ValueError:
            raise ValueError(f"size {item!r} is not HxW (e.g. 500x375)") from None
        if h < 1 or w < 1:
            raise ValueError(f"size {item!r} must be at least 1x1")
        sizes.append((h, w))
    if not sizes:
        raise ValueError("no sizes given")
    return tuple(sizes)


def picture(size: tuple[int, int], seed: int, image: Path | None = None) -> np.ndarray:
    """An H×W×3 uint8 RGB picture: `image` resized, or a synthetic scene."""
    h, w = size
    if image is not None:
        from PIL import Image
        with Image.open(image) as im:
            return np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR))
    rng = np.random.default_rng([seed, h, w])
    return make_scene(rng, h, w, classes=list(range(1, 8))).rgb


def net_inputs(channels: dict[str, int], size: tuple[int, int], seed: int = SEED,
               image: Path | None = None) -> dict[str, np.ndarray]:
    """1×C×H×W float32 inputs for each input blob, BGR minus the picture's channel means
    (a one-channel input, NYUD's depth, gets the picture's luminance)."""
    out = {}
    for i, (name, c) in enumerate(channels.items()):
        rgb = picture(size, seed + i, image).astype(np.float32)
        planes = rgb[:, :, ::-1] if c == 3 else rgb.mean(axis=2, keepdims=True)
        if planes.shape[2] != c:
            raise ValueError(f"input {name!r} has {c} channels; pictures give 1 or 3")
        planes = planes - planes.mean(axis=(0, 1))
        out[name] = np.ascontiguousarray(planes.transpose(2, 0, 1)[None], np.float32)
    return out


def compare(size: tuple[int, int], reference: dict[str, np.ndarray],
            other: dict[str, np.ndarray]) -> list[Comparison]:
    """One Comparison per reference output blob."""
    result = []
    for blob, a in reference.items():
        b = other.get(blob)
        if b is None or a.shape != b.shape:
            result.append(Comparison(size, blob, a.shape, () if b is None else b.shape,
                                     np.inf, np.inf, 1.0))
            continue
        diff = np.abs(a.astype(np.float64) - b)
        max_abs = float(diff.max()) if np.isfinite(b).all() else float("inf")
        scale = float(np.abs(a).max())
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        differs = float((a.argmax(axis=1) != b.argmax(axis=1)).mean()) if a.ndim == 4 else 0.0
        result.append(Comparison(size, blob, a.shape, b.shape, max_abs, max_rel, differs))
    return result


def reference_outputs(caffe_forward: Forward, channels: dict[str, int],
                      sizes, seed: int = SEED, image: Path | None = None,
                      progress: Callable[[str], None] | None = None) -> dict:
    """Caffe's outputs by size (kept, so Caffe's memory can go before the other runs)."""
    outputs = {}
    for size in sizes:
        if progress:
            progress(f"Caffe at {size[0]}×{size[1]}")
        outputs[size] = caffe_forward(net_inputs(channels, size, seed, image))
    return outputs


def check(run: Forward, references: dict, channels: dict[str, int], seed: int = SEED,
          image: Path | None = None, progress: Callable[[str], None] | None = None
          ) -> list[Comparison]:
    """The exported model's outputs on the same pictures, compared with Caffe's."""
    comparisons = []
    for size, reference in references.items():
        if progress:
            progress(f"export at {size[0]}×{size[1]}")
        comparisons += compare(size, reference, run(net_inputs(channels, size, seed, image)))
    return comparisons


HEADER = (f"{'size (H×W)':>11}  {'blob':<10} {'max abs':>10} {'max rel':>10} "
          f"{'argmax differs':>15}  ok")


def format_row(c: Comparison, rtol: float = RTOL,
               min_agreement: float = MIN_ARGMAX_AGREEMENT) -> str:
    size = f"{c.size[0]}×{c.size[1]}"
    if c.shape != c.other_shape:
        return (f"{size:>11}  {c.blob:<10} shape {c.other_shape} but Caffe's is {c.shape}"
                "  FAIL")
    return (f"{size:>11}  {c.blob:<10} {c.max_abs:10.3g} {c.max_rel:10.3g} "
            f"{100 * c.argmax_differs:14.4f}%  {'ok' if c.passed(rtol, min_agreement) else 'FAIL'}")


def failures(comparisons: list[Comparison], rtol: float = RTOL,
             min_agreement: float = MIN_ARGMAX_AGREEMENT) -> list[str]:
    """One line per comparison over the tolerance, saying which limit it broke."""
    lines = []
    for c in comparisons:
        if c.passed(rtol, min_agreement):
            continue
        where = f"{c.blob} at {c.size[0]}×{c.size[1]}"
        if c.shape != c.other_shape:
            lines.append(f"{where}: shape {c.other_shape}, Caffe's {c.shape}")
            continue
        if not c.max_rel <= rtol:
            lines.append(f"{where}: max rel {c.max_rel:.3g} > {rtol:g}")
        if 1 - c.argmax_differs < min_agreement:
            lines.append(f"{where}: argmax agrees on {100 * (1 - c.argmax_differs):.4f}% of "
                         f"pixels < {100 * min_agreement:g}%")
    return lines
