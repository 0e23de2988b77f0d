"""How a Caffe net reads as the exporters' graph (export/graph.py), without ONNX or PyTorch.

Caffe's semantics are decided once, in read_graph: in-place values, the layers that do
nothing at test time, which phase a layer belongs to, each layer's attributes and
parameters, the outputs and their order, and one clear error for what cannot be exported.
test_export_layers.py then checks that both exporters compute what Caffe computes; these
checks say why, layer by layer, and run in a second.
"""

from __future__ import annotations

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe import params as P
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from export.graph import ExportError, read_graph
from testkit.every_layer import every_layer_net
from testkit.random_weights import random_net


def f32(x: float) -> float:
    """A float as a Caffe proto holds it."""
    return float(np.float32(x))


@pytest.fixture(scope="module")
def every_layer():
    net_param = every_layer_net()
    net = random_net(net_param, seed=3)
    params = {layer: [b.data.copy() for b in blobs] for layer, blobs in net.params.items()}
    return read_graph(net_param, params, list(net.outputs)), params


def _op(graph, layer):
    return next(op for op in graph.ops if op.layer == layer)


# every op of the every-layer net, in Caffe's order: layer, kind, input values, output values
WIRING = [("c1", "conv", ("data",), ("c1",)), ("r1", "relu", ("c1",), ("c1:r1",)),
          ("p1", "pool", ("c1:r1",), ("p1",)), ("n1", "lrn", ("p1",), ("n1",)),
          ("c2", "conv", ("n1",), ("c2",)),
          *((p, "pool", ("c2",), (p,)) for p in ("a1", "a2", "f1", "m2", "q1", "q2", "q3",
                                                  "q4", "q5", "i1")),
          ("u1", "deconv", ("a1",), ("u1",)), ("u1c", "crop", ("u1", "c2"), ("u1c",)),
          ("e1", "eltwise", ("u1c", "c2"), ("e1",)), ("e2", "eltwise", ("e1", "c2"), ("e2",)),
          ("e3", "eltwise", ("e2", "c2", "e1"), ("e3",)), ("s1", "scale", ("e3",), ("s1",)),
          ("cat", "concat", ("s1", "c2", "i1"), ("cat",)), ("prob", "softmax", ("cat",), ("prob",)),
          ("up2", "deconv", ("m2",), ("up2",)), ("g", "pool", ("c2",), ("g",)),
          ("fc", "dense", ("g",), ("fc",))]


def test_the_graph_is_the_net_op_by_op(every_layer):
    """With the attributes and parameters below, the whole Graph: test_export_layers.py's
    run against Caffe reads nothing of export/graph.py but this, so a change it would catch
    on that net changes something pinned here (make mutate relies on it)."""
    graph, _ = every_layer
    assert [(op.layer, op.kind, op.inputs, op.outputs) for op in graph.ops] == WIRING
    values = {v for op in graph.ops for v in op.outputs} | {"data"}
    assert graph.blob_of == {v: v.split(":")[0] for v in values}
    assert graph.inputs == {"data": 3}


def test_each_window_layer_keeps_caffes_window(every_layer):
    graph, _ = every_layer
    conv = dict(kernel=(3, 3), stride=(1, 1), pad=(6, 6), dilation=(1, 1), group=1, bias=True)
    assert _op(graph, "c1").attrs == conv
    assert _op(graph, "c2").attrs == {**conv, "pad": (2, 2), "dilation": (2, 2), "group": 4}
    assert _op(graph, "u1").attrs == dict(kernel=(4, 4), stride=(2, 2), pad=(0, 0),
                                          dilation=(1, 1), group=2, bias=False)
    assert _op(graph, "up2").attrs == dict(kernel=(2, 2), stride=(2, 2), pad=(0, 0),
                                           dilation=(1, 1), group=1, bias=True)
    assert [_op(graph, n).kind for n in ("c1", "c2", "u1", "up2")] == \
        ["conv", "conv", "deconv", "deconv"]


