"""Memory, as the recipe's Caffe takes it and as Linux reports it for one process.

- The im2col column buffer. The recipe's Caffe keeps one per thread for every convolution
  (caffe-recipe/patches/0004), grown to the largest request so far. A convolution whose
  whole im2col matrix would exceed CAFFE_COLUMN_LIMIT values fills it a chunk at a time
  (patches/0007), so it asks only for a chunk's worth. `column_values` is the patch's
  plan_column_chunks and chunk sizes, and the constants below are its constants: every
  memory estimate (evaluation.tiling, evaluation.runtime) reads them here.
- A process's peak resident memory. getrusage's ru_maxrss is no use in a child: execve
  carries the pre-exec process's high-water RSS into it (fs/exec.c), and that process is a
  fork (or vfork) of the parent, so a probe started by a 500 MB pytest reports at least
  500 MB. VmHWM (/proc/self/status) belongs to the address space exec creates, so it
  counts the probe alone: `peak_rss_bytes`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

# caffe-recipe/patches/0007-conv-column-chunks.patch (base_conv_layer.cpp), named once here
COLUMN_LIMIT_VARIABLE = "CAFFE_COLUMN_LIMIT"  # values a whole im2col matrix may hold
DEFAULT_COLUMN_LIMIT = 2**25  # its default: 32 Mi floats (128 MiB); 0 never chunks
GEMM_BLOCK = 320  # kGemmBlock: SGEMM GEMM_P and GEMM_Q of the pinned Haswell build
GEMM_COLUMNS = 12  # kGemmColumns: the kernels' column piece (3 * SGEMM_UNROLL_N)
GEMM_NARROW_COLUMNS = 4  # kGemmNarrowColumns: SGEMM_UNROLL_N


def column_limit() -> int:
    """CAFFE_COLUMN_LIMIT as Caffe reads it (strtoull: its leading digits; unset or empty:
    the default; no digits: 0, chunking off)."""
    text = os.environ.get(COLUMN_LIMIT_VARIABLE, "")
    if not text:
        return DEFAULT_COLUMN_LIMIT
    digits = re.match(r"\s*\+?(\d*)", text).group(1)
    return int(digits) if digits else 0


def column_values(layer_type: str, bottom: Sequence[int], top: Sequence[int],
                  kernel: tuple[int, int], *, group: int = 1, one_by_one: bool = False,
                  force_nd_im2col: bool = False, training: bool = False,
                  limit: int | None = None) -> int:
    """Values of the shared column buffer that one Convolution or Deconvolution of the
    recipe's Caffe asks for at these (N, C, H, W) blob shapes: none for a 1×1 (stride 1,
    no pad) one, whose GEMM reads its input directly; the whole im2col matrix (input
    channels · taps × output positions; a deconvolution's are reversed) up to `limit`
    (default: column_limit()); above it, the largest chunk buffer the patch requests:
    a forward im2col chunk (also the weight gradient's) and, when training or for a
    deconvolution's col2im, a chunk of rows."""
    if one_by_one:
        return 0
    image, columns = (top, bottom) if layer_type == "Deconvolution" else (bottom, top)
    area = kernel[0] * kernel[1]
    kernel_dim = image[1] // group * area  # one group's rows (Caffe's kernel_dim_)
    spatial = math.prod(columns[2:])  # conv_out_spatial_dim_
    whole = kernel_dim * group * spatial
    limit = column_limit() if limit is None else limit
    if (group != 1 or force_nd_im2col or len(kernel) != 2 or limit == 0
            or kernel_dim * spatial <= limit):
        return whole
    blocks = max(1, limit // kernel_dim // GEMM_BLOCK)
    chunk_columns = min(blocks * GEMM_BLOCK, -(-spatial // GEMM_BLOCK) * GEMM_BLOCK)
    overlap = GEMM_BLOCK if columns[1] % GEMM_COLUMNS > GEMM_NARROW_COLUMNS else 0
    unit = math.lcm(area, GEMM_COLUMNS)
    chunk_rows = min(max(1, limit // spatial // unit) * unit, kernel_dim)
    im2col = kernel_dim * (chunk_columns + 2 * GEMM_BLOCK + overlap)
    col2im = chunk_rows * spatial
    if training:  # forward, weight gradient (at most im2col's) and input gradient
        return max(im2col, col2im)
    return col2im if layer_type == "Deconvolution" else im2col


def status_bytes(field: str) -> int | None:
    """A size from /proc/self/status (VmSize, VmRSS, VmHWM …), bytes; None if unreadable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_bytes() -> int:
    """This process's high-water resident set size since its exec (VmHWM): its own peak,
    whatever the size of the process that started it (see the module's docstring)."""
    peak = status_bytes("VmHWM")
    if peak is None:
        raise RuntimeError("/proc/self/status has no readable VmHWM line (Linux's per-process "
                           "peak RSS); these measurements need Linux's /proc")
    return peak
