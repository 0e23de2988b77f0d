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
import time
from pathlib import Path

import numpy as np

from bench.torch_peer import max_relative_difference

REPO = Path(__file__).resolve().parents[1]
VARIANTS_DIR = Path.home() / ".cache/fcn-bench/blas"
# what `make bench` probes by default; BLIS (much slower here: 0.9 has no Zen 4 kernels) on request
STANDARD = ("default", "openblas-1-thread", "openblas-haswell-kernels", "openblas-openmp",
            "openblas-numpy", "fast-im2col", "fast-im2col+fast-pool",
            "fast-im2col+fast-pool+haswell-kernels")


def build_numpy_openblas(workdir: Path) -> Path | None:
    """A folder holding libopenblas.so.0 = bench/blas_shim.c over numpy's bundled (newer)
    OpenBLAS, for LD_LIBRARY_PATH; None when numpy bundles none or no C compiler works."""
    import numpy

    bundled = sorted((Path(numpy.__file__).parent.parent / "numpy.libs").glob(
        "libscipy_openblas*.so"))
    if not bundled:
        return None
    folder = Path(workdir) / "openblas-numpy"
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(REPO / "bench/blas_shim.c"),
                           "-o", str(folder / "libopenblas.so.0"), str(bundled[0]),
                           f"-Wl,-rpath,{bundled[0].parent}"], capture_output=True, text=True,
                          check=False)
    return folder if done.returncode == 0 else None


def _prepend(variable: str, value: str) -> str:
    return os.pathsep.join(p for p in (value, os.environ.get(variable)) if p)


def levers(cores: int, variants_dir: Path = VARIANTS_DIR, preload: dict | None = None,
           numpy_openblas: Path | None = None) -> list[tuple[str, dict, str]]:
    """(name, environment overrides, what it is) for every lever available here;
    `preload` maps 'fast-im2col' / 'fast-pool' to the libraries bench.flags.build_preload
    makes, `numpy_openblas` is the folder from build_numpy_openblas."""
    found = [
        ("default", {}, "the system OpenBLAS (pthread), its own kernel choice and threads"),
        ("openblas-1-thread", {"OPENBLAS_NUM_THREADS": "1"}, "OPENBLAS_NUM_THREADS=1"),
        ("openblas-haswell-kernels", {"OPENBLAS_CORETYPE": "Haswell"},
         "OPENBLAS_CORETYPE=Haswell (AVX2 kernels instead of AVX-512)"),
    ]
    newer = None if numpy_openblas is None else {
        "LD_LIBRARY_PATH": _prepend("LD_LIBRARY_PATH", str(numpy_openblas))}
    if newer is not None:
        found.append(("openblas-numpy", newer,
                      "numpy's bundled OpenBLAS (a newer release) through bench/blas_shim.c"))
    preload = preload or {}
    if "fast-im2col" in preload:
        fast = {"LD_PRELOAD": _prepend("LD_PRELOAD", str(preload["fast-im2col"]))}
        found.append(("fast-im2col", fast,
                      "bench/fast_im2col.cpp in place of Caffe's im2col/col2im (LD_PRELOAD)"))
        if newer is not None:
            found.append(("fast-im2col+openblas-numpy", {**fast, **newer}, "both of the above"))
        if "fast-pool" in preload:
            both = {"LD_PRELOAD": _prepend("LD_PRELOAD", ":".join(
                str(preload[k]) for k in ("fast-im2col", "fast-pool")))}
            found.append(("fast-im2col+fast-pool", both, "and bench/fast_pooling.cpp's "
                          "threaded MAX pooling in place of Caffe's (LD_PRELOAD)"))
            found.append(("fast-im2col+fast-pool+haswell-kernels",
                          {**both, "OPENBLAS_CORETYPE": "Haswell"},
                          "both preloads and OPENBLAS_CORETYPE=Haswell"))
    threads = str(cores)
    for variant, extra, what in (
            ("openblas-openmp", {"OMP_NUM_THREADS": threads},
             "the distribution's OpenMP build of the same OpenBLAS"),
            ("blis-pthread", {"BLIS_NUM_THREADS": threads}, "BLIS 0.9 (pthread), via its CBLAS"),
            ("blis-openmp", {"BLIS_NUM_THREADS": threads}, "BLIS 0.9 (OpenMP), via its CBLAS")):
        folder = variants_dir / variant
        if (folder / "libopenblas.so.0").exists():
            found.append((variant, {"LD_LIBRARY_PATH": _prepend("LD_LIBRARY_PATH", str(folder)),
                                    **extra}, what))
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
        only: tuple[str, ...] | None = STANDARD, preload: dict | None = None,
        numpy_openblas: Path | None = None, deadline: float | None = None,
        progress=None) -> list[dict]:
    """Probe the available levers named in `only` (None: all), the default first; past
    `deadline` (time.monotonic()), the rest are listed as skipped."""
    chosen = [lv for lv in levers(cores, preload=preload, numpy_openblas=numpy_openblas)
              if only is None or lv[0] in only or lv[0] == "default"]
    results, reference, longest = [], None, 0.0
    for name, overrides, what in chosen:
        started = time.monotonic()
        if deadline is not None and started + longest > deadline:
            results.append({"lever": name, "what": what, "env": overrides,
                            "error": "skipped: the run's time budget is spent"})
            continue
        save = Path(workdir) / f"lever-{name}.npy"
        result = probe(overrides, save, experiment=experiment, size=size, width=width,
                       repeats=repeats, sgemm_n=sgemm_n)
        row = {"lever": name, "what": what, "env": overrides, **result}
        if "error" not in result:
            seconds, gflops = result["forward"]["median_s"], result["sgemm"]["gflops"]
            row["forward_s"] = seconds
            row["bound_s"] = result["flops"] / (gflops * 1e9)
            row["forward_over_bound"] = result["forward"]["over_bound"]  # paired, median
            output = np.load(save)
            if reference is None:
                reference = output
            row["bit_exact_vs_default"] = bool(np.array_equal(output, reference))
            row["max_relative_difference_vs_default"] = max_relative_difference(reference,
                                                                                output)
        results.append(row)
        longest = max(longest, time.monotonic() - started)
        if progress is not None:
            progress(row)
    default = results[0]
    for row in results:
        if "forward_s" in row and "forward_s" in default:
            row["speedup_vs_default"] = default["forward_s"] / row["forward_s"]
    return results
