"""The data check before a long run (training/check_data.py), in process: which picture is
the largest (what a training step's memory is sized by), which files the cache lets pass
unread, which split and phase a `make check-data` names."""

import json
import os

import numpy as np
import pytest

from core.palette import voc_palette
from data.synthetic import (
    FOLDERS,
    SBDD_LAYOUT,
    VOC_LAYOUT,
    make_dataset,
    make_scene,
    sbdd_struct,
    write_jpeg,
    write_mat,
    write_voc_example,
)
from nets.experiments import EXPERIMENTS
from training.check_data import check_experiment, check_split, experiment_for

FCN32S = EXPERIMENTS["voc-fcn32s"]   # reads SBD train, then VOC2011 seg11valid
# (H, W) of the three training pictures, in list order: the largest area is 36×36's (1296);
# 20×60 has the largest sum and width, and 24×54, read after it, the same area (only the
# first of two equal areas is kept)
TRAIN_SIZES = [(20, 60), (36, 36), (24, 54)]


def resize_examples(root, sizes, seed=0):
    """Rewrite the SBD training pictures and labels at the given sizes, in list order."""
    rng = np.random.default_rng(seed)
    sbdd = root / FOLDERS["sbdd"]
    names = (sbdd / SBDD_LAYOUT.split_file("train")[1]).read_text().split()
    for name, (h, w) in zip(names, sizes):
        scene = make_scene(rng, h, w, [1, 2])
        write_jpeg(sbdd / SBDD_LAYOUT.file("data", name), scene.rgb)
        write_mat(sbdd / SBDD_LAYOUT.file("label", name), {"GTcls": sbdd_struct(scene.label)})
    return [sbdd / SBDD_LAYOUT.file("data", name) for name in names]


def resize_valid(root, sizes, seed=1):
    """Rewrite the seg11valid pictures and labels at the given sizes, in list order."""
    rng = np.random.default_rng(seed)
    voc = root / FOLDERS["voc2011"]
    names = (voc / VOC_LAYOUT.split_file("seg11valid")[1]).read_text().split()
    assert len(names) == len(sizes)
    for name, size in zip(names, sizes):
        write_voc_example(voc, name, make_scene(rng, *size, [1, 2]), bytes(voc_palette()))
    return [voc / VOC_LAYOUT.file("data", name) for name in names]


@pytest.fixture
def data(tmp_path, monkeypatch):
    # a folder whose parents are not there yet, as ~/.cache/fcn-caffe on a fresh machine
    monkeypatch.setenv("FCN_DATA_CHECK_CACHE", str(tmp_path / "cache" / "fcn" / "checks"))
    root = make_dataset("voc", tmp_path / "data", n_train=3, n_val=2, num_classes=3,
                        size=(32, 40), seed=4)
    resize_examples(root, TRAIN_SIZES)
    return root


def check(root, split="train", phase=0):
    return check_split(FCN32S, root, split, phase, progress=False)


def test_the_largest_picture_is_the_one_of_largest_area_read_or_cached(data):
    first = check(data)
    assert (first.examples, first.cached, first.bad) == (3, 0, [])
    assert first.largest == (36, 36)
    again = check(data)   # every example unchanged: sizes come from the cache
    assert (again.cached, again.largest) == (3, (36, 36))


def test_the_experiment_takes_the_larger_area_of_its_two_splits(data):
    # seg11valid's largest, 20×62 (1240), has a larger sum than 36×36 but not the larger area
    resize_valid(data, [(20, 62), (16, 70)])
    assert check(data, "seg11valid", 1).largest == (20, 62)
    assert check_experiment(FCN32S, data, progress=False) == (36, 36)
    # now a validation picture is the largest: 30×50 (1500), though shorter than 36×36,
    # and read before a picture of smaller area that is larger than its height squared
    resize_valid(data, [(30, 50), (20, 62)])
    assert check(data, "seg11valid", 1).largest == (30, 50)
    assert check_experiment(FCN32S, data, progress=False) == (30, 50)


