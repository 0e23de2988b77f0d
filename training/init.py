"""Starting weights for a training run: a caffemodel made by surgery, or — for quick runs
with no ImageNet classifier at hand — a seeded synthetic initialisation.

The release's nets give no filler to any layer, so Caffe leaves every weight at zero and a
net built from its prototxt cannot learn (all activations and gradients are zero). The
quick-run init here (random_init) is identity kernels plus seeded noise for the body, with
a VGG16-like scale profile, zero score layers (as the paper's) and bilinear upsampling.
It is for plumbing checks and width-reduced demos on synthetic data, never for reproducing
the paper's numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from core.caffe_files import load_weights

LEARNED_TYPES = ("Convolution", "InnerProduct")
PIXEL_SCALE = 64.0  # about the spread of mean-subtracted 8-bit pixel values
# (layer-name prefixes, activation scale at the end of that part of the body): an ImageNet
# VGG16's pool3 ≈ 100 × pool4 ≈ 10^4 × fc7, the profile the at-once constants equalise
SCALE_PROFILE = ((("conv1", "conv2", "conv3"), 1e4), (("conv4",), 1e2), ((), 1.0))

RANDOM_INIT_WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! WARNING: {what} starts from RANDOM (identity + noise) weights (WEIGHTS=none), not an
!! ImageNet classifier. Fine for checking the pipeline on synthetic data; the paper's
!! numbers need `make vgg16-fcn` (or WEIGHTS=<base caffemodel>).
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def input_blobs(net) -> set[str]:
    """The blobs holding a net's pictures: its data layer's tops or its inputs, and their
    copies made by the Split layers Caffe inserts."""
    found = set(net.inputs)
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type in ("Python", "Input", "Data") or (
                layer.type == "Split" and set(net.bottom_names[name]) & found):
            found |= set(net.top_names[name])
    return found


def _block(name: str) -> int:
    """Which part of the scale profile a layer belongs to (by the backbones' names)."""
    for index, (prefixes, _) in enumerate(SCALE_PROFILE):
        if not prefixes or name.startswith(prefixes):
            return index
    return len(SCALE_PROFILE) - 1


def random_init(net, seed: int, pixel_scale: float = PIXEL_SCALE,
                noise: float = 0.1) -> list[str]:
    """Identity ("Dirac") kernels plus seeded He-scaled noise for every convolution / inner
    product except the score layers (left at zero, as the paper's), zero biases, bilinear
    upsampling; returns the layers filled.

    Why not plain random weights: a random deep body scrambles the pictures, and in the
    few dozen iterations of a quick run its score layers learn nothing but the background
    prior. With identity kernels the body starts out passing each input channel through
    (as +x and -x, so ReLU keeps both signs), max-pooled, to every score layer. The
    identities' gains give the activations an ImageNet VGG16's scale profile
    (SCALE_PROFILE), which the paper's settings assume: the all-at-once net's fixed
    0.01 / 0.0001 on pool4 / pool3 equalise exactly these scales, and the staged
    schedule's 100× lr drops compensate for them.
    """
    # surgery.interp imports Caffe: loaded on use, so this module imports without it
    from surgery.interp import interp

    rng = np.random.RandomState(seed)
    inputs = input_blobs(net)
    names = [name for name in net.params
             if net.layer_dict[name].type in LEARNED_TYPES and not name.startswith("score")]
    counts = [sum(_block(name) == b for name in names) for b in range(len(SCALE_PROFILE))]
    targets = [pixel_scale] + [scale for _, scale in SCALE_PROFILE]
    gains = [(targets[b + 1] / targets[b]) ** (1.0 / counts[b]) if counts[b] else 1.0
             for b in range(len(SCALE_PROFILE))]
    for name in names:
        blobs = net.params[name]
        kernel = blobs[0].data.reshape(blobs[0].data.shape[0], blobs[0].data.shape[1], -1)
        outputs, channels, taps = kernel.shape
        centre = taps // 2  # odd square kernels: the middle tap; 1×1: the only one
        gain = gains[_block(name)]
        kernel[...] = rng.normal(0.0, noise * gain * np.sqrt(2.0 / (channels * taps)),
                                 kernel.shape)
        if set(net.bottom_names[name]) & inputs and outputs >= 2 * channels:
            for c in range(channels):
                kernel[c, c, centre] += gain
                kernel[channels + c, c, centre] -= gain
        else:
            for c in range(min(outputs, channels)):
                kernel[c, c, centre] += gain
        for bias in blobs[1:]:
            bias.data[...] = 0
    interp(net)
    return names


def warn_random(what: str, stream=None) -> None:
    print(RANDOM_INIT_WARNING.format(what=what), file=stream or sys.stderr)


def load_start(net, weights: Path | str | None, *, seed: int, what: str) -> str:
    """Put starting weights in `net`: a caffemodel (checked, then copied by layer name)
    or, for weights None, random init with a loud warning. Bilinear kernels are set on
    every Deconvolution either way (they are frozen at lr 0). Returns a description."""
    # surgery.interp imports Caffe: loaded on use, so this module imports without it
    from surgery.interp import interp

    if weights is None:
        warn_random(what)
        random_init(net, seed)
        return f"random init (seed {seed})"
    load_weights(net, weights)
    interp(net)
    return str(weights)
