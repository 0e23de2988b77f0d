"""Two CPU training runs from the same weights and seed give caffemodels with the same sha1.

See zoo/README.md (Determinism) for what breaks bit-exactness and how CPU runs stay exact.
"""

import hashlib

import caffe

from core.caffe_files import read_caffemodel
from testkit.tiny_nets import random_caffemodel, write_solver, write_tiny_deploy, write_tiny_train

ITERATIONS = 4


def _train(tmp_path, init, *, tag, solver_seed=None, process_seed=None):
    train = write_tiny_train(tmp_path / "train.prototxt", width=6, size=(16, 16))
    solver_path = write_solver(tmp_path / f"solver-{tag}.prototxt", train, seed=solver_seed,
                               base_lr=1e-3)
    if process_seed is not None:
        caffe.set_random_seed(process_seed)   # seeds Caffe's RNG before the nets are built
    solver = caffe.SGDSolver(str(solver_path))
    solver.net.copy_from(str(init))
    solver.step(ITERATIONS)
    out = tmp_path / f"{tag}.caffemodel"
    solver.net.save(str(out))
    return out


def _sha1(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _init(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt", width=6)
    return random_caffemodel(deploy, tmp_path / "init.caffemodel", seed=0)


def test_same_weights_and_solver_seed_same_sha1(tmp_path):
    init = _init(tmp_path)
    first = _train(tmp_path, init, solver_seed=1337, tag="run1")
    second = _train(tmp_path, init, solver_seed=1337, tag="run2")
    assert _sha1(first) == _sha1(second)
    # the runs did learn, and the seed reaches the random parts (DummyData, Dropout)
    before, after = read_caffemodel(init), read_caffemodel(first)
    assert bytes(before["conv1"].blobs[0].payload) != bytes(after["conv1"].blobs[0].payload)
    assert bytes(before["upscore"].blobs[0].payload) == bytes(after["upscore"].blobs[0].payload)
    other_seed = _train(tmp_path, init, solver_seed=1338, tag="run3")
    assert _sha1(other_seed) != _sha1(first)


def test_seed_set_from_python_keeps_release_solver_unchanged(tmp_path):
    """The release's solvers have no random_seed; caffe.set_random_seed does the same job."""
    init = _init(tmp_path)
    first = _train(tmp_path, init, process_seed=7, tag="py1")
    second = _train(tmp_path, init, process_seed=7, tag="py2")
    assert _sha1(first) == _sha1(second)
    unseeded = _train(tmp_path, init, tag="none")  # Caffe's RNG just continues: other masks
    assert _sha1(unseeded) != _sha1(first)
