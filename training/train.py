"""The training loop: the release's solve.py, with the parts it left out.

    python -m training.train voc-fcn32s --data DATA [--weights W | --weights none] ...

One run = one experiment in one folder (runs/<experiment>/ by default):
  .lock                  held (flock) by the one process training here
  nets/                  the experiment's generated nets and solver (nets.generate)
  solver.prototxt        the solver Caffe runs: absolute net paths, the overrides, the seed
  snapshots/             train_iter_N.{caffemodel,solverstate,manifest.json}, atomic, verified
  final.caffemodel       the weights after the last iteration (what a next stage starts from)
  train.log, train.jsonl text log and JSON lines (every step's loss, every test's metrics,
                         and why a run stopped: interrupt, divergence, bad data)

The loop, as in solve.py: step, log, test every N, snapshot every M, stop. Around it: the
run folder is locked for the run; the starting weights come from a caffemodel, the
quick-run init or the latest intact snapshot (weights, momentum, iteration, data order);
Caffe's generator is reseeded with seed + iteration before each step, so dropout masks
depend only on (seed, iteration) and a resumed run repeats the uninterrupted one exactly.
Ctrl-C or SIGTERM stops after the current iteration with a snapshot (a second one aborts);
a non-finite loss or weight stops the run without writing from the diverged state; a bad
data file is recorded in both logs and a snapshot taken before the run exits.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import re
import signal
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import caffe
import numpy as np
from caffe.proto import caffe_pb2
from google.protobuf import text_format
from tqdm import tqdm

from core import arguments
from core.defaults import RUNS_DIR, SEED, TEST_EVERY
from core.errors import ReportedError, cli_main
from core.manifest import record_result, verify_result_file
from core.outputs import Output, check_outputs
from core.paper_claims import learned
from evaluation.runtime import (
    OutOfMemory,
    bar_interval,
    check_data_root,
    select_device,
    training_bytes,
)
from evaluation.score import data_layer, experiment_heads, run_fingerprint, seg_test, split_size
from nets.experiments import EXPERIMENTS, Experiment, check_width
from nets.generate import write_experiment
from training import snapshots
from training.balance import keep_with_run
from training.check_data import check_experiment
from training.init import load_start
from training.runlog import RunLog

SOLVER_OVERRIDES = ("base_lr", "momentum", "iter_size", "weight_decay")
CHECK_DATA_FROM = 1000  # iterations: a run at least this long reads its splits first


class Diverged(ReportedError, RuntimeError):
    """The loss or the weights became NaN/inf; nothing was written from that state."""

    exit_code = 3


class DataFault(ReportedError, RuntimeError):
    """A data file failed mid-run; recorded in the logs, with a snapshot taken first."""


@dataclass
class TrainConfig:
    experiment: str
    data_root: Path
    run_dir: Path | None = None            # default runs/<experiment>
    weights: Path | None = None            # None: random init (quick runs only)
    iters: int | None = None               # max_iter; default the experiment's solver
    until_learned: int | None = None       # a run still at the background when `iters`
                                           # are done trains on to this many (once decided)
    test_every: int | None = TEST_EVERY    # the release's solve.py interval; 0/None: end only
    snapshot_every: int | None = None      # default: the solver's snapshot interval
    width: float = 1.0
    gpu: int | None = None
    seed: int = SEED
    overrides: dict = field(default_factory=dict)   # base_lr, momentum, iter_size, weight_decay
    resume: Path | bool = False            # True: the latest intact snapshot in run_dir
    save_predictions: bool = False
    progress: bool = True
    display: int = 20
    check_data: bool | None = None         # read every file first; None: for long runs only
    memory_limit: int | None = None        # bytes a step may take (None: what is free)

    def folder(self) -> Path:
        return Path(self.run_dir or RUNS_DIR / self.experiment)


@dataclass
class TrainOutcome:
    iterations: int
    final_weights: Path | None             # None when stopped early
    last_test: dict | None
    snapshot: snapshots.Snapshot | None
    interrupted: bool = False
    losses: list[float] = field(default_factory=list)
    signal: int | None = None              # the signal that stopped the run early


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
    """SIGINT or SIGTERM (what `timeout`, schedulers and container runtimes send) sets a
    flag the loop checks between iterations; a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signal: int | None = None
        self.previous: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # signals reach only it
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signal = True, signum
        print(f"\n{signal.Signals(signum).name}: stopping after this iteration with a "
              f"snapshot (send it again to abort without one)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def solver_parameter(config: TrainConfig, generated: caffe_pb2.SolverParameter,
                     names: dict[str, str], run_dir: Path) -> caffe_pb2.SolverParameter:
    """The solver Caffe will run: the generated one with absolute net paths, the
    overrides' values, the seed, and our own snapshotting instead of Caffe's."""
    param = caffe_pb2.SolverParameter()
    param.CopyFrom(generated)
    param.train_net = str((run_dir / "nets" / names["train"]).resolve())
    param.test_net[0] = str((run_dir / "nets" / names["test"]).resolve())
    param.snapshot = 0  # the loop snapshots, atomically
    param.snapshot_prefix = str(snapshots.staging_prefix(run_dir / "snapshots").resolve())
    param.random_seed = config.seed
    param.display = 0
    return param


