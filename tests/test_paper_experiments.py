"""The paper's other experiments (issue 17) as registry entries: declared as the paper
says, generated beside the release's files, built by pycaffe and trained a few iterations
on synthetic VOC at reduced width through the same loop, with the guarantees each needs
(one image sequence for Table 2, exact p = 1 and resume for loss sampling, masks at test
time, class weights stored with the run)."""

import json
from dataclasses import replace

import numpy as np
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from core.caffe_files import read_params as read_caffemodel
from data.synthetic import make_dataset
from evaluation.score import data_layer, next_example, score_weights
from nets.experiments import EXPERIMENTS, TEST_MASKS, build
from nets.solver_settings import HEAVY_LR, equivalent_momentum, heavy, sampled
from training import snapshots
from training.runlog import read_records
from training.schedule import ScheduleConfig, chain, run_schedule
from training.train import TrainConfig, train, write_solver

WIDTH = 0.125
QUICK = dict(base_lr=1e-6, momentum=0.9)
NEW = ("voc-fcn32s-lrdrop", "table1-fcn-alexnet", "table1-fcn-vgg16", "table1-fcn-googlenet",
       "table2-accumulated", "table2-online", "table2-heavy", "mask-reference", "mask-fg-only",
       "mask-bg-only", "mask-shape", "nullbg-fcn32s", "sigmoid-fcn32s", "sampling-p50",
       "sampling-p25", "balance-fcn32s", "augment-fcn32s")


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    """SBD train (8 pictures), VOC2011 train (6 of them, Table 1's training set) and
    seg11valid (4), background and two classes."""
    return make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=8, n_val=4,
                        num_classes=3, seed=3)


def layers_of(name, phase="train"):
    return {layer.name: layer for layer in build(name, phase).layer}


def test_every_agreed_name_is_declared_and_not_in_the_release():
    for name in NEW:
        assert not EXPERIMENTS[name].in_release, name
    assert set(TEST_MASKS) == {"reference", "reference-fg", "reference-bg"}


def test_table1_trains_on_voc2011_as_a_classifier_would():
    for name, lr, decay in (("table1-fcn-alexnet", 1e-3, 5e-4), ("table1-fcn-vgg16", 1e-4, 5e-4),
                            ("table1-fcn-googlenet", 5e-5, 2e-4)):
        exp = EXPERIMENTS[name]
        s = exp.solver
        assert (s.base_lr, s.momentum, s.iter_size, s.weight_decay) == (lr, 0.9, 20, decay)
        assert s.normalized_loss and s.max_iter * s.iter_size / 1112 >= 175  # epochs
        data = layers_of(name)["data"].python_param
        assert data.layer == "VOCSegDataLayer" and "'split': 'train'" in data.param_str
        assert exp.splits == ("train", "seg11valid")
    assert layers_of("table1-fcn-vgg16")["loss"].loss_param.normalize


def test_table2_regimes_see_the_same_100000_images():
    regimes = {name: EXPERIMENTS[name].solver for name in
               ("table2-accumulated", "table2-online", "table2-heavy")}
    assert {n: (s.iter_size, s.momentum) for n, s in regimes.items()} == {
        "table2-accumulated": (20, 0.9), "table2-online": (1, 0.9), "table2-heavy": (1, 0.99)}
    for s in regimes.values():
        assert s.max_iter * s.iter_size == 100000 and not s.normalized_loss
    # Caffe averages over iter_size; the paper's accumulated step sums: lr × 20
    assert regimes["table2-accumulated"].base_lr == pytest.approx(20 * HEAVY_LR[32])


