"""Python layers for the losses Caffe cannot express by itself (Sections 4.4 and 6.1).

OneHotLayer          label (N×1×H×W) → one-hot targets (N×K×H×W) for Caffe's
                     SigmoidCrossEntropyLoss; void pixels get the ignore value in every
                     channel, so that loss skips them (it ignores per element).
LossSamplingLayer    label → the same label with each cell×cell block set to void with
                     probability 1 − p (Section 4.4's loss sampling: a final-layer cell of
                     FCN-32s covers a 32×32 block of the loss). The draw depends only on
                     (seed, forward number), like the data order, so a resumed run samples
                     what the uninterrupted one did (skip_forwards advances the count).

Both change labels only: nothing flows back through them (labels take no gradient).
param_str is a Python dict literal, parsed without eval.
"""

from __future__ import annotations

import ast

import caffe
import numpy as np

from core.catalog import VOID
from core.errors import InputError


class LossLayerError(InputError):
    """A loss helper layer was declared or fed wrongly; the message says how."""


def parse(param_str: str, layer: str, required: tuple[str, ...], known: tuple[str, ...]):
    where = f"{layer} param_str {param_str!r}"
    try:
        params = ast.literal_eval(param_str or "{}")
    except (ValueError, SyntaxError) as e:
        raise LossLayerError(f"{where} is not a Python literal ({e})") from None
    if not isinstance(params, dict):
        raise LossLayerError(f"{where} must be a dict")
    unknown = sorted(set(params) - set(known))
    missing = [k for k in required if k not in params]
    if unknown or missing:
        raise LossLayerError(f"{where}: unknown keys {unknown}, missing keys {missing}; "
                             f"keys are {list(known)}")
    return params


def one_hot(label: np.ndarray, classes: int, first: int = 0, ignore: int = VOID) -> np.ndarray:
    """N×1×H×W labels → N×(classes−first)×H×W float32 one-hot targets for classes
    first..classes−1 (first=1 leaves background as 'no class'); `ignore` pixels get
    `ignore` in every channel. Other values outside 0..classes−1 are an error."""
    label = np.asarray(label)
    values = label[label != ignore]
    bad = values[(values < 0) | (values >= classes) | (values != np.round(values))]
    if bad.size:
        shown = [int(v) if v == int(v) else float(v) for v in np.unique(bad)[:8]]
        raise LossLayerError(f"OneHotLayer: label values {shown} are "
                             f"neither a class 0..{classes - 1} nor {ignore} (void)")
    wanted = np.arange(first, classes, dtype=label.dtype).reshape(1, -1, 1, 1)
    out = (label == wanted).astype(np.float32)
    out[np.broadcast_to(label == ignore, out.shape)] = ignore
    return out


def cell_mask(shape: tuple[int, int], cell: int, p: float, rng: np.random.Generator):
    """H×W booleans, True where the loss is kept: one Bernoulli(p) draw per cell×cell block,
    blocks tiled from the top-left pixel (edge blocks are cut by the image border)."""
    h, w = shape
    keep = rng.random((-(-h // cell), -(-w // cell))) < p
    return np.repeat(np.repeat(keep, cell, 0), cell, 1)[:h, :w]


class OneHotLayer(caffe.Layer):
    """{'classes': 21, 'first': 0} (21 learned scores) or {'classes': 21, 'first': 1}
    (the null background: 20 class targets, background = no class); optional 'ignore'."""

    def setup(self, bottom, top):
        params = parse(self.param_str, "OneHotLayer", ("classes",),
                       ("classes", "first", "ignore"))
        self.classes = int(params["classes"])
        self.first = int(params.get("first", 0))
        self.ignore = int(params.get("ignore", VOID))
        if not 0 <= self.first < self.classes:
            raise LossLayerError(f"OneHotLayer: first {self.first} must lie in "
                                 f"0..{self.classes - 1}")
        if len(bottom) != 1 or len(top) != 1:
            raise LossLayerError(f"OneHotLayer takes one label bottom and gives one top, "
                                 f"the net declares {len(bottom)} and {len(top)}")

    def reshape(self, bottom, top):
        n, c, h, w = bottom[0].data.shape
        if c != 1:
            raise LossLayerError(f"OneHotLayer: the label must have one channel, found {c}")
        top[0].reshape(n, self.classes - self.first, h, w)

    def forward(self, bottom, top):
        top[0].data[...] = one_hot(bottom[0].data, self.classes, self.first, self.ignore)

    def backward(self, top, propagate_down, bottom):
        pass  # targets take no gradient


class LossSamplingLayer(caffe.Layer):
    """{'p': 0.5, 'cell': 32, 'seed': 1337}: keep each cell×cell block of the label with
    probability p, set the rest to void (optional 'ignore', default 255). p = 1 copies."""

    def setup(self, bottom, top):
        params = parse(self.param_str, "LossSamplingLayer", ("p", "seed"),
                       ("p", "cell", "seed", "ignore"))
        self.p = float(params["p"])
        self.cell = int(params.get("cell", 32))
        self.seed = params["seed"]
        self.ignore = int(params.get("ignore", VOID))
        if not 0 < self.p <= 1:
            raise LossLayerError(f"LossSamplingLayer: p must lie in (0, 1], found {self.p}")
        if self.cell < 1 or not (isinstance(self.seed, int) and self.seed >= 0):
            raise LossLayerError(f"LossSamplingLayer: cell must be >= 1 and seed an integer "
                                 f">= 0, found cell {self.cell}, seed {self.seed!r}")
        if len(bottom) != 1 or len(top) != 1:
            raise LossLayerError("LossSamplingLayer takes one label bottom and gives one top")
        self.forwards = 0  # labels sampled so far: the draw's key with the seed

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        label = bottom[0].data
        if self.p == 1:
            top[0].data[...] = label
        else:
            rng = np.random.default_rng([self.seed, self.forwards])
            keep = np.stack([cell_mask(label.shape[-2:], self.cell, self.p, rng)
                             for _ in range(label.shape[0])])[:, None]
            top[0].data[...] = np.where(keep, label, self.ignore)
        self.forwards += 1

    def skip_forwards(self, n: int) -> None:
        """Advance the draw count as if `n` forwards had run (resume)."""
        self.forwards += n

    def backward(self, top, propagate_down, bottom):
        pass  # labels take no gradient