# layer -> method, kernel, pad, ceil (stride 2 but for i1)
POOLS = {"p1": ("max", 3, 1, True), "a1": ("ave", 3, 1, True), "a2": ("ave", 3, 0, True),
         "f1": ("max", 3, 1, False), "m2": ("max", 2, 0, True), "q1": ("max", 2, 1, True),
         "q2": ("ave", 2, 1, True), "q3": ("max", 3, 2, True), "q4": ("ave", 3, 2, True),
         "q5": ("ave", 3, 2, False)}


def test_each_pooling_keeps_its_method_window_and_rounding(every_layer):
    graph, _ = every_layer
    for layer, (method, k, pad, ceil) in POOLS.items():
        assert _op(graph, layer).attrs == dict(method=method, glob=False, kernel=(k, k),
                                               stride=(2, 2), pad=(pad, pad), ceil=ceil), layer
    # GoogLeNet's 3×3 stride-1 pooling: every span divides by 1, ceil and floor agree
    assert _op(graph, "i1").attrs == dict(method="max", glob=False, kernel=(3, 3),
                                          stride=(1, 1), pad=(1, 1), ceil=False)
    assert _op(graph, "g").attrs == dict(method="ave", glob=True)


def test_global_max_pooling_is_global_and_max():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 4, 4]))
    n.g = L.Pooling(n.data, pool=P.Pooling.MAX, global_pooling=True)
    assert read_graph(n.to_proto(), {}, ["g"]).ops[0].attrs == dict(method="max", glob=True)


def test_the_pointwise_and_joining_layers_keep_their_attributes(every_layer):
    graph, _ = every_layer
    assert _op(graph, "r1").attrs == dict(slope=f32(0.1))
    assert _op(graph, "n1").attrs == dict(size=3, alpha=0.5, beta=0.75, k=1.5)
    assert _op(graph, "u1c").attrs == dict(axis=2, offsets=(1, 1))
    assert _op(graph, "e1").attrs == dict(op="sum", coeffs=(0.5, -2.0))
    assert _op(graph, "e2").attrs == dict(op="prod", coeffs=(1.0, 1.0))
    assert _op(graph, "e3").attrs == dict(op="max", coeffs=(1.0, 1.0, 1.0))
    assert _op(graph, "s1").attrs == dict(axis=1, bias=True)
    assert _op(graph, "cat").attrs == dict(axis=1)
    assert _op(graph, "prob").attrs == dict(axis=1)
    assert _op(graph, "fc").attrs == dict(bias=True)
    assert _op(graph, "cat").inputs == ("s1", "c2", "i1")
    assert _op(graph, "e3").inputs == ("e2", "c2", "e1")


def test_the_parameters_are_the_nets_by_name(every_layer):
    graph, params = every_layer
    named = {op.layer: op.params for op in graph.ops if op.params}
    assert {layer: list(p) for layer, p in named.items()} == {   # in the exporters' order
        "c1": ["weight", "bias"], "c2": ["weight", "bias"], "u1": ["weight"],
        "s1": ["weight", "bias"], "up2": ["weight", "bias"], "fc": ["weight", "bias"]}
    for layer, p in named.items():
        for i, key in enumerate(("weight", "bias")[:len(p)]):
            assert p[key].dtype == np.float32
            np.testing.assert_array_equal(p[key], params[layer][i])


def test_in_place_layers_give_new_values_and_dropout_is_nothing_at_test_time(every_layer):
    graph, _ = every_layer
    relu = _op(graph, "r1")
    assert relu.inputs == ("c1",) and relu.outputs == ("c1:r1",)
    assert _op(graph, "p1").inputs == ("c1:r1",)
    assert graph.blob_of["c1:r1"] == "c1" and graph.blob_of["c1"] == "c1"
    assert "d2" not in {op.layer for op in graph.ops}
    assert _op(graph, "a1").inputs == ("c2",)   # Dropout in place: c2 is still c2
    assert graph.inputs == {"data": 3}


def test_the_outputs_come_in_the_order_the_net_computes_them(every_layer):
    graph, _ = every_layer
    assert list(graph.outputs.items()) == [(b, b) for b in (
        "a2", "f1", "q1", "q2", "q3", "q4", "q5", "prob", "up2", "fc")]


