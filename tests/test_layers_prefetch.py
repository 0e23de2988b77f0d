"""Prefetching (thread or forked process) hands Caffe exactly what a synchronous load
does, and skip(n) lands where n forwards would."""

from pathlib import Path

import numpy as np
import pytest

from bench.data_layers import data_layer_net
from core.catalog import DATASETS
from data.synthetic import make_dataset

VOC_MEAN = DATASETS["voc"].means["data"]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=6, n_val=3,
                        size=(32, 40), size_jitter=8, seed=11)


def sbdd_net(root, folder, **extra):
    folder.mkdir(exist_ok=True)
    params = {"sbdd_dir": f"{root}/sbdd/dataset", "seed": 1337, "split": "train",
              "mean": VOC_MEAN, **extra}
    return data_layer_net(folder / "n.prototxt", "voc_layers", "SBDDSegDataLayer",
                          repr(params), ["data", "label"], phase="train")


def run(net, steps):
    out = []
    for _ in range(steps):
        net.forward()
        out.append((net.blobs["data"].data.copy(), net.blobs["label"].data.copy()))
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for (data_a, label_a), (data_b, label_b) in zip(a, b):
        assert data_a.shape == data_b.shape
        np.testing.assert_array_equal(data_a, data_b)
        np.testing.assert_array_equal(label_a, label_b)


@pytest.mark.parametrize("mode", [True, "thread", "process"])
def test_prefetch_gives_the_tops_of_a_synchronous_load(root, tmp_path, mode):
    extra = dict(mirror=True, jitter=6)
    reference = run(sbdd_net(root, tmp_path / "off", prefetch=False, **extra), 10)
    prefetched = run(sbdd_net(root, tmp_path / "on", prefetch=mode, **extra), 10)
    assert_same(reference, prefetched)
    assert len({d.shape for d, _ in reference}) > 1  # whole images of several sizes


def test_prefetch_is_on_by_default_in_a_thread(root, tmp_path):
    net = sbdd_net(root, tmp_path / "n")
    assert type(net.layers[0].prefetch).__name__ == "ThreadPrefetch"
    net.forward()
    assert net.layers[0].prefetch.pending is not None  # the next example is on its way
    assert net.layers[0].waited_s > 0  # the first example was decoded while Caffe waited


def test_process_worker_stops_on_close(root, tmp_path):
    # pycaffe keeps Python layers alive (C++ and Python hold each other), so the worker
    # is stopped by close(), which also runs at exit
    prefetch = sbdd_net(root, tmp_path / "a", prefetch="process").layers[0].prefetch
    assert prefetch.worker.is_alive()
    prefetch.close()
    prefetch.worker.join(timeout=10)
    assert not prefetch.worker.is_alive()


def test_process_worker_ends_when_its_parent_dies_abruptly(root, tmp_path):
    import os
    import subprocess
    import sys
    import time

    script = f"""
import os
os.environ["GLOG_minloglevel"] = "2"
from pathlib import Path
from bench.data_layers import data_layer_net
params = {{"sbdd_dir": {str(root / "sbdd/dataset")!r}, "seed": 1, "split": "train",
          "mean": (104.0, 117.0, 123.0), "prefetch": "process"}}
net = data_layer_net(Path({str(tmp_path / "n.prototxt")!r}), "voc_layers",
                     "SBDDSegDataLayer", repr(params), ["data", "label"])
net.forward()
print(net.layers[0].prefetch.worker.pid, flush=True)
os._exit(0)  # no clean-up at all
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)
    pid = int(out.stdout.split()[-1])
    deadline = time.time() + 15
    while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
        status = open(f"/proc/{pid}/status").read() if os.path.exists(f"/proc/{pid}") else ""
        if "zombie" in status:
            break
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in status


@pytest.mark.parametrize("mode", [False, "process"])
def test_skip_lands_where_forwards_would(root, tmp_path, mode):
    extra = dict(prefetch=mode, mirror=True)
    straight = run(sbdd_net(root, tmp_path / "a", **extra), 9)
    resumed = sbdd_net(root, tmp_path / "b", **extra)
    resumed.layers[0].skip(6)
    assert_same(straight[6:], run(resumed, 3))


@pytest.mark.parametrize("name,writer,split", [("nyud", "nyud", "trainval"),
                                               ("siftflow", "siftflow", "test"),
                                               ("pascalcontext", "pascalcontext", "train")])
def test_every_dataset_gives_the_same_tops_prefetched_or_not(tmp_path, name, writer, split):
    from data.registry import layer_params, module_and_class, top_names

    root = make_dataset(writer, tmp_path / "data", n_train=3, n_val=2, size=(24, 32),
                        size_jitter=4, seed=1)
    module, layer = module_and_class(name)
    runs = []
    for mode in (False, "process"):
        params = layer_params(name, root, split, prefetch=mode)
        names = top_names(name, params)
        net = data_layer_net(tmp_path / f"{mode}.prototxt", module, layer, repr(params), names)
        steps = []
        for _ in range(5):
            net.forward()
            steps.append([net.blobs[t].data.copy() for t in names])
        runs.append(steps)
    for off, on in zip(*runs):
        for a, b in zip(off, on):
            assert a.shape == b.shape and a.tobytes() == b.tobytes()
