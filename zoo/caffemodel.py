"""Read a caffemodel's layers and blobs without handing the file to Caffe.

Caffe aborts the process (a glog CHECK) on a truncated file or a blob whose shape does not
fit the net; reading the wire format here lets every caller validate first and say which
file and which layer is wrong. Blob payloads stay zero-copy slices of the memory-mapped file.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ZooError
from zoo.wire import (
    FIXED32,
    FIXED64,
    LENGTH_DELIMITED,
    Field,
    WireError,
    iter_fields,
    packed_varints,
)

# Field numbers from caffe.proto.
NET_LAYER, NET_V1_LAYERS = 100, 2
LAYER_NAME, LAYER_TYPE, LAYER_BLOBS = 1, 2, 7
V1_NAME, V1_BLOBS = 4, 6
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA, BLOB_DIFF, BLOB_SHAPE, BLOB_DOUBLE_DATA, BLOB_DOUBLE_DIFF = 5, 6, 7, 8, 9
SHAPE_DIM = 1


@dataclass
class Blob:
    """One parameter blob: its shape and its values' bytes as stored (little-endian)."""
    shape: tuple[int, ...]
    dtype: np.dtype
    payload: bytes | memoryview

    @property
    def count(self) -> int:
        return len(self.payload) // self.dtype.itemsize

    def array(self) -> np.ndarray:
        """The values as a flat read-only array over the payload (no copy)."""
        return np.frombuffer(self.payload, dtype=self.dtype)


@dataclass
class Layer:
    name: str
    type: str
    blobs: list[Blob] = field(default_factory=list)
    definition: bytes = b""   # the layer's fields other than blobs (a LayerParameter)
    legacy: bool = False      # a V1LayerParameter ("layers" in old caffemodels)


def _payload(parts: list[memoryview]) -> bytes | memoryview:
    return parts[0] if len(parts) == 1 else b"".join(bytes(p) for p in parts)


def _scalar_parts(fld: Field, size: int) -> memoryview:
    """A repeated float/double field's bytes, whether packed or one element per field."""
    if fld.wire_type == LENGTH_DELIMITED:
        return fld.value
    if fld.wire_type == (FIXED32 if size == 4 else FIXED64):
        return fld.value
    raise WireError(f"blob values have wire type {fld.wire_type}")


def _read_blob(buf: memoryview) -> Blob:
    legacy = {BLOB_NUM: 0, BLOB_CHANNELS: 0, BLOB_HEIGHT: 0, BLOB_WIDTH: 0}
    shape: list[int] | None = None
    floats: list[memoryview] = []
    doubles: list[memoryview] = []
    for fld in iter_fields(buf):
        if fld.number == BLOB_SHAPE:
            shape = []
            for dim in iter_fields(fld.value):
                if dim.number == SHAPE_DIM:
                    shape.extend(packed_varints(dim))
        elif fld.number == BLOB_DATA:
            floats.append(_scalar_parts(fld, 4))
        elif fld.number == BLOB_DOUBLE_DATA:
            doubles.append(_scalar_parts(fld, 8))
        elif fld.number in legacy and fld.wire_type == 0:
            legacy[fld.number] = fld.value
    if shape is None:  # Caffe reads the deprecated 4-D fields as (num, channels, h, w)
        shape = [legacy[BLOB_NUM], legacy[BLOB_CHANNELS], legacy[BLOB_HEIGHT],
                 legacy[BLOB_WIDTH]]
    if doubles and not floats:
        dtype, payload = np.dtype("<f8"), _payload(doubles)
    else:
        dtype, payload = np.dtype("<f4"), _payload(floats) if floats else b""
    blob = Blob(tuple(int(d) for d in shape), dtype, payload)
    expected = int(np.prod(blob.shape, dtype=np.int64))
    if len(payload) % dtype.itemsize or (blob.count and blob.count != expected):
        raise WireError(f"blob of shape {blob.shape} holds {len(payload)} bytes of values")
    return blob


def _read_layer(buf: memoryview, legacy: bool) -> Layer:
    name_field, blobs_field = (V1_NAME, V1_BLOBS) if legacy else (LAYER_NAME, LAYER_BLOBS)
    layer = Layer(name="", type="", legacy=legacy)
    definition = []
    for fld in iter_fields(buf):
        if fld.number == blobs_field and fld.wire_type == LENGTH_DELIMITED:
            layer.blobs.append(_read_blob(fld.value))
            continue
        definition.append(bytes(fld.raw))
        if fld.number == name_field and fld.wire_type == LENGTH_DELIMITED:
            layer.name = bytes(fld.value).decode("utf-8", "replace")
        elif not legacy and fld.number == LAYER_TYPE and fld.wire_type == LENGTH_DELIMITED:
            layer.type = bytes(fld.value).decode("utf-8", "replace")
    layer.definition = b"".join(definition)
    return layer


def read_caffemodel(path: Path | str) -> dict[str, Layer]:
    """The layers of a binary NetParameter by name, in file order.

    Raises ZooError naming the file for anything that is not a well-formed caffemodel
    (truncated, a text prototxt, an HDF5 file, duplicate layer names).
    """
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such caffemodel")
    with open(path, "rb") as f:
        head = f.read(8)
        if head.startswith(b"\x89HDF"):
            raise ZooError(f"{path}: an HDF5 caffemodel; only binary protobuf is supported")
        if path.stat().st_size == 0:
            raise ZooError(f"{path}: empty file, not a caffemodel")
        buf = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    layers: dict[str, Layer] = {}
    try:
        for fld in iter_fields(buf):
            if fld.number not in (NET_LAYER, NET_V1_LAYERS):
                continue
            if fld.wire_type != LENGTH_DELIMITED:
                raise WireError(f"layer field with wire type {fld.wire_type}")
            layer = _read_layer(fld.value, legacy=fld.number == NET_V1_LAYERS)
            if layer.name in layers:
                raise ZooError(f"{path}: two layers are named {layer.name!r}")
            layers[layer.name] = layer
    except WireError as e:
        raise ZooError(f"{path}: not a binary caffemodel (NetParameter): {e}") from e
    if not layers:
        raise ZooError(f"{path}: holds no layers; is it a caffemodel?")
    return layers
