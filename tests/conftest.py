"""Shared test setup: Caffe quiet and on the CPU. The project's packages and layers/ are
on the venv's path (`make setup` writes a .pth, as it does for pycaffe)."""

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before caffe is imported anywhere

import caffe  # noqa: E402  (pycaffe from the source build, via the venv's .pth)

caffe.set_mode_cpu()
