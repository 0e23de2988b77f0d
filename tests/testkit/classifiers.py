"""Small synthetic classifiers and old-format (V1) files, for tests and the demo.

The 2014 VGG16 release is V1: a `layers {}` prototxt with enum types and `input_dim`, and a
caffemodel whose blobs carry legacy num/channels/height/width dims. These writers produce
the same formats from current definitions, so the V1 road is tested without the 528 MB file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import caffe
import numpy as np
from caffe import layers as L
from caffe import params as P
from caffe.proto import caffe_pb2
from google.protobuf import text_format

V1 = caffe_pb2.V1LayerParameter
_V1_TYPES = {"Convolution": V1.CONVOLUTION, "ReLU": V1.RELU, "Pooling": V1.POOLING,
             "InnerProduct": V1.INNER_PRODUCT, "Dropout": V1.DROPOUT, "Softmax": V1.SOFTMAX,
             "LRN": V1.LRN, "Concat": V1.CONCAT}
_V1_PARAMS = {"Convolution": "convolution_param", "Pooling": "pooling_param",
              "InnerProduct": "inner_product_param", "Dropout": "dropout_param",
              "LRN": "lrn_param", "Concat": "concat_param"}


def small_classifier(size: int, classes: int = 5, widths: Sequence[int] = (4, 6, 8),
                     fc: int = 12, pad: int = 0) -> caffe_pb2.NetParameter:
    """A VGG-shaped classifier (stages of two 3×3 convolutions and a 2×2 max pool, then
    fc6/fc7/fc8) with random fillers. Unpadded by default, so each cell of its convolutional
    form sees exactly one classifier-sized input patch."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, size, size]))
    top = n.data
    bias = dict(type="uniform", min=-0.1, max=0.1)
    for stage, nout in enumerate(widths, start=1):
        for i in (1, 2):
            n[f"conv{stage}_{i}"] = top = L.Convolution(
                top, num_output=nout, kernel_size=3, pad=pad,
                weight_filler=dict(type="msra"), bias_filler=bias)
            n[f"relu{stage}_{i}"] = top = L.ReLU(top, in_place=True)
        n[f"pool{stage}"] = top = L.Pooling(top, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    for name, nout in (("fc6", fc), ("fc7", fc), ("fc8", classes)):
        n[name] = top = L.InnerProduct(top, num_output=nout, weight_filler=dict(type="msra"),
                                       bias_filler=bias)
        if name != "fc8":
            n["relu" + name[2]] = top = L.ReLU(top, in_place=True)
    n.prob = L.Softmax(top)
    return n.to_proto()


def write_prototxt(net: caffe_pb2.NetParameter, path: Path | str) -> str:
    Path(path).write_text(text_format.MessageToString(net))
    return str(path)


def to_v1_prototxt(net: caffe_pb2.NetParameter) -> str:
    """The definition in the V1 format of the 2014 model zoo files (`input`/`input_dim`,
    `layers {}` with enum types), for the layer types VGG16 and CaffeNet use."""
    old = caffe_pb2.NetParameter(name=net.name)
    for layer in net.layer:
        if layer.type == "Input":
            for top, shape in zip(layer.top, layer.input_param.shape):
                old.input.append(top)
                old.input_dim.extend(shape.dim)
            continue
        if layer.type not in _V1_TYPES:
            raise ValueError(f"to_v1_prototxt: no V1 form here for layer type {layer.type}")
        v1 = old.layers.add(name=layer.name, type=_V1_TYPES[layer.type])
        v1.bottom.extend(layer.bottom)
        v1.top.extend(layer.top)
        field = _V1_PARAMS.get(layer.type)
        if field and layer.HasField(field):
            getattr(v1, field).CopyFrom(getattr(layer, field))
    return text_format.MessageToString(old)


def to_v1_caffemodel(params: Mapping[str, Sequence[np.ndarray]]) -> bytes:
    """A V1 caffemodel (`layers`, legacy 4-d blob dims) holding `params` by layer name."""
    old = caffe_pb2.NetParameter()
    for name, blobs in params.items():
        layer = old.layers.add(name=name)
        for array in blobs:
            array = np.asarray(array, np.float32)
            if array.ndim > 4:
                raise ValueError(f"{name}: V1 blobs have at most 4 axes, not {array.shape}")
            dims = (1,) * (4 - array.ndim) + array.shape
            blob = layer.blobs.add(num=dims[0], channels=dims[1], height=dims[2], width=dims[3])
            blob.data.extend(array.ravel().tolist())
    return old.SerializeToString()


def net_params(net) -> dict[str, list[np.ndarray]]:
    """Copies of a caffe.Net's parameters by layer name."""
    return {name: [b.data.copy() for b in blobs] for name, blobs in net.params.items()}
