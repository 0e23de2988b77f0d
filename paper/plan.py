"""What each table of the paper needs: its rows, the runs behind them, and where they stand.

    python -m paper.plan [--tables 3,5] [--data DATA] [--runs RUNS] [--mini]

A table is a list of groups; a group (the paper's table, or a control the paper states in
words) is shown whole or not at all: while any of its runs is missing, the report says
what is missing instead of partial numbers. A row names the experiment whose final
weights it scores (nets/experiments.py), optionally with its test inputs masked (Table 8's
Reference-FG / -BG: the reference net scored on masked pictures).
Runs that share stages (voc-fcn8s and voc-fcn32s-lrdrop both start from voc-fcn32s) form
one component: components are what a worker trains, one after the other inside it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core import paper_numbers as N
from core.catalog import DATASETS, relative_pixels
from core.defaults import BASE_WEIGHTS_DIR, DATA_ROOT, RUNS_DIR, SEED, TEST_EVERY
from core.errors import cli_main
from core.geometry import parameter_counts
from core.weights import FINAL_WEIGHTS, base_weights_path
from data.synthetic import FINDINGS, Style
from evaluation.runtime import check_data_root
from nets.solver_settings import HEAVY_LR


# --- the tables -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    label: str                       # the paper's row label (numbers.ROWS) or a control's
    experiment: str | None = None    # None: another method's row, the paper's numbers only
    test_mask: str | None = None     # Table 8: mask the test inputs ('fg' / 'bg') only
    best: bool = False               # Table 2: the best test during training, not the last
    equal_images: bool = False       # iterations = images / iter_size (Tables 1 and 2)
    paper_from: tuple[str, str] | None = None   # (table, row) whose printed numbers apply


@dataclass(frozen=True)
class Group:
    key: str                         # numbers.ROWS table key, or a control's name
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    claim: str = ""                  # the paper's finding in words, when it prints no number
    computed: str | None = None      # not trained: 'bounds' (Section 6.3)

    def runs(self) -> list[str]:
        """Experiments that must be trained for this group, in row order."""
        return list(dict.fromkeys(r.experiment for r in self.rows if r.experiment))

    def needed(self) -> list[str]:
        """Experiments that must be registered."""
        return self.runs()


S = N.STANDARD
_REF32 = Row("FCN-32s", "voc-fcn32s", paper_from=("3", "FCN-32s"))

TABLES: dict[str, tuple[Group, ...]] = {
    "1": (
        Group("1", "Table 1: classifiers as FCNs (VOC 2011 train, 20-image batches)",
              ("mean_iu", "conv_layers", "parameters_m", "rf_size", "max_stride"),
              (Row("FCN-AlexNet", "table1-fcn-alexnet", equal_images=True),
               Row("FCN-VGG16", "table1-fcn-vgg16", equal_images=True),
               Row("FCN-GoogLeNet", "table1-fcn-googlenet", equal_images=True))),
        Group("1-data", "More training data (Section 4.4): VOC 2011 train → SBD", (N.MEAN_IU,),
              (Row("FCN-AlexNet, VOC 2011 train (1,112 images)", "table1-fcn-alexnet",
                   equal_images=True),
               Row("FCN-AlexNet, SBD train (8,498 images)", "voc-fcn-alexnet"),
               Row("FCN-32s, VOC 2011 train (1,112 images)"),
               Row("FCN-32s, SBD train (8,498 images)", "voc-fcn32s"))),
    ),
    "2": (Group("2", "Table 2: accumulated, online and heavy learning (best during training)",
                S, (Row("FCN-accum", "table2-accumulated", best=True, equal_images=True),
                    Row("FCN-online", "table2-online", best=True, equal_images=True),
                    # the heavy regime is the release's FCN-32s solver: the same run
                    Row("FCN-heavy", "voc-fcn32s", best=True, equal_images=True))),),
    "3": (
        Group("3", "Table 3: skip architectures and ablations", S,
              (Row("FCN-32s", "voc-fcn32s"), Row("FCN-16s", "voc-fcn16s"),
               Row("FCN-8s at-once", "voc-fcn8s-atonce"), Row("FCN-8s staged", "voc-fcn8s"),
               Row("FCN-32s fixed", "voc-fcn32s-fixed"), Row("FCN-pool5", "voc-fcn-pool5"),
               Row("FCN-pool4", "voc-fcn-pool4"), Row("FCN-pool3", "voc-fcn-pool3"))),
        Group("3-control", "Table 3's control: the lower rates without skips", S,
              (_REF32, Row("FCN-32s, lr dropped, no skip", "voc-fcn32s-lrdrop")),
              claim=N.CLAIMS["3-control"]),
    ),
    "5": (Group("5", "Table 5: NYUDv2", S,
                (Row("Gupta et al."), Row("FCN-32s RGB", "nyud-fcn32s-color"),
                 Row("FCN-32s RGB-D", "nyud-fcn32s-color-d"),
                 Row("FCN-32s HHA", "nyud-fcn32s-hha"),
                 Row("FCN-32s RGB-HHA", "nyud-fcn32s-color-hha"))),),
    "6": (Group("6", "Table 6: SIFT Flow (semantics over the classes present; geometry)",
                (*S, N.GEOM_ACC),
                (Row("Liu et al."), Row("Tighe et al. transfer"), Row("Tighe et al. SVM"),
                 Row("Tighe et al. SVM+MRF"), Row("Farabet et al. natural"),
                 Row("Farabet et al. balanced"), Row("Pinheiro et al."),
                 Row("FCN-8s", "siftflow-fcn8s"),
                 Row("FCN-8s, semantic only", "siftflow-fcn8s-sem"),
                 Row("FCN-8s, geometric only", "siftflow-fcn8s-geo"))),),
    "7": (Group("7", "Table 7: PASCAL-Context, 59 classes", S,
                (Row("O2P"), Row("CFM"), Row("FCN-32s", "pascalcontext-fcn32s"),
                 Row("FCN-16s", "pascalcontext-fcn16s"),
                 Row("FCN-8s", "pascalcontext-fcn8s"))),),
    "8": (Group("8", "Table 8: foreground, background and shape (mean IU without background)",
                (N.MEAN_IU_NO_BG,),
                # the reference is FCN-32s, unmasked in training: the same run as Table 3's
                (Row("Reference", "voc-fcn32s"),
                 Row("Reference-FG", "voc-fcn32s", test_mask="bg"),
                 Row("Reference-BG", "voc-fcn32s", test_mask="fg"),
                 Row("FG-only", "mask-fg-only"), Row("BG-only", "mask-bg-only"),
                 Row("Shape", "mask-shape"))),),
    "bounds": (Group("bounds", "Section 6.3: upper bounds on mean IU by output stride",
                     (N.MEAN_IU,), tuple(Row(r.row) for r in N.rows("bounds")),
                     computed="bounds"),),
    "nullbg": (Group("nullbg", "Section 6.1: a null background model", S,
                     (Row("FCN-32s, softmax (reference)", "voc-fcn32s",
                          paper_from=("3", "FCN-32s")),
                      Row("FCN-32s, sigmoid cross-entropy (control)", "sigmoid-fcn32s"),
                      Row("FCN-32s, null background", "nullbg-fcn32s")),
                     claim=N.CLAIMS["nullbg"]),),
    "sampling": (Group("sampling", "Section 4.4 and Figure 5: loss sampling", S,
                       (Row("p = 1 (whole image)", "voc-fcn32s", paper_from=("3", "FCN-32s")),
                        Row("p = 0.5", "sampling-p50", equal_images=True),
                        Row("p = 0.25", "sampling-p25", equal_images=True)),
                       claim=N.CLAIMS["sampling"]),),
    "balance": (Group("balance", "Section 4.4: class balancing", S,
                      (_REF32, Row("FCN-32s, class-balanced loss", "balance-fcn32s")),
                      claim=N.CLAIMS["balance"]),),
    "augment": (Group("augment", "Section 4.4: augmentation", S,
                      (_REF32, Row("FCN-32s, mirror + jitter 32 px", "augment-fcn32s")),
                      claim=N.CLAIMS["augment"]),),
    "transfer": (Group("transfer", "Section 4.3: transfer against training from scratch", S,
                       (_REF32, Row("FCN-32s from scratch", "voc-fcn32s-scratch")),
                       claim=N.CLAIMS["transfer"]),),
}
ALL_TABLES = tuple(TABLES)


def parse_tables(text: str | None) -> list[str]:
    """'1,3,bounds' → ['1', '3', 'bounds'] (all when empty); an unknown key is an error."""
    if not text:
        return list(ALL_TABLES)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in TABLES]
    if "4" in unknown:
        raise ValueError("Table 4 is the VOC test server's: `make voc-submission WEIGHTS=… "
                         "YEAR=2011|2012` writes what it accepts")
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; choose from {', '.join(ALL_TABLES)}")
    return list(dict.fromkeys(keys))


def paper_row(group: Group, row: Row) -> N.PaperRow | None:
    """The paper's printed numbers for a row, if it prints any."""
    table, label = row.paper_from or (group.key, row.label)
    return next((r for r in N.ROWS if r.table == table and r.row == label), None)


