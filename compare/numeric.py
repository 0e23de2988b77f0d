"""Bitwise, absolute and ULP differences between two arrays of the same dtype and size.

Works in chunks so two 400 MB blobs (FCN's fc6) compare without gigabytes of temporaries.
ULP distance counts the representable floats between two values: 1 means neighbours,
which is what a different summation order typically produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 1 << 22


@dataclass
class ArrayDiff:
    """How two equally sized arrays differ; all zero when they are bitwise identical."""
    count: int = 0
    differing: int = 0           # elements whose bits differ
    first_index: int = -1        # flat index of the first differing element
    max_abs: float = 0.0         # over elements where both are finite
    max_ulp: int = 0             # over elements where both are finite
    nan_mismatch: int = 0        # NaN in one, not in the other (or inf vs finite)

    @property
    def identical(self) -> bool:
        return self.differing == 0


def ordered_bits(values: np.ndarray) -> np.ndarray:
    """Map floats to int64 keys ordered like the floats (+0 and -0 both to 0)."""
    bits = values.view(f"<i{values.dtype.itemsize}").astype(np.int64)
    magnitude = bits & np.int64((1 << (values.dtype.itemsize * 8 - 1)) - 1)
    return np.where(bits < 0, -magnitude, magnitude)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-element count of representable values between finite a and b (uint64, exact)."""
    ka, kb = ordered_bits(a), ordered_bits(b)
    high, low = np.maximum(ka, kb), np.minimum(ka, kb)
    return high.view(np.uint64) - low.view(np.uint64)  # exact: the true gap is < 2**64


def compare_arrays(a: np.ndarray, b: np.ndarray) -> ArrayDiff:
    """Compare two flat arrays element by element; float dtypes also get abs/ULP figures."""
    a, b = np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1)
    if a.dtype != b.dtype or a.size != b.size:
        raise ValueError(f"cannot compare {a.dtype}[{a.size}] with {b.dtype}[{b.size}]")
    result = ArrayDiff(count=a.size)
    is_float = a.dtype.kind == "f"
    raw = np.dtype(f"V{a.dtype.itemsize}")
    for start in range(0, a.size, CHUNK):
        ca, cb = a[start:start + CHUNK], b[start:start + CHUNK]
        differ = ca.view(raw) != cb.view(raw)
        n = int(np.count_nonzero(differ))
        if not n:
            continue
        if result.first_index < 0:
            result.first_index = start + int(np.argmax(differ))
        result.differing += n
        da, db = ca[differ], cb[differ]
        if not is_float:
            diff = np.abs(da.astype(np.float64) - db.astype(np.float64))
            result.max_abs = max(result.max_abs, float(diff.max()))
            continue
        finite = np.isfinite(da) & np.isfinite(db)
        both_nan = np.isnan(da) & np.isnan(db)  # NaNs with different payloads
        result.nan_mismatch += int(np.count_nonzero(~finite & ~both_nan
                                                    & (da != db)))
        if finite.any():
            fa, fb = da[finite], db[finite]
            diff = np.abs(fa.astype(np.float64) - fb.astype(np.float64))
            result.max_abs = max(result.max_abs, float(diff.max()))
            result.max_ulp = max(result.max_ulp, int(ulp_distance(fa, fb).max()))
    return result
