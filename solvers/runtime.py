"""Where Caffe runs and what it needs before a net is built: device, seeds, and the
dataset files a net will read.

Caffe aborts the process (a glog CHECK) on a missing split list or a GPU call in a CPU
build; everything here checks first and raises a Python error that says what to do.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from core.catalog import DATASETS, split_list

REPO = Path(__file__).resolve().parents[1]


def bar_interval() -> float:
    """Seconds between progress-bar updates: live on a terminal, every 30 s into a log file
    (a bar redrawn each iteration makes a log of megabytes)."""
    return 0.1 if sys.stderr.isatty() else 30.0


def check_gpu(device: int) -> None:
    """Raise unless this Caffe build can use GPU `device`. Probed in a child process:
    a CPU-only build or a missing device aborts the process that asks."""
    probe = f"import caffe; caffe.set_mode_gpu(); caffe.set_device({device})"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        fatal = [line.split("] ", 1)[-1] for line in lines if re.match(r"F\d+ ", line)]
        tail = (fatal or lines)[-1]
        raise RuntimeError(f"GPU {device} is not usable with this Caffe build ({tail}); "
                           f"build the GPU variant (make caffe CUDA=1) or leave GPU unset for "
                           f"the CPU")


def select_device(gpu: int | None) -> str:
    """CPU (gpu None) or GPU `gpu` for this process; returns a description."""
    import caffe

    from core.fingerprint import pin_blas_threads
    pin_blas_threads()   # the pinned BLAS's bits depend on its thread count (NUMERICS.md)
    if gpu is None:
        caffe.set_mode_cpu()
        return "CPU"
    if gpu < 0:
        raise ValueError(f"GPU id must be 0 or more, got {gpu}")
    check_gpu(gpu)
    caffe.set_mode_gpu()
    caffe.set_device(gpu)
    return f"GPU {gpu}"


def check_data_root(exp, root: Path, splits: tuple[str, ...] | None = None) -> None:
    """Raise FileNotFoundError naming the first missing split list of `exp`'s phases
    (or of `splits`, read by the test-phase layer) and the target that fetches it."""
    root = Path(root)
    wanted = ([(0, exp.splits[0]), (1, exp.splits[1])] if splits is None
              else [(1, s) for s in splits])
    for phase_index, split in wanted:
        path = split_list(exp.dataset, exp.train_layer if phase_index == 0 else "test", root,
                          split)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: split list not found for {exp.name} (dataset root {root}); fetch "
                f"the dataset with `make {DATASETS[exp.dataset].fetch_target}` or point DATA= at a "
                f"dataset root (`make synthetic DATASET={exp.dataset} OUT=ROOT` writes a "
                f"small synthetic one)")
