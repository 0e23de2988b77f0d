"""Segmentation tests over a split, and `make score` / `python -m evaluation.score`.

A test runs the net once per image of the split (whole images, batch 1), accumulates one
confusion histogram per output head (fast_hist), and turns them into the paper's metrics
(evaluation.metrics). SIFT Flow's semantic head is scored over the classes present in the
test set only (the release's own numbers averaged over all 33 and it said so); its
geometric head reports pixel accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core import arguments
from core.caffe_files import LEARNABLE_TYPES, check_fits, ends_before, read_caffemodel
from core.catalog import DATASETS, class_names
from core.errors import cli_main
from core.fingerprint import dataset_split_digest, fingerprint
from core.manifest import check_recorded_width, verify_result_file, write_atomically
from core.outputs import Output, check_outputs
from core.palette import save_label_png
from evaluation.metrics import (
    Scores,
    background_baseline,
    class_table,
    fast_hist,
    mean_iu_no_bg,
    present_classes,
    scores,
)
from evaluation.runtime import (
    OutOfMemory,
    bar_interval,
    check_data_root,
    check_memory,
    memory_limit,
    refuse_clearly_too_big,
    select_device,
)


@dataclass(frozen=True)
class Head:
    """One scored output: its score and label blobs, classes and how to average."""
    score_blob: str
    label_blob: str
    num_classes: int
    names: tuple[str, ...] = ()
    present_only: bool = False     # mean IU over the classes present in the split (SIFT Flow)
    background: int | None = None  # the background class, when there is one (Table 8)


def experiment_heads(exp) -> list[Head]:
    """The heads of a nets.experiments.Experiment."""
    heads = []
    for (_, classes), score_blob, label_blob in zip(exp.heads, exp.score_blobs,
                                                     exp.label_blobs):
        heads.append(Head(score_blob, label_blob, classes,
                          tuple(class_names(exp.dataset, label_blob, classes)),
                          present_only=DATASETS[exp.dataset].head(label_blob).present_only,
                          background=0 if DATASETS[exp.dataset].background_is_zero
                          else None))
    return heads


@dataclass
class TestResult:
    hists: dict[str, np.ndarray]            # by label blob
    heads: list[Head]
    losses: dict[str, float] = field(default_factory=dict)  # mean per image, by loss blob
    images: int = 0

    def scores(self, head: Head) -> Scores:
        hist = self.hists[head.label_blob]
        return scores(hist, present_classes(hist) if head.present_only else None)

    def as_dict(self) -> dict:
        """JSON-ready: per head the four metrics and the all-background mean IU."""
        out: dict = {"images": self.images, "loss": self.losses}
        for head in self.heads:
            hist = self.hists[head.label_blob]
            metrics = self.scores(head).as_dict()
            metrics["background_mean_iu"] = background_baseline(hist).mean_iu
            if head.background is not None:
                metrics["mean_iu_no_bg"] = mean_iu_no_bg(hist, head.background)
            if head.present_only:
                metrics["classes_scored"] = int(len(present_classes(hist)))
            out[head.label_blob] = metrics
        return out

    def report(self, tables: bool = True) -> str:
        lines = [f"{self.images} images, loss " + ", ".join(
            f"{k} {v:.4g}" for k, v in self.losses.items())]
        for head in self.heads:
            hist = self.hists[head.label_blob]
            line = f"{head.label_blob}: {self.scores(head)}"
            if head.present_only:
                line += f"  (over the {len(present_classes(hist))} classes present)"
            if head.background is not None:
                line += f"  mean IU w/o background {100 * mean_iu_no_bg(hist, head.background):.2f}"
            lines.append(line)
            if tables:
                lines.append(class_table(hist, list(head.names) or None))
        return "\n".join(lines)


def load_covering(net, weights: Path, allow_missing: tuple[str, ...] = (),
                  width: float | None = None) -> None:
    """Copy `weights` into `net` after checking they fit and cover it: every layer with
    parameters must be in the file (Caffe would leave a missing one at zero and the scores
    would mean nothing), except the layers named in allow_missing. `width`, the WIDTH the
    net was built at, lets a mismatch say that the weights were trained at another."""

    layers = read_caffemodel(weights)
    check_recorded_width(weights, width)
    check_fits(net, layers, str(weights), width=width)
    unknown = sorted(set(allow_missing) - set(net.params))
    if unknown:
        raise ValueError(f"--allow-missing names {unknown}, which the net does not have "
                         f"(its layers with parameters: {', '.join(net.params)})")
    learned = [name for name in net.params if net.layer_dict[name].type in LEARNABLE_TYPES]
    missing = [name for name in learned if name not in allow_missing
               and not (name in layers and layers[name].blobs)]
    if missing:
        listed = f"{', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}"
        last = ends_before(layers, list(net._layer_names), missing)
        if last is not None:
            raise ValueError(f"{weights}: no weights for {len(missing)} of the net's "
                             f"{len(learned)} learned layers ({listed}), all after layer "
                             f"{last!r}, where the file ends ({weights.stat().st_size} bytes): "
                             f"a file cut short between two layers (an interrupted download "
                             f"or copy); copy or fetch it again (make zoo-fetch checks a "
                             f"download against its deploy net)")
        raise ValueError(f"{weights}: no weights for {len(missing)} of the net's "
                         f"{len(learned)} learned layers ({listed}): weights of another net (e.g. "
                         f"FCN-32s weights for FCN-8s)? Give the matching NET=/WEIGHTS=, or "
                         f"--allow-missing LAYER for each layer meant to stay at its "
                         f"initial values")
    net.copy_from(str(weights))


def json_scores(result: dict) -> dict:
    """`result` with every NaN/infinity replaced by null (JSON has none) and listed under
    "non_finite", so a diverged net's scores are valid JSON and visibly not numbers."""
    marked: list[str] = []

    def clean(value, where: str):
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}" if where else k) for k, v in value.items()}
        if isinstance(value, float) and not np.isfinite(value):
            marked.append(where)
            return None
        return value

    cleaned = clean(result, "")
    if marked:
        cleaned["non_finite"] = marked
    return cleaned