def _net(text: str):
    return text_format.Parse(text, caffe_pb2.NetParameter())


def test_caffes_outputs_are_the_blobs_nothing_reads_after_they_are_written():
    net = _net('''
        layer { name: "data" type: "Input" top: "data" top: "extra"
                input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
        layer { name: "r" type: "ReLU" bottom: "data" top: "data" }
        layer { name: "sm" type: "Softmax" bottom: "data" top: "sm" }
        layer { name: "r2" type: "ReLU" bottom: "data" top: "late" }''')
    graph = read_graph(net, {}, None)
    assert list(graph.outputs.items()) == [("extra", "extra"), ("sm", "sm"), ("late", "late")]
    assert graph.inputs == {"data": 2, "extra": 2}
    # an output written in place ends as its last value; the order follows the ops
    graph = read_graph(net, {}, ["late", "data", "extra"])
    assert list(graph.outputs.items()) == [("extra", "extra"), ("data", "data:r"),
                                           ("late", "late")]


def test_a_layer_in_place_on_a_splits_top_gives_a_new_value_of_it():
    """Split's tops hold its bottom's value: rewriting one in place is '<blob>:<layer>'."""
    net = _net('''input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
        layer { name: "split" type: "Split" bottom: "data" top: "a" top: "b" }
        layer { name: "r" type: "ReLU" bottom: "a" top: "a" }''')
    graph = read_graph(net, {}, ["a", "b"])
    assert [(op.inputs, op.outputs) for op in graph.ops] == [(("data",), ("a:r",))]
    assert graph.outputs == {"b": "data", "a": "a:r"} and graph.blob_of["a:r"] == "a"


def test_a_top_renamed_back_to_an_earlier_blob_is_a_new_value():
    net = _net('''
        input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
        layer { name: "a" type: "ReLU" bottom: "data" top: "x" }
        layer { name: "b" type: "Softmax" bottom: "x" top: "y" }
        layer { name: "c" type: "ReLU" bottom: "y" top: "x" }''')
    graph = read_graph(net, {}, ["x"])
    assert [op.outputs for op in graph.ops] == [("x",), ("y",), ("x:c",)]
    assert graph.outputs == {"x": "x:c"} and graph.blob_of["x:c"] == "x"


@pytest.mark.parametrize("header,channels", [
    ('input: "data" input_dim: 1 input_dim: 3 input_dim: 5 input_dim: 5 '
     'input: "hha" input_dim: 1 input_dim: 4 input_dim: 5 input_dim: 5', {"data": 3, "hha": 4}),
    ("".join(f'input: "in{c}" input_dim: 1 input_dim: {c} input_dim: 5 input_dim: 5 '
             for c in (3, 4, 5, 6)), {"in3": 3, "in4": 4, "in5": 5, "in6": 6}),
    ('input: "data" input: "hha" input_shape { dim: 1 dim: 3 dim: 5 dim: 5 } '
     'input_shape { dim: 1 dim: 4 dim: 5 dim: 5 }', {"data": 3, "hha": 4}),
    ('input: "data" input: "hha" input_shape { dim: 1 dim: 6 dim: 5 dim: 5 }',
     {"data": 6, "hha": 6}),
    ('input: "data" input_shape { dim: 7 }', {"data": 1}),
    ('input: "data" input_shape { dim: 1 dim: 6 }', {"data": 6}),
    ('input: "data" input_shape { }', {"data": 1}),
    ('layer { name: "in" type: "Input" top: "data" top: "hha" input_param { '
     'shape { dim: 1 dim: 3 dim: 5 dim: 5 } shape { dim: 1 dim: 4 dim: 5 dim: 5 } } }',
     {"data": 3, "hha": 4}),
    ('layer { name: "in" type: "Input" top: "data" top: "hha" input_param { '
     'shape { dim: 1 dim: 5 dim: 5 dim: 5 } } }', {"data": 5, "hha": 5}),
    ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 9 } } }',
     {"data": 1}),
    ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 6 } } }',
     {"data": 6}),
    ('layer { name: "in" type: "Input" top: "data" input_param { shape { } } }', {"data": 1}),
])
def test_the_inputs_channels_come_from_every_way_caffe_declares_them(header, channels):
    graph = read_graph(_net(header), {}, None)
    assert graph.inputs == channels and graph.ops == []
    assert list(graph.outputs) == list(channels)


