"""The experiments: every FCN of the release and the paper, each a short declaration, and
the one function that turns a declaration into a Caffe net.

Where is FCN-16s defined? Here it is `stride=16` on an experiment; the skip itself lives in
nets/heads.py, once for every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import caffe
from caffe import layers as L
from caffe import params as P
from caffe.proto import caffe_pb2

from core.catalog import DATASETS, INPUT_CHANNELS, class_weights_file, data_param
from core.defaults import SEED
from core.errors import InputError
from nets import backbones, heads
from nets.solver_settings import (
    SolverSettings,
    accumulated,
    alexnet_normalized,
    heavy,
    online,
    sampled,
    summed_lr,
    table1,
)

# output stride of a net scored from this pooling layer alone (Table 3's ablations)
TRUNCATED_STRIDE = {"pool5": 32, "pool4": 16, "pool3": 8}
# softmax: the release's; sigmoid: sigmoid cross-entropy on one-hot targets (Section 4.4,
# 6.1's control); null-background: the same with background fixed at score 0 (6.1);
# balanced: softmax weighted per class by inverse training-set frequency (4.4)
LOSSES = ("softmax", "sigmoid", "null-background", "balanced")


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: str                      # a core.catalog dataset: voc | nyud | siftflow | …
    stride: int = 32                  # output stride: 32, 16 or 8 (skips from pool4, pool3)
    backbone: str = "vgg16"           # vgg16 | alexnet | googlenet
    base: str = "vgg16-fcn"           # starting weights: a converted classifier, or the
                                      # experiment whose final weights this stage starts from
    phases: tuple[str, str] = ("train", "val")
    splits: tuple[str, str] = ("train", "seg11valid")
    modalities: tuple[str, ...] = ("data",)   # NYUD: color, hha, depth
    fusion: str | None = None         # NYUD: 'early' (color-D) or 'late' (color-HHA)
    streams: tuple[str, ...] = ()     # late fusion: the single-modality experiments it joins
    at_once: bool = False             # pool4/pool3 scaled by 0.01/0.0001 (all-at-once)
    truncate: str | None = None       # 'pool5' / 'pool4' / 'pool3': score that layer alone
    fixed: bool = False               # only the score layer learns
    release_root: str = "../data"     # the data-root string the release wrote
    in_release: bool = True
    solver: SolverSettings = field(default_factory=heavy)
    # the paper's analyses (all default to the release's behaviour)
    train_layer: str = "train"        # the catalog layer reading the training split: the
                                      # dataset's own ('train': SBD for VOC) or its test
                                      # layer ('test': VOC2011's train split, Table 1)
    data_options: tuple[tuple[str, object], ...] = ()   # data-layer keys, both phases (mask)
    train_options: tuple[tuple[str, object], ...] = ()  # training data only (mirror, jitter)
    loss: str = "softmax"             # one of LOSSES
    sample_p: float | None = None     # loss sampling: keep each 32×32 loss cell with prob. p
    task: str | None = None           # SIFT Flow: learn one label top only ('sem' / 'geo'),
                                      # Table 6's independently trained nets

    def __post_init__(self) -> None:
        if self.truncate and TRUNCATED_STRIDE[self.truncate] != self.stride:
            raise ValueError(f"{self.name}: scoring {self.truncate} alone gives stride "
                             f"{TRUNCATED_STRIDE[self.truncate]}, not {self.stride}")
        if self.loss not in LOSSES:
            raise ValueError(f"{self.name}: loss {self.loss!r} is not one of {LOSSES}")
        if self.task is not None and self.task not in DATASETS[self.dataset].label_tops:
            raise ValueError(f"{self.name}: task {self.task!r} is not one of "
                             f"{self.dataset}'s label tops {DATASETS[self.dataset].label_tops}")
        if self.sample_p is not None and not 0 < self.sample_p <= 1:
            raise ValueError(f"{self.name}: sample_p must lie in (0, 1], not {self.sample_p}")

    @property
    def num_classes(self) -> int:
        return DATASETS[self.dataset].num_classes

    @property
    def learned_heads(self) -> tuple:
        """The catalog heads this net learns: all of its dataset's, or the one of `task`."""
        heads = DATASETS[self.dataset].heads
        return tuple(h for h in heads if self.task is None or h.label == self.task)

    @property
    def heads(self) -> tuple[tuple[str, int], ...]:
        """(suffix, classes) per output, from the catalog (SIFT Flow: semantics, geometry)."""
        return tuple((h.suffix, h.num_classes) for h in self.learned_heads)

    @property
    def score_blobs(self) -> tuple[str, ...]:
        return tuple(h.score_blob for h in self.learned_heads)

    @property
    def label_blobs(self) -> tuple[str, ...]:
        return tuple(h.label for h in self.learned_heads)

    @property
    def input_blobs(self) -> tuple[str, ...]:
        """Input top names: 'data' for one input, the modality names for fusion nets."""
        return ("data",) if len(self.modalities) == 1 else tuple(self.modalities)


