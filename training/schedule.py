"""Schedules: an experiment and everything it starts from, trained in order.

    python -m training.schedule voc-fcn8s --data DATA [--weights BASE|none] [--iters N] ...

Staged (the paper's Section 4.2): FCN-32s from the converted classifier, FCN-16s from
32s's final weights, FCN-8s from 16s's, lr 100× lower at each stage. All-at-once
(voc-fcn8s-atonce) is a chain of one stage from the classifier. NYUD's late fusion
(color-HHA) trains its two single-modality streams first. A stage whose final weights
already exist is skipped; one with snapshots but no final weights resumes. Each stage's
starting weights are made by surgery.prepare (transplant by layer name, bilinear
upsampling, new score layers zero) into runs/<stage>/init.caffemodel.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core import arguments
from core.caffe_files import non_finite_layers
from core.defaults import BASE_WEIGHTS_DIR, RUNS_DIR, SEED, TEST_EVERY
from core.errors import InputError, cli_main
from core.manifest import (
    RESULT_MANIFEST,
    check_request,
    read_result,
    record_result,
    verify_result_file,
    write_atomically,
)
from core.processes import stopped, stopping_with_parent
from core.weights import base_weights_path, run_weights_path
from evaluation.score import json_scores, score_weights
from nets.experiments import EXPERIMENTS, Experiment, check_width
from surgery.prepare import prepare
from training import snapshots
from training.curves import plot
from training.init import warn_random
from training.runlog import JSON_NAME
from training.train import (
    Diverged,
    NetFiles,
    TrainConfig,
    check_run_folder,
    generate_nets,
    preflight,
    request_of,
    train,
)


def chain(name: str) -> list[str]:
    """The experiments to train, in order, for `name`: its stages back to a classifier."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {list(EXPERIMENTS)}")
    exp = EXPERIMENTS[name]
    if exp.base == "streams":
        stages = [s for stream in exp.streams for s in chain(stream)]
        return list(dict.fromkeys(stages)) + [name]
    if exp.base in EXPERIMENTS:
        return chain(exp.base) + [name]
    return [name]


@dataclass
class ScheduleConfig:
    experiment: str
    data_root: Path
    runs: Path = RUNS_DIR
    weights: Path | str | None = None      # base caffemodel for the first stage(s);
                                           # None: ilsvrc-nets/<base>.caffemodel; 'none': random
    iters: int | None = None
    first_iters: int | None = None         # a stage from a classifier, when not `iters`
    first_until_learned: int | None = None  # such a stage still at the background after its
                                            # first_iters trains on to this many
    test_every: int | None = TEST_EVERY
    width: float = 1.0
    gpu: int | None = None
    seed: int = SEED
    lr: float | None = None                # the first stage's lr; later stages keep the
    lr_drop: float | None = None           # paper's ratio unless lr_drop (per stage) is given
    overrides: dict = field(default_factory=dict)
    progress: bool = True
    score: bool = True
    check_data: bool | None = None         # read every file first; None: for long runs
    base_dir: Path = BASE_WEIGHTS_DIR      # where `make vgg16-fcn` … put the base weights


def base_weights(exp: Experiment, weights, base_dir: Path = BASE_WEIGHTS_DIR) -> Path | None:
    """The classifier weights a first stage starts from; None for random init."""
    if isinstance(weights, str) and weights.lower() == "none":
        return None
    path = Path(weights) if weights else base_weights_path(exp.base, base_dir)
    if not path.is_file():
        hint = (f"make {exp.base}" if not weights else "check WEIGHTS=")
        raise FileNotFoundError(f"{path}: base weights for {exp.name} not found; build them "
                                f"with `{hint}`, give WEIGHTS=<caffemodel>, or WEIGHTS=none "
                                f"for a random-init quick run")
    return path


def stage_lr(config: ScheduleConfig, names: list[str], name: str) -> float | None:
    """The lr override of one stage: config.lr at the chain's first stage, then either
    lr_drop per stage or the experiments' own ratio (100× per stage for VOC)."""
    if config.lr is None:
        return None
    if config.lr_drop is not None:
        return config.lr / config.lr_drop ** _depth(name)
    root = EXPERIMENTS[names[0]]  # a chain starts at a classifier-initialised stage
    return config.lr * EXPERIMENTS[name].solver.base_lr / root.solver.base_lr


def _depth(name: str) -> int:
    """How many stages lie before `name` on its own path from a classifier."""
    exp = EXPERIMENTS[name]
    if exp.base == "streams":
        return 1 + max(_depth(s) for s in exp.streams)
    return 1 + _depth(exp.base) if exp.base in EXPERIMENTS else 0