def test_momentum_rule_of_section_6_2():
    assert equivalent_momentum(0.9, 20, 1) == pytest.approx(0.99, abs=0.005)
    assert equivalent_momentum(0.99, 1, 20) == pytest.approx(0.99 ** 20)
    assert equivalent_momentum(0.9, 20, 20) == 0.9
    for p, k, k2 in ((0.9, 20, 1), (0.95, 4, 7)):  # p^(1/k) = p'^(1/k')
        assert equivalent_momentum(p, k, k2) ** (1 / k2) == pytest.approx(p ** (1 / k))
    assert equivalent_momentum(0.0, 1, 20) == 0.0   # no momentum stays none
    for momentum, k, k2 in ((1.0, 1, 20), (1.5, 1, 20), (-0.1, 1, 20), (0.9, 0, 20),
                            (0.9, 20, 0)):
        with pytest.raises(ValueError, match="need 0 <= momentum < 1 and batches >= 1"):
            equivalent_momentum(momentum, k, k2)


def test_lrdrop_continues_fcn32s_at_fcn16s_rate_without_a_skip():
    exp = EXPERIMENTS["voc-fcn32s-lrdrop"]
    assert chain(exp.name) == ["voc-fcn32s", exp.name]
    assert exp.stride == 32 and exp.solver.base_lr == EXPERIMENTS["voc-fcn16s"].solver.base_lr


@pytest.mark.parametrize("name, mask", [("mask-reference", None), ("mask-fg-only", "bg"),
                                        ("mask-bg-only", "fg"), ("mask-shape", "both")])
def test_table8_masks_train_and_test_inputs(name, mask):
    for phase in ("train", "val"):
        param_str = layers_of(name, phase)["data"].python_param.param_str
        assert (f"'mask': '{mask}'" in param_str) == (mask is not None), (name, phase)
        assert (mask is None) == ("mask" not in param_str)


def test_augmentation_is_for_training_only():
    train = layers_of("augment-fcn32s")["data"].python_param.param_str
    assert "'mirror': True" in train and "'jitter': 32" in train
    assert "mirror" not in layers_of("augment-fcn32s", "val")["data"].python_param.param_str


def test_null_background_learns_20_scores_and_adds_a_fixed_zero():
    layers = layers_of("nullbg-fcn32s")
    assert layers["score_fr"].convolution_param.num_output == 20
    assert layers["score_null"].param[0].lr_mult == 0
    assert not layers["score_null"].convolution_param.bias_term
    assert list(layers["score_fr_null"].bottom) == ["score_null", "score_fr"]
    assert layers["upscore"].convolution_param.num_output == 21
    assert layers["loss"].type == "SigmoidCrossEntropyLoss"
    assert list(layers["loss"].bottom) == ["score_classes", "target"]
    assert "'first': 1" in layers["target"].python_param.param_str
    deploy = {x.name for x in build("nullbg-fcn32s", "deploy").layer}
    assert {"score_null", "score_fr_null"} <= deploy and "score_classes" not in deploy
    control = layers_of("sigmoid-fcn32s")
    assert control["score_fr"].convolution_param.num_output == 21
    assert "'first': 0" in control["target"].python_param.param_str


def test_sampling_rates_and_batches():
    for name, p, images in (("sampling-p50", 0.5, 2), ("sampling-p25", 0.25, 4)):
        exp = EXPERIMENTS[name]
        assert exp.sample_p == p and exp.solver.iter_size == images
        assert exp.solver.base_lr == pytest.approx(images * HEAVY_LR[32])
        assert "LossSamplingLayer" in str(layers_of(name)["label_kept"])
        assert "label_kept" not in layers_of(name, "val")
    assert sampled(1.0) == heavy()
    tenth = sampled(0.1)   # 1 // 0.1 is 9 in floating point: the count is rounded, not floored
    assert tenth.iter_size == 10 and tenth.base_lr == pytest.approx(10 * HEAVY_LR[32])


