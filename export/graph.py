"""A Caffe deploy net as a plain list of operations, the one input both exporters read.

Caffe's semantics are decided here, once: in-place layers (a ReLU that overwrites its
bottom gives a new value, the blob name stays), Eltwise coefficients, which pooling windows
Caffe's ceil mode keeps, and the layers that do nothing at test time (Dropout, Split);
windows, crop offsets and pooled sizes are core.geometry's. The ONNX and PyTorch writers then
only spell each operation in their own terms. Nothing here imports Caffe: the parameters
come in as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import InputError
from core.geometry import ceil_mode, conv_window, crop_offsets, pool_window


class ExportError(InputError):
    """Input that cannot be exported or verified; the message names the cause and the fix."""


@dataclass
class Op:
    kind: str                       # conv deconv relu pool lrn crop eltwise scale concat
                                    # softmax dense; in the train phase dropout softmax_loss
    layer: str                      # the Caffe layer's name
    inputs: tuple[str, ...]         # value names
    outputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)   # 'weight', 'bias'


@dataclass
class Graph:
    """Values are named after their blob; a blob rewritten in place gets '<blob>:<layer>'."""
    inputs: dict[str, int]          # input value -> channels
    ops: list[Op]
    outputs: dict[str, str]         # output blob -> the value holding it at the end
    blob_of: dict[str, str]         # value -> the Caffe blob it is a version of


def _conv_attrs(p, layer: str) -> dict:
    try:
        w = conv_window(p)   # more than two kernel, stride, pad values: not 2-D
    except ValueError:
        w = None
    if p.axis != 1 or w is None:
        raise ExportError(f"layer {layer!r}: only 2-D convolutions over axis 1 are exported")
    return dict(kernel=w.kernel, stride=w.stride, pad=w.pad, dilation=w.dilation,
                group=p.group, bias=p.bias_term)


def _pool_attrs(p, layer: str) -> dict:
    from caffe.proto import caffe_pb2  # only the enum values; the message is already parsed
    Pool = caffe_pb2.PoolingParameter
    if p.pool == Pool.STOCHASTIC:
        raise ExportError(f"layer {layer!r}: stochastic pooling has no exported equivalent")
    method = "max" if p.pool == Pool.MAX else "ave"
    ceil = ceil_mode(p)
    if p.global_pooling:
        return dict(method=method, glob=True)
    w = pool_window(p)
    kernel, stride, pad = w.kernel, w.stride, w.pad
    if stride == (1, 1):
        ceil = False  # every span divides by 1: ceil and floor agree
    if ceil and any(k < s for k, s in zip(kernel, stride)):
        raise ExportError(f"layer {layer!r}: a pooling kernel {kernel} smaller than its stride "
                          f"{stride} makes Caffe's ceil mode pool empty windows; not exported")
    return dict(method=method, glob=False, kernel=kernel, stride=stride, pad=pad, ceil=ceil)


def _eltwise_attrs(p, layer: str, n_inputs: int) -> dict:
    from caffe.proto import caffe_pb2
    E = caffe_pb2.EltwiseParameter
    op = {E.SUM: "sum", E.PROD: "prod", E.MAX: "max"}[p.operation]
    coeffs = tuple(p.coeff) or (1.0,) * n_inputs
    if op != "sum" and p.coeff:
        raise ExportError(f"layer {layer!r}: Eltwise coefficients apply to SUM only")
    if len(coeffs) != n_inputs:
        raise ExportError(f"layer {layer!r}: {len(coeffs)} coefficients for {n_inputs} bottoms")
    return dict(op=op, coeffs=coeffs)


def _crop_attrs(p, layer: str, rank: int = 4) -> dict:
    try:
        axis, offsets = crop_offsets(p, rank)
    except ValueError as e:
        raise ExportError(f"layer {layer!r}: {e}") from None
    return dict(axis=axis, offsets=offsets)


def _lrn_attrs(p, layer: str) -> dict:
    from caffe.proto import caffe_pb2
    if p.norm_region != caffe_pb2.LRNParameter.ACROSS_CHANNELS:
        raise ExportError(f"layer {layer!r}: only LRN across channels is exported")
    return dict(size=p.local_size, alpha=p.alpha, beta=p.beta, k=p.k)


PHASES = {"train": 0, "test": 1}   # caffe_pb2.TRAIN, caffe_pb2.TEST


def _phase_included(layer, phase: str = "test") -> bool:
    """Whether a layer is part of the net in `phase` (deploy nets rarely say)."""
    number = PHASES[phase]
    if layer.include:
        return any(not rule.HasField("phase") or rule.phase == number
                   for rule in layer.include)
    return not any(rule.HasField("phase") and rule.phase == number for rule in layer.exclude)


def _softmax_loss_attrs(layer) -> dict:
    """SoftmaxWithLoss's ignored label and divisor, as Caffe reads them: the legacy
    `normalize: false` means BATCH_SIZE, `normalize: true` VALID (the default)."""
    p = layer.loss_param
    mode = p.normalization
    if not p.HasField("normalization") and p.HasField("normalize"):
        mode = p.VALID if p.normalize else p.BATCH_SIZE
    names = {p.FULL: "full", p.VALID: "valid", p.BATCH_SIZE: "batch_size", p.NONE: "none"}
    return dict(ignore=p.ignore_label if p.HasField("ignore_label") else None,
                normalization=names[mode], axis=layer.softmax_param.axis)


def _input_channels(net_param) -> dict[str, int]:
    channels: dict[str, int] = {}
    shapes = list(net_param.input_shape)
    for i, name in enumerate(net_param.input):   # legacy `input:` fields
        if shapes:
            dims = list(shapes[min(i, len(shapes) - 1)].dim)
        else:
            dims = list(net_param.input_dim[4 * i:4 * i + 4])
        channels[name] = int(dims[1]) if len(dims) > 1 else 1
    return channels


IDENTITY_TYPES = ("Dropout", "Split")
IGNORED_TYPES = ("Silence",)
TRAINING_KINDS = ("dropout", "softmax_loss")   # ops of a graph read in the train phase


def read_graph(net_param, params: dict[str, list[np.ndarray]], outputs: list[str] | None,
               *, phase: str = "test") -> Graph:
    """Translate a deploy NetParameter with its parameters (by layer name, as
    caffe.Net.params holds them) into a Graph whose outputs are the blobs `outputs` (None:
    Caffe's outputs, the blobs no layer reads after they are written). In the "train" phase
    Dropout is an op and SoftmaxWithLoss is translated (the PyTorch peer trains with them)."""
    kinds = {**_KIND, **(_TRAIN_KIND if phase == "train" else {})}
    inputs = _input_channels(net_param)
    current = {name: name for name in inputs}     # blob -> latest value
    blob_of = {name: name for name in inputs}
    unread = dict.fromkeys(inputs)                # Caffe's outputs so far, in order
    ops: list[Op] = []
    for layer in net_param.layer:
        if not _phase_included(layer, phase) or layer.type in IGNORED_TYPES:
            continue
        name, kind = layer.name, layer.type
        if kind == "Input":
            for top, shape in zip(layer.top, _repeat(layer.input_param.shape, len(layer.top))):
                dims = list(shape.dim)
                inputs[top] = int(dims[1]) if len(dims) > 1 else 1
                current[top] = blob_of[top] = top
                unread[top] = None
            continue
        missing = [b for b in layer.bottom if b not in current]
        if missing:
            raise ExportError(f"layer {name!r} reads {missing[0]!r}, which nothing before it "
                              "produces")
        bottoms = tuple(current[b] for b in layer.bottom)
        for b in layer.bottom:
            unread.pop(b, None)
        unread.update(dict.fromkeys(layer.top))
        if kind in IDENTITY_TYPES and kind not in kinds:
            for top in layer.top:
                current[top] = bottoms[0]
            continue
        tops = []
        for top in layer.top:
            value = top if top not in current and top not in blob_of else f"{top}:{name}"
            current[top], blob_of[value] = value, top
            tops.append(value)
        op = Op(kinds.get(kind, ""), name, bottoms, tuple(tops))
        if not op.kind:
            raise ExportError(f"layer {name!r} is a {kind} layer, which the exporters do not "
                              f"translate (they know {', '.join(sorted(kinds))}, plus "
                              f"{', '.join(IDENTITY_TYPES + IGNORED_TYPES)} and Input)")
        blobs = params.get(name, [])
        if kind == "Convolution" or kind == "Deconvolution":
            op.attrs = _conv_attrs(layer.convolution_param, name)
            op.params = _named(blobs, name, ("weight", "bias") if op.attrs["bias"] else
                               ("weight",))
        elif kind == "Dropout":
            op.attrs = dict(ratio=layer.dropout_param.dropout_ratio)
        elif kind == "SoftmaxWithLoss":
            op.attrs = _softmax_loss_attrs(layer)
        elif kind == "ReLU":
            op.attrs = dict(slope=layer.relu_param.negative_slope)
        elif kind == "Pooling":
            op.attrs = _pool_attrs(layer.pooling_param, name)
        elif kind == "LRN":
            op.attrs = _lrn_attrs(layer.lrn_param, name)
        elif kind == "Crop":
            op.attrs = _crop_attrs(layer.crop_param, name)
        elif kind == "Eltwise":
            op.attrs = _eltwise_attrs(layer.eltwise_param, name, len(bottoms))
        elif kind == "Scale":
            p = layer.scale_param
            if len(bottoms) != 1:
                raise ExportError(f"layer {name!r}: Scale by a second bottom is not exported")
            op.attrs = dict(axis=p.axis, bias=p.bias_term)
            op.params = _named(blobs, name, ("weight", "bias") if p.bias_term else ("weight",))
        elif kind == "Concat":
            p = layer.concat_param
            op.attrs = dict(axis=p.axis if p.HasField("axis") or not p.HasField("concat_dim")
                            else p.concat_dim)
        elif kind == "Softmax":
            op.attrs = dict(axis=layer.softmax_param.axis)
        elif kind == "InnerProduct":
            p = layer.inner_product_param
            if p.axis != 1:
                raise ExportError(f"layer {name!r}: InnerProduct over axis {p.axis} is not "
                                  "exported (axis 1 only)")
            op.attrs = dict(bias=p.bias_term)
            op.params = _named(blobs, name, ("weight", "bias") if p.bias_term else ("weight",))
            if p.transpose:
                op.params["weight"] = np.ascontiguousarray(op.params["weight"].T)
        ops.append(op)
    if outputs is None:
        outputs = list(unread)
    unknown = [o for o in outputs if o not in current]
    if unknown:
        raise ExportError(f"output {unknown[0]!r} is not a blob of the net")
    # in the order the net computes them (Caffe lists its outputs alphabetically)
    made_at = {v: i for i, op in enumerate(ops) for v in op.outputs}
    ordered = sorted(outputs, key=lambda o: made_at.get(current[o], -1))
    return Graph(inputs, ops, {o: current[o] for o in ordered}, blob_of)


_KIND = {"Convolution": "conv", "Deconvolution": "deconv", "ReLU": "relu", "Pooling": "pool",
         "LRN": "lrn", "Crop": "crop", "Eltwise": "eltwise", "Scale": "scale",
         "Concat": "concat", "Softmax": "softmax", "InnerProduct": "dense"}
_TRAIN_KIND = {"Dropout": "dropout", "SoftmaxWithLoss": "softmax_loss"}


def _repeat(items, n: int) -> list:
    items = list(items)
    return items if len(items) == n else [items[0]] * n


def _named(blobs: list[np.ndarray], layer: str, names: tuple[str, ...]) -> dict:
    if len(blobs) != len(names):
        raise ExportError(f"layer {layer!r} holds {len(blobs)} parameter blobs, "
                          f"expected {len(names)} ({', '.join(names)})")
    return {n: np.asarray(b, dtype=np.float32) for n, b in zip(names, blobs)}

