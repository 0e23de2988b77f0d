"""Facts read off a net's graph: receptive field, output stride, parameter count.

Table 1 of the paper compares its backbones by these numbers; the tests recompute them
from the generated prototxt rather than trusting a typed-in constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from caffe.proto import caffe_pb2

from core.geometry import parameter_counts, window, window_step

SPATIAL = {"Convolution", "Pooling"}


@dataclass(frozen=True)
class Geometry:
    receptive_field: int   # pixels of input seen by one output cell
    stride: int            # input pixels between neighbouring output cells


def geometry(net: caffe_pb2.NetParameter, top: str) -> Geometry:
    """Receptive field and stride of blob `top`, taking the largest field over branches
    (GoogLeNet's inception modules concatenate branches of different fields)."""
    known: dict[str, Geometry] = {}
    for layer in net.layer:
        inputs = [known[b] for b in layer.bottom if b in known]
        if not layer.bottom:
            for t in layer.top:
                known[t] = Geometry(1, 1)
            continue
        if not inputs:
            continue
        rf = max(g.receptive_field for g in inputs)
        jump = max(g.stride for g in inputs)
        if layer.type in SPATIAL:  # along the height: the nets here are square
            jump, lo, hi = window_step(layer.type, window(layer), 0, jump, 0, rf - 1)
            rf = hi - lo + 1
        elif layer.type in ("Deconvolution", "Crop", "SoftmaxWithLoss"):
            continue  # upsampling and alignment are not part of the classifier's field
        for t in layer.top:
            known[t] = Geometry(rf, jump)
    if top not in known:
        raise KeyError(f"blob {top!r} is not reached from the net's inputs")
    return known[top]


def learned_parameter_count(net: caffe_pb2.NetParameter) -> int:
    """Parameters of a deploy net that learn, i.e. all but the fixed bilinear upsampling
    (Deconvolution layers), counted off the prototxt by core.geometry."""
    deconvolutions = {layer.name for layer in net.layer if layer.type == "Deconvolution"}
    return sum(count for name, count in parameter_counts(net).items()
               if name not in deconvolutions)


def conv_depth(net: caffe_pb2.NetParameter, top: str) -> int:
    """Convolutions on the longest path from the input to blob `top`: Table 1's "conv.
    layers" (AlexNet 8, VGG16 16, GoogLeNet 22 when `top` is the class scoring layer)."""
    depth: dict[str, int] = {}
    for layer in net.layer:
        below = max((depth.get(b, 0) for b in layer.bottom), default=0)
        for t in layer.top:
            depth[t] = below + (layer.type == "Convolution")
    if top not in depth:
        raise KeyError(f"blob {top!r} is not in the net")
    return depth[top]
