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
from caffe import layers as L

from bench.timing import paired, timed

VOC_MEAN = (104.00699, 116.66877, 122.67892)


def data_only_net(module: str, layer: str, params: dict, workdir: Path, name: str) -> caffe.Net:
    """A net of one Python data layer (two tops: data, label)."""
    n = caffe.NetSpec()
    n.data, n.label = L.Python(module=module, layer=layer, param_str=repr(params), ntop=2)
    path = Path(workdir) / f"{name}.prototxt"
    path.write_text(str(n.to_proto()))
    return caffe.Net(str(path), caffe.TEST)


def loading_rates(data_root: Path, workdir: Path, *, images: int = 20) -> dict:
    """Images/s of the VOC (JPEG + PNG) and SBDD (JPEG + .mat) layers, prefetch on and off."""
    layers = {
        "voc_jpeg_png": ("VOCSegDataLayer", dict(voc_dir=str(Path(data_root) / "pascal/VOC2011"),
                                                  split="seg11valid", mean=VOC_MEAN)),
        "sbdd_jpeg_mat": ("SBDDSegDataLayer", dict(sbdd_dir=str(Path(data_root) / "sbdd/dataset"),
                                                   split="train", seed=1337, mean=VOC_MEAN)),
    }
    rates = {}
    for label, (layer, params) in layers.items():
        for prefetch in (False, True):
            net = data_only_net("voc_layers", layer, dict(params, prefetch=prefetch), workdir,
                                f"data-{label}-{prefetch}")
            result = timed(lambda net=net: [net.forward() for _ in range(images)], 3)
            rates[f"{label}_{'prefetch' if prefetch else 'no_prefetch'}"] = {
                "images_per_s": images / result["median_s"],
                "shape": list(net.blobs["data"].data.shape), **result}
            del net
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
