"""Tiny nets and weights for the tests of the zoo and comparison tools.

The nets have FCN's shape (conv → pool → score → 2× deconvolution → crop to the input) at a
few channels wide, so a forward pass, a training step or an export takes milliseconds
while every code path of the full-size tools is exercised on real Caffe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _body(n, data, *, classes: int, width: int, extra_layer: bool):
    from caffe import layers as L
    from caffe import params as P
    from caffe.coord_map import crop
    n.conv1 = L.Convolution(data, num_output=width, kernel_size=3, pad=1,
                            weight_filler=dict(type="gaussian", std=0.1),
                            bias_filler=dict(type="constant", value=0.1))
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    top = n.conv1
    if extra_layer:
        n.conv1b = L.Convolution(top, num_output=width, kernel_size=1,
                                 weight_filler=dict(type="gaussian", std=0.1))
        top = n.conv1b
    n.pool1 = L.Pooling(top, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.score_fr = L.Convolution(n.pool1, num_output=classes, kernel_size=1,
                               weight_filler=dict(type="gaussian", std=0.1))
    n.upscore = L.Deconvolution(n.score_fr, param=[dict(lr_mult=0)],
                                convolution_param=dict(num_output=classes, kernel_size=4,
                                                       stride=2, bias_term=False,
                                                       weight_filler=dict(type="bilinear")))
    n.score = crop(n.upscore, data)
    return n.score


def write_tiny_deploy(path: Path | str, *, classes: int = 3, width: int = 4,
                      size: tuple[int, int] = (20, 24), channels: int = 3,
                      extra_layer: bool = False) -> Path:
    """An Input-fed deploy net whose output blob is 'score' (N, classes, H, W)."""
    import caffe
    from caffe import layers as L
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, channels, *size]))
    _body(n, n.data, classes=classes, width=width, extra_layer=extra_layer)
    path = Path(path)
    path.write_text(str(n.to_proto()))
    return path


def write_tiny_train(path: Path | str, *, classes: int = 3, width: int = 4,
                     size: tuple[int, int] = (12, 12), batch: int = 2) -> Path:
    """A training net on DummyData (refilled from Caffe's seeded RNG every step)."""
    import caffe
    from caffe import layers as L
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(
        shape=[dict(dim=[batch, 3, *size]), dict(dim=[batch, 1, *size])],
        data_filler=[dict(type="gaussian", std=1.0),
                     dict(type="uniform", min=0, max=classes - 1e-3)], ntop=2)
    score = _body(n, n.data, classes=classes, width=width, extra_layer=False)
    n.drop = L.Dropout(score, dropout_ratio=0.2, in_place=False)
    n.loss = L.SoftmaxWithLoss(n.drop, n.label, loss_param=dict(normalize=False))
    path = Path(path)
    path.write_text(str(n.to_proto()))
    return path


def write_solver(path: Path | str, train_net: Path | str, *, seed: int | None = 1337,
                 base_lr: float = 1e-3, max_iter: int = 100) -> Path:
    """A plain SGD solver for write_tiny_train's net; no snapshots, no test net.

    seed=None leaves random_seed out, as the release's solvers do.
    """
    from caffe.proto import caffe_pb2
    solver = caffe_pb2.SolverParameter(
        train_net=str(train_net), base_lr=base_lr, lr_policy="fixed", momentum=0.9,
        weight_decay=5e-4, max_iter=max_iter, display=0, snapshot_after_train=False)
    if seed is not None:
        solver.random_seed = seed
    path = Path(path)
    path.write_text(str(solver))
    return path


def random_caffemodel(prototxt: Path | str, out: Path | str, *, seed: int = 0) -> Path:
    """Weights for `prototxt` from a seeded normal distribution (same seed, same bytes)."""
    import caffe
    net = caffe.Net(str(prototxt), caffe.TEST)
    rng = np.random.default_rng(seed)
    for params in net.params.values():
        for blob in params:
            blob.data[...] = rng.normal(0.0, 0.3, blob.data.shape).astype(np.float32)
    net.save(str(out))
    return Path(out)


def flip_bit(source: Path | str, dest: Path | str, byte: int, bit: int = 0) -> Path:
    """Copy `source` to `dest` with one bit inverted."""
    data = bytearray(Path(source).read_bytes())
    data[byte] ^= 1 << bit
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def published_model(root: Path, name: str, seed: int) -> tuple[Path, Path, Path]:
    """A tiny trained model as a model-zoo user meets it: (server folder holding
    `name`.caffemodel, the experiment's net folder with deploy/train/solver, the weights)."""
    server, net_dir = Path(root) / "server", Path(root) / "net"
    server.mkdir()
    net_dir.mkdir()
    deploy = write_tiny_deploy(net_dir / "deploy.prototxt")
    write_tiny_train(net_dir / "train.prototxt")
    write_solver(net_dir / "solver.prototxt", "train.prototxt")
    weights = random_caffemodel(deploy, server / f"{name}.caffemodel", seed=seed)
    return server, net_dir, weights
