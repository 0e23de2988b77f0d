"""Does a BLAS give the same bits at every thread count? Every CBLAS routine Caffe calls, on
shapes that cross the library's blocking and partition boundaries, at each thread count.

    python tests/testkit/blas_threads.py LIBRARY [--threads 1,2,3,4,8,16] [--paths avx2,avx512]
                                         [--digests] [--max-size N]

prints one JSON line: {"threads": [...], "paths": [...], "calls": N, "differ": [names of calls
whose output bits differ between thread counts or sgemm paths]}, with --digests also
{"digests": {name: sha256 of its output}} (for comparing processes: another CPU, emulated).
The library must be an OpenBLAS (the count is set with openblas_set_num_threads, so one
process runs every count on the same inputs). --paths runs every call at every count on each
of the pinned library's sgemm paths in turn (openblas_pinned_set_sgemm_path, patch
caffe-recipe/patches/openblas/0002): "paths" lists those that really ran, so a CPU without
AVX-512 reports only avx2.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
from collections.abc import Iterator

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

# (M, N, K): FCN's convolution GEMMs (weights × columns, and both backward products) at
# small sizes, then shapes on each side of the kernels' tiles (8 or 4 rows, 12 or 8 columns),
# of the K and M block sizes (GEMM_Q 320/256, GEMM_P 320/512) and, with N = 62,500, of the
# column block GEMM_R; each also in every transposition.
GEMM_SHAPES = [
    (64, 62500, 27), (64, 4900, 576), (128, 1225, 1152), (512, 196, 4608), (21, 484, 4096),
    (576, 4900, 64), (64, 576, 4900), (4096, 36, 4608), (21, 1024, 64),
    (1, 1000, 300), (3, 13, 7), (9, 97, 333), (17, 25, 641), (333, 30, 700), (700, 5, 100),
    (100, 1000, 321), (321, 999, 1000), (8, 12, 320), (65, 4099, 33), (1000, 47, 1),
]
GEMV_SHAPES = [(64, 4900), (4096, 36), (21, 62500), (5, 3), (333, 1001), (1000, 1000)]
VECTOR_LENGTHS = [1, 7, 33, 1000, 10001, 250000, 1000003]


def _pointer(array: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(array.ctypes.data)


def _aligned(array: np.ndarray, alignment: int = 64) -> np.ndarray:
    """A copy of array at an address that is a multiple of alignment. Some kernels' bits
    follow the address (measured: sasum of the same 10,001 floats gives three different
    sums at the 16 float offsets within 64 bytes, so two processes gave two), so every input
    and output sits on a 64-byte boundary: two processes (another CPU, emulated) then
    compare like for like."""
    raw = np.empty(array.nbytes + alignment, np.uint8)
    start = (-raw.ctypes.data) % alignment
    out = raw[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def calls(lib: ctypes.CDLL, dtype: type,
          max_size: float = float("inf")) -> Iterator[tuple[str, object]]:
    """(name, function) pairs; each function runs one call and returns its output array.
    Calls whose work (m·n·k of a GEMM, m·n of a GEMV, a vector's length) exceeds max_size
    are left out (an emulated CPU computes ~1000× slower)."""
    letter = "s" if dtype is np.float32 else "d"
    real = ctypes.c_float if dtype is np.float32 else ctypes.c_double
    rng = np.random.default_rng(0)

    def data(*shape: int) -> np.ndarray:
        return _aligned(rng.standard_normal(shape).astype(dtype))

    gemm = getattr(lib, f"cblas_{letter}gemm")
    for m, n, k in GEMM_SHAPES:
        if m * n * k > max_size:
            continue
        for ta in (NO_TRANS, TRANS):
            for tb in (NO_TRANS, TRANS):
                a = data(*((m, k) if ta == NO_TRANS else (k, m)))
                b = data(*((k, n) if tb == NO_TRANS else (n, k)))
                c0 = data(m, n)
                for beta in (0.0, 1.0):
                    def run(a=a, b=b, c0=c0, ta=ta, tb=tb, m=m, n=n, k=k, beta=beta):
                        c = _aligned(c0)
                        gemm(ROW_MAJOR, ta, tb, m, n, k, real(1.0), _pointer(a), a.shape[1],
                             _pointer(b), b.shape[1], real(beta), _pointer(c), n)
                        return c
                    transposes = "NT"[ta - NO_TRANS] + "NT"[tb - NO_TRANS]
                    yield f"{letter}gemm {m}x{n}x{k} {transposes} beta={beta:g}", run

    gemv = getattr(lib, f"cblas_{letter}gemv")
    for m, n in GEMV_SHAPES:
        if m * n > max_size:
            continue
        a = data(m, n)
        for trans in (NO_TRANS, TRANS):
            x = data(n if trans == NO_TRANS else m)
            y0 = data(m if trans == NO_TRANS else n)
            def run(a=a, x=x, y0=y0, trans=trans, m=m, n=n):
                y = _aligned(y0)
                gemv(ROW_MAJOR, trans, m, n, real(1.0), _pointer(a), n, _pointer(x), 1,
                     real(1.0), _pointer(y), 1)
                return y
            yield f"{letter}gemv {m}x{n} {'NT'[trans - NO_TRANS]}", run

    dot, asum = getattr(lib, f"cblas_{letter}dot"), getattr(lib, f"cblas_{letter}asum")
    dot.restype = asum.restype = real
    axpy, scal = getattr(lib, f"cblas_{letter}axpy"), getattr(lib, f"cblas_{letter}scal")
    axpby = getattr(lib, f"cblas_{letter}axpby")
    for length in VECTOR_LENGTHS:
        if length > max_size:
            continue
        x, y0 = data(length), data(length)

        def run_dot(x=x, y0=y0, n=length):
            return np.array(dot(n, _pointer(x), 1, _pointer(y0), 1), dtype)

        def run_asum(x=x, n=length):
            return np.array(asum(n, _pointer(x), 1), dtype)

        def run_axpy(x=x, y0=y0, n=length):
            y = _aligned(y0)
            axpy(n, real(0.37), _pointer(x), 1, _pointer(y), 1)
            return y

        def run_axpby(x=x, y0=y0, n=length):
            y = _aligned(y0)
            axpby(n, real(0.37), _pointer(x), 1, real(0.9), _pointer(y), 1)
            return y

        def run_scal(x=x, n=length):
            y = _aligned(x)
            scal(n, real(0.37), _pointer(y), 1)
            return y
        yield f"{letter}dot {length}", run_dot
        yield f"{letter}asum {length}", run_asum
        yield f"{letter}axpy {length}", run_axpy
        yield f"{letter}axpby {length}", run_axpby
        yield f"{letter}scal {length}", run_scal


PATHS = ("avx2", "avx512")


def sgemm_path(lib: ctypes.CDLL) -> str:
    """The pinned library's sgemm path in force ('avx2' or 'avx512'); '' for a library
    without the query (before patch 0002, or another BLAS)."""
    if not hasattr(lib, "openblas_pinned_sgemm_path"):
        return ""
    lib.openblas_pinned_sgemm_path.restype = ctypes.c_char_p
    return lib.openblas_pinned_sgemm_path().decode()


def set_sgemm_path(lib: ctypes.CDLL, path: str) -> str:
    """Ask for an sgemm path between calls; returns the one in force (AVX-512 is refused
    where the CPU or OS lacks it)."""
    if not hasattr(lib, "openblas_pinned_set_sgemm_path"):
        raise SystemExit("this library has no openblas_pinned_set_sgemm_path (a pinned build "
                         "before caffe-recipe/patches/openblas/0002, or another BLAS)")
    lib.openblas_pinned_set_sgemm_path(int(path == "avx512"))
    return sgemm_path(lib)


def sweep(library: str, threads: list[int], paths: list[str] | None = None,
          keep_digests: bool = False, max_size: float = float("inf")) -> dict:
    """Run every call at every thread count (on each sgemm path, if given); the names of
    those whose bits differ."""
    lib = ctypes.CDLL(library)
    lib.openblas_get_num_threads.restype = ctypes.c_int
    digests: dict[str, set[str]] = {}
    got_threads, got_paths = [], []
    for dtype in (np.float32, np.float64):
        table = list(calls(lib, dtype, max_size))
        for path in paths or [None]:
            got_paths.append(sgemm_path(lib) if path is None else set_sgemm_path(lib, path))
            for count in threads:
                lib.openblas_set_num_threads(count)
                got_threads.append(lib.openblas_get_num_threads())
                for name, run in table:
                    digest = hashlib.sha256(run().tobytes()).hexdigest()
                    digests.setdefault(name, set()).add(digest)
    result = {"threads": sorted(set(got_threads)), "paths": sorted(set(got_paths)),
              "calls": len(digests),
              "differ": sorted(name for name, seen in digests.items() if len(seen) > 1)}
    if keep_digests:
        result["digests"] = {name: "+".join(sorted(seen)) for name, seen in digests.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", help="path of the OpenBLAS shared library to load")
    parser.add_argument("--threads", default="1,2,3,4,8,16",
                        help="comma-separated thread counts (default: 1,2,3,4,8,16)")
    parser.add_argument("--paths", help="comma-separated sgemm paths of the pinned library "
                        f"to run each call on ({','.join(PATHS)}; default: the one it chose)")
    parser.add_argument("--digests", action="store_true",
                        help="also print each call's output digest")
    parser.add_argument("--max-size", type=float, default=float("inf"),
                        help="leave out calls with more work than this (m·n·k, m·n, length)")
    args = parser.parse_args()
    paths = args.paths.split(",") if args.paths else None
    if paths and set(paths) - set(PATHS):
        parser.error(f"--paths: each of {', '.join(PATHS)}")
    print(json.dumps(sweep(args.library, [int(t) for t in args.threads.split(",")], paths,
                           args.digests, args.max_size)))


if __name__ == "__main__":
    main()
