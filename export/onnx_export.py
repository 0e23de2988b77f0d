"""An FCN as an ONNX model, verified against Caffe: `python -m export.onnx_export`.

    python -m export.onnx_export --net voc-fcn8s --weights W.caffemodel [--out F.onnx]

The deploy net of the experiment is translated layer by layer (export/graph.py decides
Caffe's semantics), built with the `onnx` package, checked by onnx.checker, saved, then run
by onnxruntime beside Caffe on pictures of several sizes (export/verify.py); the command
fails when they disagree beyond the stated tolerance. Height and width are dynamic: one
file serves every picture size, and Crop offsets become Slices whose ends follow the shape
of the reference blob at run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from core.errors import cli_main
from export.caffe_net import load
from export.cli import Exporter, run_export
from export.graph import TRAINING_KINDS, ExportError, Graph, Op

# ONNX operator set written: recent, and run by the pinned onnxruntime (export/requirements.txt)
OPSET = 21
RANK = 4  # N×C×H×W everywhere in these nets


class _Builder:
    """Nodes and initializers of one graph; constant names are made unique."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def fresh(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def const(self, hint: str, value) -> str:
        name = self.fresh(hint)
        self.initializers.append((name, np.asarray(value)))
        return name

    def node(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        # onnx is optional (export/requirements.txt)
        from onnx import helper
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def emit(self, op_type: str, inputs: list[str], output: str, **attrs) -> str:
        """A node writing a value whose name the graph has fixed."""
        # onnx is optional (export/requirements.txt)
        from onnx import helper
        self._names.add(output)
        self.nodes.append(helper.make_node(op_type, inputs, [output],
                                           name=self.fresh(output + "/op"), **attrs))
        return output


def _pads(pad: tuple[int, int]) -> list[int]:
    return [pad[0], pad[1], pad[0], pad[1]]


def _pool(b: _Builder, op: Op, x: str, out: str) -> None:
    """Caffe's ceil mode is ONNX's ceil_mode (the current definition drops a last window
    that would start in the right padding, as Caffe does); Caffe's average divides by the
    window clipped at size + pad, as count_include_pad=1 does (unpadded: the valid count).
    tests/test_export_layers.py holds onnxruntime to this at many odd sizes."""
    a = op.attrs
    if a["glob"]:
        b.emit("GlobalMaxPool" if a["method"] == "max" else "GlobalAveragePool", [x], out)
        return
    common = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                  pads=_pads(a["pad"]), ceil_mode=int(a["ceil"]))
    if a["method"] == "max":
        b.emit("MaxPool", [x], out, **common)
    else:
        b.emit("AveragePool", [x], out, count_include_pad=int(any(a["pad"])), **common)


def _crop(b: _Builder, op: Op, x: str, ref: str, out: str) -> None:
    axis, offsets = op.attrs["axis"], np.array(op.attrs["offsets"], np.int64)
    dims = b.node("Shape", [ref], f"{op.layer}/ref_shape", start=axis, end=RANK)
    starts = b.const(f"{op.layer}/starts", offsets)
    ends = b.node("Add", [dims, starts], f"{op.layer}/ends")
    axes = b.const(f"{op.layer}/axes", np.arange(axis, RANK, dtype=np.int64))
    b.emit("Slice", [x, starts, ends, axes], out)


def _translate(b: _Builder, op: Op) -> None:
    a, x, out, name = op.attrs, op.inputs[0], op.outputs[0], op.layer
    if op.kind in ("conv", "deconv"):
        weights = [b.const(f"{name}.{k}", v) for k, v in op.params.items()]
        b.emit("Conv" if op.kind == "conv" else "ConvTranspose", [x, *weights], out,
               kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
               pads=_pads(a["pad"]), dilations=list(a["dilation"]), group=a["group"])
    elif op.kind == "relu":
        if a["slope"]:
            b.emit("LeakyRelu", [x], out, alpha=a["slope"])
        else:
            b.emit("Relu", [x], out)
    elif op.kind == "pool":
        _pool(b, op, x, out)
    elif op.kind == "lrn":  # ONNX's LRN is Caffe's across-channel LRN, alpha/size included
        b.emit("LRN", [x], out, size=a["size"], alpha=a["alpha"], beta=a["beta"], bias=a["k"])
    elif op.kind == "crop":
        _crop(b, op, x, op.inputs[1], out)
    elif op.kind == "eltwise":
        _eltwise(b, op, out)
    elif op.kind == "scale":  # the blob spans axes [axis, axis + its rank), broadcast over rest
        shape = op.params["weight"].shape
        broadcast = shape + (1,) * (RANK - a["axis"] - len(shape))
        scale = b.const(f"{name}.weight", op.params["weight"].reshape(broadcast))
        if a["bias"]:
            scaled = b.node("Mul", [x, scale], f"{name}/scaled")
            b.emit("Add", [scaled, b.const(f"{name}.bias",
                                           op.params["bias"].reshape(broadcast))], out)
        else:
            b.emit("Mul", [x, scale], out)
    elif op.kind == "concat":
        b.emit("Concat", list(op.inputs), out, axis=a["axis"])
    elif op.kind == "softmax":
        b.emit("Softmax", [x], out, axis=a["axis"])
    elif op.kind == "dense":
        weights = [b.const(f"{name}.{k}", v) for k, v in op.params.items()]
        flat = b.node("Flatten", [x], f"{name}/flat", axis=1)
        b.emit("Gemm", [flat, *weights], out, transB=1)
    elif op.kind in TRAINING_KINDS:
        raise ExportError(f"layer {name!r}: {op.kind} belongs to a training net; ONNX "
                          "exports the deploy net")
    else:
        raise AssertionError(op.kind)


