"""Weights that do not fit the net say why: a fetched caffemodel is checked against its
deploy net (every learned layer there, every blob of the shape the net gives it) before it
is called good, with or without a digest; a file cut inside a layer names the byte it ends
at, one cut between two layers the layer it ends after; weights of another WIDTH say the
width they look trained at, and a finished run's weights the WIDTH its manifest records.
Never "wrong prototxt for these weights?". Real Caffe nets; weights from Caffe's fillers."""

import os
import subprocess
import sys
from pathlib import Path

import caffe
import pytest
from caffe.proto import caffe_pb2

from core.caffe_files import CaffeFileError, read_caffemodel
from core.manifest import record_result
from data.synthetic import make_dataset
from nets.generate import write_experiment
from testkit.http_files import serving
from testkit.tiny_nets import write_tiny_deploy
from training.init import random_init

REPO = Path(__file__).resolve().parents[1]
WIDTH = "0.0625"


def run(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "GLOG_minloglevel": "2"})


def one_line(done, code: int) -> str:
    """The one error line (a download's progress bar may be drawn before it)."""
    assert done.returncode == code, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and ": error: " in lines[-1], done.stderr
    assert sum(": error: " in line for line in lines) == 1, done.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_dataset("voc", root, n_train=1, n_val=1, num_classes=3, size=(32, 40), seed=5)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """voc-fcn32s at width 1/16 with seeded random weights, in a run folder of its own."""
    folder = tmp_path_factory.mktemp("run")
    paths = write_experiment("voc-fcn32s", folder / "nets", width=float(WIDTH))
    net = caffe.Net(str(paths["deploy"]), caffe.TEST)
    random_init(net, 3)
    net.save(str(folder / "final.caffemodel"))
    return folder / "final.caffemodel"


def cut(source: Path, at: int, dest: Path) -> Path:
    dest.write_bytes(source.read_bytes()[:at])
    return dest


def layer_end(weights: Path, name: str) -> int:
    """The byte offset right after layer `name` in a caffemodel (a cut between layers)."""
    param = caffe_pb2.NetParameter()
    param.ParseFromString(weights.read_bytes())
    kept = caffe_pb2.NetParameter()
    kept.CopyFrom(param)
    del kept.layer[:]
    for layer in param.layer:
        kept.layer.add().CopyFrom(layer)
        if layer.name == name:
            break
    size = len(kept.SerializeToString())
    assert weights.read_bytes()[:size] == kept.SerializeToString()
    return size


# --- a fetched caffemodel against its deploy net -----------------------------------------
def zoo_folder(tmp_path, server, *, out_channels: int):
    """A zoo folder whose deploy net wants conv1 with 4 outputs, and weights served at a
    caffemodel-url whose conv1 has `out_channels` (4: they fit)."""
    folder = tmp_path / "model"
    folder.mkdir()
    write_tiny_deploy(tmp_path / "other.prototxt", width=out_channels)
    net = caffe.Net(str(tmp_path / "other.prototxt"), caffe.TEST)
    net.save(str(tmp_path / "served.caffemodel"))
    write_tiny_deploy(folder / "deploy.prototxt", width=4)
    body = (tmp_path / "served.caffemodel").read_bytes()
    server.files["/w.caffemodel"] = body
    (folder / "caffemodel-url").write_text(f"{server.url}/w.caffemodel\n")
    return folder, body


@pytest.fixture
def server():
    with serving() as handler:
        yield handler


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_fetched_caffemodel_of_other_shapes_is_refused_without_a_digest(server, tmp_path):
    from zoo.errors import ZooError
    from zoo.fetch import import_weights

    folder, _ = zoo_folder(tmp_path, server, out_channels=5)
    with pytest.raises(ZooError, match=r"layer conv1 blob 0 has shape \(5, 3, 3, 3\), "
                                       r".*deploy.prototxt expects \(4, 3, 3, 3\)"):
        import_weights(folder, progress=False)
    assert not (folder / "w.caffemodel").exists()


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_fetched_caffemodel_of_other_shapes_is_refused_with_a_digest(server, tmp_path):
    import hashlib

    from zoo.fetch import main as zoo_fetch

    folder, body = zoo_folder(tmp_path, server, out_channels=5)
    code = zoo_fetch([str(folder), "--sha256", hashlib.sha256(body).hexdigest()])
    assert code == 2


