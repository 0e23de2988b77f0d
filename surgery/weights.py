"""Reading caffemodels and prototxt safely, before Caffe sees them.

Caffe aborts the whole process (a glog CHECK) on a truncated caffemodel or on weights whose
shapes do not fit the net; these helpers parse with protobuf first and raise a Python error
naming the file and the cause. Old V1 files (`layers {}`, `input_dim`, the 2014 VGG16 release)
are read too: V1 caffemodels by their legacy blob dims, V1 prototxt through Caffe's own
`upgrade_net_proto_text` tool.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
from caffe.proto import caffe_pb2
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from surgery.transplant import SurgeryError


def blob_array(blob) -> np.ndarray:
    """A BlobProto as an array, V2 `shape` or V1 num/channels/height/width."""
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:
        shape = tuple(d for d in (blob.num, blob.channels, blob.height, blob.width))
    data = np.asarray(blob.data, dtype=np.float32)
    if data.size != int(np.prod(shape)):
        raise SurgeryError(f"blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def blob_shape(blob) -> tuple[int, ...]:
    if blob.HasField("shape"):
        return tuple(blob.shape.dim)
    return (blob.num, blob.channels, blob.height, blob.width)


def read_caffemodel(path: Path | str, *, values: bool = True) -> dict[str, list]:
    """Parameters by layer name from a V1 or V2 caffemodel; clear errors for bad files.
    With values=False only the blob shapes (fast: no conversion of the numbers)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SurgeryError(f"{path}: caffemodel not found") from None
    net = caffe_pb2.NetParameter()
    try:
        net.ParseFromString(raw)
    except DecodeError as e:
        raise SurgeryError(f"{path}: not a readable caffemodel (truncated or not a Caffe "
                           f"NetParameter: {e})") from None
    layers = list(net.layer) or list(net.layers)
    params = {}
    for layer in layers:
        if layer.blobs:
            try:
                params[layer.name] = [blob_array(b) if values else _Shape(blob_shape(b), b)
                                      for b in layer.blobs]
            except SurgeryError as e:
                raise SurgeryError(f"{path}: layer {layer.name}: {e}") from None
    if not params:
        raise SurgeryError(f"{path}: no layer with weights (empty or truncated caffemodel?)")
    return params


class _Shape:
    """A blob's shape and size, checked against its data length, without the data."""

    def __init__(self, shape: tuple[int, ...], blob):
        self.shape, self.size = shape, int(np.prod(shape))
        if len(blob.data) != self.size:
            raise SurgeryError(f"blob of shape {shape} holds {len(blob.data)} values")


def read_prototxt(path: Path | str) -> caffe_pb2.NetParameter:
    """A net definition in the current (V2) format, upgrading V1 files with Caffe's tool."""
    path = Path(path)
    net = caffe_pb2.NetParameter()
    try:
        text_format.Merge(path.read_text(), net)
    except FileNotFoundError:
        raise SurgeryError(f"{path}: prototxt not found") from None
    except text_format.ParseError as e:
        raise SurgeryError(f"{path}: not a Caffe net definition ({e})") from None
    if net.layers or net.input_dim:
        net = _upgrade(path)
    return net


def _upgrade(path: Path) -> caffe_pb2.NetParameter:
    import caffe

    tool = Path(caffe.__file__).resolve().parents[3] / "build/tools/upgrade_net_proto_text"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "upgraded.prototxt"
        done = subprocess.run([str(tool), str(path), str(out)], capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise SurgeryError(f"{path}: Caffe could not upgrade this V1 net definition: "
                               f"{done.stderr.strip()[-500:]}")
        net = caffe_pb2.NetParameter()
        text_format.Merge(out.read_text(), net)
    return net


def check_fits(net, params: dict[str, list[np.ndarray]], source: str) -> None:
    """Raise unless every layer of `params` present in caffe.Net `net` has matching shapes
    (what Caffe would otherwise CHECK-abort on when loading weights)."""
    for name, blobs in params.items():
        if name not in net.params:
            continue
        target = net.params[name]
        if len(target) != len(blobs):
            raise SurgeryError(f"{source}: layer {name} has {len(blobs)} blobs, the net "
                               f"expects {len(target)}")
        for i, (t, b) in enumerate(zip(target, blobs)):
            if t.data.size != b.size:
                raise SurgeryError(f"{source}: layer {name} blob {i} has shape {b.shape}, "
                                   f"the net expects {t.data.shape}: wrong prototxt for these "
                                   f"weights?")


def load_weights(net, path: Path | str) -> None:
    """net.copy_from, after checking the file is whole and fits (Caffe would abort)."""
    check_fits(net, read_caffemodel(path, values=False), str(path))
    net.copy_from(str(path))


def transplant_file(net, path: Path | str, suffix: str = "", verbose: bool = True):
    """transplant() from a caffemodel file. When no layer needs reshaping or renaming,
    Caffe copies the values itself (net.copy_from, after the shape check) — much faster
    than converting hundreds of MB of protobuf floats in Python."""
    from surgery.transplant import Report, transplant

    shapes = read_caffemodel(path, values=False)
    same = not suffix and all(tuple(t.data.shape) == tuple(b.shape)
                              for name, blobs in shapes.items() if name in net.params
                              for t, b in zip(net.params[name], blobs))
    if not same:
        return transplant(net, read_caffemodel(path), suffix=suffix, verbose=verbose)
    check_fits(net, shapes, str(path))
    net.copy_from(str(path))
    report = Report(copied=[n for n in shapes if n in net.params],
                    dropped=[n for n in shapes if n not in net.params],
                    left_at_init=[n for n in net.params if n not in shapes])
    if verbose:
        print(report)
    return report
