"""Every experiment's deploy net, exported to ONNX and to PyTorch, agrees with Caffe.

Reduced width (÷16) with random weights, pictures of odd sizes from 1×1 up; one larger
picture (500×375) for FCN-8s, and the full-width voc-fcn8s at 1×1 (its pool5 is then
7×7, so fc6 sees one window: the smallest full-width picture, still 134 M weights; its
random weights are set in the net rather than written to a 537 MB caffemodel and read
back, which the other tests do).
"""

from __future__ import annotations

from functools import partial

import pytest

from export import verify
from export.caffe_net import forward, from_net, load
from export.onnx_export import OnnxRunner
from export.onnx_export import write as write_onnx
from export.torch_export import TorchRunner
from export.torch_export import write as write_torch
from nets.experiments import EXPERIMENTS, build
from testkit.optional import require_modules
from testkit.random_weights import random_caffemodel, random_net

require_modules("onnx", "onnxruntime", "torch")  # both exporters run beside Caffe

WIDTH = 1 / 16
SIZES = ((1, 1), (37, 51), (5, 3))


def _exports_agree(name: str, width: float, sizes, tmp_path,
                   through_file: bool = True) -> list[verify.Comparison]:
    """Random weights, through a caffemodel file (the commands' path) or set in the net."""
    net_param = build(name, "deploy", width=width)
    if through_file:
        weights = random_caffemodel(net_param, tmp_path / "w.caffemodel", seed=len(name))
        caffe_net = load(name, weights, width)
    else:
        caffe_net = from_net(name, width, net_param, random_net(net_param))
    onnx_path = write_onnx(caffe_net, tmp_path / f"{name}.onnx")
    module_path = write_torch(caffe_net, tmp_path / "torch")
    channels = caffe_net.graph.inputs
    references = verify.reference_outputs(partial(forward, caffe_net.net), channels, sizes)
    del caffe_net
    comparisons = []
    for runner in (OnnxRunner(onnx_path), TorchRunner(module_path)):
        found = verify.check(runner, references, channels)
        assert verify.failures(found) == [], "\n".join(map(verify.format_row, found))
        comparisons += found
    return comparisons


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_exports_to_onnx_and_torch_as_caffe_computes_it(name, tmp_path):
    comparisons = _exports_agree(name, WIDTH, SIZES, tmp_path)
    outputs = set(EXPERIMENTS[name].score_blobs)
    assert {c.blob for c in comparisons} == outputs
    assert len(comparisons) == 2 * len(SIZES) * len(outputs)
    for c in comparisons:  # the crops restore every input size, 1×1 included
        assert c.shape[2:] == c.size


def test_a_larger_odd_picture_agrees_for_fcn8s(tmp_path):
    (c500, *_) = _exports_agree("voc-fcn8s", WIDTH, ((500, 375),), tmp_path)
    assert c500.shape == (1, 21, 500, 375)


def test_full_width_voc_fcn8s_agrees_with_caffe(tmp_path):
    comparisons = _exports_agree("voc-fcn8s", 1.0, ((1, 1),), tmp_path, through_file=False)
    assert [c.shape for c in comparisons] == [(1, 21, 1, 1)] * 2
