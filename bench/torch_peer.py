"""The peer: the same net in PyTorch (CPU), built from a Caffe NetParameter and its weights.

The module walks the prototxt's layers in order and applies the matching torch op to
named blobs, so FCN-8s, FCN-32s and FCN-AlexNet all come from their own prototxt, with
Caffe's conventions kept: ceil-mode pooling, Crop offsets from crop_param, transposed
convolution weights in Caffe's (in, out/group, kh, kw) layout (also torch's), LRN across
channels with alpha/n, and SoftmaxWithLoss's ignore_label and normalization.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from caffe.proto import caffe_pb2

INPUT_LAYERS = {"Input", "Python", "Data", "ImageData"}


class UnsupportedLayer(NotImplementedError):
    """The prototxt uses a layer type the peer does not translate."""


def _pair(repeated, single, default):
    """Caffe's kernel/stride/pad: a repeated field (one or two values) or h/w fields."""
    if single is not None and single[0]:
        return single
    values = list(repeated) or [default]
    return (values[0], values[-1])


def _conv_geometry(p) -> dict:
    kernel = _pair(p.kernel_size, (p.kernel_h, p.kernel_w) if p.kernel_h else None, 1)
    stride = _pair(p.stride, (p.stride_h, p.stride_w) if p.stride_h else None, 1)
    pad = _pair(p.pad, (p.pad_h, p.pad_w) if p.pad_h else None, 0)
    dilation = _pair(p.dilation, None, 1)
    return dict(kernel=kernel, stride=stride, padding=pad, dilation=dilation, groups=p.group)


def _loss_normalizer(p: caffe_pb2.LossParameter, label: torch.Tensor, ignore: int | None):
    """Caffe's SoftmaxWithLoss divisor: `normalize: false` means BATCH_SIZE."""
    mode = p.normalization
    if not p.HasField("normalization") and p.HasField("normalize"):
        mode = p.VALID if p.normalize else p.BATCH_SIZE
    if mode == p.VALID:
        valid = label.numel() if ignore is None else int((label != ignore).sum())
        return max(valid, 1)
    if mode == p.BATCH_SIZE:
        return label.shape[0]
    if mode == p.FULL:
        return label.numel()
    return 1