def _eltwise(b: _Builder, op: Op, out: str) -> None:
    """Caffe's order: top = c0·x0, then top += c_i·x_i for each further bottom."""
    a = op.attrs
    onnx_op = {"sum": "Add", "prod": "Mul", "max": "Max"}[a["op"]]
    terms = list(op.inputs)
    if a["op"] == "sum":
        terms = [x if c == 1 else
                 b.node("Mul", [x, b.const(f"{op.layer}/coeff{i}", np.array(c, np.float32))],
                        f"{op.layer}/term{i}")
                 for i, (x, c) in enumerate(zip(terms, a["coeffs"]))]
    if len(terms) == 1:
        b.emit("Identity", terms, out)
        return
    acc = terms[0]
    for i, term in enumerate(terms[1:-1], start=1):
        acc = b.node(onnx_op, [acc, term], f"{op.layer}/acc{i}")
    b.emit(onnx_op, [acc, terms[-1]], out)


def to_onnx(graph: Graph, *, name: str, doc: str = "", metadata: dict | None = None):
    """The graph as an onnx.ModelProto, inputs N×C×height×width (save() checks it)."""
    # onnx is optional (export/requirements.txt)
    from onnx import TensorProto, helper
    b = _Builder()
    b._names.update(graph.inputs)
    producer = {}
    for op in graph.ops:
        _translate(b, op)
        producer.update((v, op.kind) for v in op.outputs)
    outputs = []
    for blob, value in graph.outputs.items():
        if value != blob:
            b.emit("Identity", [value], blob)
        rank = 2 if producer.get(value) == "dense" else RANK
        outputs.append(helper.make_tensor_value_info(blob, TensorProto.FLOAT, [None] * rank))
    inputs = [helper.make_tensor_value_info(v, TensorProto.FLOAT,
                                            ["batch", c, "height", "width"])
              for v, c in graph.inputs.items()]
    onnx_graph = helper.make_graph(b.nodes, name, inputs, outputs)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fcn-caffe export", doc_string=doc)
    model.ir_version = min(model.ir_version, 10)   # IR of opset 21: older runtimes read it
    for const_name, value in b.initializers:  # added last: make_graph/make_model copy
        tensor = model.graph.initializer.add()
        tensor.name, tensor.data_type = const_name, helper.np_dtype_to_tensor_dtype(value.dtype)
        tensor.dims.extend(value.shape)
        tensor.raw_data = np.ascontiguousarray(value).tobytes()
    if metadata:
        helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})
    return model


def save(model, path: Path) -> Path:
    """Write the model and check the file with onnx.checker (full check: shape inference
    too). Checking the file spares a serialized copy of the weights in memory."""
    # onnx is optional (export/requirements.txt)
    import onnx
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


class OnnxRunner:
    """onnxruntime on the CPU with one saved model; called like the Caffe forward."""

    def __init__(self, path: Path) -> None:
        # onnxruntime is optional (export/requirements.txt)
        import onnxruntime
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # sizes vary: free each run's buffers
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, inputs)))


def write(caffe_net, out: Path) -> Path:
    """Save a loaded CaffeNet (export/caffe_net.py) as an ONNX file at `out`."""
    name, width = caffe_net.name, caffe_net.width
    model = to_onnx(caffe_net.graph, name=name.replace("-", "_"),
                    doc=f"{name} (width {width:g}) exported from Caffe's deploy net and "
                        f"{caffe_net.weights}; inputs are BGR minus the mean, N×C×H×W.",
                    metadata=dict(experiment=name, width=width, weights=caffe_net.weights))
    return save(model, out)


def export(name: str, weights: Path, out: Path, width: float = 1.0):
    """Experiment `name` with `weights` as ONNX at `out`; returns the loaded CaffeNet (for
    verification) and the path."""
    caffe_net = load(name, weights, width)
    return caffe_net, write(caffe_net, out)


EXPORTER = Exporter(
    "onnx", target=lambda net, out: out or Path("runs/export") / net / f"{net}.onnx",
    export=export, runner=OnnxRunner)


@cli_main("onnx-export", exit_code=2, also=(ValueError, OSError))
def main(argv: list[str] | None = None) -> int:
    return run_export(EXPORTER, argv)


if __name__ == "__main__":
    sys.exit(main())
