"""Levers on Caffe's CPU speed that need no rebuild: the BLAS, its kernels, its threads.

Each lever runs bench.probe in its own process (a BLAS reads its settings when it loads)
and is reported as FCN-8s forward seconds, its ratio to the sgemm bound measured under the
same lever, and how far its output moved from the default's (bit-exact or not). The
default is probed the same way, next to the others, so the comparison shares conditions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.torch_peer import max_relative_difference

REPO = Path(__file__).resolve().parents[1]
VARIANTS_DIR = Path.home() / ".cache/fcn-bench/blas"


def levers(cores: int, variants_dir: Path = VARIANTS_DIR,
           preload: Path | None = None) -> list[tuple[str, dict, str]]:
    """(name, environment overrides, what it is) for every lever available here;
    `preload` is bench/fast_im2col.cpp built as a library (bench.flags.build_preload)."""
    found = [
        ("default", {}, "the system OpenBLAS (pthread), its own kernel choice and threads"),
        ("openblas-1-thread", {"OPENBLAS_NUM_THREADS": "1"}, "OPENBLAS_NUM_THREADS=1"),
        ("openblas-haswell-kernels", {"OPENBLAS_CORETYPE": "Haswell"},
         "OPENBLAS_CORETYPE=Haswell (AVX2 kernels instead of AVX-512)"),
    ]
    if preload is not None:
        found.append(("fast-im2col", {"LD_PRELOAD": str(preload)},
                      "bench/fast_im2col.cpp in place of Caffe's im2col/col2im (LD_PRELOAD)"))
    threads = str(cores)
    for variant, extra, what in (
            ("openblas-openmp", {"OMP_NUM_THREADS": threads},
             "the distribution's OpenMP build of the same OpenBLAS"),
            ("blis-pthread", {"BLIS_NUM_THREADS": threads}, "BLIS 0.9 (pthread), via its CBLAS"),
            ("blis-openmp", {"BLIS_NUM_THREADS": threads}, "BLIS 0.9 (OpenMP), via its CBLAS")):
        folder = variants_dir / variant
        if (folder / "libopenblas.so.0").exists():
            path = os.pathsep.join(p for p in (str(folder), os.environ.get("LD_LIBRARY_PATH"))
                                   if p)
            found.append((variant, {"LD_LIBRARY_PATH": path, **extra}, what))
    return found


def probe(overrides: dict, save: Path, *, experiment: str, size: tuple[int, int],
          width: float, repeats: int, sgemm_n: int, timeout: float = 300) -> dict:
    """Run bench.probe under os.environ + overrides; its JSON, or an 'error'."""
    env = dict(os.environ, **overrides)
    command = [sys.executable, "-m", "bench.probe", "--experiment", experiment,
               "--size", *map(str, size), "--width", str(width), "--repeats", str(repeats),
               "--sgemm-n", str(sgemm_n),
               "--save", str(save)]
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return {"error": tail[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(workdir: Path, *, cores: int, experiment: str = "voc-fcn8s",
        size: tuple[int, int] = (500, 500), width: float = 1.0, repeats: int = 3,
        sgemm_n: int = 4096,
        only: list[str] | None = None, preload: Path | None = None,
        progress=None) -> list[dict]:
    """Probe every available lever (or those named in `only`); the default first."""
    chosen = [lv for lv in levers(cores, preload=preload)
              if only is None or lv[0] in only or lv[0] == "default"]
    results, reference = [], None
    for name, overrides, what in chosen:
        save = Path(workdir) / f"lever-{name}.npy"
        result = probe(overrides, save, experiment=experiment, size=size, width=width,
                       repeats=repeats, sgemm_n=sgemm_n)
        row = {"lever": name, "what": what, "env": overrides, **result}
        if "error" not in result:
            seconds, gflops = result["forward"]["median_s"], result["sgemm"]["gflops"]
            row["forward_s"] = seconds
            row["bound_s"] = result["flops"] / (gflops * 1e9)
            row["forward_over_bound"] = seconds / row["bound_s"]
            output = np.load(save)
            if reference is None:
                reference = output
            row["bit_exact_vs_default"] = bool(np.array_equal(output, reference))
            row["max_relative_difference_vs_default"] = max_relative_difference(reference,
                                                                                output)
        results.append(row)
        if progress is not None:
            progress(row)
    default = results[0]
    for row in results:
        if "forward_s" in row and "forward_s" in default:
            row["speedup_vs_default"] = default["forward_s"] / row["forward_s"]
    return results