def say(message: str) -> None:
    """A progress line of `make paper` (stderr, so a report on stdout stays clean)."""
    print(f"[paper] {message}", file=sys.stderr, flush=True)


# --- how a run is done -----------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Everything that makes a run's numbers what they are, in one place."""
    data: Path
    runs: Path
    weights: str | None = None         # base weights (None: ilsvrc-nets/<base>; 'none': random)
    width: float = 1.0
    iters: int | None = None           # per stage; None: the experiment's solver
    first_iters: int | None = None     # a chain's first stage (from a classifier), if other
    first_extension: int | None = None  # such a stage still at the background after its
                                        # steps trains on to this many times them
    test_every: int = TEST_EVERY
    lr: float | None = None            # the chain's first-stage lr (quick runs)
    lr_drop: float | None = None       # per stage (None: the experiments' own ratios)
    momentum: float | None = None
    solver_changes: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    gpu: int | None = None
    seed: int = SEED
    mini: bool = False
    picture: tuple[int, int] = DATASETS["voc"].picture  # for the normalised-loss lr rule
    lr_scales: tuple[tuple[str, float], ...] = ()  # a chain's first-stage lr × this (the
                                                   # miniature's line-searched regimes)
    base_dir: Path = BASE_WEIGHTS_DIR

    @property
    def report_dir(self) -> Path:
        return self.runs / "paper"

    def overrides(self, name: str) -> dict:
        """Solver overrides of one experiment's chain: MOMENTUM= for all, then the run's own
        changes for that experiment (the miniature's single-image Table 1)."""
        found = {"momentum": self.momentum} if self.momentum is not None else {}
        return found | dict(dict(self.solver_changes).get(name, ()))


