"""Data layers: how fast they load, and how long a training iteration waits for them.

Loading rate is measured on a net holding only the data layer (nothing else to overlap
with), with and without the layer's background prefetch. Waiting is measured inside real
training iterations: the data layer's forward (which, with prefetch, only collects the
example decoded during the previous iteration) timed apart from the rest of the
forward and the backward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import caffe

from bench.data_layers import measure
from bench.timing import paired


def loading_rates(data_root: Path, workdir: Path, *, images: int = 20) -> dict:
    """Images/s of the VOC (JPEG + PNG) and SBDD (JPEG + .mat) layers, prefetch on and off:
    the data layer alone (bench.data_layers.measure, the `make bench-data` table's figure)."""
    layers = {"voc_jpeg_png": ("voc", "seg11valid"), "sbdd_jpeg_mat": ("sbdd", "train")}
    rates = {}
    for label, (name, split) in layers.items():
        for prefetch in (False, True):
            rates[f"{label}_{'prefetch' if prefetch else 'no_prefetch'}"] = measure(
                name, data_root, split, prefetch, images, 0, Path(workdir), repeats=3)
    return rates


def split_iteration(net: caffe.Net) -> tuple[float, float]:
    """One training iteration: (seconds in the data layer, seconds in all)."""
    names = list(net._layer_names)
    start = time.perf_counter()
    net.forward(end=names[0])
    data = time.perf_counter() - start
    net.forward(start=names[1])
    net.backward()
    return data, time.perf_counter() - start


def iterations(net: caffe.Net, repeats: int, *, warmup: int = 1, flops: int | None = None,
               probe: Callable[[], float] | None = None) -> dict:
    """Median iteration time and the share spent waiting on the data layer; with an sgemm
    probe (and the iteration's FLOPs), the paired ratio to the bound as well."""
    for _ in range(warmup):
        split_iteration(net)
    runs, rates = [], []
    for _ in range(repeats):
        if probe is not None:
            rates.append(probe())
        runs.append(split_iteration(net))
    data = sorted(d for d, _ in runs)[len(runs) // 2]
    result = {"median_s": sorted(t for _, t in runs)[len(runs) // 2],
              "runs_s": [round(t, 4) for _, t in runs],
              "data_wait_s": [round(d, 5) for d, _ in runs], "data_wait_median_s": data,
              "data_wait_fraction": sum(d for d, _ in runs) / sum(t for _, t in runs)}
    if probe is not None and flops:
        result.update({k: v for k, v in paired([t for _, t in runs], rates, flops).items()
                       if k not in result})
    return result
