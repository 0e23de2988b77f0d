"""Load a net with its weights only after checking what Caffe would abort on.

Caffe's loader stops the process with a glog CHECK when a blob's shape or count does not
fit the net, or when a bottom blob is never produced. These checks run first and raise a
ZooError that names the files and the layer instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.caffemodel import Blob, read_caffemodel
from zoo.compare_prototxt import parse_prototxt
from zoo.errors import ZooError


def check_net_definition(prototxt: Path) -> None:
    """A NetParameter whose every bottom is an input or an earlier layer's top."""
    from caffe.proto import caffe_pb2
    message = parse_prototxt(prototxt)
    if not isinstance(message, caffe_pb2.NetParameter):
        raise ZooError(f"{prototxt}: a solver, not a net definition")
    if message.layers:
        return  # V1 nets are upgraded by Caffe itself; nothing more to check cheaply
    produced = set(message.input)
    all_tops = {top for layer in message.layer for top in layer.top} | produced
    for layer in message.layer:
        missing = [b for b in layer.bottom if b not in all_tops]
        if missing:
            raise ZooError(f"{prototxt}: layer {layer.name!r} reads {missing[0]!r}, "
                           "which no layer or input produces")
        produced.update(layer.top)


def _legacy_fits(blob: Blob, shape: tuple[int, ...]) -> bool:
    """Caffe's ShapeEquals for blobs saved with num/channels/height/width."""
    if len(shape) > 4 or len(blob.shape) != 4:
        return False
    return (1,) * (4 - len(shape)) + tuple(shape) == blob.shape


def check_weights_fit(net, prototxt: Path, weights: Path) -> None:
    """Every net layer that the caffemodel names gets blobs of the right count and shape."""
    layers = read_caffemodel(weights)
    for name, params in net.params.items():
        source = layers.get(name)
        if source is None:
            continue  # Caffe leaves such a layer at its initial values, as here
        if len(source.blobs) != len(params):
            raise ZooError(f"{weights}: layer {name!r} has {len(source.blobs)} blobs, "
                           f"{prototxt} expects {len(params)}")
        for i, (blob, param) in enumerate(zip(source.blobs, params)):
            shape = tuple(param.data.shape)
            if blob.shape != shape and not _legacy_fits(blob, shape):
                raise ZooError(f"{weights}: layer {name!r} blob {i} is "
                               f"{'×'.join(map(str, blob.shape))} but {prototxt} needs "
                               f"{'×'.join(map(str, shape))}")
            if blob.count not in (0, int(np.prod(shape))):
                raise ZooError(f"{weights}: layer {name!r} blob {i} holds {blob.count} "
                               f"values for shape {shape}")


def load_net(prototxt: Path | str, weights: Path | str | None = None):
    """caffe.Net in TEST phase with `weights` copied in by Caffe, after the checks above."""
    import caffe
    prototxt = Path(prototxt)
    if not prototxt.is_file():
        raise ZooError(f"{prototxt}: no such net definition")
    check_net_definition(prototxt)
    net = caffe.Net(str(prototxt), caffe.TEST)
    if weights is not None:
        weights = Path(weights)
        check_weights_fit(net, prototxt, weights)
        net.copy_from(str(weights))
    return net
