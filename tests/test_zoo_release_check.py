"""The release check's path on a small random net: segment, render, compare bit for bit.

The real check needs the release's demo image, output.png and fcn8s-heavy-pascal.caffemodel,
which the project does not ship; here a tiny net stands in for voc-fcn8s.

The release's own output.png enters through FCN_RELEASE_DEMO, a folder holding the
release's demo/ files (the release repository's demo/ folder; CI points it at the copy
beside the clone). The project copies none of them: the tests carry only their sha256
and facts about them, check the digest first, and skip, saying how, without the folder.
"""

import hashlib
import io
import os
from pathlib import Path

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
from compare.segmentation import load_label_map
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


def test_weights_that_are_not_the_releases_are_refused(tmp_path, demo):
    deploy, weights, _, _ = demo
    with pytest.raises(CompareError, match=rf"weights\.caffemodel from the release's fcn8s-heavy-"
                                       rf"pascal weights: checksum mismatch, expected sha1 "
                                       rf"{WEIGHTS_SHA1}"):
        ensure_weights(weights, download=False)


RELEASE_DEMO = os.environ.get("FCN_RELEASE_DEMO")
needs_release_demo = pytest.mark.skipif(
    not RELEASE_DEMO, reason="set FCN_RELEASE_DEMO to a folder with the release's demo files "
    "(image.jpg, label.png, output.png from the release repository's demo/)")
# The release's output.png (sha256 in DEMO_SHA256): RGB in VOC colours, 334 wide, 500 high.
OUTPUT_SIZE = (334, 500)  # PIL: width, height
OUTPUT_CLASS_PIXELS = {0: 74268, 2: 42851, 15: 49881}  # background, bicycle, person


def release_file(name: str) -> Path:
    path = Path(RELEASE_DEMO) / name
    assert path.is_file(), f"FCN_RELEASE_DEMO={RELEASE_DEMO} has no {name}"
    role = {"image.jpg": "image", "label.png": "label", "output.png": "output"}[name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DEMO_SHA256[role], \
        f"{path} is not the release's {name}"
    return path


@needs_release_demo
def test_release_output_round_trips_through_our_palette():
    """The release's output.png → our label map → our VOC colours, written as the check
    writes its own output, gives the release's file byte for byte: the palette and the
    colour → class reading are the release's. Mutants this kills: any colour of the
    palette changed (bit order, void colour), colours_to_indices off by one."""
    output = release_file("output.png")
    indices, encoding = load_label_map(output)
    assert Image.open(output).size == OUTPUT_SIZE
    classes, counts = np.unique(indices, return_counts=True)
    assert dict(zip(classes.tolist(), counts.tolist())) == OUTPUT_CLASS_PIXELS, encoding
    rendered = io.BytesIO()
    Image.fromarray(colorize(indices)).save(rendered, format="PNG")
    assert rendered.getvalue() == output.read_bytes()


@needs_release_demo
def test_release_output_and_label_digests_are_checked(tmp_path, demo):
    """With the release's image, the output and the label are checked by digest too."""
    deploy, weights, _, label = demo
    image = release_file("image.jpg")
    with pytest.raises(CompareError, match=r"output .*label\.png: sha256 [0-9a-f]{64} is not the "
                                       r"release's 954592a6"):
        release_check(image, label, weights, deploy=deploy)
    with pytest.raises(CompareError, match=r"label .*image\.jpg: sha256 [0-9a-f]{64} is not the "
                                       r"release's baa7290b"):
        release_check(image, release_file("output.png"), weights, label=image, deploy=deploy)
