"""Shared test setup: Caffe quiet and on the CPU. The project's packages and layers/ are
on the venv's path (`make setup` writes a .pth, as it does for pycaffe)."""

import os
from pathlib import Path

import pytest

# every fault case's declared class is checked (tests/fault_classes.py; make faults prints it)
pytest_plugins = ["fault_classes"]

os.environ.setdefault("GLOG_minloglevel", "2")  # before caffe is imported anywhere

import caffe  # noqa: E402  (pycaffe from the source build, via the venv's .pth)

caffe.set_mode_cpu()


@pytest.fixture(scope="module")
def pinned_library() -> Path:
    """The pinned OpenBLAS the build computes with; the numerics tests skip on a system one."""
    from core.fingerprint import fingerprint

    fp = fingerprint()
    if fp["numerics"] != "pinned":
        pytest.skip(f"this build runs the system's OpenBLAS ({fp['blas_config']})")
    return Path(fp["blas_path"])
