"""The Caffe side of an export: an experiment's deploy net with its weights, checked first.

Caffe aborts the process (a glog CHECK) on a caffemodel it cannot parse or whose blob shapes
do not fit the net; the caffemodel is parsed with protobuf and compared with the net's
parameter shapes before Caffe copies it in, so a wrong file is one clear error.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.graph import ExportError, Graph, read_graph

_LEGACY_DIMS = ("num", "channels", "height", "width")


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
    from nets.experiments import EXPERIMENTS, build
    if name not in EXPERIMENTS:
        raise ExportError(f"unknown NET {name!r}; experiments: {', '.join(EXPERIMENTS)}")
    if not width > 0:
        raise ExportError(f"WIDTH must be positive, got {width}")
    return build(name, "deploy", width=width)


def caffemodel_shapes(path: Path) -> dict[str, list[tuple[int, ...]]]:
    """Blob shapes by layer name, as Caffe's CopyTrainedLayersFrom reads them (V1 too)."""
    from caffe.proto import caffe_pb2
    from google.protobuf.message import DecodeError
    if not path.is_file():
        raise ExportError(f"{path}: no such weights file")
    message = caffe_pb2.NetParameter()
    try:
        message.ParseFromString(path.read_bytes())
    except DecodeError as e:
        raise ExportError(f"{path}: not a caffemodel (protobuf says: {e}); give the "
                          ".caffemodel that training or `make zoo-fetch` wrote") from None
    shapes = {}
    for layer in list(message.layer) + list(message.layers):
        shapes[layer.name] = [
            tuple(getattr(b, d) for d in _LEGACY_DIMS) if any(b.HasField(d) for d in
                                                              _LEGACY_DIMS)
            else tuple(b.shape.dim) for b in layer.blobs]
    return shapes


def _fits(saved: tuple[int, ...], wanted: tuple[int, ...]) -> bool:
    """Caffe's shape test: equal, or a legacy 4-d shape padded with leading ones."""
    return saved == wanted or (len(saved) == 4 and len(wanted) <= 4
                               and (1,) * (4 - len(wanted)) + wanted == saved)


def check_weights_fit(net, name: str, width: float, weights: Path) -> None:
    """Every parameter layer of the net is in the caffemodel with blobs of its shapes."""
    saved = caffemodel_shapes(weights)
    absent = [layer for layer in net.params if layer not in saved]
    if len(absent) == len(net.params):
        raise ExportError(f"{weights}: none of {name}'s layers are in this caffemodel "
                          f"(it has {', '.join(list(saved)[:4]) or 'no layers'} …); is it "
                          "another net's weights?")
    if absent:
        raise ExportError(f"{weights}: no weights for {name}'s layers {', '.join(absent)}; "
                          "an export would carry Caffe's initial values there. Is NET right?")
    for layer, blobs in net.params.items():
        wanted = [tuple(b.data.shape) for b in blobs]
        if len(saved[layer]) != len(wanted) or not all(map(_fits, saved[layer], wanted)):
            shown = ", ".join("×".join(map(str, s)) for s in saved[layer]) or "no blobs"
            need = ", ".join("×".join(map(str, s)) for s in wanted)
            raise ExportError(f"{weights}: layer {layer!r} holds {shown} but {name} at "
                              f"WIDTH={width:g} needs {need}; is NET or WIDTH wrong?")


def load(name: str, weights: Path | str, width: float = 1.0) -> CaffeNet:
    """The deploy net of experiment `name` at `width` with `weights`, translated to a Graph."""
    import caffe
    net_param = deploy_param(name, width)
    weights = Path(weights)
    with tempfile.TemporaryDirectory(prefix="fcn-export-") as tmp:
        deploy = Path(tmp) / "deploy.prototxt"
        deploy.write_text(str(net_param))
        net = caffe.Net(str(deploy), caffe.TEST)
    check_weights_fit(net, name, width, weights)
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