@dataclass(frozen=True)
class Pretraining:
    """The miniature "ImageNet" (training.pretrain): whole-image classification of
    synthetic pictures, at the demo's classifier settings but object-centred, as
    ImageNet's pictures are: the demo's pictures put the class anywhere, and FCNs made
    from classifiers of those did not say where things are (paper/README.md)."""
    classes: int = 6
    images: int = 480
    iters: int = 300
    lr: float = 1e-4
    size: int = 224
    centred: bool = True


@dataclass(frozen=True)
class Miniature:
    """MINI=1: synthetic data in each dataset's real layout (data.synthetic FINDINGS
    scenes), width-reduced nets from pre-trained miniature classifiers, on the CPU. The
    choices and their reasons: paper/README.md ("The miniature")."""
    n_train: int = 80
    n_val: int = 24
    size: tuple[int, int] = (224, 224)
    classes: dict = field(default_factory=lambda: {"voc": 4, "nyud": 5, "siftflow": 4,
                                                   "pascalcontext": 4})
    width: float = 0.0625
    first_iters: int = 500      # a stage from a classifier (FCN-32s and its kin: the score
                                # layer starts at zero and must find the objects)
    iters: int = 300            # a stage from an earlier stage (16s, 8s, fusion): together
                                # what 45 minutes on 2 quiet cores allow (paper/README.md,
                                # "Budget")
    first_extension: int | None = 2  # a first stage still at the background (within the
                                # claims' LEARNED_ABOVE) at its last step trains on to twice
                                # its steps: some nets leave it later (README, "The miniature")
    test_every: int = 100
    lr: float = 1e-9            # FCN-32s, unnormalised loss; chosen on FCN-32s alone, before
                                # any claim was judged: the largest rate tried that leaves
                                # the background by the first test (from the object-centred
                                # classifier: 1e-9 and 5e-10 by step 100, 3e-9 at 200,
                                # 1e-8 not by 400; README)
    lr_drop: float | None = 10  # per stage, as the demo (the paper's 100× assumes converged)
    momentum: float | None = None   # None: each regime's own (heavy 0.99, online 0.9 …)
    pretraining: Pretraining = Pretraining()
    style: Style = FINDINGS
    # one image per step for Table 1's nets and FCN-AlexNet (their 20-image batches at
    # equal images would leave 1/20 of the updates), with the heavy regime's momentum
    single_image: tuple[str, ...] = ("table1-fcn-alexnet", "table1-fcn-vgg16",
                                     "table1-fcn-googlenet", "voc-fcn-alexnet")
    # Table 2's accumulated regime at its own line-searched rate, as the paper chose Table
    # 1's per net: the largest of the summed rate ÷ 1, ÷ 2, ÷ 4 … whose 25 steps stay
    # finite, judged on the loss alone, before either of Table 2's claims had numbers.
    # At lr 1e-9 ÷ 1 is finite throughout (2026-12-07); at the former 1e-8 it took ÷ 4
    line_searched: tuple[tuple[str, float], ...] = (("table2-accumulated", 1.0),)

