"""Net definitions (prototxt) for surgery: read in the current format, whatever the file's.

The 2014 VGG16 deploy file is Caffe's old V1 format (`layers {}` with enum types, `input_dim`).
Caffe upgrades such files when it loads them, but surgery rewrites definitions, so it needs
the upgraded text: Caffe's own `upgrade_net_proto_text` tool produces it (run as a separate
process, so its CHECK failures cannot abort ours).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from caffe.proto import caffe_pb2
from google.protobuf import text_format

from surgery.errors import SurgeryError

# Layer types that read a dataset while Caffe builds the net.
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "Python")


def caffe_tool(name: str) -> Path:
    """A tool of the Caffe build pycaffe comes from (build/tools/NAME), or one on PATH."""
    import caffe

    here = Path(caffe.__file__).resolve()
    for root in here.parents[2:5]:
        tool = root / "build" / "tools" / name
        if tool.is_file() and os.access(tool, os.X_OK):
            return tool
    found = shutil.which(name)
    if found:
        return Path(found)
    raise SurgeryError(f"Caffe's {name} tool is neither beside {here} (build/tools) nor on "
                       f"PATH; needed to read V1 net definitions")


def needs_upgrade(net: caffe_pb2.NetParameter) -> bool:
    """V1 layers or the deprecated input fields, which Caffe upgrades on load."""
    return bool(net.layers or net.input or net.input_dim or net.input_shape)


def read_prototxt(path: Path | str) -> caffe_pb2.NetParameter:
    """A net definition in the current (V2, Input layer) format, V1 files upgraded."""
    path = Path(path)
    net = caffe_pb2.NetParameter()
    try:
        text_format.Merge(path.read_text(), net)
    except FileNotFoundError:
        raise SurgeryError(f"{path}: prototxt not found") from None
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise SurgeryError(f"{path}: not a Caffe net definition ({e})") from None
    if net.layers and net.layer:
        raise SurgeryError(f"{path}: mixes V1 `layers` and V2 `layer` entries")
    return _upgrade(path) if needs_upgrade(net) else net


def _upgrade(path: Path) -> caffe_pb2.NetParameter:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "upgraded.prototxt"
        done = subprocess.run([str(caffe_tool("upgrade_net_proto_text")), str(path), str(out)],
                              capture_output=True, text=True,
                              env={**os.environ, "GLOG_minloglevel": "1"})
        if done.returncode != 0 or not out.exists():
            reason = done.stderr.strip().splitlines()
            raise SurgeryError(f"{path}: Caffe could not upgrade this V1 net definition: "
                               f"{reason[0] if reason else 'exit ' + str(done.returncode)}")
        net = caffe_pb2.NetParameter()
        text_format.Merge(out.read_text(), net)
    return net


def with_batch_one(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """A copy whose Input layers give batch 1 (deploy files say 10; weights do not care)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for layer in out.layer:
        if layer.type == "Input":
            for shape in layer.input_param.shape:
                if shape.dim:
                    shape.dim[0] = 1
    return out


def data_layers(net: caffe_pb2.NetParameter) -> list[str]:
    """Layers that would read a dataset while the net is built (no bottoms, a data type)."""
    return [f"{layer.name} ({layer.type})" for layer in net.layer
            if layer.type in DATA_LAYER_TYPES and not layer.bottom]


@contextmanager
def as_file(net: caffe_pb2.NetParameter) -> Iterator[str]:
    """A NetParameter written to a temporary prototxt, for caffe.Net."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.prototxt"
        path.write_text(text_format.MessageToString(net))
        yield str(path)


def write_prototxt(net: caffe_pb2.NetParameter, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_format.MessageToString(net))
    return path


def _in_test_net(layer: caffe_pb2.LayerParameter) -> bool:
    test = caffe_pb2.TEST
    if layer.include:
        return any(not rule.HasField("phase") or rule.phase == test for rule in layer.include)
    return not any(rule.HasField("phase") and rule.phase == test for rule in layer.exclude)


def check_buildable(net: caffe_pb2.NetParameter, source: str) -> None:
    """Raise for what Caffe would CHECK-abort on while building the TEST net: a layer type
    it does not know, or a bottom no earlier layer produces."""
    import caffe

    known = set(caffe.layer_type_list())
    tops: set[str] = set()
    for layer in filter(_in_test_net, net.layer):
        if layer.type not in known:
            raise SurgeryError(f"{source}: layer {layer.name} has type {layer.type!r}, which "
                               f"this Caffe build does not know")
        missing = [b for b in layer.bottom if b not in tops]
        if missing:
            raise SurgeryError(f"{source}: layer {layer.name} reads {missing}, which no "
                               f"earlier layer produces")
        tops.update(layer.top)


def without_fillers(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """A copy with every filler removed: instantiating it only zeroes the parameters, where
    random fillers would spend seconds on values that are overwritten anyway (VGG16: 138M)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for layer in out.layer:
        for field in ("convolution_param", "inner_product_param", "scale_param",
                      "bias_param", "embed_param", "prelu_param"):
            if layer.HasField(field):
                param = getattr(layer, field)
                for filler in ("weight_filler", "bias_filler", "filler"):
                    if filler in param.DESCRIPTOR.fields_by_name:
                        param.ClearField(filler)
    return out
