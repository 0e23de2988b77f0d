"""The data layers, driven by real pycaffe nets over synthetic data in the real layouts."""

import caffe
import numpy as np
import pytest
from caffe import layers as L
from PIL import Image
from scipy.io import loadmat
from seg_data import DataError

from data.synthetic import make_dataset
from nets.datasets import data_param

VOC_MEAN = np.array((104.00699, 116.66877, 122.67892), np.float32)


def data_net(tmp_path, module, layer, param_str, tops, name="net.prototxt"):
    n = caffe.NetSpec()
    made = L.Python(module=module, layer=layer, param_str=param_str, ntop=len(tops))
    for top_name, top in zip(tops, made if len(tops) > 1 else [made]):
        n[top_name] = top
    path = tmp_path / name
    path.write_text(str(n.to_proto()))
    return caffe.Net(str(path), caffe.TEST)


def param(dataset, phase, split, root, **extra):
    layer, text = data_param(dataset, phase, split, str(root),
                             modalities=extra.pop("modalities", ()))
    if extra:
        text = text[:-1] + "".join(f", {k!r}: {v!r}" for k, v in extra.items()) + "}"
    return layer, text


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    return make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=6, n_val=4,
                        size=(40, 56), seed=3)


def test_voc_val_tops_equal_an_independent_load_in_order(voc_root, tmp_path):
    layer, text = param("voc", "test", "seg11valid", voc_root)
    net = data_net(tmp_path, layer.module, layer.layer, text, ["data", "label"])
    voc = voc_root / "pascal/VOC2011"
    names = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()
    for name in names + names[:1]:  # sequential, wrapping around
        net.forward()
        rgb = np.asarray(Image.open(voc / f"JPEGImages/{name}.jpg"), np.float32)
        expected = (rgb[:, :, ::-1] - VOC_MEAN).transpose(2, 0, 1)
        label = np.asarray(Image.open(voc / f"SegmentationClass/{name}.png"))
        assert net.blobs["data"].data.shape == (1, 3, 40, 56)
        np.testing.assert_array_equal(net.blobs["data"].data[0], expected)
        np.testing.assert_array_equal(net.blobs["label"].data[0, 0], label)


def _sequence(root, tmp_path, seed, prefetch, name):
    layer, text = data_param("voc", "train", "train", str(root), seed=seed)
    text = text[:-1] + f", 'prefetch': {prefetch}}}"
    net = data_net(tmp_path, layer.module, layer.layer, text, ["data", "label"], name)
    out = []
    for _ in range(8):
        net.forward()
        out.append((net.blobs["data"].data.copy(), net.blobs["label"].data.copy()))
    return out


def test_sbdd_seeded_order_is_the_releases_and_prefetch_changes_nothing(voc_root, tmp_path):
    a = _sequence(voc_root, tmp_path, 1337, True, "a.prototxt")
    b = _sequence(voc_root, tmp_path, 1337, False, "b.prototxt")
    for (da, la), (db, lb) in zip(a, b):
        assert da.tobytes() == db.tobytes() and la.tobytes() == lb.tobytes()
    # the release: random.seed(1337), randint at setup and after each forward
    import random
    random.seed(1337)
    names = (voc_root / "sbdd/dataset/train.txt").read_text().split()
    visited = [names[random.randint(0, len(names) - 1)] for _ in range(8)]
    for (_, label), name in zip(a, visited):
        gt = loadmat(voc_root / f"sbdd/dataset/cls/{name}.mat")["GTcls"][0]["Segmentation"][0]
        np.testing.assert_array_equal(label[0, 0], gt)


@pytest.mark.parametrize("dataset, tops, modalities", [
    ("nyud", ["color", "depth", "hha", "label"], ("color", "depth", "hha")),
    ("siftflow", ["data", "sem", "geo"], ()),
    ("pascalcontext", ["data", "label"], ()),
])
def test_other_datasets_load_through_caffe(dataset, tops, modalities, tmp_path):
    root = make_dataset(dataset, tmp_path / "data", n_train=3, n_val=2, size=(24, 32), seed=1)
    layer, text = data_param(dataset, "test", "test" if dataset != "pascalcontext" else "val",
                             str(root), modalities=modalities)
    net = data_net(tmp_path, layer.module, layer.layer, text, tops)
    net.forward()
    for top in tops:
        assert net.blobs[top].data.shape[-2:] == (24, 32)
    labels = [t for t in tops if t in ("label", "sem", "geo")]
    for top in labels:
        values = set(np.unique(net.blobs[top].data).tolist())
        assert values and all(v == 255 or 0 <= v < 60 for v in values)


def test_bad_inputs_name_the_file(voc_root, tmp_path):
    layer, text = data_param("voc", "test", "seg11valid", str(voc_root))
    voc = voc_root / "pascal/VOC2011"
    name = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()[0]
    label_path = voc / f"SegmentationClass/{name}.png"
    original = label_path.read_bytes()
    try:
        Image.fromarray(np.full((10, 10), 7, np.uint8)).save(label_path)
        with pytest.raises(Exception, match=r"label is 10×10 but data is 40×56"):
            data_net(tmp_path, layer.module, layer.layer, text, ["data", "label"]).forward()
        Image.fromarray(np.full((40, 56), 40, np.uint8)).save(label_path)
        with pytest.raises(Exception, match=r"values \[40\] outside 0..20"):
            data_net(tmp_path, layer.module, layer.layer, text, ["data", "label"]).forward()
        label_path.write_bytes(b"not a png")
        with pytest.raises(Exception, match=rf"{name}.png: not a readable PNG"):
            data_net(tmp_path, layer.module, layer.layer, text, ["data", "label"]).forward()
    finally:
        label_path.write_bytes(original)
    with pytest.raises(Exception, match="produces 2 tops"):
        data_net(tmp_path, layer.module, layer.layer, text, ["data", "label", "extra"])
    missing = text.replace("seg11valid", "nosuchsplit")
    with pytest.raises(Exception, match="nosuchsplit.txt: file not found"):
        data_net(tmp_path, layer.module, layer.layer, missing, ["data", "label"])
    assert issubclass(DataError, ValueError)
