"""Every Crop offset of every generated net, against coord_map's algebra worked out by hand.

The release's train/val nets are checked byte for byte elsewhere; the nets outside it
(GoogLeNet, the pool3/4/5 heads, 32s-fixed, every deploy net but voc-fcn8s's) had only
files the generator itself wrote. Here each offset is derived from the architecture as the
paper and the classifiers define it (kernel, stride, pad of each layer), not from the
generated prototxt.

The algebra (Caffe's coord_map): a position x in a blob sits at `a * x + b` in the input
image. A convolution or pooling with kernel k, stride s, pad p turns the (a, b) of its
bottom into (a * s, b + a * ((k - 1) / 2 - p)); a deconvolution undoes one, (a / s,
b - a / s * ((k - 1) / 2 - p)); ReLU, LRN, dropout, Scale, Eltwise and Concat (inception
branches all keep the grid) keep it. Cropping blob X to reference R needs equal a and
takes offset (b_R - b_X) / a, an integer.

Mutant this kills: any shift of a crop offset in nets/heads.py (e.g. offset + 1 in
single_layer_head, which `make nets` and the release comparison both let through).
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from nets.experiments import EXPERIMENTS, build

DATA = (Fraction(1), Fraction(0))


def conv(k: int, s: int = 1, p: int = 0):
    """Convolution or pooling: kernel k, stride s, pad p."""
    def step(ab):
        a, b = ab
        return a * s, b + a * (Fraction(k - 1, 2) - p)
    return step


def deconv(k: int, s: int):
    """Deconvolution (no pad), the upsampling of every FCN head."""
    def step(ab):
        a, b = ab
        return a / s, b - a / s * Fraction(k - 1, 2)
    return step


def walk(ab, *steps):
    for step in steps:
        ab = step(ab)
    return ab


def offset(blob, reference) -> int:
    (a, b), (a_ref, b_ref) = blob, reference
    assert a == a_ref, "a crop needs both blobs on the same grid"
    o = (b_ref - b) / a
    assert o.denominator == 1 and o >= 0
    return int(o)


# VGG16: conv1_1 pads 100 (Section 4.1), every other 3×3 pads 1, pools are 2×2 stride 2.
C3 = conv(3, 1, 1)
VGG = {}
VGG["pool1"] = walk(DATA, conv(3, 1, 100), C3, conv(2, 2))
VGG["pool2"] = walk(VGG["pool1"], C3, C3, conv(2, 2))
VGG["pool3"] = walk(VGG["pool2"], C3, C3, C3, conv(2, 2))
VGG["pool4"] = walk(VGG["pool3"], C3, C3, C3, conv(2, 2))
VGG["pool5"] = walk(VGG["pool4"], C3, C3, C3, conv(2, 2))
VGG["fc7"] = walk(VGG["pool5"], conv(7), conv(1))          # fc6 7×7, fc7 1×1, no pad

# CaffeNet: conv1 11×11 stride 4 pad 100, pools 3×3 stride 2, conv2 5×5 pad 2,
# conv3-5 3×3 pad 1, fc6 6×6.
ALEXNET_FC7 = walk(DATA, conv(11, 4, 100), conv(3, 2), conv(5, 1, 2), conv(3, 2), C3, C3, C3,
                   conv(3, 2), conv(6), conv(1))
# GoogLeNet: conv1 7×7 stride 2 pad 100, pools 3×3 stride 2, conv2 1×1 then 3×3 pad 1;
# inception modules keep the grid (1×1; 3×3 pad 1; 5×5 pad 2; 3×3 stride-1 pool pad 1).
GOOGLENET_5B = walk(DATA, conv(7, 2, 100), conv(3, 2), conv(1), C3, conv(3, 2), conv(3, 2),
                    conv(3, 2))


def test_the_closed_forms():
    """The derivation in closed form (x_data = a x + b), and the release's known offsets."""
    assert VGG["pool3"] == (8, Fraction(-191, 2))
    assert VGG["pool4"] == (16, Fraction(-183, 2))
    assert VGG["pool5"] == (32, Fraction(-167, 2))
    assert VGG["fc7"] == (32, Fraction(25, 2))
    assert ALEXNET_FC7 == (32, 13) and GOOGLENET_5B == (32, -67)
    assert fcn_offsets(VGG["fc7"], 32) == {"score": 19}                          # voc-fcn32s
    assert fcn_offsets(VGG["fc7"], 16) == {"score_pool4c": 5, "score": 27}      # voc-fcn16s
    assert fcn_offsets(VGG["fc7"], 8) == {"score_pool4c": 5, "score_pool3c": 9,  # voc-fcn8s
                                          "score": 31}
    assert fcn_offsets(ALEXNET_FC7, 32, kernel=63) == {"score": 18}      # voc-fcn-alexnet
    assert fcn_offsets(GOOGLENET_5B, 32, kernel=63) == {"score": 98}
    assert {pool: single_layer_offset(pool) for pool in ("pool5", "pool4", "pool3")} == \
        {"pool5": 115, "pool4": 107, "pool3": 103}