def test_class_balancing_uses_infogain_on_scores_for_training_only():
    loss = layers_of("balance-fcn32s")["loss"]
    assert loss.type == "InfogainLoss" and list(loss.bottom) == ["score", "label"]
    assert loss.infogain_loss_param.source == \
        "../data/sbdd/dataset/train-class-weights.binaryproto"
    assert loss.loss_param.ignore_label == 255
    assert loss.loss_param.normalization == caffe_pb2.LossParameter.NONE
    assert layers_of("balance-fcn32s", "val")["loss"].type == "SoftmaxWithLoss"


# nets whose train and val nets are voc-fcn32s's (only the solver or the chain differs):
# built here, trained by tests/test_training_train.py as voc-fcn32s
SAME_NETS_AS_FCN32S = ("voc-fcn32s-lrdrop", "table2-online", "table2-heavy", "mask-reference")


@pytest.mark.parametrize("name", SAME_NETS_AS_FCN32S)
def test_nets_that_differ_only_in_their_solver(name):
    for phase in ("train", "val"):
        assert build(name, phase) == build("voc-fcn32s", phase)


@pytest.mark.parametrize("name", [n for n in NEW if n not in SAME_NETS_AS_FCN32S
                                  and n != "balance-fcn32s"])
def test_each_new_net_trains_a_few_iterations(name, voc, tmp_path):
    overrides = dict(QUICK, iter_size=2)  # Table 1's and 2's 20 images, sampling's 1/p: 2
    run = train(TrainConfig(name, voc, run_dir=tmp_path, weights=None, iters=2, test_every=2,
                            width=WIDTH, overrides=overrides, progress=False))
    assert run.final_weights and all(np.isfinite(run.losses)) and run.losses[0] > 0
    test = read_records(tmp_path / "train.jsonl", "test")[-1]["label"]
    assert {"mean_iu", "mean_iu_no_bg", "pixel_accuracy"} <= set(test)
    weights = read_caffemodel(run.final_weights)
    assert weights["score_fr"][0].any()  # zero-initialised, and it learned
    if name == "nullbg-fcn32s":
        assert not weights["score_null"][0].any()


def test_table2_batch_20_reads_the_online_image_sequence(voc, tmp_path):
    """Accumulated iteration t takes images k·t … k·t+k−1 of the one seeded sequence the
    online runs take one per iteration (k = 3 here for speed, 20 in the experiment)."""
    import caffe

    def sequence(name, iters, iter_size):
        config = TrainConfig(name, voc, run_dir=tmp_path / name, width=WIDTH,
                             overrides={"iter_size": iter_size})
        (tmp_path / name).mkdir()
        path, _ = write_solver(config, tmp_path / name)
        solver = caffe.get_solver(str(path))
        layer, seen = data_layer(solver.net), []
        solver.net.before_forward(lambda i: seen.append(next_example(layer)) if i == 0
                                  else None)
        solver.step(iters)
        return seen

    accumulated = sequence("table2-accumulated", 2, 3)
    online = sequence("table2-online", 6, 1)
    assert accumulated == online and len(set(online)) > 2


def test_sampling_with_p_one_is_unsampled_training_bit_for_bit(voc, tmp_path, monkeypatch):
    p1 = replace(EXPERIMENTS["sampling-p50"], name="sampling-p100", sample_p=1.0,
                 solver=sampled(1.0))
    monkeypatch.setitem(EXPERIMENTS, p1.name, p1)
    assert "label_kept" in {x.name for x in build(p1, "train").layer}
    runs = {name: train(TrainConfig(name, voc, run_dir=tmp_path / name, weights=None,
                                    iters=3, test_every=0, width=WIDTH, overrides=QUICK,
                                    progress=False))
            for name in ("voc-fcn32s", "sampling-p100")}
    assert runs["voc-fcn32s"].losses == runs["sampling-p100"].losses
    a = read_caffemodel(runs["voc-fcn32s"].final_weights)
    b = read_caffemodel(runs["sampling-p100"].final_weights)
    for layer in a:
        for x, y in zip(a[layer], b[layer]):
            np.testing.assert_array_equal(x, y)