@dataclass(frozen=True)
class NetFiles:
    """An experiment's generated files, made once per stage: a schedule's surgery reads the
    deploy net from them and the run writes them into its nets/ folder."""
    files: dict[str, bytes]        # file name → content
    roles: dict[str, str]          # 'train', 'test', 'deploy', 'solver' → file name

    def write(self, role: str, folder: Path) -> Path:
        """Write one role's file into `folder` and return its path."""
        path = Path(folder) / self.roles[role]
        path.write_bytes(self.files[self.roles[role]])
        return path


def generate_nets(config: TrainConfig) -> NetFiles:
    """The experiment's nets and solver for these settings (nets.generate), in memory."""
    unknown = set(config.overrides) - set(SOLVER_OVERRIDES)
    if unknown:
        raise ValueError(f"solver overrides {sorted(unknown)} not supported; "
                         f"use {SOLVER_OVERRIDES}")
    overrides = dict(config.overrides)
    if config.until_learned is not None:
        if config.iters is None or config.until_learned < config.iters:
            raise ValueError(f"until_learned ({config.until_learned}) needs iters at or "
                             f"below it (iters {config.iters})")
        overrides["max_iter"] = config.until_learned
    elif config.iters is not None:
        overrides["max_iter"] = config.iters
    with tempfile.TemporaryDirectory(prefix="fcn-nets-") as tmp:
        generated = write_experiment(config.experiment, tmp, width=config.width,
                                     data_root=str(Path(config.data_root).resolve()),
                                     seed=config.seed, solver_overrides=overrides)
        return NetFiles({path.name: path.read_bytes() for path in generated.values()},
                        {role: path.name for role, path in generated.items()})


def write_solver(config: TrainConfig, run_dir: Path, *, resuming: bool = False,
                 nets: NetFiles | None = None) -> tuple[Path, caffe_pb2.SolverParameter]:
    """Write the experiment's files (`nets`, generated here when not given) into
    run_dir/nets and the solver Caffe will run into run_dir/solver.prototxt. Resuming, they
    must equal what the run was started with (only max_iter may change): a changed setting
    is refused before anything is written."""
    nets = nets or generate_nets(config)
    solver = caffe_pb2.SolverParameter()
    text_format.Merge(nets.files[nets.roles["solver"]].decode(), solver)
    param = solver_parameter(config, solver, nets.roles, run_dir)
    solver_text = text_format.MessageToString(param)
    if resuming:
        _check_unchanged(run_dir, nets.files, nets.roles["solver"], solver_text)
    (run_dir / "nets").mkdir(parents=True, exist_ok=True)
    for name, data in nets.files.items():
        (run_dir / "nets" / name).write_bytes(data)
    solver_path = run_dir / "solver.prototxt"
    solver_path.write_text(solver_text)
    return solver_path, param