PHASED = '''
    input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
    input: "label" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
    layer { name: "both" type: "ReLU" bottom: "data" top: "a" }
    layer { name: "train_only" type: "ReLU" bottom: "a" top: "a" include { phase: TRAIN } }
    layer { name: "test_only" type: "ReLU" bottom: "a" top: "a" include { phase: TEST } }
    layer { name: "not_train" type: "ReLU" bottom: "a" top: "a" exclude { phase: TRAIN } }
    layer { name: "not_test" type: "ReLU" bottom: "a" top: "a" exclude { phase: TEST } }
    layer { name: "any_phase" type: "ReLU" bottom: "a" top: "a" include { min_level: 0 } }
    layer { name: "drop" type: "Dropout" bottom: "a" top: "a"
            dropout_param { dropout_ratio: 0.25 } }
    layer { name: "split" type: "Split" bottom: "a" top: "a1" top: "a2" }
    layer { name: "score" type: "Softmax" bottom: "a2" top: "score" }
    layer { name: "silence" type: "Silence" bottom: "a1" }
'''


def test_each_phase_keeps_its_own_layers():
    test = read_graph(_net(PHASED), {}, ["score"])
    train = read_graph(_net(PHASED), {}, ["score"], phase="train")
    assert [op.layer for op in test.ops] == ["both", "test_only", "not_train", "any_phase",
                                             "score"]
    assert [op.layer for op in train.ops] == ["both", "train_only", "not_test", "any_phase",
                                              "drop", "score"]
    drop = _op(train, "drop")
    assert drop.kind == "dropout" and drop.attrs == dict(ratio=0.25)
    # Split passes its bottom on: the softmax reads Dropout's value in training
    assert _op(train, "score").inputs == drop.outputs
    assert _op(test, "score").inputs == _op(test, "any_phase").outputs


def test_unread_blobs_of_silence_and_the_ignored_layers_are_still_outputs():
    graph = read_graph(_net(PHASED), {}, None)
    assert list(graph.outputs) == ["label", "a1", "score"]
    assert "silence" not in {op.layer for op in graph.ops}


LOSS = '''
    input: "score" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
    input: "label" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
    layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label"
            top: "loss" {extra} }}
'''


@pytest.mark.parametrize("extra,attrs", [
    ("", dict(ignore=None, normalization="valid", axis=1)),
    ("loss_param { ignore_label: 255 }", dict(ignore=255, normalization="valid", axis=1)),
    ("loss_param { ignore_label: 0 normalize: false }",
     dict(ignore=0, normalization="batch_size", axis=1)),
    ("loss_param { normalize: true }", dict(ignore=None, normalization="valid", axis=1)),
    ("loss_param { normalization: FULL normalize: false }",
     dict(ignore=None, normalization="full", axis=1)),
    ("loss_param { normalization: NONE }", dict(ignore=None, normalization="none", axis=1)),
    ("loss_param { normalization: BATCH_SIZE } softmax_param { axis: 2 }",
     dict(ignore=None, normalization="batch_size", axis=2)),
])
def test_the_training_loss_reads_its_ignored_label_and_divisor_as_caffe_does(extra, attrs):
    graph = read_graph(_net(LOSS.format(extra=extra)), {}, ["loss"], phase="train")
    assert [(op.kind, op.inputs) for op in graph.ops] == [("softmax_loss", ("score", "label"))]
    assert graph.ops[0].attrs == attrs
    with pytest.raises(ExportError, match="'loss' is a SoftmaxWithLoss layer"):
        read_graph(_net(LOSS.format(extra=extra)), {}, ["loss"])   # not in a deploy graph


