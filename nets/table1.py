"""Table 1's architecture columns, computed from the generated nets: `make table1-nets`.

    python -m nets.table1 [--repeats 3] [--size 500] [--no-time]

conv. layers (convolutions on the longest path to the class scores), parameters (learned,
the fixed bilinear upsampling excluded), receptive field and max stride of the class
scores (GoogLeNet's discarded 7×7 average pooling counted, as the paper's 907 does), and the
forward time of a 500×500 input on this machine (median of `repeats`; the paper's are on a
Titan X). The mean IU column is the table1-* runs' (make table1-fcn-vgg16 …).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import caffe
import numpy as np

from core import paper_numbers
from core.errors import cli_main
from nets.analysis import conv_depth, geometry, learned_parameter_count
from nets.experiments import build
from nets.prototxt import to_prototxt

TABLE1 = ("table1-fcn-alexnet", "table1-fcn-vgg16", "table1-fcn-googlenet")
# the body's last blob, and the average pooling GoogLeNet's classifier had and FCN drops
BODY_TOP = {"table1-fcn-alexnet": ("fc7", 0), "table1-fcn-vgg16": ("fc7", 0),
            "table1-fcn-googlenet": ("inception_5b/output", 7)}
# the paper's Table 1 row of each net (core.paper_numbers holds the numbers)
PAPER_ROW = {"table1-fcn-alexnet": "FCN-AlexNet", "table1-fcn-vgg16": "FCN-VGG16",
             "table1-fcn-googlenet": "FCN-GoogLeNet"}


def paper_columns(name: str) -> str:
    """The paper's conv. layers, parameters, rf size, max stride and forward time of a net."""
    def number(column: str):
        return paper_numbers.number("1", PAPER_ROW[name], column)
    return (f"{number('conv_layers')}, {number('parameters_m')}M, {number('rf_size')}, "
            f"{number('max_stride')}, {number('forward_ms')} ms")


def facts(name: str, *, size: int = 500, repeats: int = 3, timed: bool = True) -> dict:
    deploy = build(name, "deploy", size=(size, size))
    body, pool = BODY_TOP[name]
    g = geometry(deploy, body)
    row = {"experiment": name, "conv_layers": conv_depth(deploy, "score_fr"),
           "receptive_field": g.receptive_field + max(pool - 1, 0) * g.stride,
           "max_stride": g.stride, "parameters_m": learned_parameter_count(deploy) / 1e6}
    with tempfile.TemporaryDirectory(prefix="table1-") as tmp:
        path = Path(tmp) / "deploy.prototxt"
        path.write_text(to_prototxt(deploy))
        net = caffe.Net(str(path), caffe.TEST)
    if timed:
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            net.forward()
            times.append(time.perf_counter() - began)
        row["forward_ms"] = 1e3 * float(np.median(times))
    return row


@cli_main("table1")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Table 1's architecture columns from the "
                                                 "generated nets, with forward timing.")
    parser.add_argument("--size", type=int, default=500, help="input side (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per net")
    parser.add_argument("--no-time", action="store_true", help="skip the forward timing")
    args = parser.parse_args(argv)
    caffe.set_mode_cpu()
    print("| net | conv. layers | parameters | rf size | max stride | forward (CPU) | paper |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in TABLE1:
        r = facts(name, size=args.size, repeats=args.repeats, timed=not args.no_time)
        ms = f"{r['forward_ms']:.0f} ms" if "forward_ms" in r else "-"
        print(f"| {name} | {r['conv_layers']} | {r['parameters_m']:.0f}M | "
              f"{r['receptive_field']} | {r['max_stride']} | {ms} | {paper_columns(name)} "
              f"(Titan X) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
