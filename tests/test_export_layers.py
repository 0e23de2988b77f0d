"""Each Caffe layer the exporters translate, at many odd sizes, against Caffe itself.

One small net (testkit/every_layer.py) holds every layer kind and the pooling cases where
frameworks differ: ceil mode clipping the last window (with and without padding), floor
mode, average pooling's divisor at the border, global pooling, GoogLeNet's stride-1 padded
pooling, grouped/dilated convolution, grouped deconvolution without bias, Crop with an
offset, Eltwise SUM with coefficients, PROD and MAX, Scale with bias, Concat, LRN, Softmax,
InnerProduct, leaky ReLU, in-place layers and Dropout. The FCNs use only some of these; the
rest are here so that the exporters' claims hold for every layer they accept. How each
layer reads as a graph is tests/test_export_graph.py's (no ONNX or PyTorch needed).
"""

from __future__ import annotations

import caffe
import pytest

from core.geometry import pooled_size
from export import verify
from export.caffe_net import forward, from_net
from export.onnx_export import OnnxRunner, save, to_onnx
from export.torch_export import TorchRunner, to_source
from export.torch_export import state_dict as torch_state
from testkit.every_layer import every_layer_net
from testkit.optional import require_modules
from testkit.random_weights import fill_random

require_modules("onnx", "onnxruntime", "torch")  # both exporters run beside Caffe

SIZES = [(1, 1), (2, 3), (3, 2), (4, 4), (5, 7), (6, 9), (7, 6), (8, 8), (11, 13), (16, 15)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layers")
    net_param = every_layer_net()
    deploy = tmp / "deploy.prototxt"
    deploy.write_text(str(net_param))
    net = caffe.Net(str(deploy), caffe.TEST)
    fill_random(net, seed=3)
    caffe_net = from_net("every-layer", 1.0, net_param, net)
    onnx_path = tmp / "every_layer.onnx"
    save(to_onnx(caffe_net.graph, name="every_layer"), onnx_path)
    module = tmp / "every_layer.py"
    module.write_text(to_source(caffe_net.graph, "every-layer"))
    import torch
    torch.save(torch_state(caffe_net.graph), tmp / "every_layer.pt")
    return caffe_net, OnnxRunner(onnx_path), TorchRunner(module)


def test_the_net_has_every_kind_of_layer(exported):
    kinds = {op.kind for op in exported[0].graph.ops}
    assert kinds == {"conv", "deconv", "relu", "pool", "lrn", "crop", "eltwise", "scale",
                     "concat", "softmax", "dense"}
    assert set(exported[0].graph.outputs) == {"prob", "up2", "f1", "a2", "fc",
                                              "q1", "q2", "q3", "q4", "q5"}


def _small_inputs(caffe_net, size):
    """Pictures scaled to about ±1: products and a softmax of scores in the hundreds would
    turn float32's rounding into large differences whatever the translation."""
    return {k: v / 128 for k, v in verify.net_inputs(caffe_net.graph.inputs, size).items()}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_onnx_and_torch_compute_what_caffe_computes(exported, size):
    caffe_net, *runners = exported
    inputs = _small_inputs(caffe_net, size)
    reference = forward(caffe_net.net, inputs)
    for runner in runners:
        found = verify.compare(size, reference, runner(inputs))
        assert verify.failures(found) == [], [verify.format_row(c) for c in found]
        assert all(c.max_rel < 1e-5 for c in found)


def test_pooled_sizes_follow_caffes_reshape(exported):
    caffe_net, clipped = exported[0], 0
    for h, w in SIZES:
        forward(caffe_net.net, _small_inputs(caffe_net, (h, w)))
        c2 = caffe_net.net.blobs["c2"].data.shape[2:]
        q1 = caffe_net.net.blobs["q1"].data.shape[2:]
        assert q1 == tuple(pooled_size(s, 2, 2, 1, True) for s in c2)
        clipped += sum(-(-(s + 2 - 2) // 2) + 1 > q for s, q in zip(c2, q1))
    assert clipped > 0   # the sizes do reach the clipping rule


def test_in_place_layers_give_new_values_of_the_same_blob(exported):
    graph = exported[0].graph
    relu = next(op for op in graph.ops if op.layer == "r1")
    assert relu.inputs == ("c1",) and relu.outputs == ("c1:r1",)
    assert graph.blob_of["c1:r1"] == "c1"


def test_the_generated_module_reads_like_the_net(exported):
    source = to_source(exported[0].graph, "every-layer")
    compile(source, "every_layer.py", "exec")
    assert "import caffe" not in source and "from caffe" not in source
    assert "        self.c1 = nn.Conv2d(3, 8, 3, padding=6)\n" in source
    assert "self.u1 = nn.ConvTranspose2d(8, 8, 4, stride=2, groups=2, bias=False)\n" in source
    assert "        c1 = F.leaky_relu(c1, " in source          # in place: the blob's name
    assert "caffe_pool(c2, (3, 3), (2, 2), (2, 2), ceil=True, average=False)" in source