def _settings_only(text: str) -> str:
    """A solver without what may change between a run and its resume: max_iter, and the
    paths into the run folder (a run folder may be moved)."""
    param = caffe_pb2.SolverParameter()
    text_format.Merge(text, param)
    for name in ("max_iter", "train_net", "test_net", "snapshot_prefix"):
        param.ClearField(name)
    return text_format.MessageToString(param)


def _check_unchanged(run_dir: Path, files: dict[str, bytes], solver_name: str,
                     solver_text: str) -> None:
    """Raise naming the first run file whose content these settings would change."""
    wanted = {f"nets/{name}": data.decode() for name, data in files.items()}
    wanted["solver.prototxt"] = solver_text
    for name, text in wanted.items():
        path = run_dir / name
        if not path.is_file():
            continue  # a run from before the file existed: nothing to compare
        old = path.read_text()
        if name.endswith(solver_name) or name == "solver.prototxt":
            old, text = _settings_only(old), _settings_only(text)
        if old != text:
            before, after = _first_difference(old, text)
            raise ValueError(
                f"{path}: resuming with other settings than the run was started with "
                f"(was `{before}`, now `{after}`); resume with the same WIDTH/DATA/LR/"
                f"MOMENTUM/SEED, or start a new run in another folder (only ITERS may "
                f"change). Nothing was changed")


def _first_difference(a: str, b: str) -> tuple[str, str]:
    for x, y in zip(a.splitlines(), b.splitlines()):
        if x != y:
            return x.strip(), y.strip()
    return f"{len(a.splitlines())} lines", f"{len(b.splitlines())} lines"


def fast_forward(layer, forwards: int) -> None:
    """Advance a training data layer by `forwards` examples without decoding them, so a
    resumed run reads what the uninterrupted one would have read next."""
    if layer is None or forwards <= 0:
        return
    if not hasattr(layer, "skip"):
        raise RuntimeError(f"{type(layer).__name__} cannot be advanced to the resumed "
                           f"iteration (it has no skip(n)); the data order would differ")
    layer.skip(forwards)


def non_finite_layers(net) -> list[str]:
    """The layers of `net` holding a NaN or an infinity in any parameter blob."""
    return [name for name, blobs in net.params.items()
            if not all(np.isfinite(blob.data).all() for blob in blobs)]


