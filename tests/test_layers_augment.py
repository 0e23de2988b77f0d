"""The paper's optional input changes: masking (Section 6.1) and mirror / jitter (4.4)."""

import numpy as np
import pytest

from bench.data_layers import data_layer_net
from core.catalog import DATASETS
from data.synthetic import make_dataset

VOC_MEAN = DATASETS["voc"].means["data"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=4, n_val=3,
                        size=(32, 40), seed=13)


def first_tops(root, folder, **extra):
    folder.mkdir(exist_ok=True)
    params = {"voc_dir": f"{root}/pascal/VOC2011", "seed": 1337, "split": "seg11valid",
              "mean": VOC_MEAN, **extra}
    net = data_layer_net(folder / "n.prototxt", "voc_layers", "VOCSegDataLayer",
                         repr(params), ["data", "label"])
    tops = []
    for _ in range(3):
        net.forward()
        tops.append((net.blobs["data"].data[0].copy(), net.blobs["label"].data[0, 0].copy()))
    return tops


def test_mask_foreground_background_and_shape(root, tmp_path):
    plain = first_tops(root, tmp_path / "plain")
    fg = first_tops(root, tmp_path / "fg", mask="fg")
    bg = first_tops(root, tmp_path / "bg", mask="bg")
    both = first_tops(root, tmp_path / "both", mask="both")
    for (data, label), (d_fg, _), (d_bg, _), (d_both, _) in zip(plain, fg, bg, both):
        objects = label != 0  # classes and their void outlines
        assert objects.any() and (~objects).any()
        assert (d_fg[:, objects] == 0).all()
        np.testing.assert_array_equal(d_fg[:, ~objects], data[:, ~objects])
        assert (d_bg[:, ~objects] == 0).all()
        np.testing.assert_array_equal(d_bg[:, objects], data[:, objects])
        white = (255 - np.array(VOC_MEAN)).astype(np.float32)
        np.testing.assert_array_equal(d_both[:, objects], np.repeat(white[:, None],
                                                                   objects.sum(), 1))
        assert (d_both[:, ~objects] == 0).all()


def test_mirror_flips_image_and_label_together_sometimes(root, tmp_path):
    plain = first_tops(root, tmp_path / "plain")
    flips = []
    for seed in range(6):
        for (data, label), (d, lab) in zip(plain, first_tops(root, tmp_path / f"m{seed}",
                                                             mirror=True, seed=seed)):
            flipped = np.array_equal(d, data[:, :, ::-1])
            assert flipped or np.array_equal(d, data)
            np.testing.assert_array_equal(lab, label[:, ::-1] if flipped else label)
            flips.append(flipped)
    assert any(flips) and not all(flips)


def test_jitter_translates_image_and_label_filling_mean_and_void(root, tmp_path):
    plain = first_tops(root, tmp_path / "plain")
    moved = first_tops(root, tmp_path / "j", jitter=5, seed=3)
    shifted_any = False
    for (data, label), (d, lab) in zip(plain, moved):
        assert d.shape == data.shape
        found = None
        for dy in range(-5, 6):
            for dx in range(-5, 6):
                h, w = label.shape
                ys, yd = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
                xs, xd = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
                if np.array_equal(lab[yd, xd], label[ys, xs]) and \
                        np.array_equal(d[:, yd, xd], data[:, ys, xs]):
                    found = (dy, dx)
                    break
            if found:
                break
        assert found is not None
        if found != (0, 0):
            shifted_any = True
            uncovered = np.ones_like(lab, bool)
            uncovered[yd, xd] = False
            assert (lab[uncovered] == 255).all() and (d[:, uncovered] == 0).all()
    assert shifted_any


def test_unknown_mask_is_refused(root, tmp_path):
    from seg_io import DataError

    with pytest.raises(DataError, match="mask must be one of"):
        first_tops(root, tmp_path / "x", mask="objects")


def test_masking_is_refused_where_class_0_is_not_background(tmp_path):
    from seg_io import DataError

    root = make_dataset("siftflow", tmp_path / "data", n_train=2, n_val=1, size=(24, 24))
    params = {"siftflow_dir": str(root / "sift-flow"), "seed": 1, "split": "test",
              "mask": "fg"}
    with pytest.raises(DataError, match="class 0 is background"):
        data_layer_net(tmp_path / "n.prototxt", "siftflow_layers", "SIFTFlowSegDataLayer",
                       repr(params), ["data", "sem", "geo"])


def test_jitter_reaches_every_offset_up_to_its_range_in_both_directions():
    """jitter=32 draws each of -32…+32 rows and columns, +32 included: recovered from where
    one pixel of a picture of distinct values lands, over 2000 seeded examples."""
    from seg_augment import Augment
    from voc_layers import VOCSegData

    dataset = VOCSegData({"voc_dir": "unused", "split": "train", "mean": VOC_MEAN})
    augment = Augment({"jitter": 32, "seed": 11}, dataset, "test")
    size = 80
    label = np.arange(size * size, dtype=np.float32).reshape(1, size, size) % 21
    data = np.arange(size * size, dtype=np.float32).reshape(1, size, size) + 1
    mark = data[0, 40, 40]  # never shifted out: 40 ± 32 stays inside 80
    offsets = set()
    for number in range(2000):
        moved = augment({"data": data, "label": label}, number)["data"][0]
        [[y, x]] = np.argwhere(moved == mark)
        offsets.add((int(y) - 40, int(x) - 40))
    rows, cols = {dy for dy, _ in offsets}, {dx for _, dx in offsets}
    assert rows == cols == set(range(-32, 33))