@pytest.mark.fault("clear error", guards="unclear")
def test_zoo_fetch_with_a_digest_names_the_layer_and_both_shapes(server, tmp_path):
    import hashlib

    folder, body = zoo_folder(tmp_path, server, out_channels=5)
    done = run("zoo.fetch", str(folder), "--sha256", hashlib.sha256(body).hexdigest())
    err = one_line(done, 2)
    assert "layer conv1 blob 0 has shape (5, 3, 3, 3)" in err and "(4, 3, 3, 3)" in err


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_fetched_caffemodel_that_fits_is_kept(server, tmp_path):
    from zoo.fetch import import_weights

    folder, body = zoo_folder(tmp_path, server, out_channels=4)
    assert import_weights(folder, progress=False).read_bytes() == body


@pytest.mark.fault("clear error", guards="lost")
def test_zoo_fetch_never_writes_over_its_deploy_net(server, tmp_path):
    folder, _ = zoo_folder(tmp_path, server, out_channels=4)
    before = (folder / "deploy.prototxt").read_bytes()
    done = run("zoo.fetch", str(folder), "--dest", str(folder / "deploy.prototxt"))
    err = one_line(done, 2)
    assert "cannot be written (DEST=/--dest): it is the deploy net" in err
    assert (folder / "deploy.prototxt").read_bytes() == before


# --- truncated weights to score and infer --------------------------------------------------
@pytest.mark.fault("clear error", guards="unclear")
def test_score_of_weights_cut_inside_a_layer_names_the_byte(voc, weights, tmp_path):
    at = layer_end(weights, "score_fr") - 100
    short = cut(weights, at, tmp_path / "short.caffemodel")
    done = run("evaluation.score", "--net", "voc-fcn32s", "--weights", str(short), "--data",
               str(voc), "--width", WIDTH)
    err = one_line(done, 1)
    assert f"the file is cut off at byte {at}: the layer 'score_fr' (from byte" in err
    assert "needs 100 more bytes" in err and "copy or fetch it again" in err


@pytest.mark.fault("clear error", guards="unclear")
def test_score_of_weights_cut_between_two_layers_names_the_last_layer(voc, weights, tmp_path):
    short = cut(weights, layer_end(weights, "fc7"), tmp_path / "short.caffemodel")
    done = run("evaluation.score", "--net", "voc-fcn32s", "--weights", str(short), "--data",
               str(voc), "--width", WIDTH)
    err = one_line(done, 1)
    assert "(score_fr, upscore), all after layer 'fc7', where the file ends" in err
    assert "cut short between two layers" in err and "another net" not in err


@pytest.mark.fault("clear error", guards="unclear")
def test_infer_of_weights_cut_between_two_layers_says_so(weights, tmp_path):
    import numpy as np
    from PIL import Image

    picture = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(picture)
    short = cut(weights, layer_end(weights, "fc6"), tmp_path / "short.caffemodel")
    done = run("evaluation.infer", str(picture), "--net", "voc-fcn32s", "--weights",
               str(short), "--out", str(tmp_path / "out"), "--width", WIDTH)
    err = one_line(done, 1)
    assert "all after layer 'fc6', where the file ends" in err


@pytest.mark.fault("clear error", guards="unclear")
def test_a_caffemodel_cut_inside_a_layer_names_that_layer(weights, tmp_path):
    at = layer_end(weights, "fc6") + 50
    with pytest.raises(CaffeFileError, match=rf"cut off at byte {at}: the layer 'fc7' \(from "
                                             r"byte \d+, after layer 'relu6'\) needs \d+ more"):
        read_caffemodel(cut(weights, at, tmp_path / "short.caffemodel"))


# --- weights of another WIDTH --------------------------------------------------------------
@pytest.mark.fault("clear error", guards="unclear")
def test_score_at_another_width_says_which_width_the_weights_look_trained_at(voc, weights):
    done = run("evaluation.score", "--net", "voc-fcn32s", "--weights", str(weights), "--data",
               str(voc), "--width", "0.125")
    err = one_line(done, 1)
    assert "layer conv1_1 blob 0 has shape (4, 3, 3, 3), the net expects (8, 3, 3, 3)" in err
    assert "the weights look trained at WIDTH=0.0625, the net is built at WIDTH=0.125" in err
    assert "wrong prototxt" not in err


@pytest.mark.fault("clear error", guards="unclear")
def test_a_finished_run_at_another_width_names_its_recorded_width(voc, weights, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(weights.parent, run_dir)
    final = run_dir / "final.caffemodel"
    record_result(run_dir, [final], {"experiment": "voc-fcn32s", "width": float(WIDTH)})
    done = run("evaluation.score", "--net", "voc-fcn32s", "--weights", str(final), "--data",
               str(voc), "--width", "1")
    err = one_line(done, 1)
    assert f"the run folder {run_dir} was trained at WIDTH=0.0625" in err
    assert "give WIDTH=0.0625" in err
