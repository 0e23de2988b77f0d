"""Moving weights between nets: by layer name, reshaping where only the shape differs.

The release's transplant silently cycled values when element counts differed; here that
is an error naming the layer and both shapes, and every call reports what it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class SurgeryError(ValueError):
    """Weights that do not fit the net they are meant for."""


@dataclass
class Report:
    copied: list[str] = field(default_factory=list)    # same shapes
    coerced: list[str] = field(default_factory=list)   # same element count, reshaped
    dropped: list[str] = field(default_factory=list)   # in the source only
    left_at_init: list[str] = field(default_factory=list)  # in the target only

    def __str__(self) -> str:
        rows = [("copied", self.copied), ("coerced (reshaped)", self.coerced),
                ("dropped (not in target)", self.dropped),
                ("left at init (not in source)", self.left_at_init)]
        return "\n".join(f"{title:30s} {len(names):3d}  {' '.join(names)}"
                         for title, names in rows)


def source_params(net) -> dict[str, list[np.ndarray]]:
    """Parameters by layer name from a caffe.Net, or a mapping already in that form."""
    if hasattr(net, "params"):
        return {name: [b.data for b in blobs] for name, blobs in net.params.items()}
    return net


def transplant(new_net, net, suffix: str = "", verbose: bool = True) -> Report:
    """Copy `net`'s parameters (a caffe.Net, or {layer: [arrays]} as read from a
    caffemodel) into `new_net` by layer name (`name + suffix` in new_net, for the
    late-fusion streams). Fully connected O×I weights become convolution O×I×H×W ones when
    the element counts agree; otherwise SurgeryError."""
    report = Report()
    targets = set(new_net.params)
    for name, blobs in source_params(net).items():
        target = name + suffix
        if target not in new_net.params:
            report.dropped.append(name)
            continue
        targets.discard(target)
        new_blobs = new_net.params[target]
        if len(new_blobs) != len(blobs):
            raise SurgeryError(f"layer {target}: target has {len(new_blobs)} parameter blobs, "
                               f"source {name} has {len(blobs)}")
        reshaped = False
        for i, (dst, src) in enumerate(zip(new_blobs, blobs)):
            if dst.data.shape == src.shape:
                dst.data[...] = src
            elif dst.data.size == src.size:
                dst.data[...] = src.reshape(dst.data.shape)
                reshaped = True
            else:
                raise SurgeryError(
                    f"layer {target} blob {i}: target shape {dst.data.shape} "
                    f"({dst.data.size} values) cannot take source {name} shape "
                    f"{src.shape} ({src.size} values)")
        (report.coerced if reshaped else report.copied).append(target)
    report.left_at_init = sorted(targets, key=list(new_net.params).index)
    if verbose:
        print(report)
    return report


def expand_score(new_net, new_layer: str, net, layer: str) -> None:
    """Carry a k-class score layer into a k'-class one (k ≤ k'): the first k classes are
    the old ones, the rest keep their initialisation."""
    old, new = source_params(net)[layer], new_net.params[new_layer]
    k, k_new = old[0].shape[0], new[0].data.shape[0]
    if k > k_new:
        raise SurgeryError(f"{layer} scores {k} classes; {new_layer} only {k_new}")
    if old[0].shape[1:] != new[0].data.shape[1:]:
        raise SurgeryError(f"{layer} weights {old[0].shape} and {new_layer} "
                           f"{new[0].data.shape} differ beyond the class axis")
    for src, dst in zip(old, new):
        dst.data[:k] = src


def zero_check(net, layers) -> list[str]:
    """Names among `layers` whose weights are not all zero (score layers start at zero)."""
    return [name for name in layers if name in net.params
            and any(np.any(b.data != 0) for b in net.params[name])]
