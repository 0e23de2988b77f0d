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
    # NYUDv2's 1449 labelled images: 795 train(val) and 654 test
    assert splits.RELEASE["nyud/trainval"].count + splits.RELEASE["nyud/test"].count == 1449


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


def _release(monkeypatch, name, ids, exact=True):
    """Make `ids` the release's list `name` (exactly, or only its members)."""
    members = splits.members_digest(ids)
    file_digest = hashlib.sha256(splits.list_bytes(ids)).hexdigest() if exact else None
    monkeypatch.setitem(splits.RELEASE, name, splits.Expected(len(ids), file_digest, members))


def test_lists_are_read_without_blanks_or_a_byte_order_mark_and_written_whole(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("\ufeff2008_000002 \r\n\n  2008_000003\n\n".encode())
    assert splits.read_ids(path) == ["2008_000002", "2008_000003"]
    with pytest.raises(SplitError, match=r"absent\.txt: split list not found"):
        splits.read_ids(tmp_path / "absent.txt")
    written = splits.write_ids(tmp_path / "deep" / "er" / "out.txt", ["b", "a"])
    assert written.read_bytes() == b"b\na\n"
    assert splits.members_digest(["b", "a"]) == hashlib.sha256(b"a\nb\n").hexdigest()


def test_check_refuses_duplicates_and_names_the_file(monkeypatch, tmp_path):
    _release(monkeypatch, "t", ["a", "b", "c"], exact=False)
    assert splits.check("t", ["c", "a", "b"]) == "members"       # no file digest: members only
    with pytest.raises(SplitError, match=r"^t \(.*x\.txt\): duplicate ids$"):
        splits.check("t", ["a", "a", "b"], tmp_path / "x.txt")
    with pytest.raises(SplitError, match=r"^t \(.*x\.txt\): 4 images, the release's list has "
                                         r"3$"):
        splits.check("t", ["a", "b", "c", "d"], tmp_path / "x.txt")
    with pytest.raises(SplitError, match=r"sorted-ids sha256 [0-9a-f]{64}, expected "
                                         + splits.members_digest(["a", "b", "c"])):
        splits.check("t", ["a", "b", "e"])


def test_seg11valid_checked_against_the_release_and_refused_when_empty(tmp_path, monkeypatch):
    root = make_dataset("voc", tmp_path, n_train=5, n_val=3, size=(24, 24), seed=2)
    voc, sbdd = root / "pascal/VOC2011", root / "sbdd/dataset"
    val = (voc / "ImageSets/Segmentation/val.txt").read_text().split()
    train = (sbdd / "train.txt").read_text().split()
    expected = sorted(set(val) - set(train))
    _release(monkeypatch, "voc/seg11valid", expected)
    path = splits.derive_seg11valid(voc, sbdd)
    assert path == voc / "ImageSets/Segmentation/seg11valid.txt"
    assert path.read_text().split() == expected
    (sbdd / "train.txt").write_text("\n".join(train + val) + "\n")
    with pytest.raises(SplitError, match="every VOC2011 val image of .* is in SBD train"):
        splits.derive_seg11valid(voc, sbdd, check_release=False)


def test_nyud_release_lists_are_checked_one_by_one_and_win_over_a_splits_mat(tmp_path,
                                                                          monkeypatch):
    nyud = tmp_path / "nyud"
    nyud.mkdir()
    lists = {"train": ["5449", "6140"], "val": ["5010", "5011"], "test": ["5133", "5002"]}
    for split, ids in lists.items():
        splits.write_ids(nyud / f"{split}.txt", ids)
        _release(monkeypatch, f"nyud/{split}", ids)
    _release(monkeypatch, "nyud/trainval", lists["train"] + lists["val"], exact=False)
    mat = tmp_path / "splits.mat"
    savemat(mat, {"trainNdxs": np.array([[3]]), "testNdxs": np.array([[4]])})
    assert splits.derive_nyud(nyud, splits_mat=mat) == {
        "train": "exact", "val": "exact", "test": "exact", "trainval": "members"}
    assert (nyud / "trainval.txt").read_text() == "5449\n6140\n5010\n5011\n"
    assert (nyud / "test.txt").read_text() == "5133\n5002\n"        # left as it was
    _release(monkeypatch, "nyud/val", ["5010", "5012"])
    with pytest.raises(SplitError, match=r"nyud/val \(.*val\.txt\): same count"):
        splits.derive_nyud(nyud)
    (nyud / "val.txt").unlink()
    with pytest.raises(SplitError, match=r"nyud: neither the release's train/val/test lists "
                                         r"nor a splits\.mat"):
        splits.derive_nyud(nyud)
    assert splits.derive_nyud(nyud, splits_mat=mat, check_release=False) == {}
    assert (nyud / "test.txt").read_text() == "5004\n"
    assert (nyud / "trainval.txt").read_text() == "5003\n"


def test_nyud_splits_mat_in_any_order_and_refused_when_it_is_not_one(tmp_path, monkeypatch):
    mat = tmp_path / "splits.mat"
    savemat(mat, {"trainNdxs": np.array([[1448], [3], [1]]), "testNdxs": np.array([[1449],
                                                                                 [2]])})
    assert splits.nyud_official_split(mat) == (["5001", "5003", "6448"], ["5002", "6449"])
    _release(monkeypatch, "nyud/trainval", ["5001", "5003", "6448"], exact=False)
    _release(monkeypatch, "nyud/test", ["5002", "6449"])
    nyud = tmp_path / "nyud"
    nyud.mkdir()
    assert splits.derive_nyud(nyud, splits_mat=mat) == {"trainval": "members",
                                                        "test": "exact"}
    for wrong in (0, 1450):
        savemat(tmp_path / "wrong.mat", {"trainNdxs": np.array([[1], [wrong]]),
                                         "testNdxs": np.array([[2]])})
        with pytest.raises(SplitError, match=rf"wrong\.mat: indices \[{wrong}\] are outside "
                                             r"NYUDv2's 1 to 1449"):
            splits.nyud_official_split(tmp_path / "wrong.mat")
    savemat(tmp_path / "wrong.mat", {"trainNdxs": np.arange(1450, 1457)[:, None],
                                     "testNdxs": np.array([[2]])})
    with pytest.raises(SplitError, match=r"indices \[1450, 1451, 1452, 1453, 1454\] are"):
        splits.nyud_official_split(tmp_path / "wrong.mat")          # the first five
    savemat(tmp_path / "other.mat", {"trainNdxs": np.array([[1]])})
    with pytest.raises(SplitError, match=r"other\.mat: not the NYUDv2 splits\.mat with "
                                         r"trainNdxs and testNdxs"):
        splits.nyud_official_split(tmp_path / "other.mat")
    (tmp_path / "text.mat").write_text("not a mat file")    # scipy's MatReadError, once raw
    with pytest.raises(SplitError, match=r"text\.mat: not the NYUDv2 splits\.mat .*truncated"):
        splits.nyud_official_split(tmp_path / "text.mat")
    v73 = tmp_path / "v73.mat"                              # MATLAB 7.3: HDF5 behind a header
    v73.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(384))
    with pytest.raises(SplitError, match=r"v73\.mat: not the NYUDv2 splits\.mat"):
        splits.nyud_official_split(v73)


