"""Split derivation from the datasets' own files, and the checks against the release."""

import hashlib

import numpy as np
import pytest
from scipy.io import savemat

from core.catalog import SIFTFLOW_CATEGORY_DIR
from data import splits
from data.splits import SplitError
from data.synthetic import make_dataset


def test_embedded_digests_are_consistent():
    # the release's seg11valid is sorted, so its file digest is also its members digest
    seg = splits.RELEASE["voc/seg11valid"]
    assert seg.exact == seg.members and seg.count == 736
    assert splits.RELEASE["nyud/train"].count + splits.RELEASE["nyud/val"].count == \
        splits.RELEASE["nyud/trainval"].count == 795
    assert splits.RELEASE["siftflow/trainval"].count + splits.RELEASE["siftflow/test"].count \
        == 2688 - len(splits.SIFTFLOW_UNANNOTATED)


def test_check_tells_exact_from_same_members(monkeypatch):
    ids = ["b", "a", "c"]
    exact = hashlib.sha256(b"b\na\nc\n").hexdigest()
    members = hashlib.sha256(b"a\nb\nc\n").hexdigest()
    monkeypatch.setitem(splits.RELEASE, "t", splits.Expected(3, exact, members))
    assert splits.check("t", ids) == "exact"
    assert splits.check("t", ["c", "b", "a"]) == "members"
    with pytest.raises(SplitError, match="different images"):
        splits.check("t", ["a", "b", "d"])
    with pytest.raises(SplitError, match="2 images, the release's list has 3"):
        splits.check("t", ["a", "b"])


def test_seg11valid_is_voc_val_minus_sbd_train(tmp_path):
    root = make_dataset("voc", tmp_path, n_train=5, n_val=3, size=(24, 24), seed=2)
    voc, sbdd = root / "pascal/VOC2011", root / "sbdd/dataset"
    val = (voc / "ImageSets/Segmentation/val.txt").read_text().split()
    train = (sbdd / "train.txt").read_text().split()
    assert set(val) & set(train)  # the synthetic sets overlap like the real ones
    path = splits.derive_seg11valid(voc, sbdd, check_release=False)
    assert path.read_text().split() == sorted(set(val) - set(train))
    assert path.read_bytes().endswith(b"\n")
    with pytest.raises(SplitError, match="3 images, the release's list has 736"):
        splits.derive_seg11valid(voc, sbdd)


def test_nyud_from_the_official_splits_mat(tmp_path):
    nyud = tmp_path / "nyud"
    nyud.mkdir()
    test = np.array([[1], [2], [9], [1449]])
    train = np.array([k for k in range(1, 1450) if k not in test])[:, None]
    savemat(nyud / "splits.mat", {"trainNdxs": train, "testNdxs": test})
    splits.derive_nyud(nyud, splits_mat=nyud / "splits.mat", check_release=False)
    assert (nyud / "test.txt").read_text().split() == ["5001", "5002", "5009", "6449"]
    trainval = (nyud / "trainval.txt").read_text().split()
    assert len(trainval) == 1445 and trainval[:2] == ["5003", "5004"]
    with pytest.raises(SplitError, match="1445 images, the release's list has 795"):
        splits.derive_nyud(nyud, splits_mat=nyud / "splits.mat")


def test_nyud_release_lists_make_trainval_in_their_order(tmp_path):
    nyud = tmp_path / "nyud"
    nyud.mkdir()
    (nyud / "train.txt").write_text("5449\n6140")
    (nyud / "val.txt").write_text("5010\n5011\n")
    (nyud / "test.txt").write_text("5133\n")
    splits.derive_nyud(nyud, check_release=False)
    assert (nyud / "trainval.txt").read_text() == "5449\n6140\n5010\n5011\n"
    with pytest.raises(SplitError, match="nyud/train"):
        splits.derive_nyud(nyud)


def test_siftflow_trainval_is_every_other_annotated_image(tmp_path):
    root = make_dataset("siftflow", tmp_path, n_train=5, n_val=2, size=(24, 24), seed=3)
    base = root / "sift-flow"
    ids = (base / "trainval.txt").read_text().split() + (base / "test.txt").read_text().split()
    unannotated = ids[0]
    (base / "SemanticLabels" / SIFTFLOW_CATEGORY_DIR / f"{unannotated}.mat").unlink()
    test_list = tmp_path / "TestSet1.txt"
    test_list.write_text(f"{ids[4]}.jpg\r\n{ids[2]}.jpg\r\n")
    splits.derive_siftflow(base, test_list, check_release=False)
    assert (base / "test.txt").read_text().split() == [ids[4], ids[2]]
    assert (base / "trainval.txt").read_text().split() == \
        sorted(set(ids) - {unannotated, ids[4], ids[2]})
    with pytest.raises(SplitError, match="images without labels besides the two known"):
        splits.derive_siftflow(base, test_list)


def test_pascalcontext_split_sizes_are_checked(tmp_path):
    root = make_dataset("pascalcontext", tmp_path, n_train=2, n_val=2, size=(24, 24), seed=1)
    with pytest.raises(SplitError, match="2 images, VOC2010's has 4998"):
        splits.check_pascalcontext(root / "pascal/VOC2010")
