"""NaN or infinite weights are refused by every command that reads weights, naming the
layer (core.caffe_files.check_finite): labels, exports, a published model or a forward
comparison from a diverged net would look like results and mean nothing."""

import os
import subprocess
import sys
from pathlib import Path

import caffe
import numpy as np
import pytest
from PIL import Image

from nets.generate import write_experiment
from training.init import random_init

REPO = Path(__file__).resolve().parents[1]
WIDTH = "0.0625"


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("net")
    paths = write_experiment("voc-fcn32s", folder, width=float(WIDTH))
    net = caffe.Net(str(paths["deploy"]), caffe.TEST)
    random_init(net, 3)
    net.params["fc7"][0].data[0, 0] = np.nan
    net.params["score_fr"][1].data[0] = np.inf
    net.save(str(folder / "nan.caffemodel"))
    return paths["deploy"], folder / "nan.caffemodel"


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "GLOG_minloglevel": "2"})


def refused(done, code, weights):
    assert done.returncode == code, done.stderr
    assert f"{weights} (" in done.stderr and "layers fc7, score_fr hold NaN" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.fault("clear error", guards="silent")
def test_infer_refuses_nan_weights_before_writing_a_picture(nets, tmp_path):
    _, weights = nets
    picture = tmp_path / "a.jpg"
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(picture)
    done = run("evaluation.infer", str(picture), "--net", "voc-fcn32s", "--weights",
               str(weights), "--out", str(tmp_path / "out"), "--width", WIDTH)
    refused(done, 1, weights)
    assert not list((tmp_path / "out").glob("*.png"))


@pytest.mark.fault("clear error", guards="silent")
def test_zoo_export_refuses_to_publish_nan_weights(nets, tmp_path):
    _, weights = nets
    done = run("zoo.export", "--net", "voc-fcn32s", "--weights", str(weights), "--out",
               str(tmp_path / "zoo"))
    refused(done, 2, weights)
    assert not (tmp_path / "zoo" / "readme.md").exists()


@pytest.mark.parametrize("module", ["export.onnx_export", "export.torch_export"])
@pytest.mark.fault("clear error", guards="silent")
def test_exports_refuse_nan_weights_naming_the_layer(nets, tmp_path, module):
    _, weights = nets
    done = run(module, "--net", "voc-fcn32s", "--weights", str(weights), "--width", WIDTH,
               "--out", str(tmp_path / "export"))
    refused(done, 2, weights)
    out = tmp_path / "export"
    assert not out.exists() or not any(out.iterdir())  # no failed export left at OUT


@pytest.mark.fault("clear error", guards="silent")
def test_compare_forward_refuses_nan_weights(nets):
    deploy, weights = nets
    done = run("compare.cli", "--net-a", str(deploy), "--weights-a", str(weights))
    refused(done, 2, weights)
