"""PASCAL-Context data layer: raw 459-name labels mapped to the 59-class task via pycaffe."""

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from bench.data_layers import data_layer_net
from core.catalog import data_param
from data.synthetic import make_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset("pascalcontext", tmp_path_factory.mktemp("data"), n_train=3,
                        n_val=3, size=(40, 48), seed=4)


def names(path):
    """'<n>: <name>' lines → names without spaces, in file order (as the release read them)."""
    return [line.split(":", 1)[1].strip().replace(" ", "")
            for line in path.read_text().splitlines() if line.strip()]


def expected(root, index):
    context = root / "pascal-context"
    full, task = names(context / "labels.txt"), names(context / "59_labels.txt")
    renamed = {"diningtable": "table", "bedcloth": "bedclothes", "clothes": "cloth"}
    raw = loadmat(context / f"trainval/{index}.mat")["LabelMap"]
    label = np.zeros_like(raw, dtype=np.uint8)
    for k, name in enumerate(task):
        label[raw == full.index(renamed.get(name, name)) + 1] = k + 1
    rgb = np.array(Image.open(root / f"pascal/VOC2010/JPEGImages/{index}.jpg"), np.float32)
    data = rgb[:, :, ::-1] - np.array((104.007, 116.669, 122.679), np.float32)
    return data.transpose(2, 0, 1), label[np.newaxis]


def test_val_tops_equal_independent_mapping_in_order(root, tmp_path):
    layer, text = data_param("pascalcontext", "test", "val", str(root))
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text,
                         ["data", "label"])
    ids = (root / "pascal/VOC2010/ImageSets/Main/val.txt").read_text().split()
    values = set()
    for index in ids:
        net.forward()
        data, label = expected(root, index)
        np.testing.assert_array_equal(net.blobs["data"].data[0], data)
        np.testing.assert_array_equal(net.blobs["label"].data[0], label)
        values |= set(np.unique(label).tolist())
    assert 0 in values and len(values) >= 3 and max(values) <= 59


def test_renamed_classes_map_to_their_task_index(root):
    import pascalcontext_layers as pc

    full = {1: "accordion", 2: "table", 3: "bedclothes", 4: "cloth", 5: "clothestree"}
    task = {k: f"c{k}" for k in range(1, 60)}
    task.update({11: "diningtable", 52: "bedcloth", 28: "clothes"})
    full.update({5 + k: f"c{k}" for k in range(1, 60)})
    lookup = pc.task_lookup(full, task, "test")
    assert lookup[2] == 11 and lookup[3] == 52 and lookup[4] == 28
    assert lookup[1] == 0 and lookup[5] == 0  # names outside the task are background


# The release's training order over a 6-name list, seed 1337: random.seed(1337), then
# random.randint(0, 5) at setup and after each forward as Python 2 drew it, int(random() * 6).
RELEASE_ORDER_6 = [3, 3, 2, 3, 0, 4, 2, 4]


def test_train_follows_the_release_seeded_sequence(tmp_path):
    """Mutants this kills: reading sequentially after one random pick (3, 4, 5, 0 …), and
    Python 3's randint in place of the release's Python 2 draw (4, 4, 5, 2 …)."""
    root = make_dataset("pascalcontext", tmp_path / "data", n_train=6, n_val=1,
                        size=(24, 32), seed=7)
    layer, text = data_param("pascalcontext", "train", "train", str(root))
    net = data_layer_net(tmp_path / "n.prototxt", layer.module, layer.layer, text,
                         ["data", "label"])
    names = (root / "pascal/VOC2010/ImageSets/Main/train.txt").read_text().split()
    assert len(names) == 6 and "'seed': 1337" in text
    for i in RELEASE_ORDER_6:
        net.forward()
        data, label = expected(root, names[i])
        np.testing.assert_array_equal(net.blobs["data"].data[0], data)
        np.testing.assert_array_equal(net.blobs["label"].data[0], label)
