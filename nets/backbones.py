"""The classifier bodies FCN adapts, each written once: VGG16, CaffeNet (AlexNet), GoogLeNet.

Each function adds its layers to a NetSpec under the release's names and returns the top
the score layer reads. Classifier layers are already convolutional (fc6 as a 7×7 or 6×6
convolution, fc7 1×1, Section 3.1) and conv1 is padded by 100 so any input size leaves a
non-empty fc6 map (Section 4.1). `width` scales every channel count for quick CPU runs:
same topology, fewer channels; 1.0 is the paper's net.
"""

from __future__ import annotations

from caffe import layers as L
from caffe import params as P

# weights learn at the base rate with decay, biases at twice the rate without (the release's)
LEARNED = (dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0))
FROZEN = (dict(lr_mult=0, decay_mult=0), dict(lr_mult=0, decay_mult=0))

VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def channels(n: int, width: float) -> int:
    """A layer's channel count under the width multiplier (at least one channel)."""
    return max(1, int(round(n * width)))


def conv_relu(bottom, nout: int, ks: int = 3, stride: int = 1, pad: int = 1,
              group: int | None = None, param=LEARNED):
    """Convolution followed by an in-place ReLU; returns (conv, relu)."""
    extra = {} if group is None else {"group": group}
    if param:
        extra["param"] = [dict(p) for p in param]
    conv = L.Convolution(bottom, kernel_size=ks, stride=stride, num_output=nout, pad=pad,
                         **extra)
    return conv, L.ReLU(conv, in_place=True)


def max_pool(bottom, ks: int = 2, stride: int = 2):
    return L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=ks, stride=stride)


def vgg16(n, bottom, *, width: float = 1.0, suffix: str = "", dropout: bool = True,
          first_conv: str = "conv1_1", fixed: bool = False, until: str | None = None):
    """VGG16 conv1_1 … fc7 (Simonyan & Zisserman's configuration D) as an FCN body.

    `suffix` names a second stream (late fusion: conv1_1hha …); `first_conv` renames
    conv1_1 when its input differs from RGB (early fusion: conv1_1_bgrd); `fixed` freezes
    every layer (FCN-32s-fixed, Table 3); `until` ('pool3'…'pool5') truncates the body
    there (the FCN-poolX ablations, Table 3).
    """
    param = FROZEN if fixed else LEARNED
    top = bottom
    for stage, (nout, depth) in enumerate(VGG16_STAGES, start=1):
        for i in range(1, depth + 1):
            name = first_conv if (stage, i) == (1, 1) else f"conv{stage}_{i}"
            conv, relu = conv_relu(top, channels(nout, width), pad=100 if (stage, i) == (1, 1)
                                   else 1, param=param)
            n[name + suffix], n[f"relu{stage}_{i}{suffix}"] = conv, relu
            top = relu
        n[f"pool{stage}{suffix}"] = top = max_pool(top)
        if until == f"pool{stage}":
            return top
    for layer, ks in (("6", 7), ("7", 1)):
        n[f"fc{layer}{suffix}"], n[f"relu{layer}{suffix}"] = conv_relu(
            top, channels(4096, width), ks=ks, pad=0, param=param)
        top = n[f"relu{layer}{suffix}"]
        if dropout:
            n[f"drop{layer}{suffix}"] = top = L.Dropout(top, dropout_ratio=0.5, in_place=True)
    return top


# CaffeNet's convolutions: name, channels, kernel, stride, pad (conv1: FCN's 100), group;
# pool after conv1, conv2, conv5, LRN after pool1 and pool2 (nets.classifiers reads them too)
ALEXNET_CONVS = (
    ("conv1", 96, 11, 4, 100, 1), ("conv2", 256, 5, 1, 2, 2), ("conv3", 384, 3, 1, 1, 1),
    ("conv4", 384, 3, 1, 1, 2), ("conv5", 256, 3, 1, 1, 2))


