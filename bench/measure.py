"""The measurements bench.run and bench.threads both take: one experiment timed in Caffe
(forward and training iteration, each paired with an sgemm probe) and a measurement run in
a fresh process. Their own module, so the thread table does not import the whole bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.defaults import REPO


def rates(row: dict) -> dict:
    """GFLOP/s and the (paired, median) ratio to the sgemm bound of a row's timings."""
    for key, flops_key in (("forward", "forward_flops"), ("train", "train_flops")):
        if row.get(key):
            row[f"{key}_gflops"] = row[flops_key] / row[key]["median_s"] / 1e9
            row[f"{key}_over_bound"] = row[key]["over_bound"]
    return row


def time_caffe_net(experiment: str, workdir: Path, data_root: Path, probe, *,
                   size: tuple[int, int], width: float, seed: int, repeats: int,
                   train_repeats: int, save: Path | None = None) -> dict:
    """Deploy forward and training-iteration timings of one experiment in Caffe, each
    repeat paired with an sgemm probe; `save` keeps the forward's output (.npy)."""
    import numpy as np

    from bench.data_rate import iterations
    from bench.flops import layer_flops, total_flops
    from bench.models import deploy_net, fill_weights, random_image, train_net
    from bench.timing import timed_against_bound

    net, net_param = deploy_net(experiment, size, workdir, width=width)
    fill_weights(net, seed)
    net.blobs["data"].data[...] = random_image(size, seed)
    row = {"forward_flops": total_flops(layer_flops(net, net_param))["forward"]}
    row["forward"] = timed_against_bound(net.forward, row["forward_flops"], probe, repeats)
    if save is not None:
        np.save(save, net.blobs[net.outputs[0]].data)
    del net
    train, train_param = train_net(experiment, data_root, workdir, width=width)
    fill_weights(train, seed)
    row["train_flops"] = total_flops(layer_flops(train, train_param))["forward_backward"]
    row["train"] = iterations(train, train_repeats, flops=row["train_flops"], probe=probe)
    row["train_input_shape"] = list(train.blobs["data"].data.shape)
    return rates(row)


def subprocess_json(module: str, *arguments: str, timeout: float = 300,
                    env: dict | None = None) -> dict:
    """Run `python -m module ...` from the repository (with `env` overrides); its last
    stdout line as JSON."""
    command = [sys.executable, "-m", module, *arguments]
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, check=False, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"error": f"{module} timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return {"error": f"{module}: {tail[-1]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])
