"""The one ctypes binding of a BLAS shared object: load it, ask it about itself, call sgemm.

numpy bundles its own BLAS, so whatever must see the library Caffe computes with (the
numerics fingerprint, the benchmark's compute bound) opens that file with ctypes. The
signatures are declared here once; callers decide which library and what to do with it.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

# cblas.h's enums
CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS = 101, 111, 112

_SGEMM_ARGS = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int,
                                    ctypes.c_void_p, ctypes.c_int, ctypes.c_float,
                                    ctypes.c_void_p, ctypes.c_int]


def load(path: Path | str) -> ctypes.CDLL:
    """The shared object at `path` (OSError when it cannot be loaded), cblas_sgemm's
    signature declared where the library has one."""
    lib = ctypes.CDLL(str(path))
    if has_sgemm(lib):
        _declare_sgemm(lib)
    return lib


def _declare_sgemm(lib: ctypes.CDLL) -> None:
    lib.cblas_sgemm.restype = None
    lib.cblas_sgemm.argtypes = _SGEMM_ARGS


def has_sgemm(lib: ctypes.CDLL) -> bool:
    return hasattr(lib, "cblas_sgemm")


def library_text(lib: ctypes.CDLL, symbol: str) -> str:
    """The string a `const char *f(void)` query returns (openblas_get_config,
    openblas_get_corename), stripped; '' where the library has no such symbol."""
    if not hasattr(lib, symbol):
        return ""
    query = getattr(lib, symbol)
    query.restype = ctypes.c_char_p
    return query().decode().strip()


def openblas_threads(lib: ctypes.CDLL) -> int:
    """The threads an OpenBLAS GEMM may use now; -1 for a library that does not say."""
    if not hasattr(lib, "openblas_get_num_threads"):
        return -1
    lib.openblas_get_num_threads.restype = ctypes.c_int
    return lib.openblas_get_num_threads()


def set_openblas_threads(lib: ctypes.CDLL, threads: int) -> bool:
    """Set an OpenBLAS's thread count; False for a library that cannot."""
    if not hasattr(lib, "openblas_set_num_threads"):
        return False
    lib.openblas_set_num_threads(threads)
    return True


def sgemm(lib: ctypes.CDLL, a: np.ndarray, b: np.ndarray, out: np.ndarray, *,
          transpose_b: bool = False) -> np.ndarray:
    """out = a · b (a · bᵀ with transpose_b, the call Caffe's InnerProduct makes) through
    the library's cblas_sgemm: row-major, float32, C-contiguous."""
    for name, x in (("a", a), ("b", b), ("out", out)):
        if x.dtype != np.float32 or not x.flags.c_contiguous or x.ndim != 2:
            raise ValueError(f"sgemm: {name} must be a C-contiguous 2-D float32 array, found "
                             f"{x.dtype} {x.shape}")
    (m, k), (rows, cols) = a.shape, b.shape
    k2, n = (cols, rows) if transpose_b else (rows, cols)
    if k != k2 or out.shape != (m, n):
        raise ValueError(f"sgemm: shapes {a.shape} @ {b.shape}{'ᵀ' if transpose_b else ''} "
                         f"-> {out.shape} do not agree")
    _declare_sgemm(lib)  # also for a library opened elsewhere
    lib.cblas_sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS,
                    CBLAS_TRANS if transpose_b else CBLAS_NO_TRANS, m, n, k, 1.0,
                    a.ctypes.data, k, b.ctypes.data, cols, 0.0, out.ctypes.data, n)
    return out
