"""Caffe's files, read and checked before Caffe sees them: caffemodels, net definitions.

Caffe aborts the whole process (a glog CHECK) on a truncated caffemodel, on weights whose
shapes do not fit the net, on a layer type it does not know or a bottom no layer makes.
Everything here checks first and raises CaffeFileError naming the file, the layer and
what was expected. Caffemodels are read from the protobuf wire format directly (core.wire):
blob payloads stay zero-copy slices of the memory-mapped file, fast enough for VGG16's
138M values and exact for a bitwise comparison. Old V1 files (`layers {}`, legacy
num/channels/height/width blob dims, as the 2014 VGG16 release) are read too.
"""

from __future__ import annotations

import mmap
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.wire import (
    FIXED32,
    FIXED64,
    LENGTH_DELIMITED,
    VARINT,
    Field,
    WireError,
    iter_fields,
    packed_varints,
    read_varint,
)


class CaffeFileError(InputError):
    """A caffemodel or net definition that Caffe would abort on, or that does not fit."""


# Field numbers from caffe.proto.
NET_LAYER, NET_V1_LAYERS = 100, 2
LAYER_NAME, LAYER_TYPE, LAYER_BLOBS = 1, 2, 7
V1_NAME, V1_BLOBS = 4, 6
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA, BLOB_DIFF, BLOB_SHAPE, BLOB_DOUBLE_DATA, BLOB_DOUBLE_DIFF = 5, 6, 7, 8, 9
SHAPE_DIM = 1


@dataclass
class Blob:
    """One parameter blob: its shape and its values' bytes as stored (little-endian).
    `legacy`: the shape came from V1 num/channels/height/width dims (Caffe then matches a
    target shape padded to 4 axes with leading ones)."""
    shape: tuple[int, ...]
    dtype: np.dtype
    payload: bytes | memoryview
    legacy: bool = False

    @property
    def count(self) -> int:
        return len(self.payload) // self.dtype.itemsize

    def array(self) -> np.ndarray:
        """The values as a flat read-only array over the payload (no copy)."""
        return np.frombuffer(self.payload, dtype=self.dtype)

    def values(self) -> np.ndarray:
        """The values in the blob's shape (read-only, no copy)."""
        return self.array().reshape(self.shape)


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
    is_legacy = shape is None
    if is_legacy:  # Caffe reads the deprecated 4-D fields as (num, channels, h, w)
        shape = [legacy[BLOB_NUM], legacy[BLOB_CHANNELS], legacy[BLOB_HEIGHT],
                 legacy[BLOB_WIDTH]]
    if doubles and not floats:
        dtype, payload = np.dtype("<f8"), _payload(doubles)
    else:
        dtype, payload = np.dtype("<f4"), _payload(floats) if floats else b""
    blob = Blob(tuple(int(d) for d in shape), dtype, payload, is_legacy)
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
            try:
                layer.blobs.append(_read_blob(fld.value))
            except WireError as e:
                raise _named(e, layer) from None
            continue
        definition.append(bytes(fld.raw))
        if fld.number == name_field and fld.wire_type == LENGTH_DELIMITED:
            layer.name = bytes(fld.value).decode("utf-8", "replace")
        elif not legacy and fld.number == LAYER_TYPE and fld.wire_type == LENGTH_DELIMITED:
            layer.type = bytes(fld.value).decode("utf-8", "replace")
    layer.definition = b"".join(definition)
    return layer


def _named(error: WireError, layer: Layer) -> WireError:
    return WireError(f"layer {layer.name}: {error}") if layer.name else error