def test_siftflow_needs_both_label_files_and_every_test_image(tmp_path, monkeypatch):
    root = make_dataset("siftflow", tmp_path, n_train=5, n_val=2, size=(24, 24), seed=3)
    base = root / "sift-flow"
    ids = sorted((base / "trainval.txt").read_text().split()
                 + (base / "test.txt").read_text().split())
    (base / "GeoLabels" / SIFTFLOW_CATEGORY_DIR / f"{ids[1]}.mat").unlink()
    (base / "SemanticLabels" / SIFTFLOW_CATEGORY_DIR / f"{ids[3]}.mat").unlink()
    annotated, unannotated = splits.siftflow_images(base)
    assert unannotated == [ids[1], ids[3]]
    assert annotated == [i for i in ids if i not in (ids[1], ids[3])]
    test_list = tmp_path / "TestSet1.txt"
    test_list.write_text(f"Images\\{ids[0]}.jpg\n{ids[2]}.jpg\n")
    monkeypatch.setattr(splits, "SIFTFLOW_UNANNOTATED", (ids[1], ids[3]))
    _release(monkeypatch, "siftflow/test", [ids[0], ids[2]])
    _release(monkeypatch, "siftflow/trainval", ids[4:])
    assert splits.derive_siftflow(base, test_list) == {"trainval": "exact", "test": "exact"}
    assert (base / "test.txt").read_text() == f"{ids[0]}\n{ids[2]}\n"
    assert (base / "trainval.txt").read_text().split() == ids[4:]
    test_list.write_text(f"{ids[0]}.jpg\n{ids[1]}.jpg\n")
    with pytest.raises(SplitError, match=rf"TestSet1\.txt: test images without image or "
                                         rf"labels under .*\['{ids[1]}'\]"):
        splits.derive_siftflow(base, test_list, check_release=False)
    with pytest.raises(SplitError, match=r": no images under Images/"):
        splits.siftflow_images(tmp_path)
    test_list.write_text("".join(f"absent{n}.jpg\n" for n in range(7)))
    with pytest.raises(SplitError, match=r"\['absent0', 'absent1', 'absent2', 'absent3', "
                                         r"'absent4'\]$"):              # the first five
        splits.derive_siftflow(base, test_list, check_release=False)
    test_list.write_text(f"{ids[0]}.jpg\n")
    for image in (ids[2], *ids[4:]):
        (base / "GeoLabels" / SIFTFLOW_CATEGORY_DIR / f"{image}.mat").unlink()
    assert len(ids[1:]) == 6                                # six without labels now
    with pytest.raises(SplitError, match=r"besides the two known ones .*: \[" + ", ".join(
            f"'{i}'" for i in ids[1:6]) + r"\]$"):
        monkeypatch.setattr(splits, "SIFTFLOW_UNANNOTATED", ())
        splits.derive_siftflow(base, test_list)


