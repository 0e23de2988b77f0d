"""Exports never leave a failed file where a good one is expected, never write over their
weights, and take paths with spaces whole from make: the ONNX file and the PyTorch module
are written aside and moved to OUT only once verified against Caffe (export/cli.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from export.onnx_export import main as onnx_main
from export.torch_export import main as torch_main
from nets.experiments import build
from testkit.optional import require_modules
from testkit.random_weights import random_caffemodel

require_modules("onnx", "onnxruntime", "torch")  # both exporters run beside Caffe

REPO = Path(__file__).resolve().parents[1]
WIDTH = "0.0625"
NO_EXPORT_AGREES = ("--min-agreement", "1.01")  # more than every pixel: verification fails


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights with spaces") / "fcn32s weights.caffemodel"
    return random_caffemodel(build("voc-fcn32s", "deploy", width=float(WIDTH)), path, seed=6)


def _args(weights, out, *extra):
    return ["--net", "voc-fcn32s", "--weights", str(weights), "--width", WIDTH, "--out",
            str(out), "--sizes", "1x1", *extra]


@pytest.mark.parametrize("main,out", [(onnx_main, "m.onnx"), (torch_main, "torch")])
@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_failed_export_leaves_nothing_at_out(main, out, weights, tmp_path, capsys):
    assert main(_args(weights, tmp_path / out, *NO_EXPORT_AGREES)) == 1
    err = capsys.readouterr().err
    assert "FAILED verification" in err and "nothing was left at" in err
    assert not (tmp_path / "m.onnx").exists()
    assert not list(tmp_path.rglob("*.py")) and not list(tmp_path.rglob("*.pt"))
    assert not list(tmp_path.rglob("*.part"))  # the staging folder is gone too


@pytest.mark.fault("clear error", guards="lost")
def test_a_failed_export_keeps_the_earlier_good_one(weights, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    assert onnx_main(_args(weights, path)) == 0
    good = path.read_bytes()
    other = random_caffemodel(build("voc-fcn32s", "deploy", width=float(WIDTH)),
                              tmp_path / "other.caffemodel", seed=7)
    assert onnx_main(_args(other, path, *NO_EXPORT_AGREES)) == 1
    assert path.read_bytes() == good


@pytest.mark.fault("clear error", guards="lost")
def test_an_onnx_export_pointed_at_its_weights_is_refused(weights, capsys):
    before = weights.read_bytes()
    assert onnx_main(_args(weights, weights)) == 2
    err = capsys.readouterr().err
    assert f"{weights}: cannot be written (OUT=/--out): it is the weights" in err, err
    assert weights.read_bytes() == before


@pytest.mark.parametrize("target,written", [("onnx", "out m.onnx"), ("torch", "voc_fcn32s.py")])
@pytest.mark.fault("correct", guards="unclear")
def test_make_passes_export_paths_with_spaces_whole(target, written, weights, tmp_path):
    out = tmp_path / "my exports" / ("out m.onnx" if target == "onnx" else "torch out")
    done = subprocess.run(["make", "--no-print-directory", "-o", "setup", "-o", "venv", "-o",
                           "export-deps", "-o", "bench-torch", target, "NET=voc-fcn32s",
                           f"WEIGHTS={weights}", f"OUT={out}", f"WIDTH={WIDTH}", "SIZES=1x1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unrecognized arguments" not in done.stderr
    assert (out if target == "onnx" else out / written).is_file()
