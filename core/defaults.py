"""The project's defaults, each typed once: where things live, the release's intervals, and
how loud Caffe is.

Every entry point's default paths and numbers come from here, so moving the runs folder or
the test interval is one edit. make runs in the repository root and names the same folders
once each: DATA_DIR and RUNS_DIR in the Makefile (set with DATA= and RUNS=), WEIGHTS_DIR in
mk/surgery.mk; TEST_EVERY= and SEED= pass through only when given.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the repository root (this file is core/defaults.py)
RUNS_DIR = REPO / "runs"                    # one folder per run: runs/<experiment>/…
DATA_ROOT = REPO / "datasets"               # the data root the catalog's folders lie under
BASE_WEIGHTS_DIR = REPO / "ilsvrc-nets"     # classifier → FCN base weights (make vgg16-fcn …)
NETS_DIR = REPO / "nets"                    # the generated experiment folders

SEED = 1337         # the release's data-layer seed, also the default solver seed here
TEST_EVERY = 4000   # iterations between seg tests: the release's solve.py interval

# glog's GLOG_minloglevel for Caffe: 2 keeps errors only (0 would add info, 1 warnings).
CAFFE_LOG_LEVEL = "2"


def quiet_caffe_log(env: MutableMapping[str, str] = os.environ) -> MutableMapping[str, str]:
    """Give `env` the project's Caffe log level unless it names one (a user's level wins).

    glog reads the variable once, when libcaffe loads, so it must be set before any
    `import caffe`: the venv's fcn-project.pth (make project-path) calls this at interpreter
    start, for every Python process of the venv; child processes inherit it, and Ray
    workers get it through their runtime environment (paper/ray_runner.py)."""
    env.setdefault("GLOG_minloglevel", CAFFE_LOG_LEVEL)
    return env
