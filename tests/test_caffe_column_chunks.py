"""Column chunks (caffe-recipe/patches/0007): a convolution whose im2col matrix would exceed
CAFFE_COLUMN_LIMIT values computes its GEMMs a chunk at a time, and every output and
gradient keeps its bits, because the chunks fall where the pinned OpenBLAS blocks the whole
GEMM anyway (caffe-recipe/NUMERICS.md, "Column chunks").

- the rule itself, on the library: chunks at the library's 320-wide M and K blocks, the
  last one at least two blocks long (a forward chunk restarting one block early when the
  output channels leave a 5-11 column tail; bottom-gradient rows in 12s) give the whole
  GEMM's bits, other places do not;
- Caffe: FCN-8s forward and a training iteration with every convolution chunked at the
  smallest chunks (CAFFE_COLUMN_LIMIT=1) against no chunking (0), at 1 and 3 threads, on
  both sgemm paths, and the recorded forward digest with chunking on;
- the memory it saves: a 500×500 forward's peak RSS with a small limit against none, each
  the probe's own peak, however large the process that starts it.
Each setting is a fresh process (the limit is read once, when a layer first plans).
"""

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.memory import GEMM_BLOCK
from testkit.numerics_probe import PINNED_SCORE

REPO = Path(__file__).resolve().parents[1]
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
BLOCK = GEMM_BLOCK  # the pinned library's SGEMM GEMM_P and GEMM_Q


def probe(script: str, *args: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, f"tests/testkit/{script}", *args], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **env},
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


class Gemm:
    """cblas_sgemm of the pinned library on numpy arrays, with offsets and leading dims."""

    def __init__(self, path: Path):
        self.lib = ctypes.CDLL(str(path))
        self.lib.openblas_set_num_threads(2)

    def __call__(self, ta, tb, m, n, k, a, a_offset, lda, b, b_offset, ldb, beta, c,
                 c_offset, ldc):
        def pointer(array, offset):
            return ctypes.c_void_p(array.ctypes.data + 4 * offset)
        self.lib.cblas_sgemm(ROW_MAJOR, ta, tb, m, n, k, ctypes.c_float(1.0),
                             pointer(a, a_offset), lda, pointer(b, b_offset), ldb,
                             ctypes.c_float(beta), pointer(c, c_offset), ldc)


@pytest.fixture(scope="module")
def gemm(pinned_library):
    return Gemm(pinned_library)


def differing(a, b) -> int:
    return int((a.view(np.uint32) != b.view(np.uint32)).sum())


SPATIAL, KERNEL_DIM = 4001, 72
rng = np.random.default_rng(0)


def chunk_bounds(chunk: int, closing: bool = True) -> list[tuple[int, int]]:
    """[start, end) of each chunk of SPATIAL columns, as base_conv_layer.cpp cuts them: at
    multiples of `chunk`, the last one at least two blocks long (the drivers split their
    last < 640 columns in halves); closing=False lets the last one be as short as it falls."""
    room = SPATIAL - 2 * BLOCK
    last = room // chunk * chunk if closing and room >= chunk else 0
    if not closing:
        last = (SPATIAL - 1) // chunk * chunk
    starts = list(range(0, last + 1, chunk))
    return [(s, SPATIAL if s == last else s + chunk) for s in starts]


def forward_chunks(gemm, channels: int, chunk: int, overlap: int, closing: bool = True) -> int:
    """Output elements whose bits differ between the whole forward GEMM and chunks of
    `chunk` output pixels, last first, each starting `overlap` columns early."""
    w = rng.standard_normal((channels, KERNEL_DIM), dtype=np.float32)
    col = rng.standard_normal((KERNEL_DIM, SPATIAL), dtype=np.float32)
    whole = np.zeros((channels, SPATIAL), np.float32)
    gemm(NO_TRANS, NO_TRANS, channels, SPATIAL, KERNEL_DIM, w, 0, KERNEL_DIM, col, 0,
         SPATIAL, 0.0, whole, 0, SPATIAL)
    chunked = np.full_like(whole, np.nan)
    for start, end in reversed(chunk_bounds(chunk, closing)):
        first = max(0, start - overlap)
        part = np.ascontiguousarray(col[:, first:end])   # what im2col_columns_cpu writes
        gemm(NO_TRANS, NO_TRANS, channels, end - first, KERNEL_DIM, w, 0, KERNEL_DIM, part,
             0, end - first, 0.0, chunked, first, SPATIAL)
    return differing(whole, chunked)


def weight_chunks(gemm, chunk: int, closing: bool = True) -> int:
    top = rng.standard_normal((16, SPATIAL), dtype=np.float32)
    col = rng.standard_normal((KERNEL_DIM, SPATIAL), dtype=np.float32)
    start_value = rng.standard_normal((16, KERNEL_DIM), dtype=np.float32)
    whole, chunked = start_value.copy(), start_value.copy()
    gemm(NO_TRANS, TRANS, 16, KERNEL_DIM, SPATIAL, top, 0, SPATIAL, col, 0, SPATIAL, 1.0,
         whole, 0, KERNEL_DIM)
    for start, end in chunk_bounds(chunk, closing):
        part = np.ascontiguousarray(col[:, start:end])
        gemm(NO_TRANS, TRANS, 16, KERNEL_DIM, end - start, top, start, SPATIAL, part, 0,
             end - start, 1.0, chunked, 0, KERNEL_DIM)
    return differing(whole, chunked)


