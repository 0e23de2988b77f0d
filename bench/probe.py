"""One lever's measurement, in a fresh process: BLAS settings are read when the library loads.

`python -m bench.probe --save out.npy` times the experiment's deploy forward, each repeat
right after one sgemm of the BLAS libcaffe links, under this process's environment
(OPENBLAS_NUM_THREADS, OPENBLAS_CORETYPE, LD_LIBRARY_PATH, another build's PYTHONPATH …),
saves the net's output for the exactness comparison, and prints one JSON line.
`--sgemm-only` skips the net: the BLAS's square-sgemm rate, after checking its result
against numpy in double precision (a kernel set that computes wrongly is never a bound).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from core.defaults import REPO
from core.errors import cli_main


def caffe_root() -> Path:
    """The Caffe build this process uses: BENCH_CAFFE_ROOT when the bench runs another
    build (bench.builds.environment), else the venv's (make setup writes .venv/caffe-root)."""
    if os.environ.get("BENCH_CAFFE_ROOT"):
        return Path(os.environ["BENCH_CAFFE_ROOT"])
    marker = REPO / ".venv/caffe-root"
    if not marker.exists():
        raise FileNotFoundError(f"{marker}: missing; run `make setup` first")
    return Path(marker.read_text().strip())


def measure(experiment: str, size: tuple[int, int], *, repeats: int, sgemm_n: int,
            save: Path | None, width: float = 1.0, seed: int = 0,
            threads: int | None = None) -> dict:
    import caffe
    import numpy as np

    from bench.blas import SgemmProbe, caffe_library, describe, linked_blas, open_blas, set_threads
    from bench.flops import layer_flops, total_flops
    from bench.models import deploy_net, fill_weights, random_image
    from bench.timing import timed_against_bound

    caffe.set_mode_cpu()
    path = linked_blas(caffe_library(caffe_root()))
    lib = open_blas(path)
    if threads:
        set_threads(lib, threads)   # the forward and its paired sgemm probes alike
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


def sgemm_only(sgemm_n: int, repeats: int = 5, seed: int = 0,
               threads: int | None = None) -> dict:
    """The BLAS libcaffe links (under this environment), at `threads` when given (set through
    the library: the count the run's timings use): timed, then checked. The check's float64
    product runs on numpy's own BLAS, whose threads may spin a while after it; it comes after
    the timing so that they cannot take cores from it."""
    import numpy as np

    from bench.blas import (
        SgemmProbe,
        caffe_library,
        describe,
        linked_blas,
        open_blas,
        set_threads,
        sgemm,
    )
    path = linked_blas(caffe_library(caffe_root()))
    lib = open_blas(path)
    if threads:
        set_threads(lib, threads)
    probe = SgemmProbe(lib, sgemm_n, seed)
    probe()
    rates = [probe() for _ in range(repeats)]
    info = describe(lib, path).as_dict()   # the thread count in force during the timing
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((192, 160), dtype=np.float32),
            rng.standard_normal((160, 224), dtype=np.float32))
    out = np.empty((192, 224), np.float32)
    sgemm(lib, a, b, out)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.abs(out - exact).max() / np.abs(exact).max())
    return {"blas": info, "check_max_relative_error": error,
            "correct": error < 1e-5,
            "sgemm": {"n": sgemm_n, "gflops": float(np.median(rates)),
                      "runs": [round(r, 2) for r in rates]}}


@cli_main("bench-probe")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sgemm and deploy forward under this "
                                                 "environment (one JSON line on stdout).")
    parser.add_argument("--experiment", default="voc-fcn8s")
    parser.add_argument("--size", type=int, nargs=2, default=(500, 500), metavar=("H", "W"))
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sgemm-n", type=int, default=4096)
    parser.add_argument("--save", type=Path, help="write the net's output here (.npy)")
    parser.add_argument("--sgemm-only", action="store_true",
                        help="only check and time the BLAS's sgemm")
    parser.add_argument("--threads", type=int,
                        help="set the BLAS's thread count through the library first (the "
                             "count the bench's timings use)")
    args = parser.parse_args(argv)
    if args.sgemm_only:
        print(json.dumps(sgemm_only(args.sgemm_n, threads=args.threads)))
        return 0
    print(json.dumps(measure(args.experiment, tuple(args.size), repeats=args.repeats,
                             sgemm_n=args.sgemm_n, save=args.save, width=args.width,
                             threads=args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
