"""The generated PyTorch module needs only torch: it loads and runs where Caffe (and this
project) cannot be imported, and gives Caffe's scores there."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from export import verify
from export.caffe_net import forward
from export.torch_export import export
from nets.experiments import build
from testkit.optional import require_modules
from testkit.random_weights import random_caffemodel

require_modules("torch")

# A fresh interpreter in which importing caffe, or anything of this project, fails.
SCRIPT = """
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("caffe", "export", "nets", "surgery", "evaluation",
                                  "training", "analyses", "zoo"):
            raise ImportError(f"{name} is blocked here")
sys.meta_path.insert(0, Blocked())
try:
    import caffe
    sys.exit("caffe was importable")
except ImportError:
    pass
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
import siftflow_fcn16s as generated
model = generated.load()
with torch.no_grad():
    sem, geo = model(torch.from_numpy(np.load(sys.argv[2])))
np.save(sys.argv[3], sem.numpy()); np.save(sys.argv[4], geo.numpy())
print(generated.SiftflowFcn16s.outputs)
"""


def test_the_module_runs_without_caffe_and_matches_it(tmp_path):
    name, width = "siftflow-fcn16s", 1 / 16   # two heads: a tuple of two score maps
    weights = random_caffemodel(build(name, "deploy", width=width), tmp_path / "w.caffemodel")
    caffe_net, module = export(name, weights, tmp_path / "out", width)
    inputs = verify.net_inputs(caffe_net.graph.inputs, (41, 29))
    reference = forward(caffe_net.net, inputs)
    np.save(tmp_path / "data.npy", inputs["data"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(module.parent), str(tmp_path / "data.npy"),
         str(tmp_path / "sem.npy"), str(tmp_path / "geo.npy")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('score_sem', 'score_geo')"
    found = verify.compare((41, 29), reference, {
        "score_sem": np.load(tmp_path / "sem.npy"), "score_geo": np.load(tmp_path / "geo.npy")})
    assert verify.failures(found) == []
    assert {c.blob: c.shape for c in found} == {"score_sem": (1, 33, 41, 29),
                                                "score_geo": (1, 3, 41, 29)}