def bottom_chunks(gemm, rows: int) -> int:
    w = rng.standard_normal((16, KERNEL_DIM), dtype=np.float32)
    top = rng.standard_normal((16, SPATIAL), dtype=np.float32)
    whole = np.zeros((KERNEL_DIM, SPATIAL), np.float32)
    gemm(TRANS, NO_TRANS, KERNEL_DIM, SPATIAL, 16, w, 0, KERNEL_DIM, top, 0, SPATIAL, 0.0,
         whole, 0, SPATIAL)
    chunked = np.full_like(whole, np.nan)
    for row in range(0, KERNEL_DIM, rows):
        end = min(KERNEL_DIM, row + rows)
        gemm(TRANS, NO_TRANS, end - row, SPATIAL, 16, w, row, KERNEL_DIM, top, 0, SPATIAL,
             0.0, chunked, row * SPATIAL, SPATIAL)
    return differing(whole, chunked)


@pytest.mark.parametrize("channels", [16, 24, 8, 21])   # column tails 4, 0, 8, 9
def test_forward_chunks_at_the_librarys_blocks_keep_every_bit(gemm, channels):
    assert forward_chunks(gemm, channels, 2 * BLOCK, BLOCK) == 0
    if channels % 12 <= 4:   # no 5-11 column tail: no restart needed
        assert forward_chunks(gemm, channels, 2 * BLOCK, 0) == 0
    else:                    # the tail's first block differs without it
        assert forward_chunks(gemm, channels, 2 * BLOCK, 0) > 0
    assert forward_chunks(gemm, channels, 600, BLOCK) > 0   # off the blocks
    if channels >= 12:  # 12-column pieces, whose sums follow the row's place in a block:
        # a last chunk shorter than the drivers' closing blocks (4001 = 6 * 640 + 161)
        assert forward_chunks(gemm, channels, 2 * BLOCK, BLOCK, closing=False) > 0


def test_weight_gradient_chunks_at_the_librarys_blocks_keep_every_bit(gemm):
    assert weight_chunks(gemm, BLOCK) == 0 and weight_chunks(gemm, 3 * BLOCK) == 0
    assert weight_chunks(gemm, 1000) > 0
    assert weight_chunks(gemm, BLOCK, closing=False) > 0


def test_bottom_gradient_chunks_of_twelve_rows_keep_every_bit(gemm):
    assert bottom_chunks(gemm, 36) == 0 and bottom_chunks(gemm, 12) == 0
    assert bottom_chunks(gemm, 9) > 0


@pytest.mark.parametrize("threads, sgemm_path", [("1", "avx2"), ("3", "default")])
def test_a_chunked_training_iteration_has_the_whole_gemms_bits(pinned_library, threads,
                                                               sgemm_path):
    """sgemm_path: the library's own choice (AVX-512 where the CPU has it) or its AVX2 code
    (OPENBLAS_PINNED_SGEMM=avx2; any other value changes nothing)."""
    args = ("--mode", "train", "--size", "64", "--threads", threads)
    env = {"OPENBLAS_PINNED_SGEMM": sgemm_path}
    whole = probe("column_chunks_probe.py", *args, CAFFE_COLUMN_LIMIT="0", **env)
    chunked = probe("column_chunks_probe.py", *args, CAFFE_COLUMN_LIMIT="1", **env)
    assert len(whole["digests"]) > 40 and "conv1_1.diff" in whole["digests"]
    assert chunked["digests"] == whole["digests"]


def test_the_recorded_forward_with_every_convolution_chunked(pinned_library):
    for threads in ("1", "3"):
        result = probe("numerics_probe.py", "--threads", threads, CAFFE_COLUMN_LIMIT="1")
        assert result["score"] == PINNED_SCORE


def test_chunks_keep_a_large_layers_bits_and_save_its_columns(pinned_library):
    """conv1_2 at 500×500 and width 1/8: 72 × 698² values (140 MB) whole; chunked under a
    limit of 4 Mi values, the process peaks over 100 MB lower, with the same forward."""
    whole = probe("column_chunks_probe.py", "--size", "500", CAFFE_COLUMN_LIMIT="0")
    chunked = probe("column_chunks_probe.py", "--size", "500", CAFFE_COLUMN_LIMIT="4194304")
    assert chunked["digests"] == whole["digests"]
    assert whole["peak_rss_mib"] - chunked["peak_rss_mib"] > 100


def test_a_probes_peak_is_its_own_whatever_the_size_of_its_parent(pinned_library):
    """The probe's peak is its own: started by a process holding 768 MiB (the whole suite's
    pytest grows past 500 MiB), a 64×64 forward still reports its ~100 MiB. getrusage's
    ru_maxrss would report at least the parent's size, since execve carries the pre-exec
    process's high-water RSS into the new one (core.memory): inside the whole suite, the
    test above once read 517.04 MiB for both of its probes."""
    held = np.ones(768 * 2**20 // 8)  # touched, so resident in this (the parent) process
    small = probe("column_chunks_probe.py", "--size", "64")
    assert held.sum() == held.size
    assert 20 < small["peak_rss_mib"] < 384, small["peak_rss_mib"]