def fcn_offsets(top, stride: int, kernel: int | None = None, suffix: str = "") -> dict:
    """FCN-32s/16s/8s heads on `top` (stride 32): upsample ×2 and fuse pool4 (then pool3),
    upsample the rest of the way, crop to the image."""
    if stride == 32:
        return {"score" + suffix: offset(walk(top, deconv(kernel or 64, 32)), DATA)}
    found = {}
    up = walk(top, deconv(4, 2))
    skips = ("pool4",) if stride == 16 else ("pool4", "pool3")
    for i, pool in enumerate(skips):
        found[f"score_{pool}{suffix}c"] = offset(VGG[pool], up)   # crop score_pool to up
        if i + 1 < len(skips):
            up = walk(up, deconv(4, 2))
    found["score" + suffix] = offset(walk(up, deconv(2 * stride, stride)), DATA)
    return found


def single_layer_offset(pool: str) -> int:
    """FCN-poolX (Table 3): score the pool alone, upsample by its stride (kernel 2×)."""
    stride = VGG[pool][0]
    return offset(walk(VGG[pool], deconv(2 * stride, stride)), DATA)


def expected(exp) -> dict:
    if exp.truncate:
        return {"score": single_layer_offset(exp.truncate)}
    if exp.backbone == "alexnet":
        return fcn_offsets(ALEXNET_FC7, exp.stride, kernel=63)
    if exp.backbone == "googlenet":
        return fcn_offsets(GOOGLENET_5B, exp.stride, kernel=63)
    assert exp.backbone == "vgg16", f"{exp.name}: derive the offsets of its backbone here"
    found = {}
    for suffix, _ in exp.heads:
        found.update(fcn_offsets(VGG["fc7"], exp.stride, suffix=suffix))
    return found


def crops(net) -> dict:
    found = {}
    for layer in net.layer:
        if layer.type == "Crop":
            assert layer.crop_param.axis == 2 and len(layer.crop_param.offset) == 1
            found[layer.name] = layer.crop_param.offset[0]
    return found


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_crop_offsets_follow_the_derivation(name):
    exp = EXPERIMENTS[name]
    want = expected(exp)
    for phase in (*exp.phases, "deploy"):
        assert crops(build(exp, phase, width=0.0625)) == want, (name, phase)


def test_concat_passes_through_only_while_googlenet_is_cropped():
    """coord_map's list of pass-through layers is pycaffe's global: heads.crop adds Concat
    for GoogLeNet's inception outputs and must take it out again (mutant: `if not added`)."""
    from caffe import coord_map

    before = list(coord_map.PASS_THROUGH_LAYERS)
    build(EXPERIMENTS["voc-fcn-googlenet"], "deploy", width=0.0625)
    assert coord_map.PASS_THROUGH_LAYERS == before and "Concat" not in before
