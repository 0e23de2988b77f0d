"""Synthetic datasets: real layouts, deterministic bytes, learnable fine structure."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from scipy.io import loadmat

from data.synthetic import make_classification, make_dataset


def digests(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dataset", ["voc", "nyud", "siftflow", "pascalcontext"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, dataset):
    kw = dict(n_train=3, n_val=2, size=(24, 32))
    a = digests(make_dataset(dataset, tmp_path / "a", seed=1, **kw))
    b = digests(make_dataset(dataset, tmp_path / "b", seed=1, **kw))
    c = digests(make_dataset(dataset, tmp_path / "c", seed=2, **kw))
    assert a == b and len(a) >= 10
    assert a.keys() == c.keys() and a != c


def test_voc_layout_and_label_content(tmp_path):
    root = make_dataset("voc", tmp_path, n_train=6, n_val=4, size=(64, 80), seed=0)
    sbdd, voc = root / "sbdd/dataset", root / "pascal/VOC2011"
    train = (sbdd / "train.txt").read_text().split()
    assert len(train) == 6 and all((sbdd / f"img/{i}.jpg").is_file() for i in train)
    gt = loadmat(sbdd / f"cls/{train[0]}.mat")["GTcls"][0]["Segmentation"][0]
    assert gt.dtype == np.uint8 and gt.shape == (64, 80) and 255 not in gt
    val = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()
    assert len(val) == 4
    # VOC2011's own train split (Table 1's training set): pictures in VOC's layout, none in val
    voc_train = (voc / "ImageSets/Segmentation/train.txt").read_text().split()
    voc_val = (voc / "ImageSets/Segmentation/val.txt").read_text().split()
    assert voc_train and set(voc_train) <= set(train) and not set(voc_train) & set(voc_val)
    assert all((voc / f"SegmentationClass/{i}.png").is_file() for i in voc_train)
    classes, thin = set(), False
    for index in val:
        label = Image.open(voc / f"SegmentationClass/{index}.png")
        assert label.mode == "P" and Image.open(voc / f"JPEGImages/{index}.jpg").format == "JPEG"
        values = np.array(label)
        assert 255 in values  # void outlines
        classes |= set(np.unique(values).tolist()) - {0, 255}
        for k in np.unique(values):
            if k in (0, 255):
                continue
            # fine structure: some object is at most 3 px thick somewhere along its length
            distance = ndimage.distance_transform_edt(values == k)
            thin |= 0 < distance.max() <= 2
    assert len(classes) >= 3 and thin


def test_num_classes_limits_the_classes(tmp_path):
    root = make_dataset("voc", tmp_path, n_train=8, n_val=2, size=(32, 32), num_classes=3,
                        seed=0)
    values = set()
    for mat in (root / "sbdd/dataset/cls").glob("*.mat"):
        values |= set(np.unique(loadmat(mat)["GTcls"][0]["Segmentation"][0]).tolist())
    assert values == {0, 1, 2}
    with pytest.raises(ValueError, match="num_classes"):
        make_dataset("voc", tmp_path / "x", n_train=1, n_val=1, num_classes=40)


def test_classification_set_is_balanced_and_on_disk(tmp_path):
    paths, labels = make_classification(tmp_path, 9, (32, 32), 3, seed=0)
    assert labels == [0, 1, 2] * 3
    assert all(p.is_file() and Image.open(p).size == (32, 32) for p in paths)
    listing = (tmp_path / "classification/list.txt").read_text().splitlines()
    assert listing[1] == f"{paths[1]} 1"


def test_cli_writes_a_dataset(tmp_path):
    out = subprocess.run([sys.executable, "-m", "data.synthetic", "siftflow", str(tmp_path),
                          "--n-train", "2", "--n-val", "1", "--size", "24", "24"],
                         capture_output=True, text=True, check=True)
    assert "siftflow" in out.stdout
    assert (tmp_path / "sift-flow/test.txt").read_text().count("\n") == 1


