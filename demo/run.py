"""`make demo`: the whole FCN method in miniature, on the CPU, in minutes.

  1. a synthetic segmentation set in the real VOC + SBD layouts (thin bars a stride-32
     prediction cannot draw, several classes, void outlines)
  2. "ImageNet pre-training" in miniature: a width-reduced VGG16 classifier trained on
     whole-image classification of the same kind of pictures
  3. surgery: the classifier convolutionalized into FCN base weights (as `make vgg16-fcn`)
  4. FCN-32s → 16s → 8s staged, FCN-8s all-at-once, and FCN-32s from scratch (the
     no-transfer control), all through the project's training loop
  5. a results table shaped like the paper's Table 3 and a figure shaped like Figure 4
  6. model-zoo export of the FCN-8s, re-import, and a bit-for-bit comparison of outputs
  7. inference on a fresh synthetic picture

Every stage keeps its outputs in the demo folder and is skipped when they exist, so a
second run reuses finished work. The numbers are the miniature's, not PASCAL's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.defaults import REPO, RUNS_DIR, SEED
from core.errors import cli_main
from core.processes import stopped, stopping_with_parent, usable_cpus
from core.weights import FINAL_WEIGHTS, base_weights_path
from data.synthetic import make_dataset
from demo.lanes import Command, Lane, run_lanes, thread_shares
from demo.report import store_expected, write_report


@dataclass(frozen=True)
class DemoConfig:
    width: float = 0.0625          # VGG16 channels ÷ 16 (4 … 32, fc 256)
    size: int = 224                # pictures are size × size: VGG16's fc6 sees 224 px, and
                                   # on smaller pictures its 7×7 windows are mostly padding
    n_train: int = 200
    n_val: int = 40
    classes: int = 6               # background + 5 drawn classes
    pretrain_images: int = 480
    pretrain_iters: int = 300
    pretrain_lr: float = 1e-4      # Adam
    iters: int = 600               # per FCN stage
    lr32: float = 5e-9             # unnormalised loss over 50k pixels (VOC: ~190k, 1e-10)
    lr_drop: float = 10            # per stage (the paper's 100× assumes converged stages)
    momentum: float = 0.99         # the paper's
    seed: int = SEED


QUICK = DemoConfig(size=128, n_train=40, n_val=12, pretrain_images=96, pretrain_iters=40,
                   iters=100)


def say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def done(folder: Path) -> bool:
    return (folder / "done.json").exists()


def mark(folder: Path, **facts) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "done.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")


def stage_data(out: Path, cfg: DemoConfig) -> Path:
    root = out / "data"
    if not done(root):
        say(f"1/7 synthetic VOC + SBD data: {cfg.n_train} train, {cfg.n_val} val, "
            f"{cfg.size}×{cfg.size}")
        make_dataset("voc", root, n_train=cfg.n_train, n_val=cfg.n_val,
                     size=(cfg.size, cfg.size), num_classes=cfg.classes, seed=cfg.seed)
        mark(root)
    return root


def stage_pretrain(out: Path, cfg: DemoConfig) -> dict:
    # training.pretrain imports Caffe: loaded on use, so this module imports without it
    from training.pretrain import pretrain

    folder = out / "pretrain"
    if not done(folder):
        say(f"2/7 pre-training a VGG16 classifier (width {cfg.width}) for "
            f"{cfg.pretrain_iters} iterations")
        result = pretrain(folder, width=cfg.width, classes=cfg.classes,
                          images=cfg.pretrain_images, iterations=cfg.pretrain_iters,
                          lr=cfg.pretrain_lr, seed=cfg.seed)
        mark(folder, **result)
    return json.loads((folder / "done.json").read_text())


def stage_surgery(out: Path, pretrained: dict) -> tuple[Path, Path]:
    """FCN base weights from the trained classifier, and from the same classifier before
    training (the no-transfer control: same architecture, same init, no pre-training)."""
    # training.pretrain imports Caffe: loaded on use, so this module imports without it
    from training.pretrain import fcn_base

    bases = (base_weights_path("vgg16-fcn", out), base_weights_path("vgg16-fcn-untrained", out))
    for base, source in zip(bases, (pretrained["weights"], pretrained["untrained"])):
        if not base.exists():
            say(f"3/7 surgery: {Path(source).name} → {base.name} (fc6/fc7 as convolutions)")
            fcn_base(Path(pretrained["deploy"]), Path(source), "vgg16", base)
    return bases


def last_test(run: Path) -> dict:
    """The final test record of a run's JSON-lines log."""
    tests = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()
             if '"type": "test"' in line]
    if not tests:
        raise RuntimeError(f"{run}/train.jsonl has no test record")
    return tests[-1]


