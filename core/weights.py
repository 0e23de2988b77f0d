"""A caffemodel and what using it correctly needs, in one record.

A bare path says nothing of the net the weights fit, the width they were trained at, the
mean their inputs had subtracted, or whether the file is the one that was published. A
`Weights` record carries those, as torchvision's weight objects carry their transforms and
metadata. The path rules every stage and tool share (a classifier's FCN base weights under
ilsvrc-nets/, a run's final weights) are written here once, and so is the release's own
FCN-8s, which the zoo import and the release check both verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.catalog import DATASETS
from core.defaults import BASE_WEIGHTS_DIR

FINAL_WEIGHTS = "final.caffemodel"  # a run's weights after its last iteration


def base_weights_path(base: str, base_dir: Path | str = BASE_WEIGHTS_DIR) -> Path:
    """Where surgery puts a classifier's FCN base weights (`make vgg16-fcn` → vgg16-fcn)."""
    return Path(base_dir) / f"{base}.caffemodel"


def run_weights_path(runs: Path | str, experiment: str) -> Path:
    """A finished run's weights: what its next stage, the scorer and the reports read."""
    return Path(runs) / experiment / FINAL_WEIGHTS


@dataclass(frozen=True)
class Weights:
    """A caffemodel with the facts its use depends on."""

    experiment: str                          # the net it fits (an experiment's name)
    source: str                              # where it came from: a URL or a run folder
    width: float = 1.0                       # channel width multiplier it was trained at
    mean: tuple[float, ...] | None = None    # BGR mean subtracted from its inputs
    sha1: str | None = None                  # a published digest, when there is one
    sha256: str | None = None


# The release's FCN-8s (heavy, PASCAL VOC): its caffemodel-url file carries only the URL;
# the sha1 is the one OpenCV's test-data downloader checks (513 MB).
RELEASE_VOC_FCN8S = Weights(
    "voc-fcn8s", "http://dl.caffe.berkeleyvision.org/fcn8s-heavy-pascal.caffemodel",
    mean=DATASETS["voc"].means["data"], sha1="c449ea74dd7d83751d1357d6a8c323fcf4038962")
# Published weights by URL, for imports that name only a URL.
PUBLISHED: dict[str, Weights] = {w.source: w for w in (RELEASE_VOC_FCN8S,)}
