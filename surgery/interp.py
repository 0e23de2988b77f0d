"""Bilinear upsampling kernels for Deconvolution layers (Section 3.3 of the paper).

A Deconvolution with stride f and kernel 2f whose filter is `upsample_filt(2f)`, one kernel
per class on the channel diagonal, is bilinear interpolation by f. The release fixes the
final upsampling (lr_mult 0) at these weights and starts the others from them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from surgery.errors import SurgeryError


def upsample_filt(size: int) -> np.ndarray:
    """A size×size bilinear kernel (outer product of two triangle filters) as float32."""
    if size < 1:
        raise SurgeryError(f"upsample_filt: kernel size must be positive, got {size}")
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(ramp, ramp).astype(np.float32)


def upsampling_layers(net) -> list[str]:
    """Every Deconvolution layer of a caffe.Net, in net order."""
    return [name for name in net.params if net.layer_dict[name].type == "Deconvolution"]


def interp(net, layers: Iterable[str] | None = None) -> list[str]:
    """Set bilinear weights in `layers` of caffe.Net `net` (default: every Deconvolution);
    returns the names set.

    Each layer maps c channels to c, one kernel per channel: without groups on the diagonal
    (zeros elsewhere), or with group c (depthwise); or one channel to c (the kernel into
    every output). Kernels must be square; biases, if any, become zero.
    """
    names = upsampling_layers(net) if layers is None else list(layers)
    for name in names:
        if name not in net.params:
            raise SurgeryError(f"interp: the net has no layer {name!r} with parameters")
        kind = net.layer_dict[name].type
        if kind != "Deconvolution":
            raise SurgeryError(f"interp: layer {name} is a {kind}, not a Deconvolution")
        weights = net.params[name][0].data
        if weights.ndim != 4:
            raise SurgeryError(f"interp: layer {name} has {weights.ndim - 2}-d kernels "
                               f"{weights.shape}; bilinear upsampling is 2-d")
        c_in = net.blobs[net.bottom_names[name][0]].channels
        c_out = net.blobs[net.top_names[name][0]].channels
        group = c_out // weights.shape[1]  # Deconvolution weights: in × out/group × h × w
        h, w = weights.shape[2:]
        if h != w:
            raise SurgeryError(f"interp: layer {name} has a {h}×{w} kernel; bilinear "
                               f"upsampling needs a square one")
        if c_in == c_out and group == 1:
            where = (range(c_in), range(c_out))  # the diagonal
        elif c_in == c_out and group == c_in:
            where = (slice(None), 0)  # depthwise
        elif c_in == 1:
            where = (0, slice(None))  # one input into every output
        else:
            raise SurgeryError(f"interp: layer {name} maps {c_in} channels to {c_out} "
                               f"(group {group}); bilinear upsampling needs equal channels "
                               f"or a single input channel")
        weights[...] = 0
        weights[where] = upsample_filt(h)
        for bias in net.params[name][1:]:
            bias.data[...] = 0
    return names
