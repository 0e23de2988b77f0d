"""Shared test setup: the repository and layers/ on sys.path, Caffe quiet and on the CPU."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GLOG_minloglevel", "2")  # before caffe is imported anywhere
for path in (REPO, REPO / "layers"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import caffe  # noqa: E402  (pycaffe from the source build, via the venv's .pth)

caffe.set_mode_cpu()
