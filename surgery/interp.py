"""Bilinear upsampling kernels for Deconvolution layers (Section 3.3 of the paper).

A Deconvolution with stride f and kernel 2f whose filter is `upsample_filt(2f)` on the
channel diagonal is exactly bilinear interpolation by f; the release fixes the final one
(lr_mult 0) and initialises the others the same way.
"""

from __future__ import annotations

import numpy as np

from surgery.transplant import SurgeryError


def upsample_filt(size: int) -> np.ndarray:
    """A size×size bilinear kernel (the outer product of two triangle filters)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return ((1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor))


def interp(net, layers=None) -> list[str]:
    """Set bilinear weights in `layers` (default: every Deconvolution of the net);
    returns the names set. Each layer must map c channels to c (one kernel per class on
    the diagonal) or 1 to c, with square kernels."""
    if layers is None:
        layers = [name for name in net.params if net.layer_dict[name].type == "Deconvolution"]
    for name in layers:
        if name not in net.params:
            raise SurgeryError(f"interp: the net has no layer {name!r} with parameters")
        weights = net.params[name][0].data
        c_in, c_out, h, w = weights.shape  # Deconvolution weights are in × out × h × w
        if h != w:
            raise SurgeryError(f"interp: layer {name} has a {h}×{w} kernel; bilinear "
                               f"upsampling needs a square one")
        if c_in != c_out and c_in != 1:
            raise SurgeryError(f"interp: layer {name} maps {c_in} channels to {c_out}; "
                               f"bilinear upsampling needs equal channels or one input")
        kernel = upsample_filt(h)
        weights[...] = 0
        if c_in == 1:
            weights[0, :] = kernel
        else:
            weights[range(c_in), range(c_out)] = kernel
    return list(layers)