def _cut_short(buf: memoryview, whole: list[str]) -> str | None:
    """When the file ends inside a layer (a transfer or copy cut short), say where: the byte
    it ends at, the layer cut and how many bytes it lacks, and the fix; else None."""
    pos, end = 0, len(buf)
    try:
        while pos < end:
            start = pos
            key, pos = read_varint(buf, pos, end)
            if key & 7 == VARINT:
                _, pos = read_varint(buf, pos, end)
                continue
            if key & 7 == LENGTH_DELIMITED:
                size, pos = read_varint(buf, pos, end)
            else:
                size = {FIXED32: 4, FIXED64: 8}.get(key & 7)
                if size is None:
                    return None
            if pos + size > end:
                break
            pos += size
        else:
            return None
    except WireError as e:  # the file ends inside a field's tag or length, or is no caffemodel
        if not whole or not str(e).startswith("truncated varint"):
            return None
        return (f"the file is cut off at byte {end}, inside the header of the field at byte "
                f"{start}, after layer {whole[-1]!r}; a truncated copy or download: copy or "
                f"fetch it again")
    if key >> 3 not in (NET_LAYER, NET_V1_LAYERS) and not whole:
        return None  # a first field running past the end: more likely not a caffemodel
    name = ""
    if key >> 3 in (NET_LAYER, NET_V1_LAYERS):
        name_field = V1_NAME if key >> 3 == NET_V1_LAYERS else LAYER_NAME
        try:
            for fld in iter_fields(buf[pos:end]):
                if fld.number == name_field and fld.wire_type == LENGTH_DELIMITED:
                    name = f" layer {bytes(fld.value).decode('utf-8', 'replace')!r}"
                    break
        except WireError:
            pass
    after = f", after layer {whole[-1]!r}" if whole else ""
    return (f"the file is cut off at byte {end}: the{name or ' field'} (from byte "
            f"{start}{after}) needs {pos + size - end} more bytes (the file at least "
            f"{pos + size}); a truncated copy or download: copy or fetch it again")


def read_caffemodel(path: Path | str) -> dict[str, Layer]:
    """The layers of a binary NetParameter by name, in file order.

    Raises CaffeFileError naming the file for anything that is not a well-formed caffemodel
    (truncated, a text prototxt, an HDF5 file, duplicate layer names).
    """
    path = Path(path)
    if path.is_dir():
        raise CaffeFileError(f"{path}: is a directory, not a caffemodel")
    if not path.is_file():
        raise CaffeFileError(f"{path}: caffemodel not found")
    with open(path, "rb") as f:
        head = f.read(8)
        if head.startswith(b"\x89HDF"):
            raise CaffeFileError(f"{path}: an HDF5 caffemodel; only binary protobuf is supported")
        if path.stat().st_size == 0:
            raise CaffeFileError(f"{path}: empty file, not a caffemodel")
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
                raise CaffeFileError(f"{path}: two layers are named {layer.name!r}")
            layers[layer.name] = layer
    except WireError as e:
        cut = _cut_short(buf, list(layers))
        if cut:
            raise CaffeFileError(f"{path}: {cut}") from e
        raise CaffeFileError(f"{path}: not a readable caffemodel (truncated, or not a binary "
                             f"Caffe NetParameter: {e})") from e
    if not layers:
        raise CaffeFileError(f"{path}: holds no layers; is it a caffemodel?")
    return layers


def params_of(layers: dict[str, Layer]) -> dict[str, list[np.ndarray]]:
    """Parameter arrays (read-only, in the file's shapes) of the layers that have any."""
    return {name: [blob.values() for blob in layer.blobs]
            for name, layer in layers.items() if layer.blobs}


def read_params(path: Path | str) -> dict[str, list[np.ndarray]]:
    """Parameters by layer name, in file order, from a V1 or V2 caffemodel."""
    params = params_of(read_caffemodel(path))
    if not params:
        raise CaffeFileError(f"{path}: no layer with weights (empty or truncated caffemodel?)")
    return params


def non_finite_layers(path: Path | str) -> list[str]:
    """Names of the layers of a caffemodel holding NaN or infinite values, in file order."""
    return [name for name, blobs in read_params(path).items()
            if not all(np.isfinite(blob).all() for blob in blobs)]


def check_finite(path: Path | str, option: str = "WEIGHTS=/--weights") -> None:
    """Refuse weights holding NaN or infinity before a command uses them: labels, exports
    or a published model from them would look like results and mean nothing."""
    bad = non_finite_layers(path)
    if bad:
        raise CaffeFileError(f"{path} ({option}): layers {', '.join(bad[:5])}"
                             f"{f' and {len(bad) - 5} more' if len(bad) > 5 else ''} hold NaN "
                             f"or infinite values (a diverged run); use weights from before "
                             f"it diverged, or train again with a lower learning rate (LR=)")