def test_sampled_training_resumes_exactly(voc, tmp_path):
    config = dict(weights=None, iters=4, test_every=0, width=WIDTH, overrides=QUICK,
                  progress=False)
    first = train(TrainConfig("sampling-p50", voc, run_dir=tmp_path / "a",
                              snapshot_every=2, **config))
    middle = snapshots.available(tmp_path / "a" / "snapshots")[0]
    config.pop("weights")
    again = train(TrainConfig("sampling-p50", voc, run_dir=tmp_path / "b",
                              resume=middle.solverstate, **config))
    assert again.losses == first.losses[2:]
    assert len(set(first.losses)) == 4


def test_class_weights_are_computed_once_and_kept_with_the_run(voc, tmp_path):
    runs = tmp_path / "runs"
    run_schedule(ScheduleConfig("balance-fcn32s", voc, runs=runs, weights="none", iters=2,
                                test_every=0, width=WIDTH, lr=QUICK["base_lr"],
                                overrides={"momentum": 0.9}, progress=False, score=False))
    record = json.loads((runs / "balance-fcn32s" / "class_weights.json").read_text())
    weights = np.array(record["weights"])
    assert record["file"].endswith("sbdd/dataset/train-class-weights.binaryproto")
    assert weights.shape == (21,) and weights[0] < 1 < weights[1]  # background is common
    assert (weights[3:] == 1).all()  # classes absent from the synthetic set
    solver = caffe_pb2.SolverParameter()
    text_format.Merge((runs / "balance-fcn32s" / "solver.prototxt").read_text(), solver)
    assert record["file"] in open(solver.train_net).read()


def test_table8_test_time_masks_score_the_reference_net(voc, tmp_path):
    from analyses.reports import table8

    run = train(TrainConfig("mask-reference", voc, run_dir=tmp_path / "mask-reference",
                            weights=None, iters=2, test_every=0, width=WIDTH, overrides=QUICK,
                            progress=False))
    plain = score_weights("mask-reference", run.final_weights, voc, width=WIDTH,
                          progress=False)
    masked = {mask: score_weights("mask-reference", run.final_weights, voc, width=WIDTH,
                                  progress=False, mask=mask)
              for mask in ("fg", "bg")}
    for result in (plain, *masked.values()):
        assert "mean_iu_no_bg" in result.as_dict()["label"]
    # the same pixels scored, through different inputs (the loss tells them apart even
    # when two iterations' predictions are still all background)
    assert len({r.losses["loss"] for r in (plain, *masked.values())}) == 3
    assert plain.hists["label"].sum() == masked["fg"].hists["label"].sum()
    text = table8(tmp_path, voc, width=WIDTH, progress=False)
    row = next(line for line in text.splitlines() if line.startswith("| Reference-BG |"))
    assert f"| {100 * masked['fg'].as_dict()['label']['mean_iu_no_bg']:.1f} |" in row
    assert (tmp_path / "mask-reference" / "score-mask-fg.json").is_file()
    assert text.splitlines()[-1].startswith("| Shape | mask-shape | none | - |")


@pytest.mark.parametrize("name, depth", [("table1-fcn-alexnet", 8), ("table1-fcn-vgg16", 16),
                                         ("table1-fcn-googlenet", 22)])
def test_table1_conv_layers_are_read_off_the_net(name, depth):
    from nets.analysis import conv_depth, geometry

    deploy = build(name, "deploy")
    assert conv_depth(deploy, "score_fr") == depth
    assert geometry(deploy, "score_fr").stride == 32


def test_missing_voc2011_train_list_is_named_before_caffe_starts(tmp_path):
    root = make_dataset("voc", tmp_path, n_train=1, n_val=1, num_classes=2, seed=0)
    (root / "pascal/VOC2011/ImageSets/Segmentation/train.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"VOC2011/ImageSets/Segmentation/train\.txt"
                                                r".*table1-fcn-vgg16"):
        train(TrainConfig("table1-fcn-vgg16", root, run_dir=tmp_path / "run", weights=None,
                          iters=1))


