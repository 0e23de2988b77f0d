"""bench/fast_im2col.cpp gives Caffe's im2col/col2im results bit for bit, alone and inside
a Caffe forward (LD_PRELOAD), so the lever it measures costs nothing in exactness."""

import os
import subprocess
import sys

import numpy as np
import pytest

from bench import flags
from bench.probe import caffe_root
from bench.run import REPO

SHAPES = [  # channels, height, width, kernel, pad, stride
    (3, 20, 23, 3, 100, 1),   # conv1_1's pad 100
    (5, 17, 13, 3, 1, 1),     # 'same' 3×3
    (4, 37, 41, 11, 2, 4),    # AlexNet conv1-like stride 4
    (3, 9, 10, 4, 0, 2),      # deconvolution-like kernel 2×stride
    (2, 7, 6, 7, 0, 1),       # fc6: kernel as large as the map
]


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    return flags.build_probes(tmp_path_factory.mktemp("probes"), caffe_root(),
                              only=("caffe", "fast_im2col"))


@pytest.mark.parametrize("shape", SHAPES)
def test_fast_column_copy_is_bit_exact(probes, shape):
    hashes = {}
    for name, probe in probes.items():
        done = subprocess.run([str(probe), *map(str, shape), "1"], capture_output=True,
                              text=True, check=True, timeout=60)
        hashes[name] = done.stdout.split('"hash": "')[1][:32]
    assert hashes["caffe"] == hashes["fast_im2col"]


def test_preloaded_caffe_forward_is_bit_exact(tmp_path):
    libraries = flags.build_preload(tmp_path, caffe_root())
    preload = ":".join(str(libraries[k]) for k in ("fast-im2col", "fast-pool"))
    outputs = []
    bindings = tmp_path / "bindings"
    for extra in ({}, {"LD_PRELOAD": str(preload), "FCN_IM2COL_THREADS": "2",
                       "LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(bindings)}):
        save = tmp_path / f"out{len(outputs)}.npy"
        subprocess.run([sys.executable, "-m", "bench.probe", "--experiment", "voc-fcn8s",
                        "--size", "61", "70", "--width", "0.0625", "--repeats", "1",
                        "--sgemm-n", "64", "--save", str(save)],
                       cwd=REPO, env=dict(os.environ, **extra), check=True, timeout=120,
                       capture_output=True)
        outputs.append(np.load(save))
    assert np.abs(outputs[0]).max() > 0
    assert np.array_equal(outputs[0], outputs[1])
    # libcaffe's calls really went to the preloaded copy
    log = "".join(p.read_text() for p in tmp_path.glob("bindings.*"))
    assert "libcaffe.so" in log and "libfcn_fast_im2col.so" in log
    for library, symbol in (("libfcn_fast_im2col.so", "im2col_cpuIf"),
                            ("libfcn_fast_pool.so", "PoolingLayerIfE11Forward_cpu")):
        assert any("libcaffe.so" in line and library in line and symbol in line
                   for line in log.splitlines()), symbol


POOLING_SCRIPT = """
import sys
import caffe, numpy as np
from caffe import layers as L, params as P
n = caffe.NetSpec()
n.data = L.Input(shape=dict(dim=[2, 8, 130, 141]))  # large enough for threads
n.max = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_size=3, stride=2, pad=1)
n.max2, n.mask = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_size=2, stride=2, ntop=2)
n.ave = L.Pooling(n.data, pool=P.Pooling.AVE, kernel_size=3, stride=2)
open(sys.argv[1] + ".prototxt", "w").write(str(n.to_proto()))
net = caffe.Net(sys.argv[1] + ".prototxt", caffe.TEST)
data = np.random.default_rng(0).standard_normal((2, 8, 130, 141)).astype(np.float32)
data[0, 0, :4, :4] = 1.0  # ties: the first maximum's index must win
out = net.forward(data=data)
np.savez(sys.argv[1], **{k: v.copy() for k, v in out.items()})
"""


def test_threaded_pooling_matches_caffe_for_every_method(tmp_path):
    libraries = flags.build_preload(tmp_path, caffe_root())
    results = []
    for extra in ({}, {"LD_PRELOAD": str(libraries["fast-pool"]), "FCN_POOL_THREADS": "2"}):
        stem = tmp_path / f"pool{len(results)}"
        subprocess.run([sys.executable, "-c", POOLING_SCRIPT, str(stem)], cwd=REPO,
                       env=dict(os.environ, GLOG_minloglevel="2", **extra), check=True,
                       timeout=120, capture_output=True)
        results.append(np.load(f"{stem}.npz"))
    assert set(results[0].files) == {"max", "max2", "mask", "ave"}
    for name in results[0].files:
        assert np.array_equal(results[0][name], results[1][name]), name


def test_column_shapes_follow_the_net(tmp_path):
    from bench.models import deploy_net

    net, net_param = deploy_net("voc-fcn8s", (64, 64), tmp_path, width=0.0625)
    shapes = {name: (kind, shape) for name, kind, shape in flags.column_shapes(net, net_param)}
    assert shapes["conv1_1"] == ("im2col", (3, 64, 64, 3, 100, 1))
    assert shapes["upscore8"][0] == "col2im" and shapes["upscore8"][1][3:] == (16, 0, 8)
    assert "fc7" not in shapes and "score_fr" not in shapes  # 1×1: no column copy
