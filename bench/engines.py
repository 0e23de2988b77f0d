"""Inference peers: the project's own ONNX export of a net run by onnxruntime and OpenVINO.

They are what a user deploying on a CPU picks, so `make bench` times them beside Caffe and
PyTorch: the deploy net's current weights written by export/onnx_export.py (the file
`make onnx` ships), each engine on the same input with the same thread count as Caffe's
BLAS, its output compared with Caffe's first (max absolute and relative difference, the
share of pixels whose argmax class agrees) and timed only when it agrees. OpenVINO is
asked for f32 inference: left to itself it computes in bf16 on CPUs that have it
(AVX512_BF16, AMX), which is another net's numbers, not a peer's.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.manifest import verify_export

ENGINES = ("onnxruntime", "openvino")
TOLERANCE = 1e-4  # max |caffe - engine| / max |caffe| on the score map, as for PyTorch
INSTALLED_BY = {"onnxruntime": "make export-deps", "openvino": "make bench-engines"}


def compare_outputs(expected: np.ndarray, actual: np.ndarray) -> dict:
    """How far an engine's score map is from Caffe's: max absolute difference, the same
    relative to Caffe's largest magnitude, and the share of pixels with the same argmax."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        raise ValueError(f"shapes differ: {expected.shape} vs {actual.shape}")
    difference = float(np.abs(expected.astype(np.float64) - actual).max())
    scale = float(np.abs(expected).max()) or 1.0
    agree = np.argmax(expected, axis=1) == np.argmax(actual, axis=1)
    return {"max_abs_difference": difference, "max_relative_difference": difference / scale,
            "argmax_agreement": float(agree.mean())}


def export_onnx(net, net_param, experiment: str, width: float, out: Path) -> Path:
    """The deploy net with its current weights as the project's ONNX file (export/)."""
    from export.caffe_net import from_net
    from export.onnx_export import write

    return write(from_net(experiment, width, net_param, net), out)


def onnxruntime_session(path: Path, threads: int) -> tuple[str, Callable]:
    """onnxruntime's CPU provider with `threads` intra-op threads; (version, run(x))."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    return onnxruntime.__version__, lambda x: session.run([output], {name: x})[0]


def openvino_session(path: Path, threads: int, shape: tuple[int, ...]) -> tuple[str, Callable]:
    """OpenVINO's CPU plugin, the model fixed to `shape`, f32, `threads` threads, latency
    mode (one picture at a time, as Caffe runs here); (version, run(x))."""
    import openvino

    core = openvino.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].get_any_name(): list(shape)})
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    output = compiled.outputs[0]

    def run(x):
        return request.infer({0: x})[output]

    return openvino.__version__, run


def session(engine: str, path: Path, threads: int, shape: tuple[int, ...]):
    verify_export(path)  # an export with a manifest beside it is the one it vouches for
    if engine == "onnxruntime":
        return onnxruntime_session(path, threads)
    if engine == "openvino":
        return openvino_session(path, threads, shape)
    raise ValueError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")


def run(model: Path, image: np.ndarray, expected: np.ndarray, *, threads: int,
        timer: Callable[[Callable[[], object]], dict] | None = None,
        engines: tuple[str, ...] = ENGINES) -> dict[str, dict]:
    """Each engine on `model` with `image`: its output against Caffe's `expected`, then,
    when it agrees within TOLERANCE and a `timer` is given, timer(forward)."""
    rows: dict[str, dict] = {}
    for engine in engines:
        if importlib.util.find_spec(engine) is None:
            rows[engine] = {"skipped": f"{engine} is not installed ({INSTALLED_BY[engine]} "
                                       f"installs it)"}
        else:
            rows[engine] = measure(engine, model, image, expected, threads, timer)
    return rows


def measure(engine: str, model: Path, image: np.ndarray, expected: np.ndarray,
            threads: int, timer: Callable[[Callable[[], object]], dict] | None) -> dict:
    """One engine: compared with Caffe, then timed if it agrees (and a timer is given)."""
    version, forward = session(engine, model, threads, image.shape)
    row = {"engine": engine, "version": version, "threads": threads,
           **compare_outputs(expected, forward(image))}
    if row["max_relative_difference"] > TOLERANCE:
        row["error"] = (f"{engine} output differs from Caffe's by "
                        f"{row['max_relative_difference']:.2e} > {TOLERANCE}; not timed")
    elif timer is not None:
        row["forward"] = timer(lambda: forward(image))
    return row
