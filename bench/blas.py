"""The compute limit of this machine as Caffe sees it: sgemm GFLOP/s of the BLAS libcaffe links.

numpy bundles its own BLAS, so timing `a @ b` would measure the wrong library. Here the
library is found the way the dynamic linker finds it for libcaffe.so (`ldd`), opened with
ctypes and asked for one large square single-precision GEMM, C = A·B, 2·n³ flops.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core import blas as binding
from core.blas import CBLAS_NO_TRANS, CBLAS_ROW_MAJOR  # noqa: F401  (this module's names too)
from core.errors import ReportedError

BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
            "BLIS_NUM_THREADS", "GOTO_NUM_THREADS", "LD_LIBRARY_PATH", "OPENBLAS_PINNED_SGEMM")


# MKL's code-path constants (mkl_types.h): what MKL_CBWR_Get reports, and its STRICT bit
MKL_CBWR_ALL, MKL_CBWR_STRICT = -1, 0x10000
MKL_CBWR_BRANCHES = {1: "off", 2: "auto", 3: "compatible", 4: "SSE2", 8: "SSE4_2", 10: "AVX2",
                     12: "AVX512", 14: "AVX512_E1", 15: "AVX10"}


class BlasError(ReportedError, RuntimeError):
    """The BLAS Caffe links could not be found or does not provide cblas_sgemm."""


def caffe_library(caffe_root: Path | str) -> Path:
    """libcaffe.so of the build at caffe_root (the folder named by .venv/caffe-root)."""
    lib = Path(caffe_root) / "build/lib/libcaffe.so"
    if not lib.exists():
        raise BlasError(f"{lib}: not found; is Caffe built (`make setup`)?")
    return lib


def _ldd_blas(library: Path | str, env: dict[str, str] | None) -> tuple[str, Path]:
    """(the BLAS file name `library` asks for, the file the dynamic linker gives it)."""
    result = subprocess.run(["ldd", str(library)], capture_output=True, text=True,
                            env=env if env is not None else os.environ.copy(), check=False)
    if result.returncode != 0:
        raise BlasError(f"ldd {library} failed: {result.stderr.strip()}")
    for line in result.stdout.splitlines():
        match = re.match(r"\s*(lib(?:open)?blas[^ ]*\.so[^ ]*) => (\S+)", line)
        if match:
            return match.group(1), Path(match.group(2))
    raise BlasError(f"{library} links no libblas/libopenblas (ldd says:\n{result.stdout})")


def linked_blas(library: Path | str, env: dict[str, str] | None = None) -> Path:
    """The BLAS shared object `library` loads, resolved by ldd under `env` (so an
    LD_LIBRARY_PATH lever is honoured) and followed through the alternatives' symlinks."""
    return _ldd_blas(library, env)[1].resolve()


def needed_blas(library: Path | str) -> str:
    """The BLAS file name `library` needs (libopenblas_pinned.so.0 for the recipe's pinned
    build): the name another BLAS must answer to on LD_LIBRARY_PATH to replace it."""
    return _ldd_blas(library, None)[0]


@dataclass(frozen=True)
class BlasInfo:
    path: str          # the resolved shared object
    config: str        # openblas_get_config(), or '' for another BLAS
    corename: str      # the kernel set OpenBLAS picked (OPENBLAS_CORETYPE overrides it)
    threads: int       # threads a GEMM may use (openblas_get_num_threads), -1 if unknown
    env: dict          # the BLAS-related environment variables as set in this process
    sgemm_path: str = ""   # the pinned library's sgemm code, 'avx512' or 'avx2' (patch 0002)

    def as_dict(self) -> dict:
        return asdict(self)


def open_blas(path: Path | str) -> ctypes.CDLL:
    """Load the BLAS (core.blas declares cblas_sgemm's signature)."""
    try:
        lib = binding.load(path)
    except OSError as e:
        raise BlasError(f"{path}: cannot be loaded ({e})") from None
    if not binding.has_sgemm(lib):
        raise BlasError(f"{path}: has no cblas_sgemm")
    return lib


