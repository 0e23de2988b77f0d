"""The recipe's speed and memory patches (caffe-recipe/patches/0002–0004) change no bits.

- 0002, the column copy: the build's im2col_cpu/col2im_cpu against Caffe's original
  im2col.cpp (recovered by reversing the patch, and 0007 before it, compiled into the same
  probe; checked byte for byte against the source tarball) on every FCN-8s layer shape,
  forward (im2col) and backward (col2im), hashes compared.
- 0003, threaded MAX pooling: every FCN-8s pooling shape (full width) against a numpy
  reference of Caffe's loop — values, the argmax mask, and the gradient it routes.
- 0004, one column buffer per thread: a training net and a test net sharing its weights,
  run on whole pictures of changing sizes in an interleaved order, give the same outputs
  and gradients as each computation alone in a fresh process.
- And when the unpatched build of the same recipe is cached (`make caffe-unpatched`), a
  whole FCN-8s forward and backward compared with it bit for bit.
"""

import json
import os
import subprocess
import sys
import tarfile

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe import params as P

from bench import builds, flags
from bench.models import deploy_net
from bench.probe import caffe_root
from bench.run import REPO


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    return flags.build_probes(tmp_path_factory.mktemp("probes"), caffe_root(),
                              only=(flags.UNPATCHED, flags.PATCHED))


def test_the_reference_column_copy_is_caffes_own_file(tmp_path):
    """The im2col.cpp the column-copy probe compares against (0002 taken back out of the
    build's source, after 0007, which adds to it inside 0002's hunks) is byte for byte the
    one in Caffe's source tarball (Debian's patches leave that file alone)."""
    recipe = dict(line.split("=", 1) for line in
                  (REPO / "caffe-recipe/recipe.env").read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    tarball = caffe_root().parent / "downloads" / recipe["ORIG_TARBALL"]
    if not tarball.exists():
        pytest.skip(f"{tarball}: not downloaded (a build from the git alternative)")
    with tarfile.open(tarball) as source:
        original = source.extractfile("src/caffe/util/im2col.cpp").read()
    recovered = builds.reversed_source(caffe_root(), "src/caffe/util/im2col.cpp",
                                       builds.COLUMN_PATCH, tmp_path)
    assert recovered.read_bytes() == original


def fcn8s_column_shapes(tmp_path):
    """Every FCN-8s convolution/deconvolution shape at full width (a small picture keeps
    the maps, padded by 100, a few hundred pixels wide: big enough for threads)."""
    net, net_param = deploy_net("voc-fcn8s", (36, 52), tmp_path, width=1.0)
    return flags.column_shapes(net, net_param)


def test_column_copy_is_bit_exact_on_every_fcn8s_shape(probes, tmp_path):
    shapes = fcn8s_column_shapes(tmp_path)
    assert len(shapes) >= 17  # 15 3×3 convolutions, fc6, 3 deconvolutions
    for name, _, shape in shapes:
        hashes = {}
        for variant, probe in probes.items():
            done = subprocess.run([str(probe), *map(str, shape), "1"], capture_output=True,
                                  text=True, check=True, timeout=120)
            hashes[variant] = json.loads(done.stdout)["hash"]  # columns, then col2im image
        assert hashes[flags.UNPATCHED] == hashes[flags.PATCHED], (name, shape)


def test_column_shapes_follow_the_net(tmp_path):
    net, net_param = deploy_net("voc-fcn8s", (64, 64), tmp_path, width=0.0625)
    shapes = {name: (kind, shape) for name, kind, shape in flags.column_shapes(net, net_param)}
    assert shapes["conv1_1"] == ("im2col", (3, 64, 64, 3, 100, 1))
    assert shapes["upscore8"][0] == "col2im" and shapes["upscore8"][1][3:] == (16, 0, 8)
    assert "fc7" not in shapes and "score_fr" not in shapes  # 1×1: no column copy


def reference_max_pool(x: np.ndarray, kernel: int, stride: int):
    """Caffe's MAX pooling (ceil mode, no padding): values and in-plane argmax, the first
    maximum in row-major window order winning ties."""
    n, c, h, w = x.shape
    oh, ow = -(-(h - kernel) // stride) + 1, -(-(w - kernel) // stride) + 1
    top = np.full((n, c, oh, ow), -np.finfo(np.float32).max, np.float32)
    arg = np.full((n, c, oh, ow), -1, np.int64)
    for ki in range(kernel):        # the window in Caffe's order: row, then column
        for kj in range(kernel):
            rows = np.arange(oh) * stride + ki
            cols = np.arange(ow) * stride + kj
            ok_r, ok_c = rows < h, cols < w
            vals = np.full((n, c, oh, ow), -np.inf, np.float32)
            vals[:, :, ok_r[:, None] & ok_c[None, :]] = \
                x[:, :, rows[ok_r]][:, :, :, cols[ok_c]].reshape(n, c, -1)
            better = vals > top
            top = np.where(better, vals, top)
            arg = np.where(better, (rows[:, None] * w + cols[None, :])[None, None], arg)
    return top, arg


def test_threaded_max_pooling_is_bit_exact_on_fcn8s_shapes(tmp_path):
    net, _ = deploy_net("voc-fcn8s", (36, 52), tmp_path, width=1.0)
    shapes = [net.blobs[net.bottom_names[name][0]].data.shape
              for name in net._layer_names if net.layer_dict[name].type == "Pooling"]
    assert len(shapes) == 5
    rng = np.random.default_rng(0)
    for shape in shapes:
        n = caffe.NetSpec()
        n.data = L.Input(shape=dict(dim=list(shape)))
        n.pool = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_size=2, stride=2)
        n.pool2, n.mask = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_size=2, stride=2,
                                    ntop=2)
        proto = n.to_proto()
        proto.force_backward = True  # the Input needs no gradient otherwise
        path = tmp_path / "pool.prototxt"
        path.write_text(str(proto))
        pool = caffe.Net(str(path), caffe.TRAIN)
        x = np.floor(rng.standard_normal(shape, dtype=np.float32) * 2)  # many ties
        pool.blobs["data"].data[...] = x
        pool.forward()
        top, arg = reference_max_pool(x, 2, 2)
        assert np.array_equal(pool.blobs["pool"].data, top), shape
        assert np.array_equal(pool.blobs["mask"].data, arg.astype(np.float32)), shape
        # the layer's own argmax routes the gradient
        pool.blobs["pool"].diff[...] = 1
        pool.blobs["pool2"].diff[...] = 0
        pool.backward()
        expected = np.zeros_like(x).reshape(shape[0], shape[1], -1)
        np.put_along_axis(expected, arg.reshape(shape[0], shape[1], -1), 1.0, axis=2)
        assert np.array_equal(pool.blobs["data"].diff.reshape(expected.shape), expected)