def data_layer(net):
    """The net's Python data layer when it is one of the project's (it has `indices`)."""
    return next((layer for layer in net.layers if hasattr(layer, "indices")), None)


def first_top(net) -> str:
    """The net's blob for the data layer's first top: the layer names its tops by the
    dataset's channels ('color', 'hha'), the net by its prototxt ('data' for one stream)."""
    at = next(k for k, layer in enumerate(net.layers) if hasattr(layer, "indices"))
    return net.top_names[net._layer_names[at]][0]


def next_example(layer) -> str | None:
    """The id of the example the data layer emits on its next forward, when it says."""
    return getattr(layer, "next_index", None)


def split_size(net, default: int | None = None) -> int:
    """How many images one pass over the split takes: the data layer's list length, else
    `default` (the solver's test_iter)."""
    layer = data_layer(net)
    if layer is not None:
        return len(layer.indices)
    if default is None:
        raise ValueError("the net's data layer does not say how many images its split has; "
                         "give the count (--images)")
    return default


SCORE_MEMORY_FIX = ("raise the limit (ulimit -v unlimited), free memory or score where there is "
                    "more; `make infer … MEMORY=` labels a picture this large in exact tiles "
                    "within a memory budget (evaluation/tiling.py)")


def check_example_fits(net, layer) -> str:
    """Before the forward of the data layer's next example: refuse (OutOfMemory, naming the
    picture, the limit and a fix) one whose forward would not fit in what this process may
    take, before Caffe allocates for it (its allocator aborts the process). Returns where
    the example comes from."""
    where, shapes = layer.upcoming()
    height, width = shapes[layer.names[0]][-2:]
    what = f"{where}: scoring this {height}×{width} picture"
    refuse_clearly_too_big(net, height, width, what, fix=SCORE_MEMORY_FIX,
                           input_blob=first_top(net))
    net.reshape()  # the data layer's tops at the example's size: shapes only, no allocation
    check_memory(net, what, fix=SCORE_MEMORY_FIX)
    return where


