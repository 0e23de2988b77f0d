"""`make voc-submission`: a synthetic VOC test split in the test tarball's layout, labelled
into the development kit's results folder as palette PNGs of each picture's size, and the
archive the server takes."""

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.palette import voc_palette
from data.synthetic import make_dataset

REPO = Path(__file__).resolve().parents[1]
WIDTH = 0.0625


@pytest.fixture(scope="module")
def voc2012(tmp_path_factory):
    """VOC2012 with a test list and JPEGs only (no labels), pictures of several sizes."""
    root = tmp_path_factory.mktemp("data")
    make_dataset("voc", root / "synth", n_train=1, n_val=4, size=(70, 90), size_jitter=12,
                 seed=3)
    source = root / "synth" / "pascal" / "VOC2011"
    voc = root / "pascal" / "VOC2012"
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    ids = [f"2012_{k:06d}" for k in range(1, 5)]
    sources = sorted((source / "JPEGImages").glob("2011_*.jpg"))
    for image_id, jpg in zip(ids, sources):
        (voc / "JPEGImages" / f"{image_id}.jpg").write_bytes(jpg.read_bytes())
    (voc / "ImageSets" / "Segmentation" / "test.txt").write_text("\n".join(ids) + "\n")
    return root, ids


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A width-reduced voc-fcn8s with seeded filler weights (any weights do for layout)."""
    import caffe

    from nets.generate import write_experiment

    folder = tmp_path_factory.mktemp("weights")
    caffe.set_random_seed(5)
    deploy = write_experiment("voc-fcn8s", folder, width=WIDTH)["deploy"]
    net = caffe.Net(str(deploy), caffe.TEST)
    rng = np.random.default_rng(0)
    for name, blobs in net.params.items():
        if name.startswith("score"):
            blobs[0].data[...] = rng.normal(0, 0.5, blobs[0].data.shape)
    path = folder / "fcn8s.caffemodel"
    net.save(str(path))
    return path


def test_predictions_in_the_devkit_layout_at_each_pictures_size(voc2012, weights, tmp_path):
    from paper.submission import write_predictions

    root, ids = voc2012
    folder, tarball = write_predictions(weights, "2012", root, tmp_path, width=WIDTH,
                                        progress=False)
    assert folder == tmp_path / "results/VOC2012/Segmentation/comp6_test_cls"
    assert sorted(p.stem for p in folder.glob("*.png")) == ids
    sizes = set()
    for image_id in ids:
        picture = Image.open(root / "pascal/VOC2012/JPEGImages" / f"{image_id}.jpg")
        label = Image.open(folder / f"{image_id}.png")
        assert label.mode == "P" and label.size == picture.size
        assert label.getpalette()[:63] == list(voc_palette())[:63]
        assert np.asarray(label).max() <= 20
        sizes.add(picture.size)
    assert len(sizes) > 1                      # pictures of different sizes, each kept
    with tarfile.open(tarball) as tar:
        members = tar.getnames()
        assert f"results/VOC2012/Segmentation/comp6_test_cls/{ids[0]}.png" in members
        assert tar.extractfile(f"results/VOC2012/Segmentation/comp6_test_cls/{ids[0]}.png"
                               ).read() == (folder / f"{ids[0]}.png").read_bytes()
    first = tarball.read_bytes()
    from paper.submission import archive

    assert archive(tmp_path, "2012").read_bytes() == first   # same PNGs, same archive bytes


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "paper.submission", *args], cwd=REPO,
                          capture_output=True, text=True)


def test_a_missing_test_list_is_one_clear_error(weights, tmp_path):
    done = cli("--weights", str(weights), "--year", "2011", "--data", str(tmp_path),
               "--width", str(WIDTH), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"voc-submission: error: {tmp_path}/pascal/VOC2011/"
                                  "ImageSets/Segmentation/test.txt: the test split list is "
                                  "missing")


def test_missing_weights_and_a_missing_picture_are_named(voc2012, weights, tmp_path):
    root, ids = voc2012
    done = cli("--weights", str(tmp_path / "nope.caffemodel"), "--year", "2012", "--data",
               str(root))
    assert done.returncode == 1 and "nope.caffemodel: weights not found" in done.stderr
    from paper.submission import write_predictions

    broken = tmp_path / "broken"
    voc = broken / "pascal/VOC2012/ImageSets/Segmentation"
    voc.mkdir(parents=True)
    (voc / "test.txt").write_text("2012_999999\n")
    with pytest.raises(FileNotFoundError, match=r"2012_999999\.jpg: 1 test image"):
        write_predictions(weights, "2012", broken, tmp_path / "o", width=WIDTH)
