"""The paper's metrics against confusion matrices worked out by hand, and the palette
round trip the saved predictions rely on."""

import math

import numpy as np
import pytest
from PIL import Image

from core.catalog import DATASETS, class_names
from core.palette import colorize, overlay, save_label_png
from evaluation.metrics import (
    background_baseline,
    class_iu,
    class_table,
    fast_hist,
    present_classes,
    scores,
)
from testkit.labels import read_label, rgb_to_label

# label 0 0 1 1 2 255, prediction 0 1 1 1 0 2 (the void pixel is ignored):
#   truth\pred  0 1 2
#      0        1 1 0
#      1        0 2 0
#      2        1 0 0
LABEL = np.array([[0, 0, 1], [1, 2, 255]])
PREDICTION = np.array([[0, 1, 1], [1, 0, 2]])
HIST = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]])


def test_fast_hist_counts_and_ignores_void():
    assert np.array_equal(fast_hist(LABEL, PREDICTION, 3), HIST)
    # labels outside [0, n) of any kind are ignored: SIFT Flow's -1, values >= n
    assert fast_hist(np.array([-1, 3, 7]), np.array([0, 1, 2]), 3).sum() == 0


def test_fast_hist_rejects_mismatch_and_bad_predictions():
    for label, prediction in ((np.zeros(4), np.zeros(5)), (np.zeros(5), np.zeros(4))):
        with pytest.raises(ValueError, match="pixels"):
            fast_hist(label, prediction, 3)
    # each out-of-range prediction alone is refused: silently, -1 or n would be counted in a
    # neighbouring cell of the histogram
    for wrong in (-1, 3, 7):
        with pytest.raises(ValueError, match=rf"outside 0\.\.2: \[{wrong}\]$"):
            fast_hist(np.zeros(2), np.array([0, wrong]), 3)
    # the message names the range and only the offending classes (0..2 are fine, 3 and -1 not)
    with pytest.raises(ValueError, match=r"outside 0\.\.2: \[-1  3\]$"):
        fast_hist(np.zeros(5), np.array([0, 1, 2, 3, -1]), 3)
    # a prediction without class 0, or with the top class only, is valid (mutants: the
    # range check as min != 0, min > 0)
    assert fast_hist(np.array([1, 2]), np.array([1, 2]), 3).trace() == 2


def test_scores_refuse_a_histogram_that_is_not_square():
    for hist in (np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((2, 2, 2)), np.zeros(4)):
        with pytest.raises(ValueError, match="square"):
            scores(hist)


