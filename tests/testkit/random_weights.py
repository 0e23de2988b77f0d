"""Random weights for deploy nets, as a caffe.Net or written as a caffemodel (export tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import caffe
import numpy as np


def fill_random(net, seed: int = 0) -> None:
    """Gaussian weights scaled by fan-in (activations stay O(1) through 20 layers), small
    random biases, Scale factors near one."""
    rng = np.random.default_rng(seed)
    for blobs in net.params.values():
        for i, blob in enumerate(blobs):
            shape = blob.data.shape
            if i == 0 and len(shape) > 1:
                std = np.sqrt(2.0 / np.prod(shape[1:]))
                blob.data[...] = rng.standard_normal(shape, np.float32) * np.float32(std)
            elif i == 0:   # Scale's factor
                blob.data[...] = rng.uniform(0.5, 1.5, shape)
            else:
                blob.data[...] = rng.normal(0, 0.1, shape)


def random_net(net_param, seed: int = 0):
    """`net_param`'s caffe.Net with random weights."""
    with tempfile.TemporaryDirectory() as tmp:
        deploy = Path(tmp) / "deploy.prototxt"
        deploy.write_text(str(net_param))
        net = caffe.Net(str(deploy), caffe.TEST)
    fill_random(net, seed)
    return net


def random_caffemodel(net_param, path: Path, seed: int = 0) -> Path:
    """Save `net_param`'s net with random weights to `path` (a real caffemodel)."""
    random_net(net_param, seed).save(str(path))
    return path