def prepare_stage(exp: Experiment, run_dir: Path, config: ScheduleConfig,
                  nets: NetFiles) -> Path | None:
    """Starting weights for one stage via surgery.prepare over the stage's deploy net
    (from `nets`); None means random init."""
    init = run_dir / "init.caffemodel"
    if exp.base == "streams":
        streams = {}
        for stream in exp.streams:
            final = run_weights_path(config.runs, stream)
            if not final.is_file():
                raise FileNotFoundError(f"{final}: stream {stream} of {exp.name} has not "
                                        f"finished (make {stream})")
            verify_result_file(final)  # as its manifest vouches, if it has one
            check_finite(final, stream)
            streams[EXPERIMENTS[stream].modalities[0]] = final
        _prepare(nets, init, mode="late-fusion", streams=streams)
        return init
    if exp.base in EXPERIMENTS:
        base = run_weights_path(config.runs, exp.base)
        if not base.is_file():
            raise FileNotFoundError(f"{base}: {exp.name} starts from {exp.base}'s final "
                                    f"weights (make {exp.base})")
        verify_result_file(base)  # as its manifest vouches, if it has one
        check_finite(base, exp.base)
    else:
        base = base_weights(exp, config.weights, config.base_dir)
        if base is None:
            warn_random(exp.name)
            return None
    _prepare(nets, init, base=base, mode="color-d" if exp.fusion == "early" else "fcn")
    return init


def _prepare(nets: NetFiles, init: Path, **how) -> None:
    """surgery.prepare over the stage's deploy net (written aside: the run's nets/ are the
    training's to write)."""
    with tempfile.TemporaryDirectory(prefix="fcn-deploy-") as tmp:
        prepare(nets.write("deploy", Path(tmp)), init, **how)


def check_finite(weights: Path, stage: str) -> None:
    """A later stage never starts from weights holding NaN or infinity (a diverged run
    written by older code, or a file damaged since)."""
    bad = non_finite_layers(weights)
    if bad:
        raise Diverged(f"{weights}: the final weights of {stage} hold NaN or infinite values "
                       f"(layers {', '.join(bad[:5])}); retrain {stage} (remove its folder) "
                       f"with a lower learning rate before the stages after it")


def check_done(final: Path, request: dict) -> None:
    """A stage whose final weights exist is skipped only when its result manifest vouches
    for them (digest) and records this same request; otherwise one clear refusal."""
    if read_result(final.parent) is None:
        raise InputError(f"{final}: no {RESULT_MANIFEST} beside it vouches for these weights "
                         f"(the run stopped while finishing, or older code wrote it); remove "
                         f"{final.name} to have the stage resume from its last snapshot and "
                         f"write it again")
    check_request(final.parent, request)
    if not verify_result_file(final):
        raise InputError(f"{final}: not listed in {final.parent / RESULT_MANIFEST}; remove "
                         f"{final.name} to have the stage resume and write it again")


