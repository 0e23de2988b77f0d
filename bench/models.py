"""The nets the benchmark times, built from the project's experiment registry.

A deploy net (Input layer, no loss) for forward timing and the peer check; a training net
(the release's SBDD data layer over a synthetic dataset, dropout and loss) for
forward+backward, data waiting and memory. Weights are random but seeded and fan-in scaled,
so activations stay in a normal range (no denormals, no overflow) and the peer comparison
sees real numbers rather than the zeros an unfilled deploy net holds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import caffe
import numpy as np
from caffe.proto import caffe_pb2

from nets.experiments import build


def write_net(net_param: caffe_pb2.NetParameter, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(net_param))
    return path


def deploy_net(experiment: str, size: tuple[int, int], workdir: Path, *,
               width: float = 1.0) -> tuple[caffe.Net, caffe_pb2.NetParameter]:
    """The experiment's deploy net for a 1×3×H×W input, unfilled."""
    net_param = build(experiment, "deploy", width=width, size=size)
    path = write_net(net_param, Path(workdir) / f"{experiment}-deploy.prototxt")
    return caffe.Net(str(path), caffe.TEST), net_param


def with_data_params(net_param: caffe_pb2.NetParameter, **params) -> caffe_pb2.NetParameter:
    """A copy whose Python data layers get extra param_str entries (e.g. prefetch=False)."""
    edited = caffe_pb2.NetParameter()
    edited.CopyFrom(net_param)
    for layer in edited.layer:
        if layer.type == "Python" and layer.python_param.param_str:
            values = ast.literal_eval(layer.python_param.param_str)
            values.update(params)
            layer.python_param.param_str = repr(values)
    return edited


def train_net(experiment: str, data_root: Path, workdir: Path, *, width: float = 1.0,
              prefetch: bool = True) -> tuple[caffe.Net, caffe_pb2.NetParameter]:
    """The experiment's training net reading data_root (the release's data/ layout)."""
    net_param = build(experiment, "train", width=width, data_root=str(data_root))
    net_param = with_data_params(net_param, prefetch=prefetch)
    path = write_net(net_param, Path(workdir) / f"{experiment}-train.prototxt")
    return caffe.Net(str(path), caffe.TRAIN), net_param


def fill_weights(net: caffe.Net, seed: int = 0) -> None:
    """He-normal weights (std √(2/fan-in)) and small biases, the same for a given seed.

    Deconvolution fan-in is taken over its output side, as its gradient flows there.
    """
    rng = np.random.default_rng(seed)
    for name in net.params:
        blobs = net.params[name]
        weights = blobs[0].data
        if net.layer_dict[name].type == "Deconvolution":
            fan_in = weights.shape[0] * weights.shape[2] * weights.shape[3] / \
                max(1, weights.shape[2] // 2) ** 2  # ≈ inputs reaching one output pixel
        else:
            fan_in = int(np.prod(weights.shape[1:]))
        weights[...] = rng.standard_normal(weights.shape, dtype=np.float32) * \
            np.float32(np.sqrt(2.0 / fan_in))
        for bias in blobs[1:]:
            bias.data[...] = rng.standard_normal(bias.data.shape, dtype=np.float32) * 0.01


def random_image(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A 1×3×H×W mean-subtracted-looking input (roughly ±100, like BGR minus the mean)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((1, 3, *size), dtype=np.float32) * 60).astype(np.float32)
