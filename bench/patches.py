"""Section 3.1: a grid of classifier outputs computed convolutionally vs patch by patch.

The paper times AlexNet: 1.2 ms per 227×227 patch (batched) against 22 ms for the 10×10
grid of a 500×500 image, "more than 5 times faster". The classifier here has AlexNet's
layers (kernels, strides, channels, groups, LRN, fc6…fc8 as convolutions) but no padding,
so a grid output is *exactly* the classifier on its patch: padding would let the grid's
inner layers see neighbouring pixels a lone patch replaces by zeros. Its patch is 227×227
at stride 32, and a 10×10 grid needs a (227 + 9·32) = 515 px square image so every patch
lies inside it. Both routes run in the same Caffe, and their outputs are compared before
they are timed.
"""

from __future__ import annotations

from pathlib import Path

import caffe
import numpy as np
from caffe import layers as L
from caffe import params as P

from bench.flops import layer_flops, total_flops
from bench.models import fill_weights
from bench.timing import timed
from bench.torch_peer import max_relative_difference
from nets.backbones import channels

# name, channels, kernel, stride, group; pool/LRN after conv1 and conv2, pool after conv5
ALEXNET_UNPADDED = (("conv1", 96, 11, 4, 1), ("conv2", 256, 5, 1, 2), ("conv3", 384, 3, 1, 1),
                    ("conv4", 384, 3, 1, 2), ("conv5", 256, 3, 1, 2))
PATCH, STRIDE, FC6_KERNEL = 227, 32, 2


def classifier(size: tuple[int, int], batch: int = 1, *, width: float = 1.0,
               num_classes: int = 1000):
    """The unpadded AlexNet-shaped classifier as a NetSpec proto, input batch×3×H×W."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[batch, 3, *size]))
    top = n.data
    for name, nout, kernel, stride, group in ALEXNET_UNPADDED:
        n[name] = L.Convolution(top, num_output=channels(nout, width), kernel_size=kernel,
                                stride=stride, group=group)
        n["relu" + name[-1]] = top = L.ReLU(n[name], in_place=True)
        if name in ("conv1", "conv2", "conv5"):
            n["pool" + name[-1]] = top = L.Pooling(top, pool=P.Pooling.MAX, kernel_size=3,
                                                   stride=2)
        if name in ("conv1", "conv2"):
            n["norm" + name[-1]] = top = L.LRN(top, local_size=5, alpha=1e-4, beta=0.75)
    for name, kernel in (("fc6", FC6_KERNEL), ("fc7", 1)):
        n[name] = L.Convolution(top, num_output=channels(4096, width), kernel_size=kernel)
        n["relu" + name[2:]] = top = L.ReLU(n[name], in_place=True)
    n.fc8 = L.Convolution(top, num_output=num_classes, kernel_size=1)
    return n.to_proto()


def _net(proto, path: Path) -> tuple[caffe.Net, int]:
    """The net and its forward FLOPs."""
    path.write_text(str(proto))
    net = caffe.Net(str(path), caffe.TEST)
    return net, total_flops(layer_flops(net, proto))["forward"]


def patches_of(image: np.ndarray, grid: int) -> np.ndarray:
    """The grid×grid patches (PATCH square, STRIDE apart) of a 1×3×H×W image, row-major."""
    return np.concatenate([image[:, :, STRIDE * i:STRIDE * i + PATCH,
                                 STRIDE * j:STRIDE * j + PATCH]
                           for i in range(grid) for j in range(grid)])


def run(workdir: Path, *, grid: int = 10, width: float = 1.0, repeats: int = 3,
        seed: int = 0, tolerance: float = 1e-4) -> dict:
    """Time the grid both ways after checking they agree; returns seconds and ratios."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    side = PATCH + STRIDE * (grid - 1)
    dense, dense_flops = _net(classifier((side, side), width=width),
                              workdir / "patch-dense.prototxt")
    fill_weights(dense, seed)
    grid_shape = dense.blobs["fc8"].data.shape[2:]
    if grid_shape != (grid, grid):
        raise AssertionError(f"a {side}px image gives a {grid_shape} grid, expected {grid}²")
    batched, naive_flops = _net(classifier((PATCH, PATCH), batch=grid * grid, width=width),
                                workdir / "patch-batched.prototxt")
    single, _ = _net(classifier((PATCH, PATCH), width=width), workdir / "patch-single.prototxt")
    for net in (batched, single):
        for name in dense.params:
            for mine, theirs in zip(net.params[name], dense.params[name]):
                mine.data[...] = theirs.data

    rng = np.random.default_rng(seed)
    image = (rng.standard_normal((1, 3, side, side), dtype=np.float32) * 60)
    crops = patches_of(image, grid)
    dense.blobs["data"].data[...] = image
    batched.blobs["data"].data[...] = crops

    def run_dense():
        return dense.forward()["fc8"]

    def run_batched():
        return batched.forward()["fc8"]

    def run_single():
        return [single.forward(data=crops[k:k + 1])["fc8"].copy() for k in range(len(crops))]

    expected = run_dense()[0].reshape(dense.blobs["fc8"].data.shape[1], -1).T  # (grid², C)
    diff_batched = max_relative_difference(expected, run_batched()[:, :, 0, 0])
    diff_single = max_relative_difference(expected, np.concatenate(run_single())[:, :, 0, 0])
    if max(diff_batched, diff_single) > tolerance:
        raise AssertionError(f"patchwise outputs differ from the convolutional grid by "
                             f"{max(diff_batched, diff_single):.2e} (relative)")
    t_dense = timed(run_dense, repeats)
    t_batched = timed(run_batched, repeats)
    t_single = timed(run_single, max(1, repeats - 1))
    return {
        "image": side, "grid": grid, "patch": PATCH, "width": width,
        "max_relative_difference": max(diff_batched, diff_single),
        "convolutional_flops": dense_flops, "naive_flops": naive_flops,
        "convolutional_s": t_dense, "naive_batched_s": t_batched, "naive_one_by_one_s": t_single,
        "speedup_vs_batched": t_batched["median_s"] / t_dense["median_s"],
        "speedup_vs_one_by_one": t_single["median_s"] / t_dense["median_s"],
    }