def test_a_legacy_concat_dim_is_the_concat_axis():
    base = '''input: "x" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
        layer {{ name: "cat" type: "Concat" bottom: "x" bottom: "x" top: "cat" {p} }}'''
    axis = {p: read_graph(_net(base.format(p=p)), {}, ["cat"]).ops[0].attrs["axis"]
            for p in ("", "concat_param { concat_dim: 2 }", "concat_param { axis: 3 }",
                      "concat_param { axis: 2 concat_dim: 3 }")}
    assert list(axis.values()) == [1, 2, 3, 2]


def _dense(transpose: bool, bias: bool):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 2, 2]))
    n.fc = L.InnerProduct(n.data, num_output=5, transpose=transpose, bias_term=bias)
    return n.to_proto()


def test_a_transposed_inner_product_has_its_weights_transposed():
    w = np.arange(12 * 5, dtype=np.float64).reshape(12, 5)   # transpose: K×N
    op = read_graph(_dense(True, False), {"fc": [w]}, ["fc"]).ops[0]
    assert op.attrs == dict(bias=False) and list(op.params) == ["weight"]
    np.testing.assert_array_equal(op.params["weight"], w.T)
    assert op.params["weight"].flags.c_contiguous and op.params["weight"].dtype == np.float32
    plain = read_graph(_dense(False, True), {"fc": [w.T, np.ones(5)]}, ["fc"]).ops[0]
    np.testing.assert_array_equal(plain.params["weight"], w.T)


def test_a_scale_without_bias_has_its_factor_only():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 2, 2]))
    n.s = L.Scale(n.data, axis=2, num_axes=1)
    op = read_graph(n.to_proto(), {"s": [np.ones(2)]}, ["s"]).ops[0]
    assert op.attrs == dict(axis=2, bias=False) and list(op.params) == ["weight"]


def _one_layer(layer: str, *bottoms: str) -> str:
    inputs = "".join(f'input: "{b}" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4\n'
                     for b in dict.fromkeys(bottoms or ("data",)))
    return inputs + "layer { " + layer + " }"


