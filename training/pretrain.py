"""Miniature "ImageNet pre-training", the one code path the demo and the paper's miniature
share: a width-reduced classifier of a real topology (nets.classifiers.CLASSIFIERS; VGG16
with fc6/fc7/fc8 InnerProduct) trained briefly on whole-image classification of the same
kind of pictures the segmentation set has, then saved with its deploy definition so
`surgery.convert` turns it into FCN base weights exactly as `make vgg16-fcn` does.
Deterministic: the same arguments give the same caffemodel, byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

import caffe
import numpy as np
from caffe import layers as L
from caffe.proto import caffe_pb2
from PIL import Image

from core.catalog import DATASETS
from core.errors import InputError
from data.synthetic import make_classification
from nets.classifiers import CLASSIFIERS
from nets.prototxt import to_prototxt
from surgery.convert import convolutionalize
from surgery.fetch import CLASSIFIERS as SOURCES
from surgery.transplant import Report

# The classifier's pre-training subtracts VOC's mean in float32 (a stand-in for ImageNet
# pre-training, which is not the data layers' arithmetic); kept so the demo's bits stay.
MEAN_BGR = DATASETS["voc"].mean().astype(np.float32)


# Each backbone's real classifier in surgery.fetch, whose `make …-fcn` surgery fcn_base repeats.
SOURCE_OF = {"vgg16": "vgg16", "alexnet": "caffenet", "googlenet": "googlenet"}


def fcn_base(deploy: Path, caffemodel: Path, backbone: str, out: Path) -> Report:
    """FCN base weights from a miniature classifier by the surgery `make <backbone>-fcn`
    applies to the real one: the same layers dropped (and the deploy net's 'prob')."""
    drop = (*SOURCES[SOURCE_OF[backbone]].drop, "prob")
    return convolutionalize(deploy, caffemodel, out, drop=drop)


def load_batch(paths: list[Path]) -> np.ndarray:
    images = [np.asarray(Image.open(p), np.float32)[:, :, ::-1] - MEAN_BGR for p in paths]
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))


def pretrain(out_dir: Path, *, width: float, classes: int, images: int, iterations: int,
             batch: int = 16, size: int = 224, lr: float = 1e-4, seed: int = 0,
             backbone: str = "vgg16", centred: bool = False) -> dict:
    """Train the classifier; returns paths of its deploy prototxt, its caffemodel before
    and after training, and the training accuracy at the end. `centred`: object-centred
    pictures (data.synthetic.make_classification), the paper's miniature's."""
    if backbone not in CLASSIFIERS:
        raise InputError(f"no miniature classifier for backbone {backbone!r}; choose from "
                         f"{', '.join(CLASSIFIERS)}")
    classifier = CLASSIFIERS[backbone]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, labels = make_classification(out_dir / "images", images, size=(size, size),
                                        num_classes=classes, seed=seed, centred=centred)
    x = load_batch(paths)
    y = np.asarray(labels, np.float32).reshape(-1, 1, 1, 1)

    def memory_data():
        return L.MemoryData(batch_size=batch, channels=3, height=size, width=size, ntop=2)

    train = out_dir / "train.prototxt"
    train.write_text(to_prototxt(classifier(width, classes, size, data=memory_data)))
    deploy = out_dir / "deploy.prototxt"
    deploy.write_text(to_prototxt(classifier(width, classes, size)))
    solver = caffe_pb2.SolverParameter()
    solver.train_net = str(train)
    # Adam: a 16-layer net from scratch, no batch norm, raw 0-255 pixels; plain SGD either
    # diverges or stalls at chance in a few hundred steps, Adam learns in them
    solver.type, solver.momentum2, solver.delta = "Adam", 0.999, 1e-8
    solver.base_lr, solver.momentum, solver.weight_decay = lr, 0.9, 5e-4
    solver.lr_policy, solver.display, solver.max_iter = "fixed", 0, iterations
    solver.random_seed, solver.snapshot_prefix = seed, str(out_dir / "snapshot")
    (out_dir / "solver.prototxt").write_text(str(solver))

    caffe.set_random_seed(seed)
    sgd = caffe.get_solver(str(out_dir / "solver.prototxt"))
    # the same net before any training: the no-transfer control starts from it
    untrained = out_dir / "classifier-untrained.caffemodel"
    sgd.net.save(str(untrained))
    usable = len(x) - len(x) % batch
    sgd.net.set_input_arrays(x[:usable], y[:usable])
    losses = []
    for it in range(iterations):
        sgd.step(1)
        losses.append(float(sgd.net.blobs["loss"].data))
        if (it + 1) % max(iterations // 10, 1) == 0:
            print(f"  pretrain {it + 1}/{iterations}: loss {np.mean(losses[-10:]):.3f}",
                  file=sys.stderr)
    weights = out_dir / "classifier.caffemodel"
    sgd.net.save(str(weights))
    net = caffe.Net(str(deploy), caffe.TEST, weights=str(weights))
    correct = 0
    for start in range(0, usable, batch):
        chunk = x[start:start + batch]
        net.blobs["data"].reshape(*chunk.shape)
        net.blobs["data"].data[...] = chunk
        correct += int((net.forward()["prob"].argmax(1) == y[start:start + batch, 0, 0, 0]).sum())
    return {"deploy": deploy, "weights": weights, "untrained": untrained,
            "accuracy": correct / usable,
            "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:]))}