class Run:
    """One training run's state and its named steps: step, log, test, snapshot, stop."""

    def __init__(self, config: TrainConfig, exp: Experiment, run_dir: Path, log: RunLog, *,
                 device: str | None = None, nets: NetFiles | None = None):
        """Everything before the first step, in order: where to start from, the device,
        the run's files, its settings, its data, then Caffe's solver. `device` and `nets`
        come from a schedule that picked and generated them once for the stage."""
        self.config, self.exp, self.run_dir, self.log = config, exp, run_dir, log
        self.resume_from = self._choose_start()
        self.device = device or select_device(config.gpu)
        self.solver_path, self.param = write_solver(config, run_dir, nets=nets,
                                                    resuming=self.resume_from is not None)
        self._read_settings()
        self._prepare_data()
        self.solver = caffe.get_solver(str(self.solver_path))
        self.net, self.test_net = self.solver.net, self.solver.test_nets[0]
        self.outcome = TrainOutcome(0, None, None, None)
        self.sizes_fitted: set[tuple[int, ...]] = set()  # picture sizes a step fits at

    def _choose_start(self) -> Path | None:
        """The snapshot to resume from; a fresh run refuses a folder holding another's."""
        resume_from = _resume_target(self.config, self.run_dir, self.log)
        if resume_from is None:
            _check_fresh(self.run_dir)
        return resume_from

    def _read_settings(self) -> None:
        """Iterations, rates and intervals as the written solver says."""
        config, param = self.config, self.param
        self.max_iter = param.max_iter
        # with until_learned: the iteration the test decides at, and what it decided
        self.decide_at = config.iters if config.until_learned is not None else None
        self.left_background: bool | None = None
        self.base_lr, self.momentum = _tidy(param.base_lr), _tidy(param.momentum)
        self.test_every = config.test_every or 0
        self.snapshot_every = (config.snapshot_every if config.snapshot_every is not None
                               else self.exp.solver.snapshot or self.test_every)

    def _prepare_data(self) -> None:
        """Before Caffe builds the nets (which read a first example): every file read when
        the run is long, and the per-class weights a balanced loss reads."""
        config = self.config
        planned = self.decide_at or self.max_iter  # an extension is not planned length
        if _wants_data_check(config, planned - _iteration_of(self.resume_from)):
            self._check_data()
        if self.exp.loss == "balanced":
            keep_with_run(self.exp.name, Path(config.data_root), self.run_dir,
                          progress=config.progress)

    @property
    def iteration(self) -> int:
        return self.solver.iter

    def start(self) -> None:
        """Starting weights (or the resumed state), checked finite; the test net shares
        them; the data checked first when the run is long."""
        exp, param, config = self.exp, self.param, self.config
        if self.resume_from is not None:
            start = snapshots.restore(self.solver, self.resume_from)
            fast_forward(data_layer(self.net), start * param.iter_size)
            for layer in self.net.layers:  # per-forward seeded layers (loss sampling) follow
                if hasattr(layer, "skip_forwards"):
                    layer.skip_forwards(start * param.iter_size)
            self.log.say(f"resumed {exp.name} at iteration {start} from {self.resume_from}")
            self.log.record("resume", iter=start, solverstate=str(self.resume_from))
        else:
            what = load_start(self.net, config.weights, seed=config.seed, what=exp.name)
            self.log.say(f"start {exp.name} on {self.device} from {what}; {self.max_iter} "
                         f"iterations{self._extension_note()}, lr {self.base_lr:g}, "
                         f"momentum {self.momentum:g}, iter_size {param.iter_size}, "
                         f"width {config.width:g}, "
                         f"seed {config.seed}")
            self.log.record("start", experiment=exp.name, device=self.device, weights=what,
                            max_iter=self.max_iter, base_lr=self.base_lr,
                            momentum=self.momentum, iter_size=param.iter_size,
                            width=config.width, seed=config.seed, data=str(config.data_root),
                            fingerprint=run_fingerprint(
                                exp.name, config.data_root, phase=0, solver=self.solver_path,
                                net=param.train_net, weights=config.weights,
                                seed=config.seed, gpu=config.gpu))
        bad = non_finite_layers(self.net)
        if bad:
            source = self.resume_from or config.weights
            self.stop_diverged(f"the starting weights ({source}) hold NaN or infinite values "
                               f"in {', '.join(bad[:5])}")
        self.test_net.share_with(self.net)
        self.meter = LossMeter(self.net)
        self.heads = experiment_heads(exp)
        self.test_images = split_size(self.test_net, default=param.test_iter[0])
        self.outcome.iterations = self.iteration
        if self.decide_at is not None and self.iteration > self.decide_at:
            self.left_background = False  # resumed past the decision: it had trained on
        elif self.decide_at is not None and self.iteration == self.decide_at:
            self.test()  # resumed at the decision: the same test decides it again

    def _check_data(self) -> None:
        """Every file of both splits read first; on the CPU, the step on the largest
        picture must fit in memory (Caffe's allocator aborts the process otherwise)."""

        self.log.say("checking every file of the splits first (cached once checked)")
        height, width = check_experiment(self.exp, Path(self.config.data_root),
                                         progress=self.config.progress)
        if self.config.gpu is not None or not height:
            return
        try:
            training_bytes(self.run_dir / "nets" / "deploy.prototxt", height, width,
                           self.config.memory_limit)
        except MemoryError as e:
            raise ValueError(f"the largest picture of {self.exp.name}'s splits: {e} (or "
                             f"lower WIDTH, or train where there is more memory)") from None

    def _check_next_fits(self) -> None:
        """On the CPU, refuse (OutOfMemory) the next example when a step on it would not fit
        in memory: Caffe's allocator would abort the process. Only a picture size not seen
        before in this run is estimated; peeking reads the example Caffe reads next anyway
        (upcoming() does not advance the data order), so training is unchanged."""
        layer = data_layer(self.net)
        if self.config.gpu is not None or not hasattr(layer, "upcoming"):
            return
        where, shapes = layer.upcoming()
        size = shapes[layer.names[0]][-2:]
        if size in self.sizes_fitted:
            return
        try:
            training_bytes(self.run_dir / "nets" / "deploy.prototxt", *size,
                           self.config.memory_limit)
        except MemoryError as e:
            raise OutOfMemory(f"{where}: {e} (or lower WIDTH, or train where there is more "
                              f"memory)") from None
        self.sizes_fitted.add(size)

    def step(self) -> dict[str, float]:
        """One iteration, reseeded by iteration; a data error is recorded with a snapshot,
        a non-finite loss stops the run."""
        caffe.set_random_seed(self.config.seed + self.iteration)
        try:
            self._check_next_fits()
            self.solver.step(1)
        except OutOfMemory:
            raise
        except Exception as e:  # a data layer's error, raised through Caffe's step
            self.stop_data_error(e)
        losses = self.meter.take()
        total = sum(losses.values())
        self.outcome.losses.append(total)
        if not math.isfinite(total):
            self.log.step(self.iteration, losses, self.base_lr)
            self.stop_diverged(f"the loss is {total} at iteration {self.iteration}")
        return losses

    def log_step(self, losses: dict[str, float], bar, seconds: float) -> None:
        self.log.step(self.iteration, losses, self.base_lr)
        bar.update(1)
        bar.set_postfix(loss=f"{self.outcome.losses[-1]:.4g}", s_it=f"{seconds:.2f}",
                        refresh=False)  # the bar's own interval decides when to draw

    def test(self) -> None:
        """Score the test split with the test net (sharing the train net's weights)."""
        save = (self.run_dir / "predictions" / f"iter_{self.iteration}"
                if self.config.save_predictions else None)
        try:
            result = seg_test(self.test_net, self.heads, images=self.test_images,
                              save_dir=save, progress=self.config.progress,
                              desc=f"test @ {self.iteration}")
        except Exception as e:  # a bad file in the test split
            self.stop_data_error(e, during="the test")
        self.outcome.last_test = result.as_dict()
        self.log.test(self.iteration, self.outcome.last_test, self.exp.splits[1])
        if self.iteration == self.decide_at:
            self.left_background = not at_background(self.outcome.last_test)
            if not self.left_background:
                self.log.say(f"still at the background after {self.decide_at} iterations: "
                             f"training on to {self.max_iter}")
            self.log.record("decided", iter=self.iteration,
                            left_background=self.left_background, until=self.max_iter)

    def snapshot(self) -> None:
        """An atomic, manifested snapshot, never of non-finite weights."""
        bad = non_finite_layers(self.net)
        if bad:
            self.stop_diverged(f"the weights of {', '.join(bad[:5])} became NaN or infinite "
                               f"by iteration {self.iteration}")
        try:
            self.outcome.snapshot = snapshots.take(self.solver, self.run_dir / "snapshots")
        except snapshots.SnapshotSpaceError as e:
            self.log.say(f"error: {e.strerror}")
            cause = "file-size limit" if e.errno == errno.EFBIG else "disk full"
            self.log.record("error", iter=self.iteration, cause=cause, message=e.strerror)
            raise
        self.log.record("snapshot", iter=self.iteration,
                        solverstate=str(self.outcome.snapshot.solverstate))

    def due(self, every: int) -> bool:
        return bool(every) and self.iteration % every == 0

    def _extension_note(self) -> str:
        if self.decide_at is None:
            return ""
        return f" ({self.decide_at}, then on to {self.max_iter} if still at the background)"

    def must_test(self) -> bool:
        """A test is due: every test_every, at the end, and where until_learned decides."""
        return (self.due(self.test_every) or self.finished()
                or (self.iteration == self.decide_at and self.left_background is None))

    def finished(self) -> bool:
        if self.iteration >= self.max_iter:
            return True
        return (self.decide_at is not None and self.iteration >= self.decide_at
                and bool(self.left_background))

    def finish(self, stop: StopRequest) -> TrainOutcome:
        """The final weights (after a last test) or a 'stopped' record saying how to resume."""
        outcome = self.outcome
        outcome.iterations = self.iteration
        if self.finished():
            if outcome.last_test is None:  # resumed at the end: score once anyway
                self.test()
            bad = non_finite_layers(self.net)
            if bad:
                self.stop_diverged(f"the final weights of {', '.join(bad[:5])} are not finite")
            outcome.final_weights = snapshots.save_weights(self.net,
                                                           self.run_dir / "final.caffemodel")
            record_result(self.run_dir, [outcome.final_weights], request_of(self.config))
            self.log.say(f"done: {outcome.final_weights}")
            self.log.record("done", iter=self.iteration, weights=str(outcome.final_weights))
        else:
            outcome.interrupted, outcome.signal = True, stop.signal
            cause = signal.Signals(stop.signal).name if stop.signal else "interrupt"
            self.log.say(f"stopped ({cause}) at iteration {self.iteration}; resume with "
                         f"--resume (snapshot "
                         f"{outcome.snapshot.solverstate if outcome.snapshot else '-'})")
            self.log.record("stopped", iter=self.iteration, signal=cause)
        return outcome

    def last_snapshot(self) -> str:
        found = snapshots.available(self.run_dir / "snapshots")
        return str(found[-1].solverstate) if found else "none"

    def stop_diverged(self, why: str) -> None:
        message = (f"{self.exp.name} diverged: {why}. Nothing was written from this state; "
                   f"the last snapshot ({self.last_snapshot()}) is kept and no "
                   f"final.caffemodel is written. Lower the learning rate (LR=) or check "
                   f"the starting weights, then start again in a new folder (remove "
                   f"{self.run_dir} or give another RUNS=/--run-dir)")
        self.log.say(f"error: {message}")
        self.log.record("diverged", iter=self.iteration, message=why)
        raise Diverged(message)

    def stop_data_error(self, error: Exception, during: str = "training") -> None:
        """Record a data error in both logs, snapshot (a failed step leaves the state it
        started from: weights change only at an iteration's end), and stop."""
        self.log.say(f"error: bad data in {during} after iteration {self.iteration}: {error}")
        self.log.record("data_error", iter=self.iteration, during=during, message=str(error))
        try:
            self.snapshot()
            kept = f"snapshot {self.outcome.snapshot.solverstate} written"
        except (OSError, RuntimeError) as e:
            kept = f"no snapshot ({e}); the last one is {self.last_snapshot()}"
        raise DataFault(f"{self.exp.name} stopped at iteration {self.iteration}: {error} "
                        f"({kept}). Fix or replace the file (`make check-data` lists every "
                        f"bad one), then resume with the same command") from error