def _voc(name: str, **kw) -> Experiment:
    return Experiment(name, "voc", **kw)


def _nyud(name: str, modalities: tuple[str, ...], lr: float = 1e-10, **kw) -> Experiment:
    solver = heavy(32, train_net="trainval.prototxt", test_net="test.prototxt", test_iter=654,
                   max_iter=300000, snapshot=2000).with_(base_lr=lr)
    return Experiment(name, "nyud", phases=("trainval", "test"),
                      splits=("trainval", "test"), modalities=modalities, solver=solver, **kw)


def _siftflow(name: str, stride: int, lr: float, base: str, task: str | None = None
              ) -> Experiment:
    solver = heavy(32, train_net="trainval.prototxt", test_net="test.prototxt", test_iter=200,
                   max_iter=300000, snapshot=None).with_(base_lr=lr)
    return Experiment(name, "siftflow", stride=stride, base=base,
                      phases=("trainval", "test"), splits=("trainval", "test"), solver=solver,
                      task=task, in_release=task is None)


def _context(name: str, stride: int, base: str) -> Experiment:
    return Experiment(name, "pascalcontext", stride=stride, base=base,
                      splits=("train", "val"), release_root="../../data",
                      solver=heavy(stride, test_iter=5105, max_iter=300000))


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    # PASCAL VOC: staged 32s -> 16s -> 8s, all-at-once 8s, FCN-AlexNet
    _voc("voc-fcn32s"),
    _voc("voc-fcn16s", stride=16, base="voc-fcn32s", release_root="../../data",
         solver=heavy(16)),
    _voc("voc-fcn8s", stride=8, base="voc-fcn16s", solver=heavy(8)),
    _voc("voc-fcn8s-atonce", stride=8, at_once=True, solver=heavy(32, max_iter=300000)),
    _voc("voc-fcn-alexnet", backbone="alexnet", base="alexnet-fcn",
         solver=alexnet_normalized()),
    # NYUDv2: RGB, HHA, early fusion (RGB-D input) and late fusion (two streams)
    _nyud("nyud-fcn32s-color", ("color",)),
    _nyud("nyud-fcn32s-hha", ("hha",)),
    _nyud("nyud-fcn32s-color-d", ("color", "depth"), fusion="early"),
    _nyud("nyud-fcn32s-color-hha", ("color", "hha"), lr=1e-12, fusion="late",
          base="streams", streams=("nyud-fcn32s-color", "nyud-fcn32s-hha")),
    # SIFT Flow: two heads (semantic, geometric); the release keeps lr 1e-12 for 8s
    _siftflow("siftflow-fcn32s", 32, 1e-10, "vgg16-fcn"),
    _siftflow("siftflow-fcn16s", 16, 1e-12, "siftflow-fcn32s"),
    _siftflow("siftflow-fcn8s", 8, 1e-12, "siftflow-fcn16s"),
    # Table 6's comparison: the same staged nets, each learning one label set alone
    *(_siftflow(f"siftflow-fcn{stride}s-{task}", stride, lr, base, task)
      for task in ("sem", "geo")
      for stride, lr, base in ((32, 1e-10, "vgg16-fcn"),
                               (16, 1e-12, f"siftflow-fcn32s-{task}"),
                               (8, 1e-12, f"siftflow-fcn16s-{task}"))),
    # PASCAL-Context, 59 classes + background
    _context("pascalcontext-fcn32s", 32, "vgg16-fcn"),
    _context("pascalcontext-fcn16s", 16, "pascalcontext-fcn32s"),
    _context("pascalcontext-fcn8s", 8, "pascalcontext-fcn16s"),
    # The paper's, not in the release: Table 1's GoogLeNet, Table 3's ablations
    _voc("voc-fcn-googlenet", backbone="googlenet", base="googlenet-fcn", in_release=False),
    _voc("voc-fcn-pool5", truncate="pool5", in_release=False),
    _voc("voc-fcn-pool4", stride=16, truncate="pool4", in_release=False),
    _voc("voc-fcn-pool3", stride=8, truncate="pool3", in_release=False),
    _voc("voc-fcn32s-fixed", fixed=True, in_release=False),
    # Table 3's control: FCN-32s continued at FCN-16s's lower rate, without the skip
    _voc("voc-fcn32s-lrdrop", base="voc-fcn32s", solver=heavy(16), in_release=False),
    # Table 1: VOC2011 train only (1,112 images), 20 images accumulated, momentum 0.9
    _voc("table1-fcn-alexnet", backbone="alexnet", base="alexnet-fcn", train_layer="test",
         solver=table1(1e-3), in_release=False),
    _voc("table1-fcn-vgg16", train_layer="test", solver=table1(1e-4), in_release=False),
    _voc("table1-fcn-googlenet", backbone="googlenet", base="googlenet-fcn",
         train_layer="test", solver=table1(5e-5, weight_decay=0.0002), in_release=False),
    # Table 2: one seeded sequence of 100,000 SBD images, unnormalised loss
    _voc("table2-accumulated", solver=accumulated(summed_lr(1e-10, 20), max_iter=5000),
         in_release=False),
    _voc("table2-online", solver=online(32), in_release=False),
    _voc("table2-heavy", solver=heavy(32), in_release=False),
    # Table 8: FCN-32s on masked inputs (Reference-FG/-BG mask only mask-reference's test)
    _voc("mask-reference", in_release=False),
    _voc("mask-fg-only", data_options=(("mask", "bg"),), in_release=False),
    _voc("mask-bg-only", data_options=(("mask", "fg"),), in_release=False),
    _voc("mask-shape", data_options=(("mask", "both"),), in_release=False),
    # Section 6.1: the null background and its sigmoid control
    _voc("nullbg-fcn32s", loss="null-background", in_release=False),
    _voc("sigmoid-fcn32s", loss="sigmoid", in_release=False),
    # Section 4.4: loss sampling (p = 1 is voc-fcn32s), class balancing, augmentation
    _voc("sampling-p50", sample_p=0.5, solver=sampled(0.5), in_release=False),
    _voc("sampling-p25", sample_p=0.25, solver=sampled(0.25), in_release=False),
    _voc("balance-fcn32s", loss="balanced", in_release=False),
    _voc("augment-fcn32s", train_options=(("mirror", True), ("jitter", 32)),
         in_release=False),
    # Section 4.3's "training from scratch": FCN-32s from the classifier's own initial
    # weights before any pre-training, converted the same way (the demo's control)
    _voc("voc-fcn32s-scratch", base="vgg16-fcn-untrained", in_release=False),
)}

