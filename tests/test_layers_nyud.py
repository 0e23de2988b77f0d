"""NYUDv2 data layer: tops chosen by name (color, depth, hha, label) through pycaffe."""

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from bench.data_layers import data_layer_net
from core.catalog import data_param
from data.synthetic import make_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset("nyud", tmp_path_factory.mktemp("data"), n_train=4, n_val=3,
                        size=(36, 48), size_jitter=6, seed=5)


def expected(nyud, index):
    """The release's preprocessing, written out independently."""
    rgb = np.array(Image.open(nyud / f"data/images/img_{index}.png"), dtype=np.float32)
    color = (rgb[:, :, ::-1] - np.array((116.190, 97.203, 92.318), np.float32))
    depth = np.log(np.array(Image.open(nyud / f"data/depth/img_{index}.png"), np.float32))
    depth = depth - np.float32(7.844)
    hha = np.array(Image.open(nyud / f"data/hha/img_{index}.png"), dtype=np.float32)
    hha = hha - np.array((132.431, 94.076, 118.477), np.float32)
    raw = loadmat(nyud / f"segmentation/img_{index}.mat")["segmentation"].astype(np.uint8)
    return {"color": color.transpose(2, 0, 1), "depth": depth[np.newaxis],
            "hha": hha.transpose(2, 0, 1), "label": (raw - np.uint8(1))[np.newaxis]}


@pytest.mark.parametrize("tops", [["color", "depth", "hha", "label"], ["hha", "label"]])
def test_test_split_tops_equal_independent_load_in_order(root, tmp_path, tops):
    modalities = tuple(t for t in tops if t != "label")
    layer, text = data_param("nyud", "test", "test", str(root), modalities=modalities)
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text, tops)
    names = (root / "nyud/test.txt").read_text().split()
    for name in names + names[:1]:
        net.forward()
        want = expected(root / "nyud", name)
        for top in tops:
            assert net.blobs[top].data.shape == (1, *want[top].shape), top
            np.testing.assert_allclose(net.blobs[top].data[0], want[top], rtol=0, atol=1e-5)


def test_label_is_shifted_with_void_255(root, tmp_path):
    layer, text = data_param("nyud", "test", "test", str(root), modalities=("color",))
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text,
                         ["color", "label"])
    net.forward()
    values = set(np.unique(net.blobs["label"].data).tolist())
    assert 255 in values and max(values - {255}) <= 39 and min(values) >= 0


def test_trainval_is_random_with_the_release_seed(root, tmp_path):
    """The release's order over 4 names, seed 1337: Python 2's randint(0, 3), i.e.
    int(random() * 4), at setup and after each forward (Python 3's randint: 2, 1, 2, 3 …)."""
    layer, text = data_param("nyud", "train", "trainval", str(root), modalities=("color",))
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text,
                         ["color", "label"])
    names = (root / "nyud/trainval.txt").read_text().split()
    assert len(names) == 4
    for i in [2, 2, 1, 2, 0, 3]:
        net.forward()
        np.testing.assert_array_equal(net.blobs["label"].data[0],
                                      expected(root / "nyud", names[i])["label"])
