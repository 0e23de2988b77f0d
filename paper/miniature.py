"""The miniature's inputs (`make paper MINI=1`): synthetic datasets in each dataset's real
layout and the pre-trained miniature classifiers' FCN bases. The serial run (paper.run)
and each worker process (paper.processes) make them through these two functions."""

from __future__ import annotations

import json
from pathlib import Path

from core.weights import base_weights_path
from data.synthetic import make_dataset
from paper.plan import Miniature, Settings, say


# --- data for the miniature ------------------------------------------------------------------
def mini_data(settings: Settings, mini: Miniature, datasets: set[str]) -> None:
    """Synthetic datasets under settings.data, each written once (a marker says done),
    each seeded by its place among all the miniature's datasets: the same pictures
    whichever tables ask for it (TABLES=6,7 once gave SIFT Flow other pictures than a run of
    every table)."""

    for dataset in sorted(datasets):
        marker = settings.data / f".{dataset}-done"
        if marker.exists():
            continue
        say(f"synthetic {dataset}: {mini.n_train} train + {mini.n_val} val, "
            f"{mini.size[0]}×{mini.size[1]}")
        make_dataset(dataset, settings.data, n_train=mini.n_train, n_val=mini.n_val,
                     size=mini.size, num_classes=mini.classes[dataset],
                     seed=settings.seed + sorted(mini.classes).index(dataset),
                     style=mini.style)
        marker.write_text("done\n")


# --- pre-trained miniature classifiers ---------------------------------------------------------
UNTRAINED = "-untrained"   # a base named <backbone>-fcn-untrained: the classifier before
                           # its pre-training (the from-scratch control), converted alike


def backbone_of(base: str) -> str:
    """The classifier a base is made from: vgg16-fcn and vgg16-fcn-untrained → vgg16."""
    return base.removesuffix(UNTRAINED).removesuffix("-fcn")


def mini_bases(settings: Settings, mini: Miniature, bases: set[str]) -> None:
    """Each FCN base the chains start from (vgg16-fcn, alexnet-fcn, googlenet-fcn,
    vgg16-fcn-untrained) made as the demo makes its own: a width-reduced classifier of the
    backbone pre-trained on synthetic whole-image classes (training.pretrain, once per
    backbone, under RUNS/pretrain/), then converted by `make <backbone>-fcn`'s surgery."""
    # training.pretrain imports Caffe: loaded on use, so this module imports without it
    from training.pretrain import fcn_base, pretrain

    p = mini.pretraining
    for base in sorted(bases):
        out = base_weights_path(base, settings.base_dir)
        if out.is_file():
            continue
        backbone = backbone_of(base)
        folder = settings.runs / "pretrain" / backbone
        done = folder / "done.json"
        if not done.is_file():
            say(f"pre-training a {backbone} classifier (width {settings.width}, {p.classes} "
                f"classes, {p.images} pictures, {p.iters} iterations)")
            result = pretrain(folder, width=settings.width, classes=p.classes,
                              images=p.images, iterations=p.iters, lr=p.lr, size=p.size,
                              seed=settings.seed, backbone=backbone,
                              centred=p.centred)
            done.write_text(json.dumps(result, indent=1, default=str) + "\n")
        result = json.loads(done.read_text())
        source = result["untrained" if base.endswith(UNTRAINED) else "weights"]
        say(f"surgery: {Path(source).name} ({backbone}) → {out}")
        out.parent.mkdir(parents=True, exist_ok=True)
        fcn_base(Path(result["deploy"]), Path(source), backbone, out)
