"""The peer: the same net in PyTorch (CPU), built from a Caffe NetParameter and its weights.

The net goes through the exporters' translation (export/graph.py reads the prototxt with
Caffe's conventions: ceil-mode pooling, Crop offsets, Caffe's deconvolution layout, LRN
across channels, SoftmaxWithLoss's ignore_label and normalization) and runs as the module
export/torch_export.py generates, so the benchmark times the same code `make torch` ships.
Data layers become the peer's inputs; parameters Caffe does not learn (lr_mult 0) do not
take gradients here either.
"""

from __future__ import annotations

import torch
from caffe.proto import caffe_pb2

from export.graph import ExportError, read_graph
from export.torch_export import attribute_names, to_module

DATA_LAYERS = {"Python", "Data", "ImageData"}

# the translation's refusal of a layer it does not know, under the bench's name
UnsupportedLayer = ExportError


def _data_as_inputs(net, net_param: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """A copy whose data layers are Input layers of the shapes their blobs have in `net`."""
    edited = caffe_pb2.NetParameter()
    edited.CopyFrom(net_param)
    for layer in edited.layer:
        if layer.type in DATA_LAYERS and all(top in net.blobs for top in layer.top):
            shapes = [net.blobs[top].data.shape for top in layer.top]
            layer.type = "Input"
            layer.ClearField("python_param")
            del layer.input_param.shape[:]
            for shape in shapes:
                layer.input_param.shape.add().dim.extend(shape)
    return edited


class Peer(torch.nn.Module):
    """A generated module called like the old peer: forward(**inputs) -> {output blob: value}."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        missing = [name for name in self.model.inputs if name not in inputs]
        if missing:
            raise ValueError(f"the peer needs inputs {missing}")
        result = self.model(*(inputs[name] for name in self.model.inputs))
        result = result if isinstance(result, tuple) else (result,)
        return dict(zip(self.model.outputs, result))


def from_caffe(net, net_param: caffe_pb2.NetParameter) -> Peer:
    """The peer of a caffe.Net, with copies of its current weights (train phase: dropout
    and the loss included; .eval() turns dropout off)."""
    if any(layer.type in DATA_LAYERS for layer in net_param.layer):
        net_param = _data_as_inputs(net, net_param)
    params = {name: [b.data.copy() for b in blobs] for name, blobs in net.params.items()}
    graph = read_graph(net_param, params, None, phase="train")
    model = to_module(graph, net_param.name or "peer")
    attrs, parameters = attribute_names(graph), dict(model.named_parameters())
    for layer in net_param.layer:
        for spec, key in zip(layer.param, ("weight", "bias")):
            name = f"{attrs.get(layer.name)}.{key}"
            if spec.lr_mult == 0 and name in parameters:
                parameters[name].requires_grad_(False)
    return Peer(model)


def max_relative_difference(expected, actual) -> float:
    """max |expected - actual| / max |expected|: one number for 'same to float tolerance'."""
    import numpy as np

    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        raise ValueError(f"shapes differ: {expected.shape} vs {actual.shape}")
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(expected - actual).max()) / scale
