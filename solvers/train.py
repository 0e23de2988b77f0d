"""The training loop: the release's solve.py, with the parts it left out.

    python -m solvers.train voc-fcn32s --data DATA [--weights W | --weights none] ...

One run = one experiment in one folder (runs/<experiment>/ by default):
  nets/                  the experiment's generated nets and solver (nets.generate)
  solver.prototxt        the solver Caffe runs: absolute net paths, the overrides, the seed
  snapshots/             train_iter_N.{caffemodel,solverstate}, written atomically
  final.caffemodel       the weights after the last iteration (what a next stage starts from)
  train.log, train.jsonl text log and JSON lines (every step's loss, every test's metrics)

What the loop does: pick CPU or GPU N; build the solver; load the starting weights (or
resume from a solverstate: weights, momentum history, iteration, and the data order);
set bilinear kernels on the upsampling layers; step one iteration at a time so every
step's loss is logged and Ctrl-C stops cleanly after the current one with a snapshot;
every `test_every` iterations score the test split with the test net sharing the train
net's weights. Caffe's random generator is reseeded with seed + iteration before each
step, so dropout masks depend only on (seed, iteration) and a resumed run repeats the
uninterrupted one exactly.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import caffe
from caffe.proto import caffe_pb2
from google.protobuf import text_format
from tqdm import tqdm

from core.catalog import SEED
from nets.experiments import EXPERIMENTS
from nets.generate import write_experiment
from solvers import snapshots
from solvers.init import load_start
from solvers.runlog import RunLog
from solvers.runtime import REPO, bar_interval, check_data_root, select_device
from solvers.score import data_layer, experiment_heads, run_fingerprint, seg_test, split_size

DEFAULT_SEED = SEED  # the release's data-layer seed
SOLVER_OVERRIDES = ("base_lr", "momentum", "iter_size", "weight_decay")


@dataclass
class TrainConfig:
    experiment: str
    data_root: Path
    run_dir: Path | None = None            # default runs/<experiment>
    weights: Path | None = None            # None: random init (quick runs only)
    iters: int | None = None               # max_iter; default the experiment's solver
    test_every: int | None = 4000          # the release's solve.py interval; 0/None: end only
    snapshot_every: int | None = None      # default: the solver's snapshot interval
    width: float = 1.0
    gpu: int | None = None
    seed: int = DEFAULT_SEED
    overrides: dict = field(default_factory=dict)   # base_lr, momentum, iter_size, weight_decay
    resume: Path | bool = False            # True: the latest snapshot in run_dir
    save_predictions: bool = False
    progress: bool = True
    display: int = 20

    def folder(self) -> Path:
        return Path(self.run_dir or REPO / "runs" / self.experiment)


@dataclass
class TrainOutcome:
    iterations: int
    final_weights: Path | None             # None when stopped early
    last_test: dict | None
    snapshot: snapshots.Snapshot | None
    interrupted: bool = False
    losses: list[float] = field(default_factory=list)


class LossMeter:
    """Sums each loss layer's output over the forwards of one iteration (iter_size of
    them) through the net's after-forward hook, so the logged loss is the iteration's
    mean, not just the last forward's."""

    def __init__(self, net):
        self.tops = {}
        for index, (name, layer) in enumerate(zip(net._layer_names, net.layers)):
            if layer.type.endswith("Loss"):
                self.tops[index] = net.top_names[name][0]
        self.net, self.sums, self.forwards = net, dict.fromkeys(self.tops.values(), 0.0), 0
        net.after_forward(self._after)

    def _after(self, index: int) -> None:
        top = self.tops.get(index)
        if top is not None:
            self.sums[top] += float(self.net.blobs[top].data.flat[0])
            if index == max(self.tops):
                self.forwards += 1

    def take(self) -> dict[str, float]:
        n = max(self.forwards, 1)
        means = {k: v / n for k, v in self.sums.items()}
        self.sums, self.forwards = dict.fromkeys(self.sums, 0.0), 0
        return means