def alexnet(n, bottom, *, width: float = 1.0, dropout: bool = True):
    """CaffeNet (the model zoo's AlexNet variant: pool before LRN), grouped convolutions.

    The release declares no `param` blocks here and spells out group: 1.
    """
    top = bottom
    for name, nout, ks, stride, pad, group in ALEXNET_CONVS:
        index = name[-1]
        n[name], n[f"relu{index}"] = conv_relu(top, channels(nout, width), ks=ks, stride=stride,
                                               pad=pad, group=group, param=None)
        top = n[f"relu{index}"]
        if index in "125":
            n[f"pool{index}"] = top = max_pool(top, ks=3, stride=2)
        if index in "12":
            n[f"norm{index}"] = top = L.LRN(top, local_size=5, alpha=1e-4, beta=0.75)
    for layer, ks in (("6", 6), ("7", 1)):
        n[f"fc{layer}"], n[f"relu{layer}"] = conv_relu(top, channels(4096, width), ks=ks, pad=0,
                                                       group=1, param=None)
        top = n[f"relu{layer}"]
        if dropout:
            n[f"drop{layer}"] = top = L.Dropout(top, dropout_ratio=0.5, in_place=True)
    return top


# BVLC GoogLeNet inception modules: name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTIONS = (
    ("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), None,
    ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64), ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128), None,
    ("5a", 256, 160, 320, 32, 128, 128), ("5b", 384, 192, 384, 48, 128, 128),
)


def _inception(n, bottom, name: str, widths: tuple[int, ...], width: float):
    c1, c3r, c3, c5r, c5, cp = (channels(c, width) for c in widths)
    prefix = f"inception_{name}"
    branches = []
    n[f"{prefix}/1x1"], n[f"{prefix}/relu_1x1"] = conv_relu(bottom, c1, ks=1, pad=0)
    branches.append(n[f"{prefix}/relu_1x1"])
    for kind, reduce, out, ks in (("3x3", c3r, c3, 3), ("5x5", c5r, c5, 5)):
        n[f"{prefix}/{kind}_reduce"], n[f"{prefix}/relu_{kind}_reduce"] = conv_relu(
            bottom, reduce, ks=1, pad=0)
        n[f"{prefix}/{kind}"], n[f"{prefix}/relu_{kind}"] = conv_relu(
            n[f"{prefix}/relu_{kind}_reduce"], out, ks=ks, pad=ks // 2)
        branches.append(n[f"{prefix}/relu_{kind}"])
    n[f"{prefix}/pool"] = L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=3, stride=1, pad=1)
    n[f"{prefix}/pool_proj"], n[f"{prefix}/relu_pool_proj"] = conv_relu(
        n[f"{prefix}/pool"], cp, ks=1, pad=0)
    branches.append(n[f"{prefix}/relu_pool_proj"])
    n[f"{prefix}/output"] = L.Concat(*branches)
    return n[f"{prefix}/output"]


def googlenet(n, bottom, *, width: float = 1.0):
    """BVLC GoogLeNet up to inception_5b; the auxiliary classifiers and the final average
    pooling are dropped (Table 1: only the final loss, average pooling discarded)."""
    n["conv1/7x7_s2"], n["conv1/relu_7x7"] = conv_relu(bottom, channels(64, width), ks=7,
                                                       stride=2, pad=100)
    n["pool1/3x3_s2"] = max_pool(n["conv1/relu_7x7"], ks=3, stride=2)
    n["pool1/norm1"] = L.LRN(n["pool1/3x3_s2"], local_size=5, alpha=1e-4, beta=0.75)
    n["conv2/3x3_reduce"], n["conv2/relu_3x3_reduce"] = conv_relu(
        n["pool1/norm1"], channels(64, width), ks=1, pad=0)
    n["conv2/3x3"], n["conv2/relu_3x3"] = conv_relu(n["conv2/relu_3x3_reduce"],
                                                    channels(192, width), ks=3, pad=1)
    n["conv2/norm2"] = L.LRN(n["conv2/relu_3x3"], local_size=5, alpha=1e-4, beta=0.75)
    n["pool2/3x3_s2"] = top = max_pool(n["conv2/norm2"], ks=3, stride=2)
    pools = iter(("pool3/3x3_s2", "pool4/3x3_s2"))
    for module in INCEPTIONS:
        if module is None:
            n[next(pools)] = top = max_pool(top, ks=3, stride=2)
        else:
            top = _inception(n, top, module[0], module[1:], width)
    return top