MINI = Miniature()
# CI's shortened miniature: the same path, too small to learn (pictures, images, steps)
SHORT = Miniature(n_train=6, n_val=3, size=(64, 80), first_iters=4, iters=4, test_every=2,
                  lr=1e-9,
                  pretraining=Pretraining(images=16, iters=2))


def mini_settings(runs: Path, mini: Miniature = MINI, gpu: int | None = None) -> Settings:
    single = (("iter_size", 1), ("momentum", 0.99))
    return Settings(data=runs / "data", runs=runs, weights=None, width=mini.width,
                    iters=mini.iters, first_iters=mini.first_iters,
                    first_extension=mini.first_extension,
                    test_every=mini.test_every, lr=mini.lr,
                    lr_drop=mini.lr_drop, momentum=mini.momentum, gpu=gpu, mini=True,
                    picture=(mini.size[1], mini.size[0]), base_dir=runs / "bases",
                    solver_changes=tuple((name, single) for name in mini.single_image),
                    lr_scales=mini.line_searched)


# --- registry lookups ---------------------------------------------------------------------------
def registered() -> dict:
    # nets.experiments imports Caffe: loaded on use, so this module imports without it
    from nets.experiments import EXPERIMENTS

    return EXPERIMENTS


def missing_experiments(group: Group) -> list[str]:
    have = registered()
    return [name for name in group.needed() if name not in have]


def chain(name: str) -> list[str]:
    # training.schedule imports Caffe: loaded on use, so this module imports without it
    from training.schedule import chain as schedule_chain

    return schedule_chain(name)


def components(names: list[str]) -> list[list[str]]:
    """Group the experiments to train so that no two groups share a stage: each group's
    targets are trained one after another by one worker (shared stages once)."""
    groups: list[tuple[set[str], list[str]]] = []
    for name in names:
        stages = set(chain(name))
        joined = [g for g in groups if g[0] & stages]
        merged_stages, merged_targets = set(stages), []
        at = groups.index(joined[0]) if joined else len(groups)  # keep the first's place
        for g in joined:
            merged_stages |= g[0]
            merged_targets += g[1]
            groups.remove(g)
        groups.insert(at, (merged_stages, merged_targets + [name]))
    return [targets for _, targets in groups]


