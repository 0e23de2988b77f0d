"""Scoring and upsampling heads: FCN-32s/16s/8s, the skip fusions, the loss.

One definition serves every dataset and backbone: a skip connection changes here, once.
Crop offsets are derived from the graph by caffe.coord_map, never typed in.
"""

from __future__ import annotations

from contextlib import contextmanager

from caffe import coord_map
from caffe import layers as L
from caffe import params as P

from core.catalog import VOID
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
             score_top: str = "score", null_background: bool = False):
    """Score `top` and upsample to `data`'s size, fusing pool4 (stride 16) and pool3 (8).

    `suffix` names the layers of one head of a multi-head net (SIFT Flow: _sem, _geo).
    `null_background`: the score layers learn the num_classes − 1 object classes and class
    0 is a constant zero channel joined before the final upsampling (Section 6.1).
    Returns the cropped score top, stored as n[score_top].
    """
    s = suffix
    learned = num_classes - 1 if null_background else num_classes
    n["score_fr" + s] = fused = score(top, learned)
    if stride == 32:
        if null_background:
            fused = with_null_background(n, fused, s)
        n["upscore" + s] = up = upsample(fused, num_classes, 32, final_kernel)
    else:
        skips = ("pool4",) if stride == 16 else ("pool4", "pool3")
        n["upscore2" + s] = up = upsample(fused, learned, 2)
        for i, pool in enumerate(skips):
            bottom = n[pool]
            if at_once:
                n["scale_" + pool + s] = bottom = L.Scale(
                    bottom, param=[dict(lr_mult=0)],
                    filler=dict(type="constant", value=AT_ONCE_SCALE[pool]))
            n[f"score_{pool}{s}"] = scored = score(bottom, learned)
            n[f"score_{pool}{s}c"] = aligned = crop(scored, up)
            n[f"fuse_{pool}{s}"] = fused = L.Eltwise(up, aligned, operation=P.Eltwise.SUM)
            if i + 1 < len(skips):
                n[f"upscore_{pool}{s}"] = up = upsample(fused, learned, 2)
        if null_background:
            fused = with_null_background(n, fused, s)
        n[f"upscore{stride}{s}"] = up = upsample(fused, num_classes, stride)
    n[score_top] = out = crop(up, data)
    return out


def with_null_background(n, class_scores, suffix: str = ""):
    """Section 6.1's null background: a constant zero score for class 0 in front of the
    learned `class_scores`. The zero is a 1×1 convolution with zero weights, no bias and
    lr 0 (named score_* so surgery and the quick-run init leave it at zero); the bilinear
    upsampling after it maps each channel on its own, so class 0 stays exactly 0 and
    argmax picks background wherever every class scores below zero."""
    n["score_null" + suffix] = zero = L.Convolution(
        class_scores, num_output=1, kernel_size=1, bias_term=False,
        param=[dict(lr_mult=0, decay_mult=0)])
    n["score_fr_null" + suffix] = out = L.Concat(zero, class_scores)
    return out


def class_scores(n, score_top, *, name: str = "score_classes"):
    """The learned classes' scores of a null-background net (channels 1…), for its loss;
    the constant background channel goes to a top of its own."""
    n["score_background"], n[name] = L.Slice(score_top, slice_param=dict(axis=1, slice_point=[1]),
                                             ntop=2)
    return n[name]


def single_layer_head(n, bottom, data, num_classes: int, factor: int):
    """Score one pooling layer alone and upsample it (the FCN-poolX ablations, Table 3)."""
    n["score_fr"] = scored = score(bottom, num_classes)
    n[f"upscore{factor}"] = up = upsample(scored, num_classes, factor)
    n["score"] = out = crop(up, data)
    return out


def loss(n, score_top, label, *, name: str = "loss", normalize: bool = False):
    """Softmax loss, void label (VOID) ignored; unnormalised (summed over pixels) for the
    heavy-learning nets, normalised for FCN-AlexNet (the release's settings)."""
    n[name] = L.SoftmaxWithLoss(score_top, label,
                                loss_param=dict(ignore_label=VOID, normalize=normalize))
    return n[name]


def one_hot(n, label, classes: int, first: int = 0, *, name: str = "target"):
    """One-hot targets of `label` for classes first..classes−1, void (VOID) in every channel
    (layers/loss_layers.py: Caffe has no layer for it)."""
    n[name] = L.Python(label, module="loss_layers", layer="OneHotLayer",
                       param_str=repr({"classes": classes, "first": first}))
    return n[name]


def sigmoid_loss(n, score_top, target, *, name: str = "loss", normalize: bool = False):
    """Caffe's sigmoid cross-entropy: each class scored on its own, void targets (VOID)
    ignored element by element; unnormalised (divided by the batch size, 1) like the
    softmax loss of the heavy nets."""
    n[name] = L.SigmoidCrossEntropyLoss(score_top, target,
                                        loss_param=dict(ignore_label=VOID, normalize=normalize))
    return n[name]


def sampled_label(n, label, p: float, seed: int, cell: int = 32, *, name: str = "label_kept"):
    """Section 4.4's loss sampling: `label` with each cell×cell block (one final-layer cell
    of FCN-32s) turned void with probability 1 − p, drawn per forward from `seed`."""
    n[name] = L.Python(label, module="loss_layers", layer="LossSamplingLayer",
                       param_str=repr({"p": p, "cell": cell, "seed": seed}))
    return n[name]


def weighted_loss(n, score_top, label, weights_file: str, *, name: str = "loss"):
    """Class-balanced softmax loss: Caffe's InfogainLoss (softmax inside) with a diagonal H
    of per-class weights read from `weights_file` (a BlobProto); void ignored, summed over
    pixels (normalization NONE) like the unnormalised softmax loss it replaces."""
    n[name] = L.InfogainLoss(score_top, label, infogain_loss_param=dict(source=weights_file),
                             loss_param=dict(ignore_label=VOID, normalization=P.Loss.NONE))
    return n[name]