def preflight(names: list[str], data_root: Path, gpu: int | None) -> str:
    """What a chain of runs needs before any of them starts, checked once: every stage's
    split lists under `data_root`, and the device (CPU or GPU `gpu`, set for this process).
    Returns the device's description."""
    for name in names:
        check_data_root(EXPERIMENTS[name], Path(data_root))
    return select_device(gpu)


def check_run_folder(run_dir: Path, data_root: Path) -> None:
    """Before any work: a run folder (RUNS=/--run-dir) is never the data root nor inside it
    (core.outputs: snapshots and predictions among the ground truth); what it holds
    already is the run's own, which resume and the "done already" check verify."""
    check_outputs([Output("RUNS=/--run-dir", Path(run_dir), folder=True, resumable=True)],
                  {"the data root (DATA=/--data)": data_root})


def train(config: TrainConfig, *, device: str | None = None,
          nets: NetFiles | None = None) -> TrainOutcome:
    """Run one experiment in its folder: the release's solve.py loop, made safe. A schedule
    passes the `device` its preflight picked and the stage's generated `nets`; alone, the
    run checks its data root and picks the device itself."""
    exp = EXPERIMENTS.get(config.experiment)
    if exp is None:
        raise ValueError(f"unknown experiment {config.experiment!r}; choose from "
                         f"{list(EXPERIMENTS)}")
    if device is None:
        check_data_root(exp, Path(config.data_root))
    if config.weights is not None and not Path(config.weights).is_file():
        raise FileNotFoundError(f"{config.weights}: starting weights not found")
    run_dir = config.folder()
    check_run_folder(run_dir, config.data_root)
    with ExitStack() as held:
        held.enter_context(snapshots.RunLock(run_dir))
        removed = snapshots.clean_orphans(run_dir)
        log = held.enter_context(RunLog(run_dir, display=config.display,
                                        echo=config.progress))
        if removed:
            log.say(f"removed {len(removed)} half-written file(s) of an earlier run "
                    f"({sum(size for _, size in removed) / 2**20:.1f} MiB)")
        final = run_dir / "final.caffemodel"
        if config.resume and final.is_file():  # a finished run's result, as vouched for
            verify_result_file(final)
        run = Run(config, exp, run_dir, log, device=device, nets=nets)
        run.start()
        stop = held.enter_context(StopRequest())
        bar = held.enter_context(tqdm(total=run.max_iter, initial=run.iteration, unit="it",
                                      desc=exp.name, disable=not config.progress,
                                      mininterval=bar_interval(), leave=False))
        try:
            while not run.finished() and not stop.requested:
                began = time.perf_counter()
                losses = run.step()
                run.log_step(losses, bar, time.perf_counter() - began)
                if run.must_test():
                    run.test()
                if run.due(run.snapshot_every) or run.finished() or stop.requested:
                    run.snapshot()
        except KeyboardInterrupt:
            log.say(f"aborted at iteration {run.iteration} without a snapshot (second "
                    f"interrupt); resume from {run.last_snapshot()}")
            log.record("aborted", iter=run.iteration)
            raise
        return run.finish(stop)