def stage_iterations(name: str, settings: Settings, equal_images: bool,
                     first: bool = False) -> int:
    """Iterations of one stage: ITERS (or the solver's max_iter; first: a chain's first
    stage's, where the miniature gives one); with equal_images, the same number of images
    seen whatever the batch (Table 2: 100,000 images for every row)."""
    exp = registered()[name]
    iters = (settings.first_iters if first and settings.first_iters else settings.iters
             ) or exp.solver.max_iter
    if equal_images and settings.iters:
        return max(1, iters // settings.overrides(name).get("iter_size", exp.solver.iter_size))
    return iters


NORMALISED_REFERENCE = "table1-fcn-vgg16"   # the normalised-loss rate the quick rate maps to


def first_lr(name: str, settings: Settings) -> float | None:
    """The chain's first-stage lr in a quick run; the quick rate is for a softmax loss summed
    over pixels. A normalised loss is that sum ÷ the pixel count, so the same step needs
    lr × pixels. A sigmoid loss (and the null background's) scores each of its C channels
    on its own: at the zero-initialised start every channel is pushed by ½ where softmax
    pushes a non-target class by 1/C, a first gradient ~C/2 times softmax's, so the step is
    lr × 2/C (measured on the miniature: nullbg-fcn32s diverges by iteration 22 at the plain
    rate and trains at 2/C of it). Last, the run's own line-searched scale of that chain's
    rate, if any (Settings.lr_scales: the miniature's accumulated regime)."""
    if settings.lr is None:
        return None
    root = registered()[chain(name)[0]]
    lr = settings.lr
    if not root.solver.normalized_loss:  # the quick rate stands for heavy FCN-32s' 1e-10:
        # other regimes keep their ratio to it (accumulated and sampled steps sum 1/p or
        # 20 images' gradients, which Caffe averages)
        lr *= root.solver.base_lr / HEAVY_LR[32]
    if root.loss in ("sigmoid", "null-background"):
        channels = root.num_classes - (1 if root.loss == "null-background" else 0)
        lr *= 2 / channels
    if root.solver.normalized_loss:
        # the quick rate × pixels stands for FCN-VGG16's normalised rate; Table 1's other
        # nets keep the paper's ratios to it, rates "chosen by line search" per net
        # (AlexNet 10×, GoogLeNet ½); until 2026-12-07 every net took VGG16's
        lr *= root.solver.base_lr / registered()[NORMALISED_REFERENCE].solver.base_lr
        lr *= settings.picture[0] * settings.picture[1]
    return lr * dict(settings.lr_scales).get(root.name, 1.0)


# --- where things stand ------------------------------------------------------------------------
def stage_state(run_dir: Path) -> str:
    """'done', 'partial (iteration N)' or 'missing' for runs/<stage>/."""
    # training.snapshots imports Caffe: loaded on use, so this module imports without it
    from training import snapshots

    if (run_dir / FINAL_WEIGHTS).is_file():
        return "done"
    found = snapshots.available(run_dir / "snapshots")
    return f"partial (iteration {found[-1].iteration})" if found else "missing"


def data_problem(name: str, settings: Settings) -> str | None:
    """None when the experiment's split lists are under DATA, else the error with the
    target that fetches them."""

    try:
        for stage in chain(name):
            check_data_root(registered()[stage], settings.data)
    except FileNotFoundError as e:
        return str(e)
    return None


def weights_problem(name: str, settings: Settings) -> str | None:
    """None when the chain's first stage has its starting weights (or random init)."""
    # training.schedule imports Caffe: loaded on use, so this module imports without it
    from training.schedule import base_weights

    root = registered()[chain(name)[0]]
    try:
        base_weights(root, settings.weights, settings.base_dir)
    except FileNotFoundError as e:
        return str(e)
    return None


# --- estimates from the paper's own figures ----------------------------------------------------
# Seconds of GPU time per training image for FCN-VGG16 on VOC-sized pictures: the staged
# FCN-8s (3 stages × 100,000 one-image iterations, the release's solvers) took 36 hours.
VGG16_SECONDS_PER_IMAGE = N.STAGED_FCN8S_GPU_HOURS * 3600 / 300_000
# Archive sizes of the downloads (data/sources.py), GB; None where not known.
DATA_GB = {"voc": 1.7 + 1.4, "pascalcontext": 1.3 + 0.03, "nyud": None, "siftflow": None}


def picture_passes(name: str, iterations: int, settings: Settings) -> int:
    """Pictures through a net in one stage: iterations × this run's batch (iter_size),
    × 2 for late fusion (each stream's net sees each picture)."""
    exp = registered()[name]
    batch = settings.overrides(name).get("iter_size", exp.solver.iter_size)
    streams = len(exp.modalities) if exp.fusion == "late" else 1
    return iterations * batch * streams


def gpu_hours(name: str, iterations: int, settings: Settings) -> float:
    """One stage's estimate: picture passes × the paper's seconds per VGG16 image, scaled
    by the backbone's forward time (Table 1) and picture size. An estimate, not a
    measurement: the paper gives only these totals."""
    exp = registered()[name]
    scale = N.FORWARD_MS[exp.backbone] / N.FORWARD_MS["vgg16"]
    return (picture_passes(name, iterations, settings) * VGG16_SECONDS_PER_IMAGE * scale
            * relative_pixels(exp.dataset) / 3600)


def parameter_count(name: str, width: float = 1.0, learned_only: bool = True) -> int:
    """Parameters of an experiment's deploy net, counted from the prototxt (no net is
    built, core.geometry's rule): with learned_only, not those at lr 0 (the fixed bilinear
    upsampling, a fixed body)."""
    # nets.experiments imports Caffe: loaded on use, so this module imports without it
    from nets.experiments import build

    net = build(name, "deploy", width=width)
    for layer in net.layer:
        if layer.type == "InnerProduct":
            raise ValueError(f"{name}: fully connected layer {layer.name} in a deploy FCN")
    counts = parameter_counts(net)
    total = 0
    for layer in net.layer:
        learns = not layer.param or any(s.lr_mult for s in layer.param)
        if layer.name in counts and (learns or not learned_only):
            total += counts[layer.name]
    return total


def snapshot_gb(name: str, settings: Settings, iterations: int) -> float:
    """Disk for one stage: every snapshot keeps weights + momentum (2 × 4 bytes a
    parameter), plus init and final weights."""
    exp = registered()[name]
    every = exp.solver.snapshot or settings.test_every or iterations
    count = max(1, iterations // every) if every else 1
    params = parameter_count(name, settings.width, learned_only=False)  # snapshots keep all
    return params * 4 * (2 * count + 2) / 1e9


@dataclass
class Stage:
    experiment: str
    iterations: int
    dataset: str
    splits: tuple[str, str]
    starts_from: str
    state: str
    gpu_hours: float
    disk_gb: float


@dataclass
class Plan:
    settings: Settings
    tables: list[str]
    groups: list[Group]
    missing: dict[str, list[str]]          # group key → unregistered experiments
    targets: list[str]                     # experiments to train (final stages)
    equal_images: set[str]
    stages: dict[str, Stage]
    data: dict[str, str]                   # experiment → missing-data message
    weights: dict[str, str]                # experiment → missing-weights message

    def runnable(self, group: Group) -> bool:
        return (not self.missing.get(group.key)
                and group.computed is None and not any(name in self.data or name in self.weights
                            for name in group.runs()))

    def problems(self, group: Group) -> list[str]:
        """Missing files of the group's runs, one line per file: the file, the runs that
        need it, the target that makes it."""
        found: dict[str, list[str]] = {}
        for name in group.runs():
            for message in (self.data.get(name), self.weights.get(name)):
                if message:
                    found.setdefault(message.split(": ", 1)[0], []).append(
                        name if "`make " not in message else
                        f"{name}|make {message.split('`make ')[1].split('`')[0]}")
        lines = []
        for path, users in found.items():
            names = ", ".join(dict.fromkeys(u.split("|")[0] for u in users))
            target = users[0].split("|")[1] if "|" in users[0] else "DATA=/WEIGHTS="
            lines.append(f"{path} (for {names}): `{target}`")
        return lines

    def components(self) -> list[list[str]]:
        wanted = [t for t in self.targets
                  if t not in self.data and t not in self.weights]
        return components(wanted)


def make_plan(tables: list[str], settings: Settings) -> Plan:
    groups = [g for key in tables for g in TABLES[key]]
    missing = {g.key: missing_experiments(g) for g in groups}
    targets, equal = [], set()
    for group in groups:
        if missing[group.key]:
            continue
        for row in group.rows:
            if row.experiment and row.experiment not in targets:
                targets.append(row.experiment)
            if row.experiment and row.equal_images:
                equal.add(row.experiment)
    stages: dict[str, Stage] = {}
    data, weights = {}, {}
    for target in targets:
        for problem, found in ((data, data_problem(target, settings)),
                               (weights, weights_problem(target, settings))):
            if found:
                problem[target] = found
        for name in chain(target):
            if name in stages:
                continue
            exp = registered()[name]
            base = exp.base
            # a stage that starts from a classifier (no earlier stage) gets first_iters
            iterations = stage_iterations(name, settings, target in equal,
                                          first=chain(name) == [name])
            starts = (f"runs/{base}/{FINAL_WEIGHTS}" if base in registered()
                      else "streams: " + " + ".join(exp.streams) if base == "streams"
                      else "random init (quick run)" if settings.weights == "none"
                      else str(settings.weights or base_weights_path(base, settings.base_dir)))
            stages[name] = Stage(name, iterations, exp.dataset, exp.splits, starts,
                                 stage_state(settings.runs / name),
                                 gpu_hours(name, iterations, settings),
                                 snapshot_gb(name, settings, iterations))
    return Plan(settings, tables, groups, missing, targets, equal, stages, data, weights)


def render(plan: Plan) -> str:
    """The plan as text: per table what it needs and what is missing, then the totals."""
    s = plan.settings
    lines = [f"make paper plan: tables {', '.join(plan.tables)}; data {s.data}; runs {s.runs}"
             + ("; MINI (synthetic data, width-reduced nets, CPU)" if s.mini else "")]
    for group in plan.groups:
        lines.append(f"\n{group.title} [{group.key}]")
        if plan.missing.get(group.key):
            lines.append("  missing: experiment(s) " + ", ".join(plan.missing[group.key])
                         + " not registered in nets/experiments.py")
            continue
        if group.computed == "bounds":
            lines.append(f"  no training: reads the VOC 2011 seg11valid labels under {s.data}")
            continue
        for row in group.rows:
            if not row.experiment:
                lines.append(f"  {row.label}: the paper's numbers only (another method)")
                continue
            scored = f", test inputs' {row.test_mask} masked" if row.test_mask else ""
            lines.append(f"  {row.label}: {row.experiment}{scored}")
        lines += [f"  missing: {line}" for line in plan.problems(group)]
    lines.append("\nstages (each trained once, shared by every table that needs it):")
    lines.append(f"  {'experiment':28} {'iterations':>10} {'data':>14}  {'state':24} "
                 f"{'GPU h':>6} {'disk GB':>8}  starts from")
    for st in plan.stages.values():
        lines.append(f"  {st.experiment:28} {st.iterations:>10} "
                     f"{st.dataset + ':' + st.splits[0]:>14}  {st.state:24} "
                     f"{st.gpu_hours:>6.1f} {st.disk_gb:>8.1f}  {st.starts_from}")
    todo = [st for st in plan.stages.values() if st.state != "done"]
    hours = sum(st.gpu_hours for st in todo)
    disk = sum(st.disk_gb for st in plan.stages.values())
    datasets = sorted({st.dataset for st in plan.stages.values()})
    known = [DATA_GB[d] for d in datasets if DATA_GB[d] is not None]
    lines.append(f"\n{len(todo)} of {len(plan.stages)} stages to train: about {hours:.0f} "
                 f"GPU hours on one {N.GPU} (the paper's figures: {N.STAGED_FCN8S_GPU_HOURS:g} "
                 f"h for the staged FCN-8s, Table 1's forward times for other backbones)"
                 + ("; on 2 CPU cores in minutes for the miniature" if s.mini else ""))
    data_line = (f"synthetic {', '.join(datasets) or '-'} written by the run" if s.mini else
                 f"datasets {', '.join(datasets) or '-'} ≈ {sum(known):.1f} GB of downloads"
                 + (" (+ NYUD / SIFT Flow, sizes not published)"
                    if any(DATA_GB[d] is None for d in datasets) else ""))
    lines.append(f"disk: about {disk:.1f} GB of weights and snapshots under {s.runs}; "
                 + data_line)
    fetch = sorted({p.split("`make ")[1].split("`")[0] for p in
                    (*plan.data.values(), *plan.weights.values()) if "`make " in p})
    if fetch and s.mini:
        lines.append("made by the run first: the synthetic data and the pre-trained "
                     "miniature classifiers' FCN bases (paper.miniature.mini_bases)")
    elif fetch:
        lines.append("to fetch first: " + "; ".join(f"make {f}" for f in fetch))
    lines.append(f"components (independent chains, one worker each): {len(plan.components())}")
    return "\n".join(lines)


@cli_main("paper plan", also=(ValueError, OSError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List every run the paper's tables need, "
                                     "what is done and missing, GPU hours and disk.")
    parser.add_argument("--tables", help=f"comma-separated; default all: {','.join(TABLES)}")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="dataset root")
    parser.add_argument("--runs", type=Path, help="runs folder (default runs/, MINI "
                                                  "runs/paper-mini)")
    parser.add_argument("--weights", help="base caffemodel for first stages; 'none': random")
    parser.add_argument("--mini", action="store_true", help="the miniature's plan")
    args = parser.parse_args(argv)
    tables = parse_tables(args.tables)
    if args.mini:
        settings = mini_settings(args.runs or RUNS_DIR / "paper-mini")
    else:
        settings = Settings(data=args.data, runs=args.runs or RUNS_DIR,
                            weights=args.weights)
    print(render(make_plan(tables, settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