def test_declarations_refuse_impossible_settings():
    with pytest.raises(ValueError, match="whole number of images"):
        sampled(0.3)
    with pytest.raises(ValueError, match="sample_p must lie in"):
        replace(EXPERIMENTS["sampling-p50"], sample_p=0.0)
    with pytest.raises(ValueError, match="loss 'hinge'"):
        replace(EXPERIMENTS["voc-fcn32s"], loss="hinge")


def test_table8_nets_feed_masked_pixels(voc, tmp_path):
    """The generated data layers of FG-only, BG-only and Shape, pixel by pixel against the
    unmasked layer: masked pixels are the mean (0 after subtraction), Shape's foreground is
    white, labels untouched."""
    from bench.data_layers import data_layer_net
    from core.catalog import DATASETS

    def first(name):
        layer = next(x for x in build(name, "val", data_root=str(voc)).layer
                     if x.name == "data").python_param
        net = data_layer_net(tmp_path / f"{name}.prototxt", layer.module, layer.layer,
                             layer.param_str, ["data", "label"])
        net.forward()
        return net.blobs["data"].data[0].copy(), net.blobs["label"].data[0, 0].copy()

    data, label = first("mask-reference")
    objects = label != 0
    assert objects.any() and (~objects).any()
    white = (255 - DATASETS["voc"].mean()).astype(np.float32)[:, None]
    for name, keep in (("mask-fg-only", objects), ("mask-bg-only", ~objects)):
        masked, masked_label = first(name)
        np.testing.assert_array_equal(masked_label, label)
        np.testing.assert_array_equal(masked[:, keep], data[:, keep])
        assert (masked[:, ~keep] == 0).all()
    shape, _ = first("mask-shape")
    assert (shape[:, ~objects] == 0).all()
    np.testing.assert_array_equal(shape[:, objects], np.repeat(white, objects.sum(), 1))


def test_lrdrop_starts_from_fcn32s_final_weights(voc, tmp_path):
    runs = tmp_path / "runs"
    run_schedule(ScheduleConfig("voc-fcn32s-lrdrop", voc, runs=runs, weights="none", iters=1,
                                test_every=0, width=WIDTH, lr=QUICK["base_lr"],
                                overrides={"momentum": 0.9}, progress=False, score=False))
    final = read_caffemodel(runs / "voc-fcn32s" / "final.caffemodel")
    init = read_caffemodel(runs / "voc-fcn32s-lrdrop" / "init.caffemodel")
    for layer in final:
        for a, b in zip(final[layer], init[layer]):
            np.testing.assert_array_equal(a, b)
    lrs = [read_records(runs / n / "train.jsonl", "start")[0]["base_lr"]
           for n in chain("voc-fcn32s-lrdrop")]
    assert lrs == pytest.approx([1e-6, 1e-8])


def test_a_single_task_net_learns_one_label_top_and_reads_both():
    """Table 6's separate nets: one score head and one loss, the data layer's tops as the
    two-headed net's (the other label top left unused); an unknown task is refused."""
    from nets.experiments import Experiment

    for task, other in (("sem", "geo"), ("geo", "sem")):
        net = build(f"siftflow-fcn8s-{task}", "trainval", width=WIDTH)
        data = next(layer for layer in net.layer if layer.type == "Python")
        assert list(data.top) == ["data", "sem", "geo"]
        losses = [layer for layer in net.layer if "Loss" in layer.type]
        assert len(losses) == 1 and losses[0].bottom[1] == task
        assert not any(other in b for layer in net.layer if layer is not data
                       for b in layer.bottom)
    with pytest.raises(ValueError, match="task 'depth'"):
        Experiment("x", "siftflow", task="depth")