# Table 8's test-time conditions: the masks applied when scoring mask-reference
TEST_MASKS = {"reference": None, "reference-fg": "bg", "reference-bg": "fg"}


def _inputs(n, exp: Experiment, phase: str, data_root: str, seed: int, split: str | None,
            size: tuple[int, int]):
    """The data layer (train/test phases) or Input layer (deploy); returns the input tops."""
    tops = list(exp.input_blobs)
    if phase == "deploy":
        shapes = [dict(dim=[1, INPUT_CHANNELS[m], *size]) for m in exp.modalities]
        made = L.Input(name="input", shape=shapes, ntop=len(tops))
        made = made if isinstance(made, tuple) else (made,)
        for name, top in zip(tops, made):
            n[name] = top
        return [n[m] for m in tops]
    index = exp.phases.index(phase)
    extra = dict(exp.data_options) | (dict(exp.train_options) if index == 0 else {})
    layer, param_str = data_param(exp.dataset, exp.train_layer if index == 0 else "test",
                                  split or exp.splits[index], data_root, seed=seed,
                                  modalities=exp.modalities, extra=extra)
    all_tops = tops + list(DATASETS[exp.dataset].label_tops)  # the layer's, learned or not
    made = L.Python(module=layer.module, layer=layer.layer, param_str=param_str,
                    ntop=len(all_tops))
    for name, top in zip(all_tops, made):
        n[name] = top
    return [n[m] for m in tops]


def _loss(n, exp: Experiment, scores, label, *, name: str, training: bool, root: str,
          seed: int):
    """The experiment's loss on `scores` (for the null background: the learned class
    scores). Sampling and class weights shape the training loss only; the test net reports
    the plain loss of the same family."""
    normalize = exp.solver.normalized_loss
    if exp.loss in ("sigmoid", "null-background"):
        first = 1 if exp.loss == "null-background" else 0
        return heads.sigmoid_loss(n, scores, heads.one_hot(n, label, exp.num_classes, first),
                                  name=name, normalize=normalize)
    if training and exp.sample_p is not None:
        label = heads.sampled_label(n, label, exp.sample_p, seed)
    if training and exp.loss == "balanced":
        weights = class_weights_file(exp.dataset, root, exp.splits[0])
        return heads.weighted_loss(n, scores, label, weights, name=name)
    return heads.loss(n, scores, label, name=name, normalize=normalize)


