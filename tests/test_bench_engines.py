"""The inference peers (bench/engines.py): onnxruntime and OpenVINO run the project's ONNX
export of FCN-8s on Caffe's input and agree with Caffe's output before they are timed; one
that disagrees is reported, not timed. Nothing here times anything."""

import numpy as np
import pytest

from testkit.optional import require_modules

require_modules("onnx", "onnxruntime", "openvino")  # the export and both engines

from bench import engines  # noqa: E402
from bench.models import deploy_net, fill_weights, random_image  # noqa: E402
from bench.report import ratios_table  # noqa: E402

SIZE = (67, 75)


@pytest.fixture(scope="module")
def fcn8s(tmp_path_factory):
    """A tiny FCN-8s's ONNX export, its input and Caffe's score map for it."""
    folder = tmp_path_factory.mktemp("engines")
    net, net_param = deploy_net("voc-fcn8s", SIZE, folder, width=1 / 16)
    fill_weights(net, seed=3)
    image = random_image(SIZE, seed=3)
    expected = net.forward(data=image)["score"].copy()
    assert expected.shape == (1, 21, *SIZE) and np.abs(expected).max() > 0
    model = engines.export_onnx(net, net_param, "voc-fcn8s", 1 / 16, folder / "fcn8s.onnx")
    return model, image, expected


class CountingTimer:
    """Stands in for bench.timing: calls the forward once and keeps what it returned."""

    def __init__(self):
        self.outputs = []

    def __call__(self, forward):
        self.outputs.append(forward())
        return {"median_s": 1.0}


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_each_engine_runs_the_export_agrees_with_caffe_then_is_timed(fcn8s, engine):
    model, image, expected = fcn8s
    timer = CountingTimer()
    row = engines.run(model, image, expected, threads=2, timer=timer, engines=(engine,))[engine]
    assert row["engine"] == engine and row["version"] and row["threads"] == 2
    assert row["max_relative_difference"] < 1e-5
    assert row["max_abs_difference"] <= row["max_relative_difference"] * np.abs(expected).max()
    assert row["argmax_agreement"] > 0.99
    assert "error" not in row and row["forward"] == {"median_s": 1.0}
    # what was timed is the engine's forward on this input: the score map
    assert len(timer.outputs) == 1 and timer.outputs[0].shape == expected.shape


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_an_engine_that_disagrees_is_not_timed(fcn8s, engine):
    model, image, expected = fcn8s
    wrong = expected.copy()
    wrong[0, 0] += np.abs(expected).max()  # class 0 everywhere, far off
    timer = CountingTimer()
    row = engines.run(model, image, wrong, threads=1, timer=timer, engines=(engine,))[engine]
    assert row["max_relative_difference"] > engines.TOLERANCE
    assert "not timed" in row["error"] and "forward" not in row and timer.outputs == []


def test_comparison_reports_abs_relative_and_argmax():
    expected = np.zeros((1, 3, 2, 2), np.float32)
    expected[0, 1] = 4.0            # class 1 everywhere
    actual = expected.copy()
    actual[0, 2, 0, 0] = 5.0        # one pixel of four now says class 2
    result = engines.compare_outputs(expected, actual)
    assert result == {"max_abs_difference": 5.0, "max_relative_difference": 1.25,
                      "argmax_agreement": 0.75}
    with pytest.raises(ValueError, match="shapes differ"):
        engines.compare_outputs(expected, actual[:, :2])


def test_a_missing_engine_is_reported_with_its_make_target(fcn8s, monkeypatch):
    model, image, expected = fcn8s
    real = engines.importlib.util.find_spec
    monkeypatch.setattr(engines.importlib.util, "find_spec",
                        lambda name: None if name == "openvino" else real(name))
    rows = engines.run(model, image, expected, threads=1)
    assert rows["openvino"] == {"skipped": "openvino is not installed (make bench-engines "
                                           "installs it)"}
    assert "error" not in rows["onnxruntime"] and "forward" not in rows["onnxruntime"]


def test_the_report_prints_each_engines_ratio_and_agreement():
    row = {"engine": "openvino", "version": "2026.4.1", "threads": 2, "experiment": "voc-fcn8s",
           "max_abs_difference": 3e-5, "max_relative_difference": 2e-6,
           "argmax_agreement": 0.9999, "forward": {"median_s": 1.0},
           "caffe_over_engine_forward": 2.5, "forward_flops": 1e9, "train_flops": None}
    results = {"blas": {"sgemm": {"n": 64, "gflops": 10.0}, "corename": "HASWELL",
                        "threads": 2},
               "engines": {"openvino": row, "onnxruntime": {"skipped": "not installed"}}}
    lines = ratios_table(results)
    assert "| Caffe / openvino time, forward (2 threads) | 2.50 |" in lines
    assert ("| openvino (ONNX export) vs Caffe output, max abs · max relative difference · "
            "same argmax | 3.0e-05 · 2.0e-06 · 99.99 % |") in lines
    assert "| onnxruntime (ONNX export) | not timed: not installed |" in lines
