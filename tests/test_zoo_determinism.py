"""Two CPU training runs from the same weights and seed give caffemodels with the same sha1.

See zoo/README.md (Determinism) for what breaks bit-exactness and how CPU runs stay exact.
"""

import hashlib

import caffe

from zoo.caffemodel import read_caffemodel
from zoo.fixtures import random_caffemodel, write_solver, write_tiny_deploy, write_tiny_train

ITERATIONS = 4


def _train(tmp_path, init, *, seed, tag):
    train = write_tiny_train(tmp_path / "train.prototxt", width=6, size=(16, 16))
    solver_path = write_solver(tmp_path / f"solver-{tag}.prototxt", train, seed=seed,
                               base_lr=1e-3)
    solver = caffe.SGDSolver(str(solver_path))
    solver.net.copy_from(str(init))
    solver.step(ITERATIONS)
    out = tmp_path / f"{tag}.caffemodel"
    solver.net.save(str(out))
    return out


def _sha1(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_same_weights_and_seed_same_sha1(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt", width=6)
    init = random_caffemodel(deploy, tmp_path / "init.caffemodel", seed=0)
    first = _train(tmp_path, init, seed=1337, tag="run1")
    second = _train(tmp_path, init, seed=1337, tag="run2")
    assert _sha1(first) == _sha1(second)
    # the runs did learn, and the seed reaches the random parts (DummyData, Dropout)
    before, after = read_caffemodel(init), read_caffemodel(first)
    assert bytes(before["conv1"].blobs[0].payload) != bytes(after["conv1"].blobs[0].payload)
    assert bytes(before["upscore"].blobs[0].payload) == bytes(after["upscore"].blobs[0].payload)
    other_seed = _train(tmp_path, init, seed=1338, tag="run3")
    assert _sha1(other_seed) != _sha1(first)
