"""The paper's analyses without training: IU upper bounds (6.3) on hand-made labels and a
real split layout, mean IU without background (Table 8), shift-and-stitch = dilation (3.2)."""

import json

import numpy as np
import pytest

from analyses import iu_bounds
from analyses.iu_bounds import bound_hist, downsample, upsample
from data.synthetic import make_dataset
from evaluation.metrics import fast_hist, mean_iu_no_bg, scores
from nets import shift_stitch


def mean_iu(label, factor, classes=3, method="mode"):
    return 100 * scores(bound_hist(label, factor, classes, method)).mean_iu


def test_factor_one_gives_100():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, (37, 53)).astype(np.uint8)
    label[rng.random(label.shape) < 0.1] = 255
    assert mean_iu(label, 1) == 100
    assert mean_iu(label, 1, method="nearest") == 100


def test_a_one_pixel_object_vanishes_at_factor_two():
    label = np.zeros((16, 16), np.uint8)
    label[5, 9] = 1
    assert mean_iu(label, 1, classes=2) == 100
    hist = bound_hist(label, 2, 2)
    assert hist[1, 1] == 0 and hist[1, 0] == 1  # the object's pixel became background
    assert mean_iu(label, 2, classes=2) == pytest.approx(100 * (255 / 256) / 2)


def test_a_square_survives_while_it_fills_half_a_block():
    label = np.zeros((32, 32), np.uint8)
    label[8:12, 8:12] = 1  # a 4×4 object aligned with the 4- and 8-pixel grids
    assert mean_iu(label, 4, classes=2) == 100
    hist8 = bound_hist(label, 8, 2)
    assert hist8[1, 1] == 0  # 16 of a block's 64 pixels: the block is background
    label[8:14, 8:14] = 1  # 36 of 64: the block is the object's
    hist8 = bound_hist(label, 8, 2)
    assert hist8[1, 1] == 36 and hist8[0, 1] == 28


def test_mode_ignores_void_and_breaks_ties_to_the_lower_class():
    label = np.array([[255, 255, 2, 1],
                      [255, 2, 1, 2]], np.uint8)
    np.testing.assert_array_equal(downsample(label, 2), [[2, 1]])
    np.testing.assert_array_equal(downsample(np.full((2, 2), 255, np.uint8), 2), [[255]])
    edge = np.arange(15).reshape(3, 5) % 3
    coarse = downsample(edge.astype(np.uint8), 4)
    assert coarse.shape == (1, 2)
    back = upsample(coarse, 4, edge.shape)
    assert back.shape == edge.shape and (back[:, :4] == coarse[0, 0]).all()
    np.testing.assert_array_equal(downsample(edge.astype(np.uint8), 2, "nearest"),
                                  edge[np.ix_([0, 2], [0, 2, 4])])


def test_nearest_over_a_void_block_centre_scores_the_block_as_background():
    """'nearest' can pick a void centre in a block of class 1: the block then predicts
    background for its labelled pixels (not void, which would drop them from the score)."""
    label = np.ones((4, 4), np.uint8)
    label[1, 1] = 255  # the centre of the one 4×4 block
    assert downsample(label, 4, "nearest")[0, 0] == 255
    hist = bound_hist(label, 4, 2, "nearest")
    np.testing.assert_array_equal(hist, [[0, 0], [15, 0]])
    assert mean_iu(label, 4, classes=2, method="nearest") == 0


def test_iu_bounds_are_percentages_over_the_whole_split():
    """One histogram over all labels, mean IU in percent: the one-pixel object of the test
    above, and a picture without it, at factors 1 and 2."""
    label = np.zeros((16, 16), np.uint8)
    label[5, 9] = 1
    bounds = iu_bounds.iu_bounds([label, np.zeros((16, 16), np.uint8)], 2, factors=(1, 2))
    assert bounds[1] == 100
    assert bounds[2] == pytest.approx(100 * (511 / 512) / 2)


@pytest.mark.parametrize("method", iu_bounds.METHODS)
def test_a_factor_below_one_is_refused(method):
    with pytest.raises(ValueError, match="factor must be >= 1, found 0"):
        downsample(np.zeros((4, 4), np.uint8), 0, method)


@pytest.mark.parametrize("typo", ["nerest", "average"])
def test_an_unknown_method_is_refused_whatever_its_spelling(typo):
    with pytest.raises(ValueError, match="method must be one of"):
        downsample(np.zeros((4, 4), np.uint8), 2, typo)


