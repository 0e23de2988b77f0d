"""An experiment's starting weights, in one command.

    python -m surgery.prepare --net DEPLOY --base WEIGHTS --out OUT [--mode ...]

modes:
  fcn         transplant an FCN base (vgg16-fcn …) or a previous stage (32s → 16s → 8s):
              matching layers copied, new score layers left at zero
  color-d     NYUD early fusion: as fcn, and conv1_1_bgrd's fourth (depth) input channel
              is the mean of the colour channels' filters of conv1_1
  late-fusion NYUD color-HHA: each --stream MODALITY=WEIGHTS transplanted with the
              modality as layer-name suffix
Every mode then sets bilinear kernels in all Deconvolution layers and checks the score
layers it did not transplant are zero.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import caffe
import numpy as np

from surgery.interp import interp
from surgery.transplant import SurgeryError, transplant, zero_check
from surgery.weights import read_caffemodel, transplant_file


def prepare(deploy: Path | str, out: Path | str, *, base: Path | str | None = None,
            mode: str = "fcn", streams: dict[str, Path] | None = None) -> None:
    net = caffe.Net(str(deploy), caffe.TEST)
    if mode == "late-fusion":
        if not streams:
            raise SurgeryError("late-fusion needs --stream MODALITY=WEIGHTS for each stream")
        for modality, weights in streams.items():
            print(f"stream {modality}: {weights}")
            transplant_file(net, weights, suffix=modality)
    else:
        if base is None:
            raise SurgeryError(f"mode {mode} needs --base WEIGHTS")
        if mode == "fcn":
            transplant_file(net, base)
        elif mode == "color-d":
            params = read_caffemodel(base)
            if "conv1_1" not in params or "conv1_1_bgrd" not in net.params:
                raise SurgeryError("color-d needs conv1_1 in the base and conv1_1_bgrd in the net")
            weights, bias = params.pop("conv1_1")
            depth = weights.mean(axis=1, keepdims=True)  # the colour filters' mean
            params["conv1_1_bgrd"] = [np.concatenate([weights, depth], axis=1), bias]
            transplant(net, params)
        else:
            raise SurgeryError(f"unknown mode {mode!r}")
    upsampled = interp(net)
    scores = [name for name in net.params if name.startswith("score")]
    fresh = [name for name in scores if name not in _transplanted(net, base, streams)]
    nonzero = zero_check(net, fresh)
    if nonzero:
        raise SurgeryError(f"new score layers {nonzero} are not zero-initialised")
    print(f"bilinear kernels: {', '.join(upsampled) or 'none'}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    net.save(str(out))


def _transplanted(net, base, streams) -> set[str]:
    names = set(read_caffemodel(base, values=False)) if base else set()
    for modality, weights in (streams or {}).items():
        names |= {name + modality for name in read_caffemodel(weights, values=False)}
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[3:]))
    parser.add_argument("--net", required=True, type=Path, help="the experiment's deploy.prototxt")
    parser.add_argument("--base", type=Path, help="weights to start from")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--mode", default="fcn", choices=["fcn", "color-d", "late-fusion"])
    parser.add_argument("--stream", action="append", default=[], metavar="MODALITY=WEIGHTS")
    args = parser.parse_args(argv)
    streams = dict(s.split("=", 1) for s in args.stream)
    try:
        prepare(args.net, args.out, base=args.base, mode=args.mode, streams=streams)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