def seg_test(net, heads: list[Head], *, images: int, save_dir: Path | None = None,
             progress: bool = True, desc: str = "test", memory: bool = False) -> TestResult:
    """Forward `images` examples through `net` and accumulate each head's histogram.
    With save_dir, the first head's predictions are written as palette PNGs named by the
    example's id (or numbered, for a data layer that does not expose its list). With
    `memory`, each example's forward is first checked to fit in memory (check_example_fits):
    a picture too large is one clear error, not an abort or a numpy traceback."""
    missing = [b for h in heads for b in (h.score_blob, h.label_blob) if b not in net.blobs]
    if missing:
        raise ValueError(f"the test net has no blob(s) {missing}; it has {list(net.blobs)}")
    hists = {h.label_blob: np.zeros((h.num_classes, h.num_classes), np.int64) for h in heads}
    loss_blobs = [name for name in net.outputs if "loss" in name]
    losses = dict.fromkeys(loss_blobs, 0.0)
    layer = data_layer(net)
    for k in tqdm(range(images), desc=desc, unit="img", disable=not progress, leave=False,
                  mininterval=bar_interval()):
        name = next_example(layer) or f"{k:06d}"
        where = check_example_fits(net, layer) if memory and hasattr(layer, "upcoming") \
            else name
        try:
            net.forward()
            for head in heads:
                prediction = net.blobs[head.score_blob].data[0].argmax(0)
                label = net.blobs[head.label_blob].data[0, 0]
                hists[head.label_blob] += fast_hist(label, prediction, head.num_classes)
                if save_dir is not None and head is heads[0]:
                    save_label_png(prediction.astype(np.uint8), Path(save_dir) / f"{name}.png")
        except MemoryError as e:  # numpy's, past the estimate: the same one clear error
            if isinstance(e, OutOfMemory) or not memory:
                raise
            limit, words = memory_limit()
            raise OutOfMemory(f"{where}: out of memory while scoring this picture (the "
                              f"{limit / 2**30:.2f} GiB {words}); {SCORE_MEMORY_FIX}") from None
        for blob in loss_blobs:
            losses[blob] += float(net.blobs[blob].data.flat[0])
    return TestResult(hists, heads, {k: v / max(images, 1) for k, v in losses.items()},
                      images)


def score_weights(experiment: str, weights: Path, data_root: Path, *, split: str | None = None,
                  width: float = 1.0, save_dir: Path | None = None,
                  images: int | None = None, progress: bool = True,
                  mask: str | None = None,
                  allow_missing: tuple[str, ...] = (), memory: bool = True) -> TestResult:
    """Score a caffemodel of `experiment` on `split` (default: the experiment's test split)
    of the dataset under data_root. `mask` ('fg', 'bg', 'both') masks the test inputs
    (Table 8's Reference-BG / Reference-FG score mask-reference with 'fg' / 'bg').
    `memory`: check each picture's forward against what this process may take first (on
    the CPU; on a GPU the blobs live in the device's memory, which is not probed)."""
    from dataclasses import replace

    # Caffe loads on use, so this module imports without it
    import caffe

    from nets.experiments import EXPERIMENTS
    from nets.generate import write_experiment

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose from {list(EXPERIMENTS)}")
    exp = EXPERIMENTS[experiment]
    if mask is not None:
        exp = replace(exp, data_options=(*exp.data_options, ("mask", mask)))
    split = split or exp.splits[1]
    check_data_root(exp, Path(data_root), splits=(split,))
    with tempfile.TemporaryDirectory(prefix="fcn-score-") as tmp:
        paths = write_experiment(exp, tmp, width=width,
                                 data_root=str(Path(data_root).resolve()),
                                 splits=(exp.splits[0], split))
        net = caffe.Net(str(paths["test"]), caffe.TEST)
    load_covering(net, weights, allow_missing, width)
    count = images or split_size(net)
    return seg_test(net, experiment_heads(exp), images=count, save_dir=save_dir,
                    progress=progress, desc=f"{experiment} {split}", memory=memory)