def test_iu_bounds_command_on_a_real_split_layout(tmp_path, capsys):
    root = make_dataset("voc", tmp_path, n_train=1, n_val=5, num_classes=4, seed=1)
    out = tmp_path / "bounds.json"
    assert iu_bounds.main(["--data", str(root), "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seg11valid" in text and "paper" in text and "98.5" in text
    bounds = {int(k): v for k, v in json.loads(out.read_text())["mean_iu"].items()}
    assert list(bounds) == [128, 64, 32, 16, 8, 4]
    assert bounds[4] >= bounds[128]
    assert bounds[4] > 80


def test_iu_bounds_names_a_missing_split(tmp_path, capsys):
    assert iu_bounds.main(["--data", str(tmp_path), "--quiet"]) == 1
    assert "seg11valid.txt" in capsys.readouterr().err


def test_mean_iu_without_background_leaves_the_standard_metrics_alone():
    label = np.array([0, 0, 0, 1, 1, 2, 2, 255])
    prediction = np.array([0, 0, 1, 1, 1, 2, 0, 0])
    hist = fast_hist(label, prediction, 3)
    ius = [2 / 4, 2 / 3, 1 / 2]
    assert scores(hist).mean_iu == pytest.approx(np.mean(ius))
    assert mean_iu_no_bg(hist) == pytest.approx(np.mean(ius[1:]))
    assert mean_iu_no_bg(hist, background=2) == pytest.approx(np.mean(ius[:2]))
    with pytest.raises(ValueError, match="background class 3"):
        mean_iu_no_bg(hist, background=3)


def test_shift_and_stitch_equals_the_dilated_net():
    result = shift_stitch.compare(width=0.0625, size=40, seed=3, repeats=1)
    assert result.positions > 20 * 20
    assert result.max_abs_output > 1
    assert result.max_abs_difference <= 1e-5 * result.max_abs_output
    # f² passes over (almost) the whole picture: about 4× the rarefied net's work before
    # pool1, the same after it
    assert result.rarefied_multiply_adds < result.stitch_multiply_adds < \
        4 * result.rarefied_multiply_adds


def test_shift_and_stitch_catches_a_wrong_dilation(monkeypatch):
    """The comparison is not vacuous: with the later filters left undilated it fails."""
    real = shift_stitch.front

    def undilated(width, size, *, rarefied, classes=21):
        net = real(width, size, rarefied=rarefied, classes=classes)
        for layer in net.layer:
            if layer.type == "Convolution":
                del layer.convolution_param.dilation[:]
        return net
    monkeypatch.setattr(shift_stitch, "front", undilated)
    result = shift_stitch.compare(width=0.0625, size=40, seed=3, repeats=1)
    assert result.max_abs_difference > 1e-2 * result.max_abs_output


def write_log(run, records):
    run.mkdir(parents=True)
    (run / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def metrics(iu):
    return {"pixel_accuracy": 0.9, "mean_accuracy": 0.7, "mean_iu": iu, "fw_iu": 0.8}


def test_best_test_and_training_time_leave_out_the_tests(tmp_path):
    from analyses.reports import best_test, training_seconds

    run = tmp_path / "voc-fcn32s"
    write_log(run, [
        {"type": "start", "time": 0.0},
        {"type": "step", "time": 10.0, "iter": 1, "loss": 3.0},
        {"type": "test", "time": 14.0, "iter": 1, "label": metrics(0.4)},  # a 4 s test
        {"type": "step", "time": 24.0, "iter": 2, "loss": 2.0},
        {"type": "test", "time": 30.0, "iter": 2, "label": metrics(0.6)},
        # resumed: the clock restarts
        {"type": "resume", "time": 0.0, "iter": 2},
        {"type": "step", "time": 5.0, "iter": 3, "loss": 1.0},
        {"type": "test", "time": 6.0, "iter": 3, "label": metrics(0.5)},
    ])
    assert best_test(run)["iter"] == 2 and best_test(run)["mean_iu"] == 0.6
    assert training_seconds(run) == {1: 10.0, 2: 20.0, 3: 25.0}


def test_table2_and_figure5_from_runs(tmp_path):
    from analyses.reports import figure5, table2

    for name, ius in (("table2-heavy", (0.5, 0.636)), ("voc-fcn32s", (0.3, 0.6)),
                      ("sampling-p50", (0.2, 0.55))):
        write_log(tmp_path / name, [
            {"type": "step", "time": 1.0, "iter": 1, "loss": 1.0},
            {"type": "test", "time": 2.0, "iter": 1, "label": metrics(ius[0])},
            {"type": "step", "time": 3.0, "iter": 2, "loss": 1.0},
            {"type": "test", "time": 4.0, "iter": 2, "label": metrics(ius[1])}])
    text = table2(tmp_path)
    heavy_row = next(line for line in text.splitlines() if "table2-heavy" in line)
    assert "| 63.6 |" in heavy_row and "| 1 | 0.99 |" in heavy_row
    accumulated = next(line for line in text.splitlines() if "table2-accumulated" in line)
    assert "| 20 | 0.9 | 0.9947 | 0.9000 |" in accumulated and accumulated.endswith("| - |")
    png = figure5(tmp_path, tmp_path / "fig.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
