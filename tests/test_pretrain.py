"""training.pretrain, the miniature pre-training the demo and the paper's miniature share:
for VGG16, AlexNet and GoogLeNet the same arguments give the same classifier byte for byte,
each converts by its make target's surgery, and an unknown backbone is one clear error."""

from __future__ import annotations

import hashlib

import pytest

from core.errors import InputError
from nets.backbones import ALEXNET_CONVS
from training.pretrain import pretrain

TINY = dict(width=1 / 16, classes=3, images=8, iterations=3, batch=4, size=64, seed=5)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("backbone", ["vgg16", "alexnet", "googlenet"])
def test_pretraining_twice_gives_the_same_classifier_bytes(tmp_path, backbone):
    first = pretrain(tmp_path / "a", backbone=backbone, **TINY)
    second = pretrain(tmp_path / "b", backbone=backbone, **TINY)
    assert sha256(first["weights"]) == sha256(second["weights"])
    assert sha256(first["untrained"]) == sha256(second["untrained"])
    # and it trained: the weights moved from where they started
    assert sha256(first["weights"]) != sha256(first["untrained"])
    other_seed = pretrain(tmp_path / "c", backbone=backbone, **{**TINY, "seed": 6})
    assert sha256(other_seed["weights"]) != sha256(first["weights"])


def test_the_miniatures_object_centred_pretraining_is_reproducible_and_its_own(tmp_path):
    """The paper's miniature pre-trains on object-centred pictures (Pretraining.centred):
    the same classifier twice, byte for byte, and not the demo's."""
    from paper.plan import MINI

    assert MINI.pretraining.centred
    first = pretrain(tmp_path / "a", centred=True, **TINY)
    second = pretrain(tmp_path / "b", centred=True, **TINY)
    assert sha256(first["weights"]) == sha256(second["weights"])
    demo = pretrain(tmp_path / "c", **TINY)
    assert sha256(demo["weights"]) != sha256(first["weights"])
    assert sha256(demo["untrained"]) == sha256(first["untrained"])  # only the pictures differ


def test_an_alexnet_width_that_splits_a_group_unevenly_is_one_clear_error(tmp_path):
    # 96 / 32 = 3 conv1 channels cannot feed conv2's two groups: Caffe would abort
    with pytest.raises(ValueError, match="conv2 has 3 input and 8 output channels in 2 "
                                         "groups"):
        pretrain(tmp_path, backbone="alexnet", **{**TINY, "width": 1 / 32})


def test_an_unknown_backbone_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no miniature classifier for backbone 'resnet'; "
                                         "choose from vgg16"):
        pretrain(tmp_path, backbone="resnet", **TINY)
    assert not tmp_path.joinpath("images").exists()


@pytest.mark.parametrize("backbone, experiment", [("vgg16", "voc-fcn32s"),
                                                  ("alexnet", "voc-fcn-alexnet"),
                                                  ("googlenet", "voc-fcn-googlenet")])
def test_each_miniature_classifier_converts_by_its_make_targets_surgery(tmp_path, backbone,
                                                                        experiment):
    """The pre-trained miniature becomes FCN base weights by the surgery of `make
    vgg16-fcn` / `make alexnet-fcn` (surgery.fetch's layers to drop), and every converted
    layer fits the FCN net of that backbone at the same width."""
    from nets.generate import write_experiment
    from surgery.convert import convolutionalize
    from surgery.fetch import CLASSIFIERS as SOURCES
    from training.pretrain import SOURCE_OF, fcn_base

    width = 1 / 16
    made = pretrain(tmp_path / "pretrain", **{**TINY, "width": width, "size": 224,
                                              "iterations": 1, "images": 4},
                    backbone=backbone)
    fcn = write_experiment(experiment, tmp_path / "nets", width=width,
                           data_root=str(tmp_path / "data"))
    base = tmp_path / "base.caffemodel"
    report = fcn_base(made["deploy"], made["weights"], backbone, base)
    # every converted layer fits the FCN net of that backbone (what `make …-fcn` checks)
    checked = convolutionalize(made["deploy"], made["weights"], tmp_path / "checked.caffemodel",
                               drop=(*SOURCES[SOURCE_OF[backbone]].drop, "prob"),
                               check_against=fcn["deploy"], verbose=False)
    assert checked.copied == report.copied and base.read_bytes() == (
        tmp_path / "checked.caffemodel").read_bytes()
    assert report.coerced == ([] if backbone == "googlenet" else ["fc6", "fc7"])
    assert report.dropped == list(SOURCES[SOURCE_OF[backbone]].drop[-1:])
    assert not report.left_at_init
    convs = [name for name, *_ in ALEXNET_CONVS] if backbone == "alexnet" else None
    assert convs is None or report.copied == convs
