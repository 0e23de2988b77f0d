"""The Caffe we built from source: pycaffe imports, has FCN's layers, learns, and saves exactly."""

import hashlib
import os
import subprocess
import textwrap
from pathlib import Path

import caffe
import numpy as np
from caffe import layers as L
from caffe.proto import caffe_pb2

REPO = Path(__file__).resolve().parents[1]
FCN_LAYERS = {"Python", "Crop", "Deconvolution", "Scale", "Eltwise", "SoftmaxWithLoss"}

# A Python data layer written here, so the test needs nothing but pycaffe: a fixed random
# regression problem (y = x·w_true) served one batch at a time.
PY_LAYER = textwrap.dedent(
    """
    import ast
    import numpy as np
    import caffe

    class RegressionData(caffe.Layer):
        def setup(self, bottom, top):
            params = ast.literal_eval(self.param_str)
            rng = np.random.RandomState(params["seed"])
            self.x = rng.randn(64, 8).astype(np.float32)
            self.y = (self.x @ rng.randn(8, 1)).astype(np.float32)
            self.i = 0

        def reshape(self, bottom, top):
            top[0].reshape(16, 8)
            top[1].reshape(16, 1)

        def forward(self, bottom, top):
            rows = slice(self.i, self.i + 16)
            top[0].data[...] = self.x[rows]
            top[1].data[...] = self.y[rows]
            self.i = (self.i + 16) % 64

        def backward(self, top, propagate_down, bottom):
            pass
    """
)


def test_pycaffe_imports_from_the_source_build():
    root = Path((REPO / ".venv" / "caffe-root").read_text().strip())
    assert Path(caffe.__file__).resolve().is_relative_to(root.resolve())
    assert (root / ".complete").exists()


def test_layer_registry_has_what_fcn_needs():
    assert FCN_LAYERS <= set(caffe.layer_type_list())


def test_python_layer_trains_with_sgd(tmp_path, monkeypatch):
    (tmp_path / "regression_layer.py").write_text(PY_LAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    n = caffe.NetSpec()
    n.x, n.y = L.Python(module="regression_layer", layer="RegressionData",
                        param_str=repr({"seed": 3}), ntop=2)
    n.pred = L.InnerProduct(n.x, num_output=1, weight_filler=dict(type="constant", value=0))
    n.loss = L.EuclideanLoss(n.pred, n.y)
    (tmp_path / "net.prototxt").write_text(str(n.to_proto()))

    solver = caffe_pb2.SolverParameter()
    solver.train_net = str(tmp_path / "net.prototxt")
    solver.base_lr, solver.momentum, solver.lr_policy = 0.05, 0.9, "fixed"
    solver.max_iter, solver.display, solver.random_seed = 100, 0, 1
    solver.snapshot_prefix = str(tmp_path / "snap")
    (tmp_path / "solver.prototxt").write_text(str(solver))

    sgd = caffe.SGDSolver(str(tmp_path / "solver.prototxt"))
    sgd.step(1)
    first = float(sgd.net.blobs["loss"].data)
    sgd.step(40)
    last = float(sgd.net.blobs["loss"].data)
    assert first > 0.5
    assert last < 0.01 * first


def test_caffemodel_round_trips_bit_for_bit(tmp_path):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 9, 9]))
    n.conv = L.Convolution(n.data, num_output=4, kernel_size=3,
                           weight_filler=dict(type="gaussian", std=1.0),
                           bias_filler=dict(type="gaussian", std=1.0))
    n.up = L.Deconvolution(n.conv, convolution_param=dict(num_output=4, kernel_size=4, stride=2,
                                                          weight_filler=dict(type="xavier")))
    proto = tmp_path / "net.prototxt"
    proto.write_text(str(n.to_proto()))
    caffe.set_random_seed(7)
    net = caffe.Net(str(proto), caffe.TEST)
    first, second = tmp_path / "a.caffemodel", tmp_path / "b.caffemodel"
    net.save(str(first))

    again = caffe.Net(str(proto), caffe.TEST, weights=str(first))
    for name, params in net.params.items():
        for a, b in zip(params, again.params[name]):
            assert a.data.tobytes() == b.data.tobytes()
    again.save(str(second))
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    assert digest[0] == digest[1]
    assert np.any(net.params["conv"][0].data != 0)


def test_caffe_tool_times_a_net(tmp_path):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 16, 16]))
    n.conv = L.Convolution(n.data, num_output=2, kernel_size=3)
    (tmp_path / "net.prototxt").write_text(str(n.to_proto()))
    out = subprocess.run([str(REPO / ".venv/bin/caffe"), "time", "-model",
                          str(tmp_path / "net.prototxt"), "-iterations", "2"],
                         capture_output=True, text=True,
                         env={**os.environ, "GLOG_minloglevel": "0", "GLOG_logtostderr": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Average Forward pass" in out.stderr


def _build_sh(*args, env=None):
    return subprocess.run(["bash", str(REPO / "caffe-recipe/build.sh"), "--venv",
                           str(REPO / ".venv"), *args], capture_output=True, text=True, env=env)


def test_build_recipe_is_keyed_and_cached():
    out = _build_sh("--print-dir")
    assert out.returncode == 0, out.stderr
    entry = Path(out.stdout.strip())
    assert entry.name.startswith("caffe-cpu-") and len(entry.name) == len("caffe-cpu-") + 16
    assert (entry / ".complete").exists()
    assert Path((REPO / ".venv" / "caffe-root").read_text().strip()) == entry


def test_bad_source_checksum_refuses_and_half_build_is_discarded(tmp_path):
    recipe = dict(line.split("=", 1) for line in
                  (REPO / "caffe-recipe/recipe.env").read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / recipe["ORIG_TARBALL"]).write_bytes(b"not the caffe source")
    (downloads / recipe["DEBIAN_TARBALL"]).write_bytes(b"not the debian patches")
    env = {**os.environ, "CAFFE_CACHE": str(tmp_path)}

    first = _build_sh(env=env)
    assert first.returncode != 0
    assert "checksum mismatch" in first.stderr and recipe["ORIG_TARBALL"] in first.stderr
    assert "Refusing to build" in first.stderr

    second = _build_sh(env=env)  # the first run left an entry without a .complete marker
    assert second.returncode != 0
    assert "unfinished build" in second.stderr
    assert not list(tmp_path.glob("caffe-cpu-*/.complete"))
