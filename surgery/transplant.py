"""Moving weights between nets by layer name, reshaping where only the shape differs.

The release's transplant silently cycled values when element counts differed; here that is
an error naming the layer and both shapes, and every call reports what it did: copied,
coerced (same values, new shape: fully connected O×I → convolution O×C×H×W), dropped (not in
the target) and left at init (not in the source).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import caffe
import numpy as np

from core.caffe_files import read_params
from surgery.errors import SurgeryError

# What weights come from: a caffe.Net, a caffemodel path, or {layer: [arrays]}.
Source = Union[caffe.Net, str, Path, Mapping[str, Sequence[np.ndarray]]]


@dataclass
class Report:
    """What a transplant (or a conversion built on one) did, layer by layer."""

    copied: list[str] = field(default_factory=list)        # same shapes
    coerced: list[str] = field(default_factory=list)       # same values, reshaped
    dropped: list[str] = field(default_factory=list)       # in the source only
    left_at_init: list[str] = field(default_factory=list)  # in the target only
    reshapes: dict[str, str] = field(default_factory=dict)  # coerced layer -> "a → b"

    def __str__(self) -> str:
        coerced = [f"{name} {self.reshapes[name]}" if name in self.reshapes else name
                   for name in self.coerced]
        rows = (("copied", self.copied), ("coerced (reshaped)", coerced),
                ("dropped (not in target)", self.dropped),
                ("left at init (not in source)", self.left_at_init))
        return "\n".join(f"{title:29s}{len(names):4d}  {', '.join(names)}".rstrip()
                         for title, names in rows)


def source_params(net: Source) -> Mapping[str, Sequence[np.ndarray]]:
    """Parameters by layer name from a caffe.Net, a caffemodel path (V1 or V2), or a
    mapping already in that form."""
    if isinstance(net, (str, Path)):
        return read_params(net)
    if hasattr(net, "params"):
        return {name: [b.data for b in blobs] for name, blobs in net.params.items()}
    if isinstance(net, Mapping):
        return net
    raise TypeError(f"cannot take weights from a {type(net).__name__}: give a caffe.Net, a "
                    f"caffemodel path or {{layer: [arrays]}}")


def _same_shape(target: tuple[int, ...], source: tuple[int, ...]) -> bool:
    """Equal, or equal but for V1's leading legacy ones ((1, 1, O, I) for an O×I weight)."""
    if target == source:
        return True
    return len(source) == 4 and len(target) < 4 and source == (1,) * (4 - len(target)) + target


def transplant(new_net, net: Source, suffix: str = "", *, verbose: bool = True) -> Report:
    """Copy `net`'s parameters into caffe.Net `new_net` by layer name (`name + suffix` in
    new_net: the late-fusion streams' conv1_1color …).

    Blobs of equal shape are copied; of equal element count, reshaped (fully connected →
    convolution); otherwise SurgeryError naming the layer and both shapes. Source layers the
    target lacks are dropped; target layers the source lacks keep their initialisation.
    Returns the report, and prints it unless verbose=False.
    """
    params = source_params(net)
    report = Report()
    for name, blobs in params.items():
        target = name + suffix
        if target not in new_net.params:
            report.dropped.append(name)
            continue
        new_blobs = new_net.params[target]
        if len(new_blobs) != len(blobs):
            raise SurgeryError(f"layer {target}: the target has {len(new_blobs)} parameter "
                               f"blobs, source layer {name} has {len(blobs)}")
        for i, (dst, src) in enumerate(zip(new_blobs, blobs)):
            if dst.data.size != np.size(src):
                raise SurgeryError(
                    f"layer {target} blob {i}: target shape {dst.data.shape} "
                    f"({dst.data.size} values) cannot take source {name} shape "
                    f"{np.shape(src)} ({np.size(src)} values)")
        reshaped = [i for i, (dst, src) in enumerate(zip(new_blobs, blobs))
                    if not _same_shape(dst.data.shape, np.shape(src))]
        for dst, src in zip(new_blobs, blobs):
            dst.data[...] = np.reshape(src, dst.data.shape)
        if reshaped:
            report.coerced.append(target)
            report.reshapes[target] = ", ".join(
                f"{np.shape(blobs[i])} → {new_blobs[i].data.shape}" for i in reshaped)
        else:
            report.copied.append(target)
    report.left_at_init = [name for name in new_net.params
                           if name not in report.copied and name not in report.coerced]
    if verbose:
        print(report)
    return report


def expand_score(new_net, new_layer: str, net: Source, layer: str) -> None:
    """Carry a k-class score layer into a k'-class one (k ≤ k'): the first k classes are
    the old ones, the rest keep their initialisation (e.g. PASCAL's 21 into a larger set)."""
    old = source_params(net)
    if layer not in old:
        raise SurgeryError(f"expand_score: the source has no layer {layer!r}")
    if new_layer not in new_net.params:
        raise SurgeryError(f"expand_score: the target has no layer {new_layer!r}")
    old_blobs, new_blobs = old[layer], new_net.params[new_layer]
    if len(old_blobs) != len(new_blobs):
        raise SurgeryError(f"expand_score: {layer} has {len(old_blobs)} blobs, {new_layer} "
                           f"{len(new_blobs)}")
    k, k_new = np.shape(old_blobs[0])[0], new_blobs[0].data.shape[0]
    if k > k_new:
        raise SurgeryError(f"expand_score: {layer} scores {k} classes, {new_layer} only "
                           f"{k_new}; it can only grow")
    for src, dst in zip(old_blobs, new_blobs):
        if np.shape(src)[1:] != dst.data.shape[1:]:
            raise SurgeryError(f"expand_score: {layer} blob {np.shape(src)} and {new_layer} "
                               f"blob {dst.data.shape} differ beyond the class axis")
        dst.data[:k] = src


def nonzero_layers(net, layers: Sequence[str]) -> list[str]:
    """Names among `layers` whose parameters are not all zero (new score layers must be:
    the paper zero-initialises them)."""
    return [name for name in layers if name in net.params
            and any(np.any(b.data != 0) for b in net.params[name])]