@pytest.mark.parametrize("layer,params,outputs,message", [
    ('name: "bn" type: "BatchNorm" bottom: "data" top: "bn"', {"bn": [np.zeros(3)] * 3},
     ["bn"], r"'bn' is a BatchNorm layer, which the exporters do not translate \(they know "
     r"Concat, Convolution, .*InnerProduct, .*Softmax, plus Dropout, Split, Silence and "
     r"Input\)"),
    ('name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { kernel_size: 1 stride: 2 }', {}, ["p"], "empty windows"),
    ('name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 2 }', {}, ["p"],
     r"kernel \(3, 1\) smaller than its stride \(2, 2\)"),
    ('name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 }', {}, ["p"],
     "'p': stochastic pooling"),
    ('name: "c" type: "Convolution" bottom: "data" top: "c" '
     'convolution_param { num_output: 2 kernel_size: 1 kernel_size: 1 kernel_size: 1 }',
     {"c": [np.zeros(1)] * 2}, ["c"], "'c': only 2-D convolutions"),
    ('name: "c" type: "Convolution" bottom: "data" top: "c" '
     'convolution_param { num_output: 2 kernel_size: 1 axis: 0 }',
     {"c": [np.zeros(1)] * 2}, ["c"], "'c': only 2-D convolutions over axis 1"),
    ('name: "c" type: "Convolution" bottom: "data" top: "c" '
     'convolution_param { num_output: 2 kernel_size: 1 axis: 2 }',
     {"c": [np.zeros(1)] * 2}, ["c"], "'c': only 2-D convolutions over axis 1"),
    ('name: "c" type: "Convolution" bottom: "data" top: "c" '
     'convolution_param { num_output: 2 kernel_size: 1 }', {"c": [np.zeros(1)]}, ["c"],
     r"'c' holds 1 parameter blobs, expected 2 \(weight, bias\)"),
    ('name: "c" type: "Deconvolution" bottom: "data" top: "c" '
     'convolution_param { num_output: 2 kernel_size: 1 bias_term: false }',
     {"c": [np.zeros(1)] * 2}, ["c"], r"holds 2 parameter blobs, expected 1 \(weight\)"),
    ('name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "e" '
     'eltwise_param { operation: PROD coeff: 1 coeff: 2 }', {}, ["e"],
     "'e': Eltwise coefficients apply to SUM only"),
    ('name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "e" '
     'eltwise_param { operation: MAX coeff: 1 coeff: 1 }', {}, ["e"],
     "coefficients apply to SUM only"),
    ('name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "e" '
     'eltwise_param { coeff: 1 coeff: 2 coeff: 3 }', {}, ["e"],
     "'e': 3 coefficients for 2 bottoms"),
    ('name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "e" eltwise_param { coeff: 1 }',
     {}, ["e"], "'e': 1 coefficients for 2 bottoms"),
    ('name: "k" type: "Crop" bottom: "a" bottom: "b" top: "k" '
     'crop_param { axis: 2 offset: 1 offset: 2 offset: 3 }', {}, ["k"],
     "'k': 3 crop offsets for 2 axes"),
    ('name: "n" type: "LRN" bottom: "data" top: "n" lrn_param { norm_region: WITHIN_CHANNEL }',
     {}, ["n"], "'n': only LRN across channels"),
    ('name: "s" type: "Scale" bottom: "a" bottom: "b" top: "s"', {}, ["s"],
     "'s': Scale by a second bottom"),
    ('name: "f" type: "InnerProduct" bottom: "data" top: "f" '
     'inner_product_param { num_output: 2 axis: 2 }', {"f": [np.zeros(1)] * 2}, ["f"],
     r"'f': InnerProduct over axis 2 is not exported \(axis 1 only\)"),
    ('name: "f" type: "InnerProduct" bottom: "data" top: "f" '
     'inner_product_param { num_output: 2 axis: 0 }', {"f": [np.zeros(1)] * 2}, ["f"],
     r"'f': InnerProduct over axis 0 is not exported"),
    ('name: "r" type: "ReLU" bottom: "nothing" top: "r"', {}, ["r"],
     "layer 'r' reads 'nothing', which nothing before it produces"),
    ('name: "e" type: "Eltwise" bottom: "data" bottom: "first" bottom: "second" top: "e"', {},
     ["e"], "layer 'e' reads 'first',"),
    ('name: "r" type: "ReLU" bottom: "data" top: "r"', {}, ["r", "nope"],
     "output 'nope' is not a blob of the net"),
    ('name: "r" type: "ReLU" bottom: "data" top: "r"', {}, ["first", "r", "second"],
     "output 'first' is not"),
])
def test_what_cannot_be_exported_is_one_clear_error(layer, params, outputs, message):
    bottoms = ("a", "b") if 'bottom: "a"' in layer else ()
    with pytest.raises(ExportError, match=message):
        read_graph(_net(_one_layer(layer, *bottoms)), params, outputs)


def test_a_layer_reading_a_blob_made_later_is_refused_naming_it():
    net = _net('''input: "data" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
        layer { name: "r" type: "ReLU" bottom: "late" top: "r" }
        layer { name: "s" type: "ReLU" bottom: "data" top: "late" }''')
    with pytest.raises(ExportError, match="layer 'r' reads 'late'"):
        read_graph(net, {}, ["r"])


def test_what_can_be_exported_is_not_refused():
    """The refusals' edges: floor mode may pool with a kernel below its stride (no empty
    window), and one Eltwise SUM coefficient per bottom, or none, is fine."""
    net = _net(_one_layer('name: "p" type: "Pooling" bottom: "data" top: "p" '
                          'pooling_param { kernel_size: 1 stride: 2 round_mode: FLOOR }'))
    assert read_graph(net, {}, ["p"]).ops[0].attrs["ceil"] is False
    for coeff in ("", "eltwise_param { coeff: 1 coeff: -1 }"):
        net = _net(_one_layer('name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "e" '
                              + coeff, "a", "b"))
        assert read_graph(net, {}, ["e"]).ops[0].attrs["op"] == "sum"