# --- fitting weights to a net -------------------------------------------------------------
def caffe_would_copy(target: tuple[int, ...], blob: Blob) -> bool:
    """Caffe's own test (Blob::ShapeEquals) for copying `blob` into a `target`-shaped one:
    equal shapes, or for V1 legacy dims the target padded to 4 axes with leading ones."""
    if blob.legacy and len(target) <= 4:
        return (1,) * (4 - len(target)) + tuple(target) == tuple(blob.shape)
    return tuple(target) == tuple(blob.shape)


def _width_of(found: tuple[int, ...], expected: tuple[int, ...], width: float) -> float | None:
    """The WIDTH the blob `found` was trained at, when it differs from `expected` (the net at
    `width`) only by one factor in its channel axes (the first two); else None."""
    if len(found) != len(expected) or found[2:] != expected[2:] or not found:
        return None
    ratios = {f / e for f, e in zip(found[:2], expected[:2]) if f != e and e}
    if len(ratios) != 1:
        return None
    guess = width * ratios.pop()
    return guess if 0 < guess <= 1 else None


def mismatch_cause(layer: str, found: tuple[int, ...], expected: tuple[int, ...],
                   width: float | None = None) -> str:
    """Why a layer's blob has shape `found` where the net wants `expected`, and the fix: the
    net built at another WIDTH than the weights were trained at, another number of classes,
    or weights of another net."""
    guessed = _width_of(tuple(found), tuple(expected), width) if width is not None else None
    if guessed is not None:
        return (f"the weights look trained at WIDTH={float(f'{guessed:.4g}'):g}, the net is "
                f"built at WIDTH={width:g}; give the width they were trained with "
                f"(WIDTH=/--width)")
    if len(found) == len(expected) and found[0] != expected[0] and found[1:] == expected[1:] \
            and layer.startswith("score"):
        return (f"layer {layer} scores {found[0]} classes where the net scores {expected[0]}: "
                f"weights for another dataset; give the net these weights were trained as")
    return "weights of another net; give the net these weights were trained as"


def check_fits(net, layers: dict[str, Layer], source: str, net_name: str = "the net",
               width: float | None = None) -> None:
    """Raise unless every layer of `layers` that caffe.Net `net` has gets blobs Caffe can
    copy (net.copy_from CHECK-aborts the process otherwise), naming the cause (`width`: the
    WIDTH the net was built at, so that weights of another width are told apart). Layers
    the file lacks are left as they are, as Caffe does."""
    wanted = {name: [tuple(blob.data.shape) for blob in net.params[name]]
              for name in net.params}
    check_shapes(wanted, layers, source, net_name, width)


def check_shapes(wanted: dict[str, list[tuple[int, ...]] | None], layers: dict[str, Layer],
                 source: str, net_name: str = "the net", width: float | None = None) -> None:
    """check_fits against parameter shapes by layer name (a built net's, or
    core.geometry.net_parameter_shapes of a prototxt; None: not known, not checked)."""
    for name, layer in layers.items():
        if wanted.get(name) is None or not layer.blobs:
            continue
        target = wanted[name]
        if len(target) != len(layer.blobs):
            raise CaffeFileError(f"{source}: layer {name} has {len(layer.blobs)} blobs, "
                                 f"{net_name} expects {len(target)}: weights of another net; "
                                 f"give the net these weights were trained as")
        for i, (shape, blob) in enumerate(zip(target, layer.blobs)):
            if not caffe_would_copy(shape, blob):
                found = tuple(blob.shape)
                if blob.legacy and len(shape) < 4:
                    found = found[4 - len(shape):]
                raise CaffeFileError(f"{source}: layer {name} blob {i} has shape "
                                     f"{tuple(blob.shape)}, {net_name} expects {shape}: "
                                     f"{mismatch_cause(name, found, shape, width)}")


# Layer types whose parameters a trained net must get from its weights file (Scale is
# left out: the all-at-once net's pool scalings are constants a base file need not hold).
LEARNABLE_TYPES = frozenset({"Convolution", "Deconvolution", "InnerProduct", "Embed",
                             "BatchNorm", "Bias", "PReLU", "RNN", "LSTM"})