class CaffeGraph(torch.nn.Module):
    """A Caffe net as a torch module: forward(**inputs) returns every blob by name."""

    def __init__(self, net_param: caffe_pb2.NetParameter, params: dict[str, list]):
        super().__init__()
        self.layers = [layer for layer in net_param.layer if self._active(layer)]
        self.weights = torch.nn.ParameterDict()
        for layer in self.layers:
            if layer.type not in INPUT_LAYERS and layer.type not in self.OPS:
                raise UnsupportedLayer(f"layer {layer.name!r}: type {layer.type} has no "
                                       f"torch translation in the peer")
            for i, array in enumerate(params.get(layer.name, [])):
                learns = not (i < len(layer.param) and layer.param[i].lr_mult == 0)
                self.weights[f"{layer.name}__{i}"] = torch.nn.Parameter(
                    torch.from_numpy(array.copy()), requires_grad=learns)

    @staticmethod
    def _active(layer) -> bool:
        return not any(rule.HasField("phase") and rule.phase == caffe_pb2.TEST
                       for rule in layer.include)

    def _params(self, layer) -> list[torch.Tensor]:
        out, i = [], 0
        while f"{layer.name}__{i}" in self.weights:
            out.append(self.weights[f"{layer.name}__{i}"])
            i += 1
        return out

    def _conv(self, layer, x, transposed=False):
        g = _conv_geometry(layer.convolution_param)
        w = self._params(layer)
        bias = w[1] if layer.convolution_param.bias_term and len(w) > 1 else None
        if transposed:
            return F.conv_transpose2d(x, w[0], bias, stride=g["stride"], padding=g["padding"],
                                      groups=g["groups"], dilation=g["dilation"])
        return F.conv2d(x, w[0], bias, stride=g["stride"], padding=g["padding"],
                        dilation=g["dilation"], groups=g["groups"])

    def _pool(self, layer, x):
        p = layer.pooling_param
        if p.global_pooling:
            kernel = tuple(x.shape[2:])
        else:
            kernel = _pair([p.kernel_size] if p.kernel_size else [],
                           (p.kernel_h, p.kernel_w) if p.kernel_h else None, 1)
        stride = _pair([p.stride] if p.HasField("stride") else [],
                       (p.stride_h, p.stride_w) if p.stride_h else None, 1)
        pad = _pair([p.pad] if p.pad else [], (p.pad_h, p.pad_w) if p.pad_h else None, 0)
        if p.pool != p.MAX:
            raise UnsupportedLayer(f"layer {layer.name!r}: only MAX pooling is translated")
        return F.max_pool2d(x, kernel, stride, pad, ceil_mode=True)

    def _crop(self, layer, x, reference):
        p = layer.crop_param
        axis = p.axis if p.HasField("axis") else 2
        offsets = list(p.offset) or [0]
        slices = [slice(None)] * x.dim()
        for k, dim in enumerate(range(axis, x.dim())):
            start = offsets[k] if len(offsets) > 1 else offsets[0]
            slices[dim] = slice(start, start + reference.shape[dim])
        return x[tuple(slices)]

    def _eltwise(self, layer, *xs):
        p = layer.eltwise_param
        if p.operation == p.SUM:
            coeffs = list(p.coeff) or [1.0] * len(xs)
            out = xs[0] * coeffs[0] if coeffs[0] != 1 else xs[0]
            for c, x in zip(coeffs[1:], xs[1:]):
                out = out + (x * c if c != 1 else x)
            return out
        if p.operation == p.PROD:
            out = xs[0]
            for x in xs[1:]:
                out = out * x
            return out
        return torch.stack(xs).amax(0)

    def _lrn(self, layer, x):
        p = layer.lrn_param
        if p.norm_region != p.ACROSS_CHANNELS:
            raise UnsupportedLayer(f"layer {layer.name!r}: only ACROSS_CHANNELS LRN")
        return F.local_response_norm(x, p.local_size, alpha=p.alpha, beta=p.beta, k=p.k)

    def _softmax_loss(self, layer, score, label):
        p = layer.loss_param
        ignore = p.ignore_label if p.HasField("ignore_label") else None
        target = label[:, 0].long()
        loss = F.cross_entropy(score, target, reduction="sum",
                               ignore_index=ignore if ignore is not None else -100)
        return loss / _loss_normalizer(p, target, ignore)

    OPS = {
        "Convolution": lambda self, layer, x: self._conv(layer, x),
        "Deconvolution": lambda self, layer, x: self._conv(layer, x, transposed=True),
        "ReLU": lambda self, layer, x: F.relu(x),
        "Pooling": lambda self, layer, x: self._pool(layer, x),
        "Dropout": lambda self, layer, x: F.dropout(x, layer.dropout_param.dropout_ratio,
                                                    training=self.training),
        "Crop": lambda self, layer, x, ref: self._crop(layer, x, ref),
        "Eltwise": lambda self, layer, *xs: self._eltwise(layer, *xs),
        "LRN": lambda self, layer, x: self._lrn(layer, x),
        "Scale": lambda self, layer, x: x * self._params(layer)[0].view(1, -1, 1, 1),
        "Concat": lambda self, layer, *xs: torch.cat(xs, dim=layer.concat_param.axis),
        "SoftmaxWithLoss": lambda self, layer, score, label: self._softmax_loss(layer, score,
                                                                               label),
    }

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        blobs = dict(inputs)
        for layer in self.layers:
            if layer.type in INPUT_LAYERS:
                missing = [t for t in layer.top if t not in blobs]
                if missing:
                    raise ValueError(f"the peer needs inputs {missing} for layer {layer.name!r}")
                continue
            out = self.OPS[layer.type](self, layer, *(blobs[b] for b in layer.bottom))
            blobs[layer.top[0]] = out
        return blobs


def from_caffe(net, net_param: caffe_pb2.NetParameter) -> CaffeGraph:
    """The peer of a caffe.Net, with copies of its current weights."""
    params = {name: [b.data for b in blobs] for name, blobs in net.params.items()}
    return CaffeGraph(net_param, params)


def max_relative_difference(expected, actual) -> float:
    """max |expected - actual| / max |expected|: one number for 'same to float tolerance'."""
    import numpy as np

    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        raise ValueError(f"shapes differ: {expected.shape} vs {actual.shape}")
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(expected - actual).max()) / scale
