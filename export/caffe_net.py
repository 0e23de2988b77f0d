"""The Caffe side of an export: an experiment's deploy net with its weights, checked first.

Caffe aborts the process (a glog CHECK) on a caffemodel it cannot parse or whose blob shapes
do not fit the net; core.caffe_files reads the file and compares it with the net before
Caffe copies it in, so a wrong file is one clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.caffe_files import as_file, check_fits, ends_before, read_caffemodel, uncovered_layers
from core.manifest import check_recorded_width
from export.graph import ExportError, Graph, read_graph


@dataclass
class CaffeNet:
    name: str                        # experiment name
    width: float
    net_param: object                # caffe_pb2.NetParameter of the deploy net
    net: object                      # caffe.Net in TEST phase, weights loaded
    graph: Graph
    weights: str = ""                # the caffemodel's file name


def deploy_param(name: str, width: float):
    """The experiment's deploy NetParameter (Input layers, no dropout, no loss)."""
    # nets.experiments imports Caffe: loaded on use, so this module imports without it
    from nets.experiments import EXPERIMENTS, build
    if name not in EXPERIMENTS:
        raise ExportError(f"unknown NET {name!r}; experiments: {', '.join(EXPERIMENTS)}")
    if not width > 0:
        raise ExportError(f"WIDTH must be positive, got {width}")
    return build(name, "deploy", width=width)


def load(name: str, weights: Path | str, width: float = 1.0) -> CaffeNet:
    """The deploy net of experiment `name` at `width` with `weights`, translated to a Graph.
    The caffemodel is read and checked against the net first (core.caffe_files): Caffe
    would abort on blobs that do not fit, and keep initial values where layers are missing."""
    # Caffe loads on use, so this module imports without it
    import caffe
    net_param = deploy_param(name, width)
    weights = Path(weights)
    layers = read_caffemodel(weights)
    label = f"{name} at WIDTH={width:g}"
    check_recorded_width(weights, width)
    missing = uncovered_layers(net_param, layers)
    if missing:
        names = [n for n, _ in missing]
        last = ends_before(layers, [layer.name for layer in net_param.layer], names)
        why = (f"the file ends after layer {last!r}: cut short between two layers (an "
               f"interrupted download or copy); copy or fetch it again" if last
               else "Is NET right?")
        raise ExportError(f"{weights}: no weights for {label}'s layers "
                          f"{', '.join(names)}; an export would carry Caffe's "
                          f"initial values there. {why}")
    with as_file(net_param) as deploy:
        net = caffe.Net(deploy, caffe.TEST)
    check_fits(net, layers, str(weights), label, width=width)
    net.copy_from(str(weights))
    loaded = from_net(name, width, net_param, net)
    loaded.weights = weights.name
    return loaded


def from_net(name: str, width: float, net_param, net) -> CaffeNet:
    """A loaded caffe.Net of `net_param` with its Graph (the parameters as they are now)."""
    params = {layer: [b.data.copy() for b in blobs] for layer, blobs in net.params.items()}
    return CaffeNet(name, width, net_param, net, read_graph(net_param, params,
                                                            list(net.outputs)))


def forward(net, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Caffe's forward pass on N×C×H×W inputs; copies of the output blobs."""
    for blob, value in inputs.items():
        net.blobs[blob].reshape(*value.shape)
        net.blobs[blob].data[...] = value
    net.reshape()
    net.forward()
    return {blob: net.blobs[blob].data.copy() for blob in net.outputs}