def uncovered_layers(definition, layers: dict[str, Layer], *,
                     allow: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Learnable layers of a net definition that `layers` (a caffemodel) gives no
    parameters for, except those in `allow`: Caffe would silently keep their initial
    values (zeros, or random fillers) and a score would mean nothing."""
    return [(layer.name, layer.type) for layer in definition.layer
            if layer.type in LEARNABLE_TYPES and layer.name not in allow
            and not (layer.name in layers and layers[layer.name].blobs)]


def ends_before(layers: dict[str, Layer], order: list[str], missing: list[str]) -> str | None:
    """The layer a caffemodel ends after, when it looks cut short between two layers (it
    parses whole): its last layer with weights is one of the net's (`order`, the net's layer
    names), and every learned layer it lacks (`missing`) comes after that one. None when the
    file looks whole but made for another net (its last layer is not the net's, or it lacks
    layers before its end)."""
    last = next((name for name in reversed(list(layers)) if layers[name].blobs), None)
    if last is None or last not in order or not missing:
        return None
    at = order.index(last)
    if all(name in order and order.index(name) > at for name in missing):
        return last
    return None


def load_weights(net, path: Path | str, net_name: str = "the net") -> None:
    """net.copy_from, after checking the file is whole and fits (Caffe would abort)."""
    check_fits(net, read_caffemodel(path), str(path), net_name)
    net.copy_from(str(path))


# --- net definitions ----------------------------------------------------------------------
def caffe_tool(name: str) -> Path:
    """A tool of the Caffe build pycaffe comes from (build/tools/NAME), or one on PATH."""
    # Caffe loads on use, so this module imports without it
    import caffe

    here = Path(caffe.__file__).resolve()
    for root in here.parents[2:5]:
        tool = root / "build" / "tools" / name
        if tool.is_file() and os.access(tool, os.X_OK):
            return tool
    found = shutil.which(name)
    if found:
        return Path(found)
    raise CaffeFileError(f"Caffe's {name} tool is neither beside {here} (build/tools) nor on "
                         f"PATH; needed to read V1 net definitions")


def needs_upgrade(net) -> bool:
    """V1 layers or the deprecated input fields, which Caffe upgrades on load."""
    return bool(net.layers or net.input or net.input_dim or net.input_shape)


def read_prototxt(path: Path | str, *, upgrade: bool = True):
    """A net definition (NetParameter); V1 files in the current format (V2, Input layer)
    unless upgrade=False. Caffe's own upgrade_net_proto_text tool does the upgrade, in a
    separate process, so its CHECK failures cannot abort this one."""
    # Caffe loads on use, so this module imports without it
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    path = Path(path)
    net = caffe_pb2.NetParameter()
    try:
        text_format.Merge(path.read_text(), net)
    except FileNotFoundError:
        raise CaffeFileError(f"{path}: prototxt not found") from None
    except IsADirectoryError:
        raise CaffeFileError(f"{path}: is a directory, not a prototxt") from None
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise CaffeFileError(f"{path}: not a Caffe net definition ({e})") from None
    if net.layers and net.layer:
        raise CaffeFileError(f"{path}: mixes V1 `layers` and V2 `layer` entries")
    return _upgrade(path) if upgrade and needs_upgrade(net) else net


def _upgrade(path: Path):
    # Caffe loads on use, so this module imports without it
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "upgraded.prototxt"
        done = subprocess.run([str(caffe_tool("upgrade_net_proto_text")), str(path), str(out)],
                              capture_output=True, text=True,
                              env={**os.environ, "GLOG_minloglevel": "1"})
        if done.returncode != 0 or not out.exists():
            reason = done.stderr.strip().splitlines()
            raise CaffeFileError(f"{path}: Caffe could not upgrade this V1 net definition: "
                                 f"{reason[0] if reason else 'exit ' + str(done.returncode)}")
        net = caffe_pb2.NetParameter()
        text_format.Merge(out.read_text(), net)
    return net


def parse_prototxt(path: Path | str):
    """A net or solver prototxt as its message (NetParameter or SolverParameter), as
    written (no upgrade); CaffeFileError names the file and the parser's complaint."""
    from caffe.proto import caffe_pb2  # the build's own schema
    from google.protobuf import text_format

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaffeFileError(f"{path}: prototxt not found") from None
    except UnicodeDecodeError as e:
        raise CaffeFileError(f"{path}: not UTF-8 text, so not a prototxt ({e})") from e
    errors = []
    for message_type in (caffe_pb2.NetParameter, caffe_pb2.SolverParameter):
        message = message_type()
        try:
            text_format.Parse(text, message)
            return message
        except text_format.ParseError as e:
            errors.append(f"as {message_type.__name__}: {e}")
    raise CaffeFileError(f"{path}: not a net or solver prototxt ({'; '.join(errors)})")


