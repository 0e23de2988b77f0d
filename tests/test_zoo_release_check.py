"""The release check's path on a small random net: segment, render, compare bit for bit.

The real check needs the release's demo image, output.png and fcn8s-heavy-pascal.caffemodel,
which the project does not ship; here a tiny net stands in for voc-fcn8s.
"""

import hashlib

import numpy as np
import pytest
from PIL import Image

from compare.errors import CompareError
from compare.release_check import (
    DEMO_SHA256,
    WEIGHTS_SHA1,
    WEIGHTS_URL,
    ensure_weights,
    main,
    release_check,
    render_segmentation,
)
from core.palette import colorize
from testkit.tiny_nets import random_caffemodel, write_tiny_deploy


@pytest.fixture
def demo(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt", classes=21, width=8)
    weights = random_caffemodel(deploy, tmp_path / "weights.caffemodel", seed=2)
    rng = np.random.default_rng(4)
    image = tmp_path / "image.jpg"
    Image.fromarray(rng.integers(0, 256, (26, 34, 3), dtype=np.uint8)).save(image, quality=90)
    label = tmp_path / "label.png"
    Image.fromarray(colorize(rng.choice([0, 2, 15], (26, 34)).astype(np.uint8))
                    ).save(label)
    return deploy, weights, image, label


def _reference_output(tmp_path, deploy, weights, image):
    """What 'the release' produced: one run of the same net, saved as its output.png."""
    first = tmp_path / "reference.png"
    render_segmentation(image, weights, deploy, first)
    return first


def test_same_net_reproduces_the_output_bit_for_bit(tmp_path, demo):
    deploy, weights, image, label = demo
    reference = _reference_output(tmp_path, deploy, weights, image)
    ours = tmp_path / "ours.png"
    result = release_check(image, reference, weights, label=label, deploy=deploy, save=ours,
                           release_files=False)
    assert result.identical
    assert np.array_equal(np.array(Image.open(ours)), np.array(Image.open(reference)))
    assert any(row[0] == "vs label (ours)" for row in result.rows)


def test_one_pixel_off_is_caught(tmp_path, demo, capsys):
    deploy, weights, image, _ = demo
    reference = _reference_output(tmp_path, deploy, weights, image)
    rgb = np.array(Image.open(reference))
    rgb[3, 5] = (0, 128, 0) if tuple(rgb[3, 5]) != (0, 128, 0) else (192, 128, 128)
    Image.fromarray(rgb).save(reference)
    argv = ["--image", str(image), "--output", str(reference), "--weights", str(weights),
            "--deploy", str(deploy), "--save", str(tmp_path / "ours.png"), "--any-files"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "first differing pixel  row 3, col 5" in out and out.strip().endswith("DIFFERENT")


def test_missing_weights_say_where_to_get_them(tmp_path, demo):
    deploy, _, image, _ = demo
    with pytest.raises(CompareError, match=rf"missing\.caffemodel: not found\. Download "
                                       rf"{WEIGHTS_URL}"):
        release_check(image, image, tmp_path / "missing.caffemodel", deploy=deploy,
                      release_files=False)


def test_release_files_are_checked_by_digest(tmp_path, demo):
    deploy, weights, image, _ = demo
    with pytest.raises(CompareError, match=r"image .*image\.jpg: sha256 [0-9a-f]{64} is not the "
                                       r"release's 657b36fe"):
        release_check(image, image, weights, deploy=deploy)
    with pytest.raises(CompareError, match=r"output .*nothing\.png: not found; it comes from the "
                                       r"release's demo/ folder"):
        release_check(image, tmp_path / "nothing.png", weights, deploy=deploy, release_files=False)
    assert DEMO_SHA256["output"] != hashlib.sha256(image.read_bytes()).hexdigest()


def test_weights_that_are_not_the_releases_are_refused(tmp_path, demo):
    deploy, weights, _, _ = demo
    with pytest.raises(CompareError, match=rf"weights\.caffemodel from the release's fcn8s-heavy-"
                                       rf"pascal weights: checksum mismatch, expected sha1 "
                                       rf"{WEIGHTS_SHA1}"):
        ensure_weights(weights, download=False)
