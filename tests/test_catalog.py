"""The dataset catalog is the one place for a dataset's facts: what the data layers read,
what the nets declare and what the scorer names all agree with it."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from core.catalog import DATASETS, VOID, class_names, data_param, split_list
from data.registry import dataset_for, layer_params
from nets.experiments import EXPERIMENTS, build

ROOT = "/data-root"
PHASES = [(name, phase) for name in DATASETS for phase in ("train", "test")]


def dataset_object(name: str, phase: str, split: str = "some-split"):
    layer, text = data_param(name, phase, split, ROOT, modalities=("color", "hha"))
    module = __import__(layer.module)
    return getattr(module, layer.dataset_class)(ast.literal_eval(text), "test"), layer


@pytest.mark.parametrize("name,phase", PHASES)
def test_the_layer_reads_the_catalogs_split_list(name, phase):
    from seg_io import FileSource

    dataset, _ = dataset_object(name, phase)
    read = FileSource(dataset.roots()).path(dataset.split_file())
    assert read == split_list(name, phase, ROOT, "some-split")


@pytest.mark.parametrize("name,phase", PHASES)
def test_the_layer_checks_labels_against_the_catalogs_heads(name, phase):
    dataset, _ = dataset_object(name, phase)
    heads = {h.label: h.num_classes for h in DATASETS[name].heads}
    assert dataset.label_classes == heads
    assert dataset.background_is_zero == DATASETS[name].background_is_zero


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_the_layers_subtract_the_catalogs_means_in_their_dtype(name):
    dataset, layer = dataset_object(name, "test")
    entry = DATASETS[name]
    means = dataset.input_means()
    for top, mean in means.items():
        assert np.asarray(mean).dtype == np.dtype(entry.mean_dtype), top
        assert np.asarray(mean).tobytes() == entry.mean(top).tobytes(), top
    assert "data" in means or name == "nyud"


def test_voc_mean_travels_in_param_str_as_the_release_wrote_it():
    _, text = data_param("voc", "train", "train", "../data")
    assert text == ("{'sbdd_dir': '../data/sbdd/dataset', 'seed': 1337, 'split': 'train', "
                    "'mean': (104.00699, 116.66877, 122.67892)}")


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_heads_are_the_catalogs(name):
    exp = EXPERIMENTS[name]
    entry = DATASETS[exp.dataset]
    net = build(exp, "deploy", width=1 / 16, size=(64, 64))
    outputs = {layer.top[0]: layer for layer in net.layer}
    # a single-task net (Table 6's separate SIFT Flow nets) has its task's head only
    assert exp.learned_heads == tuple(h for h in entry.heads
                                      if exp.task is None or h.label == exp.task)
    for head in exp.learned_heads:
        final = outputs[head.score_blob]
        assert final.type == "Crop"
        upscore = next(layer for layer in net.layer if layer.top[0] == final.bottom[0])
        assert upscore.convolution_param.num_output == head.num_classes
    assert exp.label_blobs == tuple(h.label for h in exp.learned_heads)
    assert set(exp.label_blobs) <= set(entry.label_tops)


def test_class_names_come_from_the_catalog_and_fall_back_to_numbers():
    assert class_names("voc", "label", 21)[15] == "person"
    assert class_names("siftflow", "geo", 3) == ["sky", "horizontal", "vertical"]
    assert class_names("voc", "label", 5) == ["0", "1", "2", "3", "4"]
    assert VOID == 255


def test_registry_names_map_to_catalog_layers(tmp_path):
    params = layer_params("sbdd", tmp_path, "train")
    assert params["sbdd_dir"] == f"{tmp_path}/sbdd/dataset"
    assert dataset_for("sbdd", params).split_file() == ("sbdd", "train.txt")
    assert split_list("voc", "train", tmp_path, "train") == tmp_path / "sbdd/dataset/train.txt"
