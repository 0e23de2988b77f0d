"""Where a Caffe forward's time goes beyond the sgemm bound, layer by layer.

Each layer is timed alone (net.forward(start=name, end=name)); each convolution's GEMMs
are then replayed with the same (M, N, K) through the same BLAS on scratch arrays. The
difference splits the gap to the bound into: GEMMs slower than the square-sgemm rate on
these shapes, the convolution's own overhead (im2col/col2im, the bias GEMM), and the
layers that are no GEMM at all (ReLU, pooling, crop, sum).
"""

from __future__ import annotations

import ctypes
import time

import numpy as np

from bench.blas import sgemm


def gemm_shapes(net, name: str) -> list[tuple[int, int, int]]:
    """The (M, N, K) sgemm calls Caffe makes for one forward of a (de)convolution layer:
    one per image and group (convolution: weights × columns; deconvolution: weightsᵀ ×
    input, then col2im)."""
    layer = net.layer_dict[name]
    weights = layer.blobs[0].data.shape
    bottom = net.blobs[net.bottom_names[name][0]].data.shape
    top = net.blobs[net.top_names[name][0]].data.shape
    if layer.type == "Convolution":
        groups = bottom[1] // weights[1]
        shape = (weights[0] // groups, int(np.prod(top[2:])), int(np.prod(weights[1:])))
    else:
        groups = top[1] // weights[1]  # weights: (in, out/group, kh, kw)
        shape = (int(np.prod(weights[1:])), int(np.prod(bottom[2:])), bottom[1] // groups)
    return [shape] * (bottom[0] * groups)


def time_gemms(lib: ctypes.CDLL, shapes: list[tuple[int, int, int]], repeats: int = 2) -> float:
    """Median seconds for the list of sgemm calls on scratch float32 arrays."""
    runs = []
    cache: dict = {}
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for m, n, k in shapes:
            if (m, n, k) not in cache:
                cache.clear()  # hold one shape's arrays at a time
                a = np.full((m, k), 0.01, np.float32)
                b = np.full((k, n), 0.01, np.float32)
                cache[(m, n, k)] = (a, b, np.empty((m, n), np.float32))
                start = time.perf_counter()
            sgemm(lib, *cache[(m, n, k)])
        runs.append(time.perf_counter() - start)
    return float(np.median(runs[1:]))


def layer_times(net, repeats: int = 2) -> dict[str, float]:
    """Median seconds of each layer's forward alone (inputs as left by a full forward)."""
    net.forward()
    names = list(net._layer_names)
    times = {}
    for name in names:
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            net.forward(start=name, end=name)
            runs.append(time.perf_counter() - start)
        times[name] = float(np.median(runs))
    return times


def breakdown(net, lib: ctypes.CDLL, flops_by_layer: dict[str, int], sgemm_gflops: float,
              repeats: int = 2) -> dict:
    """Per-layer rows and the totals: bound, GEMMs, convolution overhead, other layers."""
    times = layer_times(net, repeats)
    rows, gemm_total, conv_total = [], 0.0, 0.0
    for name, seconds in times.items():
        kind = net.layer_dict[name].type
        row = {"layer": name, "type": kind, "seconds": seconds}
        if kind in ("Convolution", "Deconvolution"):
            gemm = time_gemms(lib, gemm_shapes(net, name), repeats)
            row.update(gemm_s=gemm, flops=flops_by_layer.get(name, 0),
                       bound_s=flops_by_layer.get(name, 0) / (sgemm_gflops * 1e9))
            gemm_total += gemm
            conv_total += seconds
        rows.append(row)
    bound = sum(flops_by_layer.values()) / (sgemm_gflops * 1e9)
    total = sum(times.values())
    return {"layers": rows, "sum_of_layers_s": total, "bound_s": bound,
            "gemm_s": gemm_total, "conv_overhead_s": conv_total - gemm_total,
            "other_layers_s": total - conv_total,
            "gemm_efficiency": bound / gemm_total if gemm_total else None}