def test_the_command_line_writes_each_dataset_and_names_what_it_needs(tmp_path, monkeypatch,
                                                                      capsys):
    root = make_dataset("voc", tmp_path, n_train=5, n_val=3, size=(24, 24), seed=2)
    assert splits.main(["voc", "--root", str(root), "--no-check"]) == 0
    written = root / "pascal/VOC2011/ImageSets/Segmentation/seg11valid.txt"
    assert capsys.readouterr().out == f"{written}: {len(splits.read_ids(written))} images\n"
    _release(monkeypatch, "voc/seg11valid", splits.read_ids(written))
    assert splits.main(["voc", "--root", str(root)]) == 0
    assert capsys.readouterr().out.endswith(" images, identical to the release's list\n")
    assert splits.main(["nyud", "--root", str(root)]) == 1
    assert capsys.readouterr().err.startswith(f"splits: error: {root / 'nyud'}: neither the "
                                              "release's train/val/test lists")
    with pytest.raises(SystemExit):
        splits.main(["siftflow", "--root", str(root)])
    assert "siftflow needs --test-list" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        splits.main(["--help"])
    assert "Split lists derived from the datasets' own files" in capsys.readouterr().out
    sift = make_dataset("siftflow", tmp_path / "sf", n_train=3, n_val=2, size=(24, 24), seed=3)
    test_list = tmp_path / "TestSet1.txt"
    test_list.write_text((sift / "sift-flow/test.txt").read_text())
    assert splits.main(["siftflow", "--root", str(sift), "--test-list", str(test_list),
                        "--no-check"]) == 0
    assert capsys.readouterr().out == "{}\n"
    assert len((sift / "sift-flow/trainval.txt").read_text().split()) == 3
    context = make_dataset("pascalcontext", tmp_path / "pc", n_train=2, n_val=3,
                           size=(24, 24), seed=1)
    monkeypatch.setattr(splits, "PASCALCONTEXT_COUNTS", {"train": 2, "val": 3})
    assert splits.main(["pascalcontext", "--root", str(context)]) == 0
    assert capsys.readouterr().out == "{'train': 2, 'val': 3}\n"
    monkeypatch.setattr(splits, "PASCALCONTEXT_COUNTS", {"train": 2, "val": 4})
    with pytest.raises(SplitError, match=r"val\.txt: 3 images, VOC2010's has 4"):
        splits.check_pascalcontext(context / "pascal/VOC2010")
    monkeypatch.setattr(splits, "PASCALCONTEXT_COUNTS", {"train": 1, "val": 3})
    with pytest.raises(SplitError, match=r"train\.txt: 2 images, VOC2010's has 1"):
        splits.check_pascalcontext(context / "pascal/VOC2010")       # more is refused too


def test_pascalcontext_uses_voc2010s_main_train_and_val_as_they_are():
    assert splits.PASCALCONTEXT_COUNTS == {"train": 4998, "val": 5105}
