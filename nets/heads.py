"""Scoring and upsampling heads: FCN-32s/16s/8s, the skip fusions, the loss.

One definition serves every dataset and backbone: a skip connection changes here, once.
Crop offsets are derived from the graph by caffe.coord_map, never typed in.
"""

from __future__ import annotations

from contextlib import contextmanager

from caffe import coord_map
from caffe import layers as L
from caffe import params as P

from nets.backbones import LEARNED

# The all-at-once net scales pool4 and pool3 before scoring them (Section 4.2).
AT_ONCE_SCALE = {"pool4": 0.01, "pool3": 0.0001}


@contextmanager
def _concat_passes_through():
    """Let coord_map walk through Concat (GoogLeNet's inception outputs): every branch of
    an inception module keeps the spatial coordinates, so the map is the identity."""
    added = "Concat" not in coord_map.PASS_THROUGH_LAYERS
    if added:
        coord_map.PASS_THROUGH_LAYERS.append("Concat")
    try:
        yield
    finally:
        if added:
            coord_map.PASS_THROUGH_LAYERS.remove("Concat")


def crop(top_from, top_to):
    """A Crop layer aligning `top_from` to `top_to`, offset computed from the graph."""
    with _concat_passes_through():
        return coord_map.crop(top_from, top_to)


def score(bottom, num_classes: int):
    """1×1 class scoring; zero-initialised (Caffe's default filler), as in the paper."""
    param = [dict(p) for p in LEARNED]
    return L.Convolution(bottom, num_output=num_classes, kernel_size=1, pad=0, param=param)


def upsample(bottom, num_classes: int, factor: int, kernel: int | None = None):
    """Deconvolution by `factor`, kernel 2×factor; bilinear weights are set by surgery.interp
    and frozen (lr_mult 0), as the release does for every upsampling layer."""
    return L.Deconvolution(bottom, convolution_param=dict(
        num_output=num_classes, kernel_size=kernel or 2 * factor, stride=factor,
        bias_term=False), param=[dict(lr_mult=0)])


def fcn_head(n, top, data, num_classes: int, *, stride: int = 32, suffix: str = "",
             at_once: bool = False, final_kernel: int | None = None,
             score_top: str = "score"):
    """Score `top` and upsample to `data`'s size, fusing pool4 (stride 16) and pool3 (8).

    `suffix` names the layers of one head of a multi-head net (SIFT Flow: _sem, _geo).
    Returns the cropped score top, stored as n[score_top].
    """
    s = suffix
    n["score_fr" + s] = fused = score(top, num_classes)
    if stride == 32:
        n["upscore" + s] = up = upsample(fused, num_classes, 32, final_kernel)
    else:
        skips = ("pool4",) if stride == 16 else ("pool4", "pool3")
        n["upscore2" + s] = up = upsample(fused, num_classes, 2)
        for i, pool in enumerate(skips):
            bottom = n[pool]
            if at_once:
                n["scale_" + pool + s] = bottom = L.Scale(
                    bottom, param=[dict(lr_mult=0)],
                    filler=dict(type="constant", value=AT_ONCE_SCALE[pool]))
            n[f"score_{pool}{s}"] = scored = score(bottom, num_classes)
            n[f"score_{pool}{s}c"] = aligned = crop(scored, up)
            n[f"fuse_{pool}{s}"] = fused = L.Eltwise(up, aligned, operation=P.Eltwise.SUM)
            if i + 1 < len(skips):
                n[f"upscore_{pool}{s}"] = up = upsample(fused, num_classes, 2)
        n[f"upscore{stride}{s}"] = up = upsample(fused, num_classes, stride)
    n[score_top] = out = crop(up, data)
    return out


def single_layer_head(n, bottom, data, num_classes: int, factor: int):
    """Score one pooling layer alone and upsample it (the FCN-poolX ablations, Table 3)."""
    n["score_fr"] = scored = score(bottom, num_classes)
    n[f"upscore{factor}"] = up = upsample(scored, num_classes, factor)
    n["score"] = out = crop(up, data)
    return out


def loss(n, score_top, label, *, name: str = "loss", normalize: bool = False):
    """Softmax loss, void label 255 ignored; unnormalised (summed over pixels) for the
    heavy-learning nets, normalised for FCN-AlexNet (the release's settings)."""
    n[name] = L.SoftmaxWithLoss(score_top, label,
                                loss_param=dict(ignore_label=255, normalize=normalize))
    return n[name]
