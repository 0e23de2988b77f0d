"""Optional parts (ONNX, PyTorch, Ray, qemu) that some tests need: outside `make test` a
missing one skips its tests with one line naming the make target that installs it; inside
`make test`, which installs them all and sets OPTIONAL_PARTS_ENV, a missing one fails."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

OPTIONAL_PARTS_ENV = "FCN_OPTIONAL_PARTS"   # `make test` sets it to "required"
# each optional part and the make target that installs it
INSTALLED_BY = {"onnx": "export-deps", "onnxruntime": "export-deps", "torch": "bench-torch",
                "openvino": "bench-engines", "ray": "paper-ray-deps",
                "qemu-x86_64": "numerics-deps"}


def parts_required() -> bool:
    """Whether a missing optional part is a failure (under `make test`) rather than a skip."""
    return os.environ.get(OPTIONAL_PARTS_ENV) == "required"


def _missing(names: list[str]) -> None:
    targets = " ".join(dict.fromkeys(INSTALLED_BY[n] for n in names))
    message = (f"needs {', '.join(names)}, not installed: `make {targets}` installs "
               f"{'it' if len(names) == 1 else 'them'}")
    if parts_required():
        pytest.fail(f"{message} ({OPTIONAL_PARTS_ENV}=required: `make test` installs every "
                    f"optional part, so none may be missing)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_modules(*names: str) -> None:
    """Skip (or, under `make test`, fail) unless every named Python package is importable;
    callable at a test module's top or inside a test."""
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        _missing(missing)


def require_program(name: str) -> str:
    """The path of an optional program (e.g. qemu-x86_64), or skip / fail as above."""
    path = shutil.which(name)
    if path is None:
        _missing([name])
    return path