def _tidy(value: float) -> float:
    """A float32 solver field as the decimal it was written as (1e-10, not 1.00000001e-10)."""
    return float(f"{value:.7g}")


def _wants_data_check(config: TrainConfig, iterations: int) -> bool:
    return config.check_data if config.check_data is not None else \
        iterations >= CHECK_DATA_FROM


def _iteration_of(solverstate: Path | None) -> int:
    """The iteration a snapshot was taken at, from its name (0 for a fresh start)."""
    match = re.search(r"_iter_(\d+)\.solverstate$", str(solverstate or ""))
    return int(match.group(1)) if match else 0


def request_of(config: TrainConfig) -> dict:
    """What a finished run answered, as its result manifest records it: a rerun asking
    anything else is refused, not skipped (core.manifest.check_request)."""
    request = {"experiment": config.experiment, "data": str(Path(config.data_root).resolve()),
               "iters": config.iters, "width": config.width, "seed": config.seed,
               "overrides": {key: config.overrides[key] for key in sorted(config.overrides)}}
    if config.until_learned is not None:  # absent otherwise: earlier results stay valid
        request["until_learned"] = config.until_learned
    return request


def at_background(test: dict) -> bool:
    """A test record (evaluation.score's as_dict) where no head's mean IU has `learned`
    (the paper claims' guard, LEARNED_ABOVE points over its own all-background score)."""
    heads = [m for m in test.values()
             if isinstance(m, dict) and "mean_iu" in m and "background_mean_iu" in m]
    return bool(heads) and not any(
        learned(100 * m["mean_iu"], 100 * m["background_mean_iu"]) for m in heads)


