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


def timed_against_bound(fn: Callable[[], object], flops: int, probe: Callable[[], float],
                        repeats: int, *, warmup: int = 1) -> dict:
    """Like timed, with one sgemm probe (returning GFLOP/s) right before each repeat.

    Each repeat's ratio to the bound, time ÷ (flops ÷ that probe's rate), compares two
    measurements taken moments apart, so a neighbour's load shifts both; the median of
    these paired ratios is the figure to trust on a shared machine.
    """
    result = timed(fn, 1, warmup=max(0, warmup - 1))
    result["warmup_s"] += result.pop("runs_s")
    runs, rates = [], []
    for _ in range(repeats):
        rates.append(probe())
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return {**paired(runs, rates, flops), "warmup_s": result["warmup_s"]}


def paired(runs: list[float], rates: list[float], flops: int) -> dict:
    """Median time, and the median over repeats of time ÷ bound at that repeat's rate."""
    ratios = [t / (flops / (g * 1e9)) for t, g in zip(runs, rates)]
    return {"median_s": float(np.median(runs)), "runs_s": [round(r, 4) for r in runs],
            "sgemm_gflops_runs": [round(g, 1) for g in rates],
            "over_bound": float(np.median(ratios)),
            "over_bound_runs": [round(r, 3) for r in ratios]}


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: how busy the shared machine was."""
    return [round(x, 2) for x in os.getloadavg()]