class StopRequest:
    """SIGINT sets a flag the loop checks between iterations; a second one interrupts."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # signals reach only it
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: stopping after this iteration with a snapshot "
              "(Ctrl-C again to abort without one)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def write_solver(config: TrainConfig, run_dir: Path) -> tuple[Path, caffe_pb2.SolverParameter]:
    """Generate the experiment's files into run_dir/nets and the solver Caffe will run
    (absolute paths, overrides, our own snapshotting) into run_dir/solver.prototxt."""
    unknown = set(config.overrides) - set(SOLVER_OVERRIDES)
    if unknown:
        raise ValueError(f"solver overrides {sorted(unknown)} not supported; "
                         f"use {SOLVER_OVERRIDES}")
    overrides = dict(config.overrides)
    if config.iters is not None:
        overrides["max_iter"] = config.iters
    paths = write_experiment(config.experiment, run_dir / "nets", width=config.width,
                             data_root=str(Path(config.data_root).resolve()),
                             seed=config.seed, solver_overrides=overrides)
    param = caffe_pb2.SolverParameter()
    text_format.Merge(paths["solver"].read_text(), param)
    param.train_net = str(paths["train"].resolve())
    param.test_net[0] = str(paths["test"].resolve())
    param.snapshot = 0  # the loop snapshots, atomically
    param.snapshot_prefix = str(snapshots.staging_prefix(run_dir / "snapshots").resolve())
    param.random_seed = config.seed
    param.display = 0
    solver_path = run_dir / "solver.prototxt"
    solver_path.write_text(text_format.MessageToString(param))
    return solver_path, param


def fast_forward(layer, forwards: int) -> None:
    """Advance a training data layer by `forwards` examples without decoding them, so a
    resumed run reads what the uninterrupted one would have read next."""
    if layer is None or forwards <= 0:
        return
    if not hasattr(layer, "skip"):
        raise RuntimeError(f"{type(layer).__name__} cannot be advanced to the resumed "
                           f"iteration (it has no skip(n)); the data order would differ")
    layer.skip(forwards)


def train(config: TrainConfig) -> TrainOutcome:
    exp = EXPERIMENTS.get(config.experiment)
    if exp is None:
        raise ValueError(f"unknown experiment {config.experiment!r}; choose from "
                         f"{list(EXPERIMENTS)}")
    check_data_root(exp, Path(config.data_root))
    if config.weights is not None and not Path(config.weights).is_file():
        raise FileNotFoundError(f"{config.weights}: starting weights not found")
    run_dir = config.folder()
    run_dir.mkdir(parents=True, exist_ok=True)
    if exp.loss == "balanced":  # the loss reads per-class weights: make them before Caffe
        from solvers.balance import keep_with_run
        keep_with_run(exp.name, Path(config.data_root), run_dir, progress=config.progress)
    device = select_device(config.gpu)
    solver_path, param = write_solver(config, run_dir)
    max_iter = param.max_iter
    base_lr, momentum = _tidy(param.base_lr), _tidy(param.momentum)  # float32 → as written
    test_every = config.test_every or 0
    snapshot_every = (config.snapshot_every if config.snapshot_every is not None
                      else exp.solver.snapshot or test_every)

    with RunLog(run_dir, display=config.display, echo=config.progress) as log:
        solver = caffe.get_solver(str(solver_path))
        net, test_net = solver.net, solver.test_nets[0]
        resume_from = _resume_target(config, run_dir)
        if resume_from is not None:
            start = snapshots.restore(solver, resume_from)
            fast_forward(data_layer(net), start * param.iter_size)
            for layer in net.layers:  # per-forward seeded layers (loss sampling) follow
                if hasattr(layer, "skip_forwards"):
                    layer.skip_forwards(start * param.iter_size)
            log.say(f"resumed {exp.name} at iteration {start} from {resume_from}")
            log.record("resume", iter=start, solverstate=str(resume_from))
        else:
            what = load_start(net, config.weights, seed=config.seed, what=exp.name)
            log.say(f"start {exp.name} on {device} from {what}; {max_iter} iterations, "
                    f"lr {base_lr:g}, momentum {momentum:g}, iter_size "
                    f"{param.iter_size}, width {config.width:g}, seed {config.seed}")
            log.record("start", experiment=exp.name, device=device, weights=what,
                       max_iter=max_iter, base_lr=base_lr, momentum=momentum,
                       iter_size=param.iter_size, width=config.width, seed=config.seed,
                       data=str(config.data_root), fingerprint=run_fingerprint(
                           exp.name, config.data_root, phase=0, solver=solver_path,
                           net=param.train_net, weights=config.weights, seed=config.seed,
                           gpu=config.gpu))
        test_net.share_with(net)
        meter = LossMeter(net)
        heads = experiment_heads(exp)
        test_images = split_size(test_net, default=param.test_iter[0])
        outcome = TrainOutcome(solver.iter, None, None, None)

        def run_test() -> None:
            save = (run_dir / "predictions" / f"iter_{solver.iter}"
                    if config.save_predictions else None)
            result = seg_test(test_net, heads, images=test_images, save_dir=save,
                              progress=config.progress, desc=f"test @ {solver.iter}")
            outcome.last_test = result.as_dict()
            log.test(solver.iter, outcome.last_test, exp.splits[1])

        with StopRequest() as stop, tqdm(total=max_iter, initial=solver.iter, unit="it",
                                         desc=exp.name, disable=not config.progress,
                                         mininterval=bar_interval(), leave=False) as bar:
            while solver.iter < max_iter and not stop.requested:
                caffe.set_random_seed(config.seed + solver.iter)
                began = time.perf_counter()
                solver.step(1)
                losses = meter.take()
                outcome.losses.append(sum(losses.values()))
                log.step(solver.iter, losses, base_lr)
                bar.update(1)
                bar.set_postfix(loss=f"{outcome.losses[-1]:.4g}",
                                s_it=f"{time.perf_counter() - began:.2f}")
                done = solver.iter == max_iter
                if (test_every and solver.iter % test_every == 0) or done:
                    run_test()
                if (snapshot_every and solver.iter % snapshot_every == 0) or done \
                        or stop.requested:
                    outcome.snapshot = snapshots.take(solver, run_dir / "snapshots")
                    log.record("snapshot", iter=solver.iter,
                               solverstate=str(outcome.snapshot.solverstate))
        outcome.iterations = solver.iter
        if solver.iter >= max_iter:
            if outcome.last_test is None:  # resumed at the end: score once anyway
                run_test()
            outcome.final_weights = snapshots.save_weights(net, run_dir / "final.caffemodel")
            log.say(f"done: {outcome.final_weights}")
            log.record("done", iter=solver.iter, weights=str(outcome.final_weights))
        else:
            outcome.interrupted = True
            log.say(f"stopped at iteration {solver.iter}; resume with --resume "
                    f"(snapshot {outcome.snapshot.solverstate if outcome.snapshot else '-'})")
            log.record("stopped", iter=solver.iter)
    return outcome


def _tidy(value: float) -> float:
    """A float32 solver field as the decimal it was written as (1e-10, not 1.00000001e-10)."""
    return float(f"{value:.7g}")


def _resume_target(config: TrainConfig, run_dir: Path) -> Path | None:
    if config.resume is False or config.resume is None:
        return None
    if config.resume is True:
        found = snapshots.available(run_dir / "snapshots")
        if not found:
            raise FileNotFoundError(f"{run_dir / 'snapshots'}: no complete snapshot to "
                                    f"resume from")
        return found[-1].solverstate
    return Path(config.resume)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train one FCN experiment (see nets/experiments.py) with seg tests, "
                    "atomic snapshots, resume and logs.")
    parser.add_argument("experiment", choices=list(EXPERIMENTS), metavar="EXPERIMENT",
                        help="e.g. voc-fcn32s")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (like data/)")
    parser.add_argument("--weights", required=False,
                        help="starting caffemodel for this net (from surgery.prepare), or "
                             "'none' for random init (quick runs only)")
    parser.add_argument("--run-dir", type=Path, help="default runs/<experiment>")
    parser.add_argument("--iters", type=int, help="max_iter (default: the experiment's)")
    parser.add_argument("--test-every", type=int, default=4000,
                        help="seg test interval in iterations (0: at the end only)")
    parser.add_argument("--snapshot-every", type=int,
                        help="snapshot interval (default: the solver's, else --test-every)")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--gpu", type=int, metavar="N", help="GPU id (default: CPU)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--lr", type=float, help="override base_lr")
    parser.add_argument("--momentum", type=float, help="override momentum")
    parser.add_argument("--iter-size", type=int, help="override iter_size")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="SOLVERSTATE",
                        help="resume from SOLVERSTATE, or the run's latest snapshot")
    parser.add_argument("--save-predictions", action="store_true",
                        help="write each test's predictions as palette PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.weights is None and not args.resume:
        raise ValueError("give --weights CAFFEMODEL (made by surgery.prepare), or "
                         "--weights none for random init")
    overrides = {k: v for k, v in (("base_lr", args.lr), ("momentum", args.momentum),
                                   ("iter_size", args.iter_size)) if v is not None}
    resume = args.resume if args.resume is True or not args.resume else Path(args.resume)
    weights = None if args.weights in (None, "none") else Path(args.weights)
    return TrainConfig(args.experiment, args.data, run_dir=args.run_dir, weights=weights,
                       iters=args.iters, test_every=args.test_every,
                       snapshot_every=args.snapshot_every, width=args.width, gpu=args.gpu,
                       seed=args.seed, overrides=overrides, resume=resume,
                       save_predictions=args.save_predictions, progress=not args.quiet)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        outcome = train(config_from_args(args))
    except (ValueError, OSError, RuntimeError) as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"iterations": outcome.iterations,
                      "final": str(outcome.final_weights) if outcome.final_weights else None,
                      "interrupted": outcome.interrupted}))
    return 130 if outcome.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