def run_fingerprint(experiment: str, data_root: Path | str, split: str | None = None,
                    phase: int = 1, **files) -> dict:
    """core.fingerprint of a run on an experiment's split (phase 0 train, 1 test) and
    files (net=, solver=, weights=)."""
    # nets.experiments imports Caffe: loaded on use, so this module imports without it
    from nets.experiments import EXPERIMENTS

    exp = EXPERIMENTS[experiment]
    data = dataset_split_digest(exp.dataset, "train" if phase == 0 else "test", data_root,
                                split or exp.splits[phase])
    return fingerprint(data=data, **files)


@cli_main("score", also=(ValueError, OSError, RuntimeError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Score a caffemodel on a split: pixel accuracy, mean accuracy, mean IU, "
                    "f.w. IU and a per-class table.")
    parser.add_argument("--net", required=True, metavar="EXPERIMENT",
                        help="experiment name (nets/experiments.py), e.g. voc-fcn8s")
    parser.add_argument("--weights", required=True, type=Path, help="caffemodel to score")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (like data/)")
    parser.add_argument("--split", help="split list name (default: the experiment's test "
                                        "split, e.g. seg11valid)")
    parser.add_argument("--width", type=arguments.width(), default=1.0,
                        help="width multiplier the weights were trained with")
    parser.add_argument("--gpu", type=int, default=None, metavar="N", help="GPU id (default CPU)")
    parser.add_argument("--save", type=Path, help="write predictions as palette PNGs here")
    parser.add_argument("--json", type=Path, help="write the scores as JSON here")
    parser.add_argument("--images", type=int, help="score only the first N images")
    parser.add_argument("--mask", choices=("fg", "bg", "both"),
                        help="mask the test inputs (Table 8): fg = objects at the mean colour, "
                             "bg = background at the mean, both = the shape alone")
    parser.add_argument("--allow-missing", action="append", default=[], metavar="LAYER",
                        help="a layer the weights may lack (stays at its initial values); "
                             "repeat for several")
    parser.add_argument("--force", action="store_true",
                        help="write over an earlier --json / --save result")
    args = parser.parse_args(argv)

    outputs = [Output("JSON=/--json", args.json)] if args.json else []
    outputs += [Output("SAVE=/--save", args.save, folder=True)] if args.save else []
    for line in check_outputs(outputs, {"the weights (WEIGHTS=/--weights)": args.weights,
                                        "the data root (DATA=/--data)": args.data},
                              force=args.force):
        print(f"score: {line}", file=sys.stderr)
    verify_result_file(args.weights)  # a finished run's weights, as its manifest vouches
    select_device(args.gpu)
    result = score_weights(args.net, args.weights, args.data, split=args.split,
                           width=args.width, save_dir=args.save, images=args.images,
                           mask=args.mask, allow_missing=tuple(args.allow_missing),
                           memory=args.gpu is None)
    print(result.report())
    scores_json = json_scores(result.as_dict())
    if "non_finite" in scores_json:
        print(f"score: warning: not-a-number scores ({', '.join(scores_json['non_finite'])}): "
              f"the weights have diverged", file=sys.stderr)
    if args.json:
        scores_json["fingerprint"] = run_fingerprint(args.net, args.data, args.split,
                                                     weights=args.weights, gpu=args.gpu)
        write_atomically((json.dumps(scores_json, indent=2, allow_nan=False) + "\n").encode(),
                         args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
