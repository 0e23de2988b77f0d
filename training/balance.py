"""Class-balancing weights for balance-fcn32s (Section 4.4): computed once over the training
split, written where the net's InfogainLoss reads them.

    python -m training.balance --data DATA [--experiment balance-fcn32s]

Weight of class c: 1 / (K · f_c), f_c its share of the split's labelled (non-void) pixels
and K the number of classes present, so rare classes weigh more and the mean weight per
pixel is 1 (Σ_c f_c w_c = 1): the loss keeps its scale and the lr stays the unweighted
net's. A class absent from the split gets 1 (it never occurs as a target). The weights are
the diagonal of InfogainLoss's H, stored as a BlobProto beside the split list
(core.catalog.class_weights_file) and recorded in the run folder (class_weights.json)
by the training loop, which computes them first when they are missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import caffe
import numpy as np

from core.catalog import class_weights_file
from core.errors import cli_main
from evaluation.labels import split_labels
from nets.experiments import EXPERIMENTS


def class_counts(labels, num_classes: int) -> np.ndarray:
    """Labelled pixels per class over `labels` (void and other values ignored)."""
    counts = np.zeros(num_classes, np.int64)
    for label in labels:
        values = label[label < num_classes]
        counts += np.bincount(values.ravel().astype(np.int64), minlength=num_classes)
    return counts


def inverse_frequency(counts: np.ndarray) -> np.ndarray:
    """1 / (K f_c) for the K classes present, 1 for absent ones (see the module doc)."""
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    if not present.any():
        raise ValueError("no labelled pixels: the class weights are undefined")
    weights = np.ones_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def write_infogain(path: Path, weights: np.ndarray) -> Path:
    """Write diag(weights) as the 1×1×C×C BlobProto Caffe's InfogainLoss reads."""
    matrix = np.diag(np.asarray(weights, np.float32))[np.newaxis, np.newaxis]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(caffe.io.array_to_blobproto(matrix).SerializeToString())
    part.replace(path)
    return path


def read_infogain(path: Path) -> np.ndarray:
    """The diagonal of a written H."""
    blob = caffe.proto.caffe_pb2.BlobProto()
    blob.ParseFromString(Path(path).read_bytes())
    return np.diag(caffe.io.blobproto_to_array(blob)[0, 0]).copy()


def ensure_class_weights(experiment: str, data_root: Path, *,
                         progress: bool = True) -> tuple[Path, np.ndarray]:
    """The experiment's weights file, computed over its training split if missing."""
    exp = EXPERIMENTS[experiment]
    path = Path(class_weights_file(exp.dataset, str(Path(data_root).resolve()), exp.splits[0]))
    if path.is_file():
        return path, read_infogain(path)
    _, num_classes, labels = split_labels(exp.dataset, data_root, exp.splits[0],
                                          exp.train_layer, progress=progress)
    weights = inverse_frequency(class_counts(labels, num_classes))
    try:
        write_infogain(path, weights)
    except OSError as e:
        raise OSError(f"{path}: cannot write the class weights ({e.strerror}); make the "
                      f"dataset folder writable or write them elsewhere and link them "
                      f"there") from None
    return path, weights


def keep_with_run(experiment: str, data_root: Path, run_dir: Path, *,
                  progress: bool = True) -> Path:
    """Make sure the weights exist (computing them once) and record them in the run
    folder (class_weights.json), before Caffe reads them."""
    path, weights = ensure_class_weights(experiment, data_root, progress=progress)
    record = Path(run_dir) / "class_weights.json"
    record.write_text(json.dumps({"file": str(path),
                                  "split": EXPERIMENTS[experiment].splits[0],
                                  "weights": [float(w) for w in weights]}, indent=2) + "\n")
    return record


@cli_main("balance", also=(ValueError, OSError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compute an experiment's class-balancing loss weights over its training "
                    "split (inverse frequency) and write them where its net reads them.")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (like data/)")
    parser.add_argument("--experiment", default="balance-fcn32s",
                        choices=[n for n, e in EXPERIMENTS.items() if e.loss == "balanced"])
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    path, weights = ensure_class_weights(args.experiment, args.data, progress=not args.quiet)
    print(json.dumps({"file": str(path), "weights": [round(float(w), 6) for w in weights]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
