"""One lever's measurement, in a fresh process: BLAS settings are read when the library loads.

`python -m bench.probe --save out.npy` times the experiment's deploy forward, each repeat
right after one sgemm of the BLAS libcaffe links, under this process's environment
(OPENBLAS_NUM_THREADS, OPENBLAS_CORETYPE, LD_LIBRARY_PATH, LD_PRELOAD …), saves the net's
output for the exactness comparison, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def caffe_root() -> Path:
    """The Caffe build the venv uses (make setup writes .venv/caffe-root)."""
    marker = REPO / ".venv/caffe-root"
    if not marker.exists():
        raise FileNotFoundError(f"{marker}: missing; run `make setup` first")
    return Path(marker.read_text().strip())


def measure(experiment: str, size: tuple[int, int], *, repeats: int, sgemm_n: int,
            save: Path | None, width: float = 1.0, seed: int = 0) -> dict:
    import caffe
    import numpy as np

    from bench.blas import SgemmProbe, caffe_library, describe, linked_blas, open_blas
    from bench.flops import layer_flops, total_flops
    from bench.models import deploy_net, fill_weights, random_image
    from bench.timing import timed_against_bound

    caffe.set_mode_cpu()
    path = linked_blas(caffe_library(caffe_root()))
    lib = open_blas(path)
    with tempfile.TemporaryDirectory() as workdir:
        net, net_param = deploy_net(experiment, size, Path(workdir), width=width)
    fill_weights(net, seed)
    net.blobs["data"].data[...] = random_image(size, seed)
    flops = total_flops(layer_flops(net, net_param))["forward"]
    probe = SgemmProbe(lib, sgemm_n, seed)
    probe()  # warm-up
    forward = timed_against_bound(net.forward, flops, probe, repeats)
    output = net.blobs[net.outputs[0]].data
    if save is not None:
        np.save(save, output)
    return {"blas": describe(lib, path).as_dict(), "forward": forward, "flops": flops,
            "sgemm": {"n": sgemm_n, "gflops": float(np.median(forward["sgemm_gflops_runs"]))}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sgemm and deploy forward under this "
                                                 "environment (one JSON line on stdout).")
    parser.add_argument("--experiment", default="voc-fcn8s")
    parser.add_argument("--size", type=int, nargs=2, default=(500, 500), metavar=("H", "W"))
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sgemm-n", type=int, default=4096)
    parser.add_argument("--save", type=Path, help="write the net's output here (.npy)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    print(json.dumps(measure(args.experiment, tuple(args.size), repeats=args.repeats,
                             sgemm_n=args.sgemm_n, save=args.save, width=args.width)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