SHARED_BUFFER = r"""
import json, sys
import numpy as np
sys.path[:0] = [sys.argv[1], sys.argv[1] + '/layers']
import caffe
from nets.experiments import build

caffe.set_mode_cpu()
train_param = build('voc-fcn8s', 'deploy', width=1 / 16)
# a training-shaped net: the deploy net plus a loss on a label input
train_param.layer[0].input_param.shape[0].dim[:] = [1, 3, 64, 64]
text = str(train_param) + '''
layer { name: "label" type: "Input" top: "label"
        input_param { shape { dim: 1 dim: 1 dim: 64 dim: 64 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss"
        loss_param { ignore_label: 255 normalize: false } }
'''
open(sys.argv[2] + '/train.prototxt', 'w').write(text)
open(sys.argv[2] + '/test.prototxt', 'w').write(str(train_param))
train = caffe.Net(sys.argv[2] + '/train.prototxt', caffe.TRAIN)
test = caffe.Net(sys.argv[2] + '/test.prototxt', caffe.TEST)
rng = np.random.default_rng(0)
for name in train.params:
    for b in train.params[name]:
        b.data[...] = rng.standard_normal(b.data.shape, dtype=np.float32) * 0.05
test.share_with(train)

def picture(h, w, seed):
    r = np.random.default_rng(seed)
    return (r.standard_normal((1, 3, h, w), dtype=np.float32) * 60,
            r.integers(0, 21, (1, 1, h, w)).astype(np.float32))

def step(h, w, seed):
    data, label = picture(h, w, seed)
    train.blobs['data'].reshape(*data.shape); train.blobs['label'].reshape(*label.shape)
    train.blobs['data'].data[...] = data; train.blobs['label'].data[...] = label
    train.reshape()
    for name in train.params:
        for b in train.params[name]:
            b.diff[...] = 0
    train.forward(); train.backward()
    return {'loss': float(train.blobs['loss'].data),
            'score': train.blobs['score'].data.copy(),
            'grads': [b.diff.copy() for n in train.params for b in train.params[n]]}

def infer(h, w, seed):
    data, _ = picture(h, w, seed)
    test.blobs['data'].reshape(*data.shape); test.blobs['data'].data[...] = data
    test.reshape()
    return {'score': test.forward()['score'].copy()}

order = json.loads(sys.argv[3])
results = {}
for kind, h, w, seed in order:
    results[f'{kind}-{h}-{w}-{seed}'] = (step if kind == 'train' else infer)(h, w, seed)
np.save(sys.argv[4], results, allow_pickle=True)
"""


def run_sequence(tmp_path, order, tag, env=None):
    out = tmp_path / f"{tag}.npy"
    work = tmp_path / tag
    work.mkdir()
    subprocess.run([sys.executable, "-c", SHARED_BUFFER, str(REPO), str(work),
                    json.dumps(order), str(out)], check=True, timeout=300,
                   capture_output=True, env={**os.environ, "GLOG_minloglevel": "2",
                                             **(env or {})})
    return np.load(out, allow_pickle=True).item()


SEQUENCE = [("train", 96, 80, 1), ("test", 250, 190, 2), ("train", 160, 224, 3),
            ("test", 64, 64, 4), ("train", 96, 80, 1), ("train", 33, 47, 5)]


def assert_same(a: dict, b: dict, key: str):
    for name in a:
        if name == "grads":
            for i, (x, y) in enumerate(zip(a[name], b[name])):
                assert np.array_equal(x, y), (key, "gradient", i)
        else:
            assert np.array_equal(a[name], b[name]), (key, name)


def test_shared_column_buffer_under_reshape(tmp_path):
    """Pictures of changing size through a train net and a test net sharing weights:
    each result equals the same computation alone in a fresh process."""
    together = run_sequence(tmp_path, SEQUENCE, "together")  # 96×80 again after others
    for i, item in enumerate(SEQUENCE):
        key = "-".join(map(str, item))
        alone = run_sequence(tmp_path, [item], f"alone{i}")
        assert_same(together[key], alone[key], key)


def test_whole_net_bit_exact_with_the_unpatched_build(tmp_path):
    unpatched = builds.unpatched_build()
    if unpatched is None:
        pytest.skip("the unpatched build of this recipe is not cached (make caffe-unpatched)")
    order = SEQUENCE[:3]
    patched = run_sequence(tmp_path, order, "patched")
    original = run_sequence(tmp_path, order, "unpatched", builds.environment(unpatched))
    for item in order:
        key = "-".join(map(str, item))
        assert_same(patched[key], original[key], key)
