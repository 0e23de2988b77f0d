"""Median wall-clock timing: these machines are shared and noisy, so one run means little.

The first call is a warm-up (allocations, page faults, thread pools starting) and is
reported apart; the figure used is the median of the repeats, with all of them kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np


def timed(fn: Callable[[], object], repeats: int, *, warmup: int = 1) -> dict:
    """Call fn warmup + repeats times; the median and every repeat's seconds."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    warm = []
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return {"median_s": float(np.median(runs)), "runs_s": [round(r, 4) for r in runs],
            "warmup_s": [round(w, 4) for w in warm]}


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: how busy the shared machine was."""
    return [round(x, 2) for x in os.getloadavg()]
