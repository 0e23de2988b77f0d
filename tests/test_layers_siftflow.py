"""SIFT Flow data layer: data, semantic and geometric tops through pycaffe."""

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from bench.data_layers import data_layer_net
from core.catalog import data_param
from data.synthetic import make_dataset

CATEGORY = "spatial_envelope_256x256_static_8outdoorcategories"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset("siftflow", tmp_path_factory.mktemp("data"), n_train=4, n_val=3,
                        size=(40, 40), seed=2)


def expected(base, index):
    rgb = np.array(Image.open(base / f"Images/{CATEGORY}/{index}.jpg"), dtype=np.float32)
    data = (rgb[:, :, ::-1] - np.array((114.578, 115.294, 108.353), np.float32))
    sem = loadmat(base / f"SemanticLabels/{CATEGORY}/{index}.mat")["S"]
    geo = loadmat(base / f"GeoLabels/{CATEGORY}/{index}.mat")["S"]
    sem = np.where(sem == 0, 255, sem - 1)
    geo = np.where(geo <= 0, 255, geo - 1)
    return data.transpose(2, 0, 1), sem[np.newaxis], geo[np.newaxis]


def test_test_split_tops_equal_independent_load_in_order(root, tmp_path):
    layer, text = data_param("siftflow", "test", "test", str(root))
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text,
                         ["data", "sem", "geo"])
    base = root / "sift-flow"
    names = (base / "test.txt").read_text().split()
    seen = set()
    for name in names:
        net.forward()
        data, sem, geo = expected(base, name)
        np.testing.assert_array_equal(net.blobs["data"].data[0], data)
        np.testing.assert_array_equal(net.blobs["sem"].data[0], sem)
        np.testing.assert_array_equal(net.blobs["geo"].data[0], geo)
        seen |= set(np.unique(net.blobs["geo"].data).tolist())
    assert 255 in seen and seen - {255} <= {0, 1, 2} and len(seen) >= 3


def test_trainval_is_shuffled(root, tmp_path):
    layer, text = data_param("siftflow", "train", "trainval", str(root))
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text,
                         ["data", "sem", "geo"])
    assert net.layers[0].random
    sizes = set()
    for _ in range(4):
        net.forward()
        sizes.add(float(net.blobs["data"].data.sum()))
    assert len(sizes) > 1


# The release's training order over a 6-name list, seed 1337: random.seed(1337), then
# random.randint(0, 5) at setup and after each forward as Python 2 drew it, int(random() * 6).
RELEASE_ORDER_6 = [3, 3, 2, 3, 0, 4, 2, 4]


def test_trainval_follows_the_release_seeded_sequence(tmp_path):
    """Mutants this kills: reading sequentially after one random pick (3, 4, 5, 0 …), and
    Python 3's randint in place of the release's Python 2 draw (4, 4, 5, 2 …)."""
    root = make_dataset("siftflow", tmp_path / "data", n_train=6, n_val=1, size=(24, 24),
                        seed=6)
    layer, text = data_param("siftflow", "train", "trainval", str(root))
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text,
                         ["data", "sem", "geo"])
    base = root / "sift-flow"
    names = (base / "trainval.txt").read_text().split()
    assert len(names) == 6 and "'seed': 1337" in text
    for i in RELEASE_ORDER_6:
        net.forward()
        data, sem, geo = expected(base, names[i])
        np.testing.assert_array_equal(net.blobs["data"].data[0], data)
        np.testing.assert_array_equal(net.blobs["sem"].data[0], sem)
        np.testing.assert_array_equal(net.blobs["geo"].data[0], geo)
