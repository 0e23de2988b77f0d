"""Peak memory (RSS) of training iterations, in a fresh process so nothing else counts.

`python -m bench.memory --data-root R` builds the experiment's training net over the
dataset at R, runs a few iterations with the data layer's prefetch off, and prints one
JSON line: peak RSS after building the net and after the iterations (VmHWM), and the
iterations' timing and data waiting (without prefetch, the layer decodes in its forward).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from core.errors import cli_main
from core.memory import peak_rss_bytes


def peak_rss_mib() -> float:
    """The process's high-water resident set size (VmHWM: its own, not the bench's that
    started it; core.memory), MiB."""
    return peak_rss_bytes() / 2**20


def measure(experiment: str, data_root: Path, *, width: float, iterations: int,
            prefetch: bool, seed: int = 0) -> dict:
    import caffe

    from bench.data_rate import iterations as timed_iterations
    from bench.models import fill_weights, train_net

    caffe.set_mode_cpu()
    baseline = peak_rss_mib()
    with tempfile.TemporaryDirectory() as workdir:
        net, _ = train_net(experiment, data_root, Path(workdir), width=width, prefetch=prefetch)
        fill_weights(net, seed)
        built = peak_rss_mib()
        timing = timed_iterations(net, iterations)
    return {"experiment": experiment, "width": width, "prefetch": prefetch,
            "input_shape": list(net.blobs["data"].data.shape),
            "peak_rss_mib_at_start": baseline, "peak_rss_mib_after_setup": built,
            "peak_rss_mib": peak_rss_mib(), "iteration": timing}


@cli_main("bench-memory")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Peak RSS of training iterations (one JSON "
                                                 "line on stdout).")
    parser.add_argument("--experiment", default="voc-fcn8s")
    parser.add_argument("--data-root", type=Path, required=True,
                        help="a data root in the release's layout (sbdd/dataset/…)")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--prefetch", action="store_true", help="keep the layer's prefetch on")
    args = parser.parse_args(argv)
    result = measure(args.experiment, args.data_root, width=args.width,
                     iterations=args.iterations, prefetch=args.prefetch)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