def write_prototxt(net, path: Path | str) -> Path:
    from google.protobuf import text_format

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_format.MessageToString(net))
    return path


@contextmanager
def as_file(net) -> Iterator[str]:
    """A NetParameter written to a temporary prototxt, for caffe.Net."""
    with tempfile.TemporaryDirectory() as tmp:
        yield str(write_prototxt(net, Path(tmp) / "net.prototxt"))


def _in_test_net(layer) -> bool:
    # Caffe loads on use, so this module imports without it
    from caffe.proto import caffe_pb2

    test = caffe_pb2.TEST
    if layer.include:
        return any(not rule.HasField("phase") or rule.phase == test for rule in layer.include)
    return not any(rule.HasField("phase") and rule.phase == test for rule in layer.exclude)


def check_buildable(net, source: str) -> None:
    """Raise for what Caffe would CHECK-abort on while building the TEST net: a layer type
    it does not know, or a bottom that neither an input nor an earlier layer produces."""
    # Caffe loads on use, so this module imports without it
    import caffe

    known = set(caffe.layer_type_list())
    tops: set[str] = set(net.input)
    for layer in filter(_in_test_net, net.layer):
        if layer.type not in known:
            raise CaffeFileError(f"{source}: layer {layer.name} has type {layer.type!r}, "
                                 f"which this Caffe build does not know")
        missing = [b for b in layer.bottom if b not in tops]
        if missing:
            raise CaffeFileError(f"{source}: layer {layer.name} reads {missing}, which no "
                                 f"input or earlier layer produces")
        tops.update(layer.top)


_BUILD_PROBE = """
import sys
import caffe
caffe.set_mode_cpu()
caffe.Net(sys.argv[1], caffe.TEST)
"""


def check_builds(prototxt: Path | str, source: str | None = None) -> None:
    """Raise CaffeFileError naming the layer if Caffe cannot build the TEST net of
    `prototxt` (kernel_size 0, a bad pooling or crop …: what check_buildable cannot see).
    Caffe CHECK-aborts the process that builds such a net, so a child process builds it,
    with INFO logging on to see the layer it stopped at. `source`: the file to name, when
    `prototxt` is a temporary rewrite of it."""
    import re
    import sys

    prototxt = Path(prototxt)
    env = {**os.environ, "GLOG_minloglevel": "0", "GLOG_logtostderr": "1"}
    done = subprocess.run([sys.executable, "-c", _BUILD_PROBE, str(prototxt)], env=env,
                          capture_output=True, text=True)
    if done.returncode == 0:
        return
    lines = done.stderr.splitlines()
    fatal = [line.split("] ", 1)[-1] for line in lines if re.match(r"[FE]\d+ ", line)]
    layers = [m.group(1) for line in lines
              if (m := re.search(r"\] Creating Layer (\S+)", line, re.IGNORECASE))]
    python_error = [line for line in lines if re.match(r"\w+(Error|Exception): ", line)]
    cause = (fatal or python_error or lines or ["(no output)"])[-1]
    where = f"layer {layers[-1]}" if layers else "the net"
    raise CaffeFileError(f"{source or prototxt}: Caffe cannot build {where}: {cause}; fix "
                         f"the net definition")


def load_net(prototxt: Path | str, weights: Path | str | None = None):
    """caffe.Net in TEST phase with `weights` copied in, after the checks Caffe would
    abort on: a readable definition it can build, weights that are whole and fit."""
    # Caffe loads on use, so this module imports without it
    import caffe

    prototxt = Path(prototxt)
    check_buildable(read_prototxt(prototxt), str(prototxt))
    check_builds(prototxt)
    net = caffe.Net(str(prototxt), caffe.TEST)
    if weights is not None:
        load_weights(net, weights, str(prototxt))
    return net
