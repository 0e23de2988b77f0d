"""An experiment's starting weights, in one command.

    python -m surgery.prepare --net nets/voc-fcn32s/deploy.prototxt \\
        --base ilsvrc-nets/vgg16-fcn.caffemodel --out runs/voc-fcn32s/start.caffemodel

modes:
  fcn          transplant an FCN base (vgg16-fcn, alexnet-fcn, googlenet-fcn)
  staged       transplant the previous stage's trained weights (16s from 32s, 8s from 16s);
               the base must hold score layers of the net
  color-d      NYUD early fusion: as fcn, and conv1_1_bgrd is the base's conv1_1 with a
               fourth (depth) input channel equal to the mean of the three colour filters
  late-fusion  NYUD color-HHA: each --stream MODALITY=WEIGHTS (a trained single-modality
               FCN) transplanted with the modality as layer-name suffix (conv1_1hha …)

Every mode then sets bilinear kernels in all Deconvolution layers, checks that the score
layers not transplanted are zero, and refuses (unless --allow-missing) to leave any other
layer at its initialisation: the release's nets declare no fillers, so such a layer would
start at zero and the net would output zeros.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import caffe
import numpy as np

from core.caffe_files import check_buildable, read_params, read_prototxt
from core.errors import cli_main
from surgery.definition import data_layers
from surgery.errors import SurgeryError
from surgery.interp import interp
from surgery.transplant import Report, nonzero_layers, transplant

MODES = ("fcn", "staged", "color-d", "late-fusion")
# Left at init on purpose: score layers (zero, as the paper) and the all-at-once scaling of
# pool4/pool3 (a constant filler, lr 0). Deconvolutions get bilinear kernels.
INIT_TYPES = ("Scale",)


def is_score_layer(name: str) -> bool:
    return name.startswith("score")


def load_target(prototxt: Path | str):
    """caffe.Net for a net definition, refusing ones that would read a dataset or abort."""
    definition = read_prototxt(prototxt)
    readers = data_layers(definition)
    if readers:
        deploy = Path(prototxt).with_name("deploy.prototxt")
        hint = f" ({deploy} has the same parameters)" if deploy.is_file() else ""
        raise SurgeryError(f"{prototxt} reads data through {readers}; give the experiment's "
                           f"deploy.prototxt{hint}")
    check_buildable(definition, str(prototxt))
    return caffe.Net(str(prototxt), caffe.TEST)


def color_d_params(base: Path | str, net) -> dict[str, list[np.ndarray]]:
    """The base's parameters with conv1_1 (3 input channels) as conv1_1_bgrd (4: B, G, R
    and depth, the depth filter the mean of the colour filters)."""
    params = dict(read_params(base))
    if "conv1_1_bgrd" not in net.params:
        raise SurgeryError("color-d: the net has no conv1_1_bgrd layer")
    if "conv1_1_bgrd" in params:
        return params  # already an RGB-D net's weights
    if "conv1_1" not in params:
        raise SurgeryError(f"color-d: {base} has no conv1_1 to extend")
    weights, *rest = params.pop("conv1_1")
    if weights.ndim != 4 or weights.shape[1] != 3:
        raise SurgeryError(f"color-d: {base} conv1_1 weights are {weights.shape}, not O×3×k×k")
    depth = weights.mean(axis=1, keepdims=True)
    params["conv1_1_bgrd"] = [np.concatenate([weights, depth], axis=1), *rest]
    return params


def prepare(net_prototxt: Path | str, out: Path | str, *, base: Path | str | None = None,
            mode: str = "fcn", streams: Mapping[str, Path | str] | None = None,
            allow_missing: bool = False, verbose: bool = True) -> Report:
    """Write the starting weights for the net `net_prototxt` to `out`; returns the report
    (left_at_init: what the weights did not cover, before interp). See the module help."""
    if mode not in MODES:
        raise SurgeryError(f"unknown mode {mode!r}; choose from {MODES}")
    if (mode == "late-fusion") != bool(streams):
        raise SurgeryError("late-fusion takes --stream MODALITY=WEIGHTS for each stream, "
                           "and only late-fusion takes streams")
    if mode != "late-fusion" and base is None:
        raise SurgeryError(f"mode {mode} needs --base WEIGHTS")
    net = load_target(net_prototxt)
    if mode == "late-fusion":
        report = Report()
        for modality, weights in streams.items():
            if verbose:
                print(f"stream {modality}: {weights}")
            part = transplant(net, weights, suffix=modality, verbose=verbose)
            report.copied += part.copied
            report.coerced += part.coerced
            report.dropped += [f"{name} ({modality})" for name in part.dropped]
        filled = set(report.copied) | set(report.coerced)
        report.left_at_init = [name for name in net.params if name not in filled]
    else:
        source = color_d_params(base, net) if mode == "color-d" else base
        report = transplant(net, source, verbose=verbose)
    if mode == "staged" and not any(map(is_score_layer, report.copied)):
        raise SurgeryError(f"staged: {base} holds no score layer of {net_prototxt}; staged "
                           f"training starts from the previous stage's trained weights")
    upsampled = interp(net)
    _check_left_at_init(net, report, upsampled, allow_missing, net_prototxt)
    if verbose:
        print(f"bilinear kernels: {', '.join(upsampled) or 'none'}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    net.save(str(out))
    return report


def _check_left_at_init(net, report: Report, upsampled: list[str], allow_missing: bool,
                        source: Path | str) -> None:
    fresh_scores = [n for n in report.left_at_init if is_score_layer(n)]
    nonzero = nonzero_layers(net, fresh_scores)
    if nonzero:
        raise SurgeryError(f"{source}: new score layers {nonzero} are not zero-initialised "
                           f"(the paper starts them at zero)")
    unexplained = [n for n in report.left_at_init
                   if n not in upsampled and not is_score_layer(n)
                   and net.layer_dict[n].type not in INIT_TYPES]
    if unexplained and not allow_missing:
        raise SurgeryError(f"the weights cover no {unexplained} of {source}; they would start "
                           f"at their fillers (zero for the release's nets). Wrong base, or "
                           f"pass --allow-missing")


@cli_main("surgery-prepare")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surgery.prepare",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--net", required=True, type=Path,
                        help="the experiment's deploy.prototxt (same parameters as train)")
    parser.add_argument("--base", type=Path, help="weights to start from (not late-fusion)")
    parser.add_argument("--out", required=True, type=Path, help="caffemodel to write")
    parser.add_argument("--mode", default="fcn", choices=MODES)
    parser.add_argument("--stream", action="append", default=[], metavar="MODALITY=WEIGHTS",
                        help="late-fusion: a stream's trained weights (repeat per modality)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="let body layers the weights do not cover keep their fillers")
    args = parser.parse_args(argv)
    streams = {}
    for item in args.stream:
        modality, sep, weights = item.partition("=")
        if not sep or not modality or not weights:
            parser.error(f"--stream wants MODALITY=WEIGHTS, got {item!r}")
        streams[modality] = Path(weights)
    prepare(args.net, args.out, base=args.base, mode=args.mode, streams=streams,
            allow_missing=args.allow_missing)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
