"""Levers on Caffe's CPU speed: the BLAS, its kernels, its threads, and the build.

Each lever runs bench.probe in its own process (a BLAS reads its settings when it loads)
and is reported as FCN-8s forward seconds, its ratio to the sgemm bound measured under the
same lever, and how far its output moved from the default's (bit-exact or not). The
default is probed the same way, next to the others, so the comparison shares conditions.
"unpatched-build" is the same recipe without the speed patches (bench.builds), when built.

A lever that picks OpenBLAS kernels itself (OPENBLAS_CORETYPE) on a machine that sets
OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE on purpose drops both variables in that one probe
process only, and says so; the harness, its tests and every other run keep them.
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
from core.defaults import REPO

VARIANTS_DIR = Path.home() / ".cache/fcn-bench/blas"
LINKS_DIR = Path.home() / ".cache/fcn-bench/links"
MKL_DIR = Path.home() / ".cache/fcn-bench/mkl"
SYSTEM_OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
# what `make bench` probes by default (the sgemm table lists every option); the forced-kernel
# variants and BLIS on request (`--levers all`), to keep the run within its 15 minutes
STANDARD = ("default", "pinned-avx2-path", "unpatched-build", "system-openblas",
            "openblas-openmp", "openblas-numpy", "mkl", "mkl-cnr-avx2")
MACHINE_KERNEL_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def build_numpy_openblas(workdir: Path) -> Path | None:
    """bench/blas_shim.c over numpy's bundled (newer) OpenBLAS, as a shared object for
    as_caffes_blas; None when numpy bundles none or no C compiler works."""
    import numpy

    bundled = sorted((Path(numpy.__file__).parent.parent / "numpy.libs").glob(
        "libscipy_openblas*.so"))
    if not bundled:
        return None
    shim = Path(workdir) / "openblas-numpy" / "libopenblas-numpy-shim.so"
    shim.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(REPO / "bench/blas_shim.c"),
                           "-o", str(shim), str(bundled[0]),
                           f"-Wl,-rpath,{bundled[0].parent}"], capture_output=True, text=True,
                          check=False)
    return shim if done.returncode == 0 else None


def _prepend(variable: str, *values: str) -> str:
    return os.pathsep.join(p for p in (*values, os.environ.get(variable)) if p)


def caffe_blas_name() -> str:
    """The file name libcaffe asks the dynamic linker for (libopenblas_pinned.so.0 for the
    recipe's pinned build, libopenblas.so.0 for a system one)."""
    from bench.blas import caffe_library, needed_blas
    from bench.probe import caffe_root

    return needed_blas(caffe_library(caffe_root()))


def as_caffes_blas(name: str, library: Path, links_dir: Path = LINKS_DIR) -> str:
    """A folder in which `library` answers to Caffe's BLAS file name: put first on
    LD_LIBRARY_PATH (which outranks libcaffe's RUNPATH), Caffe computes with it, unrebuilt."""
    folder = links_dir / name / library.name
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / caffe_blas_name()
    if not link.is_symlink() or os.readlink(link) != str(library):
        link.unlink(missing_ok=True)
        link.symlink_to(library)
    return str(folder)


def kernel_override(coretype: str) -> dict:
    """Environment overrides selecting OpenBLAS's `coretype` kernels in one probe: the
    machine's own OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, if set, are dropped there (None)."""
    return {"OPENBLAS_CORETYPE": coretype,
            **{k: None for k in MACHINE_KERNEL_ENV[1:] if k in os.environ}}


def machine_kernel_note(overrides: dict) -> str:
    """' (…unset in this probe only)' when a lever overrides variables the machine sets."""
    dropped = [k for k in MACHINE_KERNEL_ENV if k in overrides and k in os.environ]
    if not dropped:
        return ""
    return (f" (this machine sets {', '.join(dropped)}; unset in this probe only, as every "
            f"other run keeps them)")


def mkl_library(mkl_dir: Path = MKL_DIR) -> Path | None:
    """libmkl_rt from the wheel `make bench-mkl` unpacks (bench/mkl.sh), if it is there."""
    found = sorted(mkl_dir.glob("*/libmkl_rt.so.*"))
    return found[-1] if found else None


def levers(cores: int, variants_dir: Path = VARIANTS_DIR, numpy_openblas: Path | None = None,
           unpatched: Path | None = None, mkl: Path | None = None,
           links_dir: Path = LINKS_DIR) -> list[tuple[str, dict, str]]:
    """(name, environment overrides, what it is) for every lever available here;
    `numpy_openblas` is the shim from build_numpy_openblas, `unpatched` the unpatched
    build's cache entry (bench.builds.unpatched_build), `mkl` libmkl_rt (mkl_library()).
    Every BLAS lever runs the same libcaffe on another library under Caffe's BLAS name."""
    from bench.builds import environment

    def library(name: str, path: Path, *extra_dirs: str) -> dict:
        return {"LD_LIBRARY_PATH": _prepend(
            "LD_LIBRARY_PATH", as_caffes_blas(name, path, links_dir), *extra_dirs)}

    threads = str(cores)
    found = [("default", {}, "the recipe's build and BLAS (pinned OpenBLAS, Haswell kernels, "
                             "thread-count invariant, the library's default threads: every "
                             "CPU of the process, as the harness runs it)")]
    if default_sgemm_path() == "avx512":
        found.append(("pinned-avx2-path", {"OPENBLAS_PINNED_SGEMM": "avx2"},
                      "the same pinned library on its AVX2 (Haswell) sgemm code, which the "
                      "AVX-512 path must equal bit for bit (caffe-recipe/NUMERICS.md)"))
    if unpatched is not None:
        found.append(("unpatched-build", environment(unpatched),
                      "the same recipe without patches 0002-0004 (bench.builds)"))
    haswell = kernel_override("Haswell")
    if SYSTEM_OPENBLAS.exists():
        system = {**library("system-openblas", SYSTEM_OPENBLAS.resolve()),
                  "OPENBLAS_NUM_THREADS": threads}
        found += [
            ("system-openblas", system, "the distribution's OpenBLAS, its own kernel choice "
                                        "for this CPU (what NUMERICS=native runs)"),
            ("system-openblas-haswell-kernels", {**system, **haswell},
             "the distribution's OpenBLAS with OPENBLAS_CORETYPE=Haswell" +
             machine_kernel_note(haswell)),
        ]
    if numpy_openblas is not None:
        newer = {**library("openblas-numpy", numpy_openblas), "OPENBLAS_NUM_THREADS": threads}
        found.append(("openblas-numpy", newer,
                      "numpy's bundled OpenBLAS (a newer release) through bench/blas_shim.c"))
        found.append(("openblas-numpy+haswell-kernels", {**newer, **haswell},
                      "numpy's OpenBLAS forced to its Haswell kernels" +
                      machine_kernel_note(haswell)))
    for variant, extra, what in (
            ("openblas-openmp", {"OMP_NUM_THREADS": threads},
             "the distribution's OpenMP build of the same OpenBLAS"),
            ("blis-pthread", {"BLIS_NUM_THREADS": threads}, "BLIS 0.9 (pthread), via its CBLAS"),
            ("blis-openmp", {"BLIS_NUM_THREADS": threads}, "BLIS 0.9 (OpenMP), via its CBLAS")):
        shipped = variants_dir / variant / "libopenblas.so.0"
        if shipped.exists():
            found.append((variant, {**library(variant, shipped.resolve()), **extra}, what))
    if mkl is not None:
        # libmkl_rt opens its computational and threading layers from LD_LIBRARY_PATH; the
        # GNU layer shares libgomp with Caffe's OpenMP pooling (no second OpenMP runtime)
        with_mkl = {**library("mkl", mkl, str(mkl.parent)), "MKL_THREADING_LAYER": "GNU",
                    "MKL_NUM_THREADS": threads}
        found += [
            ("mkl", with_mkl, f"Intel MKL ({mkl.parent.name}), its own code path for this CPU"),
            ("mkl-cnr-avx2", {**with_mkl, "MKL_CBWR": "AVX2,STRICT"},
             "MKL in conditional numerical reproducibility mode (MKL_CBWR=AVX2,STRICT: one "
             "code path on every AVX2 CPU, bits independent of the thread count)"),
        ]
    return found


def default_sgemm_path() -> str:
    """The sgemm code Caffe's pinned OpenBLAS chose on this CPU ('' for another BLAS)."""
    from bench.blas import caffe_library, linked_blas, open_blas, pinned_sgemm_path
    from bench.probe import caffe_root

    try:
        return pinned_sgemm_path(open_blas(linked_blas(caffe_library(caffe_root()))))
    except Exception:   # no build yet, another BLAS: no such lever
        return ""


def child_environment(overrides: dict) -> dict:
    """os.environ with `overrides` applied; a None value removes the variable."""
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def sgemm_by_blas(threads: int, sgemm_n: int, numpy_openblas: Path | None = None,
                  mkl: Path | None = None, timeout: float = 120) -> list[dict]:
    """The square-sgemm rate of every BLAS option here (the BLAS levers, not the build
    ones), each in its own process, at `threads` (the count the bench's timings use, set
    through each library: `default` included, so its row is the rate the timings ran at),
    then checked against numpy. A row whose library ran another count says so
    (`threads_match`) and is never the bound."""
    rows = []
    for name, overrides, what in levers(threads, numpy_openblas=numpy_openblas, mkl=mkl):
        if name == "unpatched-build":
            continue
        command = [sys.executable, "-m", "bench.probe", "--sgemm-only", "--sgemm-n",
                   str(sgemm_n), "--threads", str(threads)]
        try:
            done = subprocess.run(command, cwd=REPO, env=child_environment(overrides),
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            rows.append({"lever": name, "what": what, "error": "timed out"})
            continue
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            rows.append({"lever": name, "what": what, "error": tail[-1]})
            continue
        row = {"lever": name, "what": what, "env": overrides,
               **json.loads(done.stdout.strip().splitlines()[-1])}
        row["threads_match"] = row["blas"]["threads"] in (threads, -1)
        rows.append(row)
    return rows


def cpu_has_avx2() -> bool:
    from core.fingerprint import cpu

    return "avx2" in cpu()["cpu_flags"].split()


def is_fallback(corename: str) -> bool:
    """True when OpenBLAS runs pre-AVX2 kernels on a CPU that has AVX2 (core.fingerprint's
    rule, which training runs warn by)."""
    from core.fingerprint import is_generic_fallback

    return is_generic_fallback(corename, ["avx2"] if cpu_has_avx2() else [])


def machine_bound(rows: list[dict]) -> dict | None:
    """The best checked sgemm among the BLAS options, never a fallback kernel set."""
    usable = [r for r in rows if "sgemm" in r and r.get("correct")
              and r.get("threads_match", True) and not is_fallback(r["blas"]["corename"])]
    return max(usable, key=lambda r: r["sgemm"]["gflops"]) if usable else None


def sgemm_consistency(threads: int, in_process: float, rows: list[dict],
                      lever_rows: list[dict] | None, tolerance: float = 1.25) -> dict:
    """Caffe's BLAS measured three times in one run, at the same thread count: in the bench's
    own process (paired with the timings), in the side-by-side table and in the levers
    table. They must agree within `tolerance` (max ÷ min) or the run says so: a 'fwd /
    machine bound' built on one of them would otherwise be off by their ratio."""
    found = {"in-process": in_process}
    side = [r for r in rows if r["lever"] == "default" and "sgemm" in r]
    if side:
        found["side-by-side"] = side[0]["sgemm"]["gflops"]
    lever = [r for r in lever_rows or [] if r["lever"] == "default" and "sgemm" in r]
    if lever:
        found["levers"] = lever[0]["sgemm"]["gflops"]
    threads_seen = sorted({r["blas"]["threads"] for r in side + lever})
    spread = max(found.values()) / min(found.values())
    return {"threads": threads, "gflops": found, "threads_seen": threads_seen,
            "spread": spread, "consistent": spread <= tolerance and
            all(t == threads for t in threads_seen)}


def default_gflops(rows: list[dict], fallback: float) -> float:
    """Caffe's own BLAS in the side-by-side sgemm table (same process setup and moment as the
    other options, so their ratio is like for like); `fallback` when it has no such row."""
    found = [r for r in rows if r["lever"] == "default" and "sgemm" in r]
    return found[0]["sgemm"]["gflops"] if found else fallback


def probe(overrides: dict, save: Path, *, experiment: str, size: tuple[int, int],
          width: float, repeats: int, sgemm_n: int, timeout: float = 300,
          threads: int | None = None) -> dict:
    """Run bench.probe under os.environ + overrides; its JSON, or an 'error'."""
    env = child_environment(overrides)
    command = [sys.executable, "-m", "bench.probe", "--experiment", experiment,
               "--size", *map(str, size), "--width", str(width), "--repeats", str(repeats),
               "--sgemm-n", str(sgemm_n),
               "--save", str(save)] + (["--threads", str(threads)] if threads else [])
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
        only: tuple[str, ...] | None = STANDARD, unpatched: Path | None = None,
        numpy_openblas: Path | None = None, mkl: Path | None = None,
        deadline: float | None = None, progress=None) -> list[dict]:
    """Probe the available levers named in `only` (None: all), the default first; past
    `deadline` (time.monotonic()), the rest are listed as skipped."""
    chosen = [lv for lv in levers(cores, numpy_openblas=numpy_openblas, unpatched=unpatched,
                                  mkl=mkl)
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
                       repeats=repeats, sgemm_n=sgemm_n, threads=cores)
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