def _check_fresh(run_dir: Path) -> None:
    """A new run never starts over a folder that holds another run's results."""
    found = snapshots.available(run_dir / "snapshots")
    final = run_dir / "final.caffemodel"
    if found or final.is_file():
        what = f"snapshots up to iteration {found[-1].iteration}" if found else final.name
        raise ValueError(f"{run_dir} holds an earlier run ({what}); resume it (--resume), "
                         f"or give the new run its own folder (--run-dir / RUNS=)")


def _resume_target(config: TrainConfig, run_dir: Path, log: RunLog) -> Path | None:
    """The solverstate to resume from: the one named, or the latest intact snapshot
    (passing over damaged or half-written ones, and saying so)."""
    if config.resume is False or config.resume is None:
        return None
    if config.resume is not True:
        return Path(config.resume)
    snapshot_dir = run_dir / "snapshots"
    found, passed = snapshots.latest_intact(snapshot_dir)
    for problem in passed:
        log.say(f"passing over a snapshot: {problem}")
        log.record("snapshot_skipped", message=problem)
    if found is None:
        detail = f" ({'; '.join(passed)})" if passed else ""
        raise FileNotFoundError(f"{snapshot_dir}: no intact snapshot to resume from{detail}")
    if passed:
        log.say(f"resuming from the previous intact snapshot, iteration {found.iteration}")
    return found.solverstate


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
    parser.add_argument("--iters", type=arguments.iterations(),
                        help="max_iter (default: the experiment's)")
    parser.add_argument("--test-every", type=arguments.interval("TEST_EVERY=/--test-every"),
                        default=TEST_EVERY,
                        help="seg test interval in iterations (0: at the end only)")
    parser.add_argument("--snapshot-every", type=arguments.interval("--snapshot-every"),
                        help="snapshot interval (default: the solver's, else --test-every)")
    parser.add_argument("--width", type=arguments.width(), default=1.0,
                        help="channel width multiplier")
    parser.add_argument("--gpu", type=int, metavar="N", help="GPU id (default: CPU)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--lr", type=arguments.rate("LR=/--lr"), help="override base_lr")
    parser.add_argument("--momentum", type=arguments.momentum(), help="override momentum")
    parser.add_argument("--iter-size", type=arguments.iterations("--iter-size"),
                        help="override iter_size")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="SOLVERSTATE",
                        help="resume from SOLVERSTATE, or the run's latest snapshot")
    parser.add_argument("--save-predictions", action="store_true",
                        help="write each test's predictions as palette PNGs")
    parser.add_argument("--check-data", action=argparse.BooleanOptionalAction, default=None,
                        help=f"read every file of the splits before training (default: "
                             f"for runs of {CHECK_DATA_FROM}+ iterations; cached)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.weights is None and not args.resume:
        raise ValueError("give --weights CAFFEMODEL (made by surgery.prepare), or "
                         "--weights none for random init")
    overrides = {k: v for k, v in (("base_lr", args.lr), ("momentum", args.momentum),
                                   ("iter_size", args.iter_size)) if v is not None}
    check_width(args.experiment, args.width)
    resume = args.resume if args.resume is True or not args.resume else Path(args.resume)
    weights = None if args.weights in (None, "none") else Path(args.weights)
    return TrainConfig(args.experiment, args.data, run_dir=args.run_dir, weights=weights,
                       iters=args.iters, test_every=args.test_every,
                       snapshot_every=args.snapshot_every, width=args.width, gpu=args.gpu,
                       seed=args.seed, overrides=overrides, resume=resume,
                       save_predictions=args.save_predictions, progress=not args.quiet,
                       check_data=args.check_data)


@cli_main("train", also=(ValueError, OSError, RuntimeError))
def main(argv: list[str] | None = None) -> int:
    """Exit 0 done, 1 error, 3 diverged, 130/143 stopped by SIGINT/SIGTERM (resumable)."""
    args = parse_args(argv)
    try:
        outcome = train(config_from_args(args))
    except KeyboardInterrupt:
        print("train: aborted without a snapshot; --resume continues from the last one",
              file=sys.stderr)
        return 130
    print(json.dumps({"iterations": outcome.iterations,
                      "final": str(outcome.final_weights) if outcome.final_weights else None,
                      "interrupted": outcome.interrupted}))
    return 128 + (outcome.signal or signal.SIGINT) if outcome.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