def test_a_class_with_one_pixel_is_present():
    hist = np.array([[3, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert list(present_classes(hist)) == [0, 1]


def test_four_metrics_by_hand():
    s = scores(HIST)
    assert s.pixel_accuracy == pytest.approx(3 / 5)
    assert s.mean_accuracy == pytest.approx((1 / 2 + 2 / 2 + 0 / 1) / 3)
    # IU: 1/(2+2-1), 2/(2+3-2), 0/(1+0-0)
    assert s.mean_iu == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert s.fw_iu == pytest.approx((2 * (1 / 3) + 2 * (2 / 3) + 1 * 0) / 5)


def test_void_pixels_change_no_score_by_hand():
    """Void (255), SIFT Flow's unlabelled (-1) and out-of-range (3 of 3 classes) pixels,
    predicted as every class, leave all four scores where the labelled pixels alone put
    them. Worked out by hand:
    labelled: truth 0 0 0 1 1 → prediction 0 0 1 1 1, so the histogram (rows truth,
    columns prediction) is [[2 1 0] [0 2 0] [0 0 0]];
    pixel acc 4/5; class acc 2/3, 2/2, (class 2 absent: left out) → mean 5/6;
    IU 2/(3+2-2), 2/(2+3-2), (absent) → mean 2/3; f.w. IU (3·2/3 + 2·2/3)/5 = 2/3.
    Class 2 is predicted only on void pixels: counted, it would enter the means at IU 0.
    Mutants this kills: void folded into background, the -1 or the value n kept."""
    label = np.array([[0, 0, 0, 1, 1], [255, 255, 255, -1, 3]])
    prediction = np.array([[0, 0, 1, 1, 1], [1, 1, 0, 2, 2]])
    s = scores(fast_hist(label, prediction, 3))
    assert s.pixel_accuracy == pytest.approx(4 / 5)
    assert s.mean_accuracy == pytest.approx(5 / 6)
    assert s.mean_iu == pytest.approx(2 / 3)
    assert s.fw_iu == pytest.approx(2 / 3)


def test_class_absent_everywhere_is_left_out_of_the_means():
    padded = np.zeros((4, 4), int)
    padded[:3, :3] = HIST
    assert math.isnan(class_iu(padded)[3])
    assert scores(padded) == scores(HIST)


def test_class_predicted_but_absent_from_truth_counts_zero_iu():
    hist = np.array([[3, 1], [0, 0]])  # class 1 never in the truth, predicted once
    s = scores(hist)
    assert class_iu(hist)[1] == 0
    assert s.mean_iu == pytest.approx((3 / 4 + 0) / 2)
    assert s.mean_accuracy == pytest.approx(3 / 4)  # accuracy of class 1 is 0/0: left out
    assert s.fw_iu == pytest.approx(3 / 4)


def test_present_classes_restrict_the_means_like_siftflow():
    hist = np.array([[3, 1], [0, 0]])
    assert list(present_classes(hist)) == [0]
    assert scores(hist, present_classes(hist)).mean_iu == pytest.approx(3 / 4)


def test_background_baseline():
    hist = np.array([[6, 0], [0, 4]])  # perfect prediction; baseline says all 0
    base = background_baseline(hist)
    assert base.pixel_accuracy == pytest.approx(0.6)
    assert base.mean_iu == pytest.approx((6 / 10 + 0) / 2)
    assert scores(hist).mean_iu == 1.0


def test_background_baseline_counts_the_truth_not_the_prediction():
    """Truth rows 6 and 4 pixels, predicted columns 7 and 3: the baseline predicts class 0
    for the 6 + 4 true pixels (pixel acc 0.6, IU 6/10 and 0). Mutant this kills: column
    sums (the prediction's counts) in place of row sums."""
    base = background_baseline(np.array([[5, 1], [2, 2]]))
    assert base.pixel_accuracy == pytest.approx(0.6)
    assert base.mean_iu == pytest.approx(0.3)


def test_class_table_names_and_nan():
    table = class_table(np.pad(HIST, ((0, 1), (0, 1))), ["bg", "cat", "dog", "emu"])
    lines = table.splitlines()
    assert lines[2].split()[1:4] == ["cat", "66.67", "100.00"]
    assert lines[4].split()[1:4] == ["emu", "-", "-"]
    with pytest.raises(ValueError, match="class names"):
        class_table(HIST, ["a"])


def test_class_lists_have_the_heads_sizes():
    sizes = {(name, head.label): head.num_classes
             for name, entry in DATASETS.items() for head in entry.heads}
    assert sizes == {("voc", "label"): 21, ("nyud", "label"): 40, ("siftflow", "sem"): 33,
                     ("siftflow", "geo"): 3, ("pascalcontext", "label"): 60}
    assert class_names("voc", "label", 21)[15] == "person"
    assert class_names("voc", "label", 5) == ["0", "1", "2", "3", "4"]


def test_palette_png_round_trip(tmp_path):
    label = np.array([[0, 1, 15], [20, 255, 2]], np.uint8)
    path = save_label_png(label, tmp_path / "pred.png")
    assert Image.open(path).mode == "P"
    assert np.array_equal(read_label(path), label)
    # the RGB rendering (how the release saved its demo output) maps back to the indices
    rgb_path = tmp_path / "rgb.png"
    Image.fromarray(colorize(label)).save(rgb_path)
    assert np.array_equal(read_label(rgb_path), label)
    assert tuple(colorize(label)[1, 1]) == (224, 224, 192)  # void


def test_rgb_outside_palette_is_named(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"outside the VOC colour map, e.g. \(1, 2, 3\)"):
        rgb_to_label(rgb, where="x.png")


def test_overlay_keeps_background_and_checks_size():
    rgb = np.full((2, 3, 3), 100, np.uint8)
    label = np.array([[0, 1, 1], [0, 0, 2]])
    out = overlay(rgb, label, alpha=0.5)
    assert np.array_equal(out[0, 0], [100, 100, 100])
    assert np.array_equal(out[0, 1], [114, 50, 50])  # class 1 is (128, 0, 0)
    with pytest.raises(ValueError, match="2×3"):
        overlay(rgb, label[:1])
