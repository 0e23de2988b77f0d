"""Shift-and-stitch is filter dilation (Section 3.2), shown on a real net: `make shift-stitch`.

    python -m nets.shift_stitch [--width 0.125] [--size 96] [--seed 0]

The net is VGG16's first two stages and a 1×1 score layer (conv1_1 conv1_2 pool1 conv2_1
conv2_2 score, channels × width, seeded random weights, ReLUs). pool1 subsamples by f = 2.
Shift-and-stitch runs the net on the f² inputs shifted by (dy, dx), 0 ≤ dy, dx < f, and
interlaces the outputs: output (i, j) of shift (dy, dx) lands at (f·i + dy, f·j + dx).
The rarefied net is the same net with pool1's stride set to 1 and every later filter
dilated by f (Caffe's `dilation`), one forward pass. Both give the same output to float
tolerance; the command prints the difference and what each costs (multiply-adds, time).

Every convolution here is unpadded ("valid"): with zero padding the two nets would differ
at the border (the strided net pads at stride 2, the dilated one at stride 1), which is
about padding, not about the equivalence. Each shifted input is cut to a length that pool1
tiles exactly, so no pooling window is a partial one (Caffe rounds pooled sizes up).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import caffe
import numpy as np
from caffe import layers as L
from caffe import params as P

from core.errors import cli_main
from nets.backbones import channels

LAYERS = (("conv1_1", 64), ("conv1_2", 64), ("pool1", None), ("conv2_1", 128),
          ("conv2_2", 128))
FACTOR = 2  # pool1's stride


def front(width: float, size: tuple[int, int], *, rarefied: bool, classes: int = 21):
    """VGG16 conv1_1 … conv2_2 + score as a NetParameter; `rarefied`: pool1 at stride 1 and
    later filters dilated by its stride."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, *size]))
    top, dilation = n.data, 1
    for name, nout in LAYERS:
        if nout is None:
            n[name] = top = L.Pooling(top, pool=P.Pooling.MAX, kernel_size=FACTOR,
                                      stride=1 if rarefied else FACTOR)
            dilation = FACTOR if rarefied else 1
            continue
        n[name] = L.Convolution(top, num_output=channels(nout, width), kernel_size=3, pad=0,
                                dilation=dilation)
        n["relu" + name[4:]] = top = L.ReLU(n[name], in_place=True)
    n.score = L.Convolution(top, num_output=classes, kernel_size=1, dilation=dilation)
    return n.to_proto()


def load(net_param, folder: Path, name: str) -> caffe.Net:
    path = folder / f"{name}.prototxt"
    path.write_text(str(net_param))
    return caffe.Net(str(path), caffe.TEST)


def fill(net: caffe.Net, seed: int) -> None:
    """He-scaled seeded weights and small biases, the same for both nets (same names)."""
    rng = np.random.RandomState(seed)
    for name in net.params:
        weights, bias = net.params[name]
        fan_in = np.prod(weights.data.shape[1:])
        weights.data[...] = rng.normal(0, np.sqrt(2.0 / fan_in), weights.data.shape)
        bias.data[...] = rng.normal(0, 0.1, bias.data.shape)


def copy_weights(source: caffe.Net, target: caffe.Net) -> None:
    for name in source.params:
        for a, b in zip(source.params[name], target.params[name]):
            b.data[...] = a.data


def forward(net: caffe.Net, image: np.ndarray) -> np.ndarray:
    net.blobs["data"].reshape(1, *image.shape)
    net.reshape()
    net.blobs["data"].data[0] = image
    return net.forward()["score"][0].copy()


def multiply_adds(net: caffe.Net) -> int:
    """Multiply-adds of every convolution at the net's current shapes."""
    total = 0
    for name in net.params:
        weights = net.params[name][0].data
        top = net.blobs[net.top_names[name][0]].data
        total += int(np.prod(weights.shape[1:])) * top.size
    return total


def tiled_length(length: int, shift: int) -> int:
    """The longest input from `shift` on whose pool1 windows are all whole."""
    usable = length - shift - 4  # two valid 3×3 convolutions before pool1
    return usable - usable % FACTOR + 4