def make_command(target: str, out: Path, cfg: DemoConfig, runs: Path, weights: Path,
                 log: Path | None) -> Command:
    """Train through the project's own make target, as a user would type it."""
    argv = ["make", "-s", target, f"DATA={out / 'data'}", f"RUNS={runs}",
            f"WIDTH={cfg.width}", f"WEIGHTS={weights}", f"ITERS={cfg.iters}",
            f"TEST_EVERY={cfg.iters}", f"LR={cfg.lr32}", f"LR_DROP={cfg.lr_drop}",
            f"MOMENTUM={cfg.momentum}", f"SEED={cfg.seed}"]
    return Command(f"{target} ({runs.name})", argv, log)


def training_folders(out: Path) -> tuple[Path, Path]:
    """The runs folders: the transfer nets', and the from-scratch control's."""
    return out / "runs", out / "runs-scratch"


def training_lanes(out: Path, cfg: DemoConfig, base: Path, untrained: Path,
                   cpus: int) -> list[Lane]:
    """The three trainings in lanes: the staged chain (three stages, the longest) in one,
    the at-once net and the from-scratch control after each other in the other; on one
    CPU all three in one lane, their output on this terminal."""
    runs, scratch = training_folders(out)
    side_by_side = cpus >= 2
    trainings = [("voc-fcn8s", runs, base),                  # 32s -> 16s -> 8s
                 ("voc-fcn8s-atonce", runs, base),
                 ("voc-fcn32s", scratch, untrained)]          # no transfer
    commands = [make_command(target, out, cfg, folder, weights,
                             out / "logs" / f"{target}-{folder.name}.log" if side_by_side
                             else None)
                for target, folder, weights in trainings]
    groups = [commands[:1], commands[1:]] if side_by_side else [commands]
    return [Lane(group, threads)
            for group, threads in zip(groups, thread_shares(cpus, len(groups)))]


def stage_train(out: Path, cfg: DemoConfig, base: Path, untrained: Path) -> dict:
    lanes = training_lanes(out, cfg, base, untrained, usable_cpus())
    say(f"4/7 training FCN-32s → 16s → 8s, FCN-8s at-once and FCN-32s from scratch, "
        f"{len(lanes)} at a time")
    run_lanes(lanes, os.environ, cwd=REPO, say=lambda message: say("    " + message))
    runs, scratch = training_folders(out)
    folders = {"FCN-32s": runs / "voc-fcn32s", "FCN-16s": runs / "voc-fcn16s",
               "FCN-8s staged": runs / "voc-fcn8s", "FCN-8s at-once": runs / "voc-fcn8s-atonce",
               "FCN-32s from scratch": scratch / "voc-fcn32s"}
    return {name: {"weights": folder / FINAL_WEIGHTS, "test": last_test(folder)}
            for name, folder in folders.items()}


def run_stages(out: Path, cfg: DemoConfig) -> Path:
    """Every stage in turn, each skipped where its outputs exist; the report's path."""
    stage_data(out, cfg)
    pretrained = stage_pretrain(out, cfg)
    say(f"   classifier accuracy on its training images: {pretrained['accuracy']:.2f}")
    base, untrained = stage_surgery(out, pretrained)
    results = stage_train(out, cfg, base, untrained)
    return write_report(out, cfg, results)


@cli_main("demo")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The FCN method in miniature on CPU.")
    parser.add_argument("--out", type=Path, default=RUNS_DIR / "demo")
    parser.add_argument("--quick", action="store_true",
                        help="a shortened run (the test suite's): fewer images and steps")
    parser.add_argument("--store-expected", action="store_true",
                        help="record this run's numbers in demo/expected.json as the ones "
                             "machines with the same pinned numerics must reproduce")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else DemoConfig()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1) + "\n")
    began = time.time()
    try:
        with stopping_with_parent():    # make demo killed: the demo and its trainings stop
            report = run_stages(out, cfg)
    except KeyboardInterrupt as interrupt:
        return stopped("demo", interrupt)
    if args.store_expected:
        store_expected(out, cfg, "quick" if args.quick else "full")
    say(f"done in {time.time() - began:.0f} s")
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
