"""`make infer` feeds a net the bits the dataset's data layer feeds it (one preprocessing,
core.images, with the catalog's mean in the dtype of the layer's arithmetic).

Before the catalog, infer subtracted a float32 mean where VOC's layer subtracts float64
(its param_str floats): about a quarter of the input values differed in the last bit.
"""

from __future__ import annotations

import caffe
import numpy as np
import pytest

from bench.data_layers import data_layer_net
from core.catalog import DATASETS, data_param
from data.synthetic import make_dataset
from evaluation.infer import load_segmenter, read_rgb
from nets.experiments import EXPERIMENTS
from nets.generate import write_experiment

# experiment → (its test split in the synthetic set, the dataset's input top)
CASES = {
    "voc-fcn32s": ("seg11valid", "data"),
    "nyud-fcn32s-color": ("test", "color"),
    "siftflow-fcn32s": ("test", "data"),
    "pascalcontext-fcn32s": ("val", "data"),
}


def data_layer_input(name: str, split: str, top: str, root, tmp_path):
    """The data layer's input top for the first test image, and that image's file."""
    exp = EXPERIMENTS[name]
    layer, param_str = data_param(exp.dataset, "test", split, str(root),
                                  modalities=exp.modalities)
    entry = DATASETS[exp.dataset]
    tops = [*exp.input_blobs, *entry.label_tops]
    net = data_layer_net(tmp_path / "data.prototxt", layer.module, layer.layer, param_str, tops)
    data = net.layers[0]
    index = data.next_index
    image = data.source.path(data.dataset.files(index)[top])
    net.forward()
    return net.blobs[exp.input_blobs[0]].data[0].copy(), image


@pytest.mark.parametrize("name", sorted(CASES))
def test_infer_input_equals_the_data_layer_top_bit_for_bit(name, tmp_path):
    split, top = CASES[name]
    root = make_dataset(EXPERIMENTS[name].dataset, tmp_path / "data", n_train=1, n_val=2,
                        size=(37, 45), seed=5)
    expected, image = data_layer_input(name, split, top, root, tmp_path)

    deploy = write_experiment(name, tmp_path / "net", width=1 / 16)["deploy"]
    weights = tmp_path / "w.caffemodel"
    caffe.Net(str(deploy), caffe.TEST).save(str(weights))
    segmenter = load_segmenter(name, weights, width=1 / 16)
    segmenter(read_rgb(image))
    fed = segmenter.net.blobs[segmenter.input_blob].data[0]
    assert fed.dtype == expected.dtype == np.float32
    assert fed.tobytes() == expected.tobytes()


def test_a_float32_voc_mean_would_not_feed_the_same_bits():
    """The check above has teeth: VOC's float64 mean and its float32 rounding differ."""
    rgb = np.random.default_rng(0).integers(0, 256, (50, 60, 3)).astype(np.float32)
    mean = DATASETS["voc"].mean()
    assert mean.dtype == np.float64
    layer_arithmetic = rgb[:, :, ::-1] - mean        # float64, rounded once to float32
    float32_arithmetic = rgb[:, :, ::-1] - mean.astype(np.float32)
    differ = layer_arithmetic.astype(np.float32) != float32_arithmetic
    assert 0.05 < differ.mean() < 0.5