def stitch(net: caffe.Net, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Shift-and-stitch on `image` (C×H×W): the interlaced output, a mask of the output
    positions some shift produced, and the multiply-adds of all f² passes."""
    outputs, work = {}, 0
    for dy in range(FACTOR):
        for dx in range(FACTOR):
            h, w = (tiled_length(n, d) for n, d in zip(image.shape[1:], (dy, dx)))
            outputs[dy, dx] = forward(net, image[:, dy:dy + h, dx:dx + w])
            work += multiply_adds(net)
    height = max(FACTOR * o.shape[1] + dy for (dy, _), o in outputs.items())
    width = max(FACTOR * o.shape[2] + dx for (_, dx), o in outputs.items())
    classes = outputs[0, 0].shape[0]
    out = np.zeros((classes, height, width), np.float32)
    filled = np.zeros((height, width), bool)
    for (dy, dx), o in outputs.items():
        out[:, dy::FACTOR, dx::FACTOR][:, :o.shape[1], :o.shape[2]] = o
        filled[dy::FACTOR, dx::FACTOR][:o.shape[1], :o.shape[2]] = True
    return out, filled, work


@dataclass
class Comparison:
    max_abs_difference: float
    max_abs_output: float
    positions: int               # output positions compared
    stitch_multiply_adds: int
    rarefied_multiply_adds: int
    stitch_seconds: float
    rarefied_seconds: float

    def report(self) -> str:
        return (f"shift-and-stitch (f = {FACTOR}: {FACTOR ** 2} shifted passes) vs the rarefied "
                f"net (pool1 stride 1, later filters dilated {FACTOR}×)\n"
                f"  {self.positions} output positions, max |difference| "
                f"{self.max_abs_difference:.3g} (outputs up to {self.max_abs_output:.3g})\n"
                f"  multiply-adds: stitch {self.stitch_multiply_adds / 1e6:.1f} M, rarefied "
                f"{self.rarefied_multiply_adds / 1e6:.1f} M\n"
                f"  time: stitch {1e3 * self.stitch_seconds:.1f} ms, rarefied "
                f"{1e3 * self.rarefied_seconds:.1f} ms (median of the runs)")


def compare(width: float = 0.125, size: int = 96, seed: int = 0, repeats: int = 3) -> Comparison:
    """Build both nets with the same weights, run both on one seeded picture, compare."""
    rng = np.random.RandomState(seed + 1)
    image = rng.normal(0, 50, (3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="shift-stitch-") as tmp:
        strided = load(front(width, (size, size), rarefied=False), Path(tmp), "strided")
        rarefied = load(front(width, (size, size), rarefied=True), Path(tmp), "rarefied")
    fill(strided, seed)
    copy_weights(strided, rarefied)
    stitch_times, rarefied_times = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        stitched, filled, stitch_work = stitch(strided, image)
        stitch_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        dense = forward(rarefied, image)
        rarefied_times.append(time.perf_counter() - began)
    h, w = min(dense.shape[1], stitched.shape[1]), min(dense.shape[2], stitched.shape[2])
    where = filled[:h, :w]
    difference = np.abs(stitched[:, :h, :w] - dense[:, :h, :w])[:, where]
    return Comparison(float(difference.max()), float(np.abs(dense).max()), int(where.sum()),
                      stitch_work, multiply_adds(rarefied), float(np.median(stitch_times)),
                      float(np.median(rarefied_times)))


@cli_main("shift-stitch")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Section 3.2: shift-and-stitch equals the net with pool1 at stride 1 and "
                    "dilated later filters; prints the difference and the costs.")
    parser.add_argument("--width", type=float, default=0.125,
                        help="channel width multiplier of the VGG16 stages (1.0 = VGG16's)")
    parser.add_argument("--size", type=int, default=96, help="input side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each")
    args = parser.parse_args(argv)
    if args.size < 16:
        parser.error("--size must be at least 16 pixels")
    caffe.set_mode_cpu()
    result = compare(args.width, args.size, args.seed, args.repeats)
    print(result.report())
    tolerance = 1e-4 * max(result.max_abs_output, 1.0)
    if result.max_abs_difference > tolerance:
        print(f"shift-stitch: the outputs differ by more than {tolerance:.3g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
