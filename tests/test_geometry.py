"""core/geometry reads Caffe's layer arithmetic as Caffe does, and is the only reader.

Each rule is checked against Caffe itself: the window fields with their _h/_w spellings,
the output sizes of convolution, deconvolution and ceil-mode pooling (padding on one axis
clips both), crop offsets, and parameter counts, on small nets and on every deploy net the
release ships in nets/*/ (GoogLeNet's padded poolings included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import caffe
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from core.geometry import (
    Window,
    conv_size,
    conv_window,
    crop_offsets,
    deconv_size,
    layer_parameters,
    output_shape,
    parameter_counts,
    pool_window,
    pooled_size,
    window,
    window_step,
)

REPO = Path(__file__).resolve().parents[1]
DEPLOY_NETS = sorted(REPO.glob("nets/*/deploy.prototxt"))


def _layer(text: str) -> caffe_pb2.LayerParameter:
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def _net(tmp_path: Path, net_param: caffe_pb2.NetParameter) -> caffe.Net:
    path = tmp_path / "net.prototxt"
    path.write_text(str(net_param))
    return caffe.Net(str(path), caffe.TEST)


def _check_against_caffe(net_param: caffe_pb2.NetParameter, net: caffe.Net) -> int:
    """Every window layer's output size and every layer's parameter count equal Caffe's;
    returns how many window layers were compared."""
    counts, compared = parameter_counts(net_param), 0
    for layer in net_param.layer:
        if layer.type in ("Convolution", "Deconvolution", "Pooling"):
            bottom = net.blobs[layer.bottom[0]].data.shape
            top = net.blobs[layer.top[0]].data.shape
            assert output_shape(layer, bottom[2:]) == top[2:], (layer.name, bottom, top)
            compared += 1
        in_caffe = sum(b.data.size for b in net.params[layer.name]) \
            if layer.name in net.params else 0
        assert counts.get(layer.name, 0) == in_caffe, layer.name
    return compared


# ---------------------------------------------------------------- reading the fields


def test_convolution_fields_prefer_h_w_then_broadcast_then_default():
    w = conv_window(_layer('convolution_param { kernel_size: 7 kernel_h: 3 kernel_w: 5 '
                           'pad_h: 1 pad_w: 0 stride: 2 stride: 3 }').convolution_param)
    assert (w.kernel, w.pad, w.stride, w.dilation) == ((3, 5), (1, 0), (2, 3), (1, 1))
    w = conv_window(_layer("convolution_param { kernel_size: 4 dilation: 2 }")
                    .convolution_param)
    assert (w.kernel, w.pad, w.stride, w.dilation) == ((4, 4), (0, 0), (1, 1), (2, 2))
    with pytest.raises(ValueError, match="3 values for 2 spatial axes"):
        conv_window(_layer("convolution_param { kernel_size: 1 kernel_size: 2 "
                           "kernel_size: 3 }").convolution_param)
    # either of _h/_w is enough for Caffe to read both (the other keeps its default 0)
    w = conv_window(_layer("convolution_param { kernel_size: 3 pad_w: 2 }")
                    .convolution_param)
    assert w.pad == (0, 2)


def test_pooling_fields_single_or_h_w():
    w = pool_window(_layer("pooling_param { kernel_size: 3 stride: 2 pad: 1 }").pooling_param)
    assert (w.kernel, w.stride, w.pad) == ((3, 3), (2, 2), (1, 1))
    w = pool_window(_layer("pooling_param { kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 "
                           "pad_h: 0 pad_w: 1 }").pooling_param)
    assert (w.kernel, w.stride, w.pad) == ((2, 3), (2, 1), (0, 1))
    assert pool_window(_layer("pooling_param { kernel_size: 2 }").pooling_param).stride == (1, 1)
    with pytest.raises(ValueError, match="global pooling"):
        pool_window(_layer("pooling_param { global_pooling: true }").pooling_param)


def test_crop_offsets_one_is_broadcast_none_is_zero_else_one_per_axis():
    def offsets(text):
        return crop_offsets(_layer(f"crop_param {{ {text} }}").crop_param)
    assert offsets("offset: 19") == (2, (19, 19))
    assert offsets("") == (2, (0, 0))
    assert offsets("axis: 1 offset: 0 offset: 3 offset: 4") == (1, (0, 3, 4))
    assert offsets("axis: -1 offset: 5") == (3, (5,))
    assert offsets("axis: 0") == (0, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="2 crop offsets for 3 axes"):
        offsets("axis: 1 offset: 1 offset: 2")
    with pytest.raises(ValueError, match="3 crop offsets for 2 axes"):
        offsets("offset: 1 offset: 2 offset: 3")


def test_pooled_size_clips_a_last_window_that_starts_in_the_padding():
    assert pooled_size(3, 2, 2, 1, ceil=True) == 2   # ceil gives 3; the third starts at 4
    assert pooled_size(4, 2, 2, 1, ceil=True) == 3
    assert pooled_size(5, 2, 2, 0, ceil=True) == 3   # unpadded: ceil kept
    assert pooled_size(5, 2, 2, 0, ceil=False) == 2
    assert pooled_size(5, 1, 3, 0, ceil=True, padded=True) == 2   # padded on the other axis
    assert pooled_size(5, 1, 3, 0, ceil=True) == 3   # unpadded: Caffe keeps a window past the end


def test_deconvolution_size_without_dilation_inverts_convolution():
    assert deconv_size(3, 4, 2, 1) == 6 and deconv_size(3, 4, 2, 1, dilation=2) == 9


def test_convolution_size_is_c_integer_division_even_for_a_window_past_the_input():
    """C's `/` truncates towards zero: a window wider than the padded input by less than
    a stride still gives 1 output, by a stride or more 0 (which Caffe then refuses)."""
    for size in range(1, 9):
        for kernel in range(1, 10):
            for stride in (1, 2, 3):
                for pad in (0, 1):
                    span = size + 2 * pad - kernel
                    assert conv_size(size, kernel, stride, pad) == int(span / stride) + 1
    assert conv_size(5, 3, 1, 0) == 3 and conv_size(5, 3, 1, 0, dilation=2) == 1
    assert pooled_size(5, 2, 2, 0) == 3   # Caffe's default round mode: CEIL


def test_coordinate_maps_of_a_convolution_and_a_deconvolution():
    """pycaffe's coord_map in interval form: a 3×3 stride-2 window with pad 1 maps output
    j to input [2j − 1, 2j + 1]; the deconvolution inverts it (halves, not rounded)."""
    from fractions import Fraction as F

    w = Window(kernel=(3, 3), stride=(2, 2), pad=(1, 1))
    assert window_step("Convolution", w, 0, F(1), F(0), F(0)) == (2, -1, 1)
    assert window_step("Pooling", w, 1, F(2), F(-1), F(1)) == (4, -3, 3)
    assert window_step("Deconvolution", w, 0, F(1), F(0), F(0)) == (F(1, 2), F(-1, 2),
                                                                     F(1, 2))


# ---------------------------------------------------------------- against Caffe


def test_window_layers_shape_and_count_as_caffe_does(tmp_path):
    """Odd fields and sizes: rectangular dilated convolution, grouped deconvolution, padding on one
    axis only (Caffe then clips the last window on both), floor mode, Scale."""
    n = caffe.NetSpec()
    L, P = caffe.layers, caffe.params
    n.data = L.Input(shape=dict(dim=[1, 4, 17, 23]))
    n.conv = L.Convolution(n.data, num_output=6, kernel_h=3, kernel_w=5, stride=[2, 3],
                           pad_h=2, pad_w=1, dilation=2, group=2)
    n.up = L.Deconvolution(n.conv, convolution_param=dict(num_output=4, kernel_size=4,
                                                          stride=2, pad=1, bias_term=False,
                                                          group=2))
    n.clip = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_h=1, kernel_w=3, stride_h=3,
                       stride_w=1, pad_h=0, pad_w=1)
    n.floor = L.Pooling(n.data, pool=P.Pooling.AVE, kernel_size=3, stride=2,
                        round_mode=P.Pooling.FLOOR)
    n.scaled = L.Scale(n.conv, bias_term=True)
    n.squashed = L.Sigmoid(n.conv)   # a type after "Scale": no parameters
    net_param = n.to_proto()
    net = _net(tmp_path, net_param)
    for size in [(5, 5), (17, 23), (8, 11)]:
        net.blobs["data"].reshape(1, 4, *size)
        net.reshape()
        assert _check_against_caffe(net_param, net) == 4
    clip = next(layer for layer in net_param.layer if layer.name == "clip")
    assert output_shape(clip, (5, 5)) == (2, 5)   # per axis, height would keep 3


@pytest.mark.parametrize("deploy", DEPLOY_NETS, ids=lambda p: p.parent.name)
def test_release_nets_shape_and_count_as_caffe_does(deploy, tmp_path):
    """The release's deploy nets, thinned to a sixteenth of their channels (the geometry
    does not depend on them), at two odd picture sizes."""
    net_param = text_format.Parse(deploy.read_text(), caffe_pb2.NetParameter())
    for layer in net_param.layer:
        if layer.type in ("Convolution", "Deconvolution"):
            p = layer.convolution_param
            group = p.group or 1
            p.num_output = max(group, p.num_output // 16 // group * group)
    net = _net(tmp_path, net_param)
    inputs = list(net.inputs)
    for size in [(37, 45), (64, 51)]:
        for blob in inputs:
            net.blobs[blob].reshape(1, net.blobs[blob].data.shape[1], *size)
        net.reshape()
        assert _check_against_caffe(net_param, net) > 0


def test_googlenet_pads_its_pools():
    net = text_format.Parse((REPO / "nets/voc-fcn-googlenet/deploy.prototxt").read_text(),
                            caffe_pb2.NetParameter())
    padded = [layer.name for layer in net.layer if layer.type == "Pooling" and
              any(window(layer).pad)]
    assert len(padded) >= 9, padded   # each inception module's pool branch


def test_parameter_counts_need_the_spatial_size_for_inner_products():
    with pytest.raises(ValueError, match="InnerProduct"):
        layer_parameters(_layer('name: "fc" type: "InnerProduct" '
                                "inner_product_param { num_output: 3 }"), 8)


# ---------------------------------------------------------------- one definition


GEOMETRY = REPO / "core/geometry.py"
# the Caffe fields only core/geometry reads (writing them, as surgery does, is fine)
FIELDS = {"kernel_size", "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w",
          "offset", "round_mode"}
# names the former copies had: a new one means a rule is being re-derived
COPIES = {"_pair", "conv_geometry", "pool_geometry", "_conv_geometry", "_kernel_stride",
          "crop_offsets", "caffe_pooled_size", "pooled_size", "conv_window", "pool_window",
          "parameter_counts", "layer_parameters", "window_step"}
AREAS = ("core", "nets", "layers", "surgery", "data", "evaluation", "training", "analyses",
         "zoo", "compare", "export", "demo", "bench", "paper")


def _project_files():
    for area in AREAS:
        yield from sorted((REPO / area).rglob("*.py"))


def test_caffe_layer_arithmetic_is_defined_once():
    defined, read = [], []
    for path in _project_files():
        if path == GEOMETRY:
            continue
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in COPIES:
                defined.append(f"{where} defines {node.name}")
            if isinstance(node, ast.Attribute) and node.attr in FIELDS and \
                    isinstance(node.ctx, ast.Load):
                parent = parents.get(node)
                appended = isinstance(parent, ast.Attribute) and parent.attr in ("append",
                                                                                 "extend")
                if not appended:
                    read.append(f"{where} reads .{node.attr}")
    assert not defined, "core/geometry.py holds these rules:\n" + "\n".join(defined)
    assert not read, "read Caffe's window fields through core.geometry:\n" + "\n".join(read)


def test_one_ctypes_binding_of_the_blas():
    """cblas_sgemm's signature is declared in core/blas.py only."""
    declaring = [str(p.relative_to(REPO)) for p in _project_files()
                 if "cblas_sgemm.argtypes" in p.read_text()]
    assert declaring == ["core/blas.py"], declaring


def test_one_caffe_to_pytorch_translation():
    """The bench's peer runs export's generated module; no second walk of the prototxt."""
    peer = (REPO / "bench/torch_peer.py").read_text()
    assert "from export.graph import" in peer and "from export.torch_export import" in peer
    assert "F.conv2d" not in peer and "class CaffeGraph" not in peer