def run_schedule(config: ScheduleConfig) -> dict:
    """Train every stage of config.experiment's chain that is not done; score the last."""
    names = chain(config.experiment)
    device = preflight(names, config.data_root, config.gpu)
    check_run_folder(config.runs, config.data_root)
    summary = {"stages": []}
    for name in names:
        exp, run_dir = EXPERIMENTS[name], config.runs / name
        final = run_weights_path(config.runs, name)
        overrides = dict(config.overrides)
        lr = stage_lr(config, names, name)
        if lr is not None:
            overrides["base_lr"] = lr
        first = bool(config.first_iters) and _depth(name) == 0
        stage = TrainConfig(
            name, config.data_root, run_dir=run_dir,
            iters=config.first_iters if first else config.iters,
            until_learned=config.first_until_learned if first else None,
            test_every=config.test_every, width=config.width, gpu=config.gpu,
            seed=config.seed, overrides=overrides, progress=config.progress,
            check_data=config.check_data)
        if final.is_file():
            check_done(final, request_of(stage))
            print(f"== {name}: done already ({final}, verified); skipped", flush=True)
            summary["stages"].append({"experiment": name, "final": str(final),
                                      "skipped": True})
            continue
        with snapshots.RunLock(run_dir):  # held from the starting weights to the last step
            stage.resume = bool(snapshots.available(run_dir / "snapshots"))
            print(f"== {name}: {'resuming' if stage.resume else 'starting'} in {run_dir}",
                  flush=True)
            nets = generate_nets(stage)  # once: surgery's deploy net and the run's files
            stage.weights = None if stage.resume else prepare_stage(exp, run_dir, config, nets)
            outcome = train(stage, device=device, nets=nets)
        if outcome.interrupted:
            raise KeyboardInterrupt(f"{name} stopped at iteration {outcome.iterations}",
                                    outcome.signal)
        _plot(run_dir)
        summary["stages"].append({"experiment": name, "final": str(outcome.final_weights),
                                  "iterations": outcome.iterations,
                                  "first_loss": outcome.losses[0] if outcome.losses else None,
                                  "last_loss": outcome.losses[-1] if outcome.losses else None,
                                  "test": outcome.last_test})
    if config.score:
        last, request = config.runs / config.experiment, request_of(stage)
        recorded = last / "score.json"
        if recorded.is_file() and verify_result_file(recorded):
            summary["score"] = json.loads(recorded.read_text())
            print(f"== score of {config.experiment}: done already ({recorded}, verified)",
                  flush=True)
            return summary
        result = score_weights(config.experiment,
                               run_weights_path(config.runs, config.experiment),
                               Path(config.data_root), width=config.width,
                               progress=config.progress, memory=config.gpu is None)
        print(f"== score of {config.experiment} on "
              f"{EXPERIMENTS[config.experiment].splits[1]}\n{result.report()}", flush=True)
        summary["score"] = json_scores(result.as_dict())
        write_atomically((json.dumps(summary["score"], indent=2, allow_nan=False) + "\n"
                          ).encode(), recorded)
        record_result(last, [run_weights_path(config.runs, config.experiment), recorded],
                      request)
    return summary


def _plot(run_dir: Path) -> None:
    try:
        print(f"curves: {plot(run_dir / JSON_NAME, run_dir / 'curves.png')}", flush=True)
    except (ValueError, OSError, ImportError) as e:  # a plot never fails a run (nor a
        # Python without matplotlib, as the GPU bundle's)
        print(f"curves: skipped ({e})", file=sys.stderr)


@cli_main("schedule", also=(ValueError, OSError, RuntimeError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train an experiment and the stages it starts from (staged 32s→16s→8s, "
                    "at-once, NYUD streams → fusion), skipping finished stages, then score.")
    parser.add_argument("experiment", choices=list(EXPERIMENTS), metavar="EXPERIMENT")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (like data/)")
    parser.add_argument("--weights", help="base caffemodel for the first stage (default: "
                                          "ilsvrc-nets/<base>.caffemodel); 'none': random init")
    parser.add_argument("--runs", type=Path, default=RUNS_DIR, help="runs folder")
    parser.add_argument("--iters", type=arguments.iterations(),
                        help="iterations per stage (default: the paper's)")
    parser.add_argument("--test-every", type=arguments.interval("TEST_EVERY=/--test-every"),
                        default=TEST_EVERY,
                        help="seg test interval (0: at the end of each stage only)")
    parser.add_argument("--width", type=arguments.width(), default=1.0,
                        help="channel width multiplier")
    parser.add_argument("--gpu", type=int, metavar="N", help="GPU id (default: CPU)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--lr", type=arguments.rate("LR=/--lr"),
                        help="first stage's lr (quick runs); later stages keep the paper's "
                             "ratio unless --lr-drop")
    parser.add_argument("--lr-drop", type=arguments.rate("LR_DROP=/--lr-drop"),
                        help="lr divisor per stage with --lr")
    parser.add_argument("--momentum", type=arguments.momentum(),
                        help="override momentum (every stage)")
    parser.add_argument("--no-score", action="store_true", help="skip the final scoring")
    parser.add_argument("--check-data", action=argparse.BooleanOptionalAction, default=None,
                        help="read every file of the splits before each stage (default: for "
                             "stages of 1000+ iterations; cached)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    check_width(args.experiment, args.width)
    overrides = {"momentum": args.momentum} if args.momentum is not None else {}
    config = ScheduleConfig(args.experiment, args.data, runs=args.runs, weights=args.weights,
                            iters=args.iters, test_every=args.test_every, width=args.width,
                            gpu=args.gpu, seed=args.seed, lr=args.lr, lr_drop=args.lr_drop,
                            overrides=overrides, progress=not args.quiet,
                            score=not args.no_score, check_data=args.check_data)
    try:
        with stopping_with_parent():
            run_schedule(config)
    except KeyboardInterrupt as e:
        return stopped("schedule", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