def describe(lib: ctypes.CDLL, path: Path | str) -> BlasInfo:
    """What the loaded library says about itself (OpenBLAS answers; others give blanks)."""
    threads = -1
    config = binding.library_text(lib, "openblas_get_config")
    corename = binding.library_text(lib, "openblas_get_corename")
    if hasattr(lib, "MKL_Get_Version_String"):  # MKL: version, code path, threads
        buffer = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buffer, len(buffer))
        config = buffer.value.decode().split(" for ")[0]
        lib.MKL_CBWR_Get.restype = lib.MKL_CBWR_Get_Auto_Branch.restype = ctypes.c_int
        lib.MKL_CBWR_Get.argtypes = [ctypes.c_int]
        # the code-path setting in force (MKL_CBWR): 'off' when unset; MKL answers 'auto'
        # for a branch it does not honour on this CPU (AVX2 on AMD, measured)
        mode = lib.MKL_CBWR_Get(MKL_CBWR_ALL)
        branch = MKL_CBWR_BRANCHES.get(mode & ~MKL_CBWR_STRICT, str(mode & ~MKL_CBWR_STRICT))
        corename = f"MKL cbwr={branch}{' strict' if mode & MKL_CBWR_STRICT else ''}"
        lib.mkl_get_max_threads.restype = ctypes.c_int
        threads = lib.mkl_get_max_threads()
    elif hasattr(lib, "openblas_get_num_threads"):
        threads = binding.openblas_threads(lib)
    elif hasattr(lib, "bli_arch_query_id"):  # BLIS: its sub-configuration and threads
        lib.bli_arch_query_id.restype = ctypes.c_int
        lib.bli_arch_string.restype = ctypes.c_char_p
        lib.bli_arch_string.argtypes = [ctypes.c_int]
        config, corename = "BLIS", lib.bli_arch_string(lib.bli_arch_query_id()).decode()
        lib.bli_thread_get_num_threads.restype = ctypes.c_int
        threads = lib.bli_thread_get_num_threads()
    env = {k: os.environ[k] for k in BLAS_ENV if k in os.environ}
    return BlasInfo(str(path), config, corename, threads, env, pinned_sgemm_path(lib))


def pinned_sgemm_path(lib: ctypes.CDLL) -> str:
    """Which sgemm code the pinned OpenBLAS runs ('avx512' or 'avx2', chosen when it loaded:
    caffe-recipe/patches/openblas/0002); '' for any other BLAS."""
    if not hasattr(lib, "openblas_pinned_sgemm_path"):
        return ""
    lib.openblas_pinned_sgemm_path.restype = ctypes.c_char_p
    return lib.openblas_pinned_sgemm_path().decode()


def set_threads(lib: ctypes.CDLL, threads: int) -> int:
    """Ask the library for `threads` GEMM threads (OpenBLAS, MKL, BLIS); the count it then
    reports (-1 when it cannot say). The one way every sgemm rate of a bench run is taken:
    at the thread count its timings use, set through the library itself."""
    if hasattr(lib, "openblas_set_num_threads"):
        lib.openblas_set_num_threads(threads)
        lib.openblas_get_num_threads.restype = ctypes.c_int
        return lib.openblas_get_num_threads()
    if hasattr(lib, "MKL_Set_Num_Threads"):
        lib.MKL_Set_Num_Threads(threads)
        lib.mkl_get_max_threads.restype = ctypes.c_int
        return lib.mkl_get_max_threads()
    if hasattr(lib, "bli_thread_set_num_threads"):
        lib.bli_thread_set_num_threads(ctypes.c_long(threads))
        lib.bli_thread_get_num_threads.restype = ctypes.c_int
        return lib.bli_thread_get_num_threads()
    return -1


def sgemm(lib: ctypes.CDLL, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a @ b through the library's cblas_sgemm (row-major, float32, contiguous)."""
    return binding.sgemm(lib, a, b, out)


class SgemmProbe:
    """One n×n×n sgemm per call, returning its GFLOP/s; arrays are made once, so a probe
    can run right before each timing and the bound is measured under the same load."""

    def __init__(self, lib: ctypes.CDLL, n: int = 4096, seed: int = 0):
        rng = np.random.RandomState(seed)
        self.lib, self.n = lib, n
        self.a = rng.standard_normal((n, n)).astype(np.float32)
        self.b = rng.standard_normal((n, n)).astype(np.float32)
        self.out = np.empty((n, n), np.float32)

    def __call__(self) -> float:
        start = time.perf_counter()
        sgemm(self.lib, self.a, self.b, self.out)
        return 2.0 * self.n ** 3 / (time.perf_counter() - start) / 1e9


def sgemm_gflops(lib: ctypes.CDLL, n: int = 4096, repeats: int = 5, seed: int = 0) -> dict:
    """Median GFLOP/s of an n×n×n sgemm (after one warm-up call), with every run's figure."""
    probe = SgemmProbe(lib, n, seed)
    probe()  # warm-up: thread pool start, page faults
    rates = [probe() for _ in range(repeats)]
    return {"n": n, "gflops": float(np.median(rates)), "runs": [round(r, 2) for r in rates]}