def build(exp: Experiment | str, phase: str, *, width: float = 1.0,
          data_root: str | None = None, seed: int = SEED, split: str | None = None,
          size: tuple[int, int] = (500, 500)) -> caffe_pb2.NetParameter:
    """One phase of an experiment as a NetParameter.

    phase: one of exp.phases (with its data layer and loss) or 'deploy' (an Input layer of
    1×C×size, no dropout, no loss). data_root replaces the release's '../data' prefix.
    """
    exp = EXPERIMENTS[exp] if isinstance(exp, str) else exp
    if phase not in (*exp.phases, "deploy"):
        raise ValueError(f"{exp.name} has phases {exp.phases} and 'deploy', not {phase!r}")
    train = phase != "deploy"
    n = caffe.NetSpec()
    root = data_root or exp.release_root
    inputs = _inputs(n, exp, phase, root, seed, split, size)

    if exp.fusion == "late":
        scores = []
        for modality, top in zip(exp.input_blobs, inputs):
            body = backbones.vgg16(n, top, width=width, suffix=modality, dropout=train)
            n["score_fr" + modality] = heads.score(body, exp.num_classes)
            scores.append(n["score_fr" + modality])
        n["score_fused"] = L.Eltwise(*scores, operation=P.Eltwise.SUM, coeff=[0.5, 0.5])
        n["upscore"] = heads.upsample(n["score_fused"], exp.num_classes, 32)
        n["score"] = heads.crop(n["upscore"], inputs[0])
        outputs = [n["score"]]
        reference = inputs[0]
    else:
        if exp.fusion == "early":
            n["data"] = L.Concat(*inputs)
            reference, first_conv = n["data"], "conv1_1_bgrd"
        else:
            reference, first_conv = inputs[0], "conv1_1"
        if exp.backbone == "vgg16":
            body = backbones.vgg16(n, reference, width=width, dropout=train,
                                   first_conv=first_conv, fixed=exp.fixed,
                                   until=exp.truncate)
        elif exp.backbone == "alexnet":
            body = backbones.alexnet(n, reference, width=width, dropout=train)
        else:
            body = backbones.googlenet(n, reference, width=width)
        outputs = []
        null = exp.loss == "null-background"
        for suffix, classes in exp.heads:
            if exp.truncate:
                out = heads.single_layer_head(n, body, reference, classes, exp.stride)
            else:
                out = heads.fcn_head(n, body, reference, classes, stride=exp.stride,
                                     suffix=suffix, at_once=exp.at_once,
                                     final_kernel=63 if exp.backbone != "vgg16" else None,
                                     score_top="score" + suffix, null_background=null)
            outputs.append(out)
            learned = heads.class_scores(n, out) if null and train else out
            if train:
                _loss(n, exp, learned, n[exp.label_blobs[len(outputs) - 1]],
                      name="loss" if suffix in ("", "_sem") else "loss" + suffix,
                      training=phase == exp.phases[0], root=root, seed=seed)
    if train and exp.fusion == "late":
        heads.loss(n, outputs[0], n["label"])
    return n.to_proto()


def check_width(exp: Experiment | str, width: float, option: str = "WIDTH=/--width") -> None:
    """Raise InputError when `width` would leave a layer of the net with fewer than one
    channel (backbones.channels then keeps one: a net that trains and scores but means
    nothing), naming the narrowest such layer and the smallest width that keeps them all."""
    exp = EXPERIMENTS[exp] if isinstance(exp, str) else exp
    full, narrow = (build(exp, "deploy", width=w, size=(64, 64)) for w in (1.0, width))
    clamped = [(wide.name, wide.convolution_param.num_output)
               for wide, thin in zip(full.layer, narrow.layer)
               if wide.type == "Convolution" and thin.convolution_param.num_output == 1
               and round(wide.convolution_param.num_output * width) < 1]
    if clamped:
        name, count = min(clamped, key=lambda item: item[1])
        raise InputError(f"{option} {width:g} leaves {len(clamped)} layer(s) of {exp.name} "
                         f"without a channel ({name} has {count} at width 1); use a width "
                         f"above {0.5 / count:g} (and at most 1)")
