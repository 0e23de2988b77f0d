"""Reading caffemodels safely, before Caffe sees them.

Caffe aborts the whole process (a glog CHECK) on a truncated caffemodel or on weights whose
shapes do not fit the net; these helpers parse with protobuf first and raise a Python error
naming the file and the cause. Old V1 files (`layers {}` with legacy num/channels/height/width
blob dims, as the 2014 VGG16 release) are read as well as current ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from caffe.proto import caffe_pb2
from google.protobuf.message import DecodeError

from surgery.definition import read_prototxt  # noqa: F401  (older callers import it here)
from surgery.errors import SurgeryError

_DATA_FIELD = 5  # BlobProto.data: repeated float, packed


_LEGACY_DIMS = ("num", "channels", "height", "width")


def is_legacy(blob: caffe_pb2.BlobProto) -> bool:
    """Whether the blob uses V1 num/channels/height/width dims (Caffe then ignores `shape`)."""
    return any(blob.HasField(f) for f in _LEGACY_DIMS)


def blob_shape(blob: caffe_pb2.BlobProto) -> tuple[int, ...]:
    """A BlobProto's shape as Caffe reads it: legacy 4-d dims if any is set, else `shape`."""
    if is_legacy(blob):
        return tuple(getattr(blob, f) for f in _LEGACY_DIMS)
    return tuple(blob.shape.dim)


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _blob_values(blob: caffe_pb2.BlobProto) -> np.ndarray:
    """The blob's float data as a read-only float32 array. Converting a repeated field
    element by element costs ~1 s per 16M values (VGG16 has 138M); its packed bytes are
    read directly instead."""
    raw = blob.SerializeToString()
    pos = 0
    while pos < len(raw):
        key, pos = _varint(raw, pos)
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(raw, pos)
            if field == _DATA_FIELD:
                return np.frombuffer(raw, "<f4", length // 4, pos)
            pos += length
        elif wire == 0:
            _, pos = _varint(raw, pos)
        elif wire in (1, 5) and field != _DATA_FIELD:
            pos += 8 if wire == 1 else 4
        else:  # unpacked floats: unusual but legal; take the slow, general road
            break
    values = np.asarray(blob.data, dtype=np.float32)
    values.flags.writeable = False
    return values


def _checked(blob: caffe_pb2.BlobProto) -> tuple[int, ...]:
    shape = blob_shape(blob)
    if len(blob.data) != int(np.prod(shape)):
        raise SurgeryError(f"blob of shape {shape} holds {len(blob.data)} values")
    return shape


class ShapeOnly:
    """A blob's shape and size without its values (checking a file without converting it);
    `legacy` for V1 num/channels/height/width dims, which Caffe matches by padding."""

    def __init__(self, shape: tuple[int, ...], legacy: bool = False):
        self.shape, self.size, self.legacy = shape, int(np.prod(shape)), legacy

    def __repr__(self) -> str:
        return f"ShapeOnly{self.shape}"


def read_net_parameter(path: Path | str) -> caffe_pb2.NetParameter:
    """Parse a binary NetParameter, with a clear error for missing or damaged files."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SurgeryError(f"{path}: caffemodel not found") from None
    except IsADirectoryError:
        raise SurgeryError(f"{path}: is a directory, not a caffemodel") from None
    net = caffe_pb2.NetParameter()
    try:
        net.ParseFromString(raw)
    except DecodeError as e:
        raise SurgeryError(f"{path}: not a readable caffemodel (truncated, or not a Caffe "
                           f"NetParameter: {e})") from None
    return net


def layer_params(net: caffe_pb2.NetParameter, source: str, *,
                 values: bool = True) -> dict[str, list]:
    """Parameters by layer name, in file order, from a parsed NetParameter (V1 or V2).

    values=True: read-only float32 arrays in the file's shapes (V1: legacy 4-d).
    values=False: ShapeOnly(shape, legacy) per blob. Either way each blob's data length
    is checked against its shape.
    """
    params: dict[str, list] = {}
    for layer in list(net.layer) or list(net.layers):
        if not layer.blobs:
            continue
        try:
            shapes = [_checked(b) for b in layer.blobs]
        except SurgeryError as e:
            raise SurgeryError(f"{source}: layer {layer.name}: {e}") from None
        params[layer.name] = ([_blob_values(b).reshape(s) for b, s in zip(layer.blobs, shapes)]
                              if values else [ShapeOnly(s, is_legacy(b))
                                              for b, s in zip(layer.blobs, shapes)])
    if not params:
        raise SurgeryError(f"{source}: no layer with weights (empty or truncated caffemodel?)")
    return params


def read_caffemodel(path: Path | str, *, values: bool = True) -> dict[str, list]:
    """Parameters by layer name from a V1 or V2 caffemodel file (see layer_params)."""
    return layer_params(read_net_parameter(path), str(path), values=values)


def caffe_would_copy(target: tuple[int, ...], blob) -> bool:
    """Caffe's own test (Blob::ShapeEquals) for copying `blob` into a `target`-shaped one:
    equal shapes, or for V1 legacy dims the target padded to 4 axes with leading ones."""
    shape = tuple(blob.shape)
    if getattr(blob, "legacy", False) and len(target) <= 4:
        return (1,) * (4 - len(target)) + tuple(target) == shape
    return tuple(target) == shape


def check_fits(net, params: dict[str, list], source: str) -> None:
    """Raise unless every layer of `params` present in caffe.Net `net` has blobs Caffe can
    copy (net.copy_from CHECK-aborts the process otherwise)."""
    for name, blobs in params.items():
        if name not in net.params:
            continue
        target = net.params[name]
        if len(target) != len(blobs):
            raise SurgeryError(f"{source}: layer {name} has {len(blobs)} blobs, the net "
                               f"expects {len(target)}: wrong prototxt for these weights?")
        for i, (t, b) in enumerate(zip(target, blobs)):
            if not caffe_would_copy(t.data.shape, b):
                raise SurgeryError(f"{source}: layer {name} blob {i} has shape {tuple(b.shape)},"
                                   f" the net expects {t.data.shape}: wrong prototxt for these "
                                   f"weights?")


def load_weights(net, path: Path | str) -> None:
    """net.copy_from, after checking the file is whole and fits (Caffe would abort)."""
    check_fits(net, read_caffemodel(path, values=False), str(path))
    net.copy_from(str(path))