def test_a_file_changed_since_its_check_is_read_again(data):
    pictures = resize_examples(data, TRAIN_SIZES)
    check(data)
    # the same number of bytes, the same modification time as before: only a file the
    # cache cannot tell from the checked one passes unread
    same = pictures[0].read_bytes()
    stat = pictures[0].stat()
    pictures[0].write_bytes(b"x" * len(same))
    os.utime(pictures[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    changed_time = check(data)
    assert changed_time.cached == 2 and len(changed_time.bad) == 1
    assert str(pictures[0]) in changed_time.bad[0]
    # a good file again, under the checked size's time but of another length
    pictures[0].write_bytes(same + b"\0")
    os.utime(pictures[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed_size = check(data)
    assert changed_size.cached == 2 and changed_size.bad == []
    assert check(data).cached == 3
    # shorter and older than when checked (a copy restored from elsewhere): read again
    pictures[0].write_bytes(b"x" * (len(same) - 1))
    os.utime(pictures[0], ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
    older = check(data)
    assert older.cached == 2 and len(older.bad) == 1


def test_a_bad_file_is_reported_on_every_check_and_never_cached(data):
    pictures = resize_examples(data, TRAIN_SIZES)
    pictures[1].write_bytes(b"not a jpeg")
    for _ in range(2):
        report = check(data)
        assert report.cached == (0 if _ == 0 else 2) and len(report.bad) == 1
        assert f"{pictures[1]} is not a readable image" in report.bad[0]
        assert report.largest == (24, 54)   # the larger of the two good ones


def test_a_damaged_or_unwritable_cache_only_costs_time(data, tmp_path, monkeypatch):
    check(data)
    [cache_file] = (tmp_path / "cache" / "fcn" / "checks").iterdir()
    entries = json.loads(cache_file.read_text())
    assert sorted(entries) == sorted(p.stem for p in resize_examples(data, TRAIN_SIZES))
    cache_file.write_text("{ torn")
    assert check(data).cached == 0 and check(data).cached == 3
    blocked = tmp_path / "a file"
    blocked.write_text("")
    monkeypatch.setenv("FCN_DATA_CHECK_CACHE", str(blocked / "cache"))
    report = check(data)
    assert (report.cached, report.bad, report.largest) == (0, [], (36, 36))


def test_a_missing_split_list_is_one_bad_line(data):
    (data / FOLDERS["sbdd"] / SBDD_LAYOUT.split_file("train")[1]).unlink()
    report = check(data)
    assert report.examples == 0 and len(report.bad) == 1 and "train.txt" in report.bad[0]
    with pytest.raises(ValueError, match=r"1 bad file\(s\) in the splits of voc-fcn32s"):
        check_experiment(FCN32S, data, progress=False)


def test_bad_files_of_both_splits_are_listed_at_once(data):
    pictures = resize_examples(data, TRAIN_SIZES)
    pictures[2].write_bytes(b"broken")
    valid = resize_valid(data, [(32, 40), (32, 40)])[0]
    valid.write_bytes(b"broken")
    with pytest.raises(ValueError) as error:
        check_experiment(FCN32S, data, progress=False)
    message = str(error.value)
    assert message.startswith("2 bad file(s) in the splits of voc-fcn32s:")
    assert str(pictures[2]) in message and str(valid) in message
    assert "make check-data" in message


def test_the_split_names_its_experiment_and_phase():
    assert experiment_for("voc", "train") == (FCN32S, 0)
    assert experiment_for("voc", "seg11valid") == (FCN32S, 1)
    exp, phase = experiment_for("nyud", "trainval")
    assert exp.dataset == "nyud" and phase == 0
    exp, phase = experiment_for("nyud", "test")
    assert exp.dataset == "nyud" and phase == 1 and exp.splits[1] == "test"
    exp, phase = experiment_for("pascalcontext", "val")
    assert exp.dataset == "pascalcontext" and phase == 1
    with pytest.raises(ValueError, match=r"unknown dataset 'coco'; choose from \['nyud', "
                                         r"'pascalcontext', 'siftflow', 'voc'\]"):
        experiment_for("coco", "train")


def test_a_progress_bar_only_when_asked(data, capsys):
    check(data)
    assert capsys.readouterr().err == ""
    check_split(FCN32S, data, "train", 0)   # by default, as make check-data without --quiet
    assert "check train" in capsys.readouterr().err
    check_experiment(FCN32S, data)
    bars = capsys.readouterr().err
    assert "check train" in bars and "check seg11valid" in bars
