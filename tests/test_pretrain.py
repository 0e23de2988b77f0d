"""training.pretrain, the miniature pre-training the demo and the paper's miniature share:
the same arguments give the same classifier, byte for byte, and an unknown backbone is one
clear error."""

from __future__ import annotations

import hashlib

import pytest

from core.errors import InputError
from training.pretrain import pretrain

TINY = dict(width=1 / 32, classes=3, images=8, iterations=3, batch=4, size=64, seed=5)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pretraining_twice_gives_the_same_classifier_bytes(tmp_path):
    first = pretrain(tmp_path / "a", **TINY)
    second = pretrain(tmp_path / "b", **TINY)
    assert sha256(first["weights"]) == sha256(second["weights"])
    assert sha256(first["untrained"]) == sha256(second["untrained"])
    # and it trained: the weights moved from where they started
    assert sha256(first["weights"]) != sha256(first["untrained"])
    other_seed = pretrain(tmp_path / "c", **{**TINY, "seed": 6})
    assert sha256(other_seed["weights"]) != sha256(first["weights"])


def test_an_unknown_backbone_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no miniature classifier for backbone 'resnet'; "
                                         "choose from vgg16"):
        pretrain(tmp_path, backbone="resnet", **TINY)
    assert not tmp_path.joinpath("images").exists()
