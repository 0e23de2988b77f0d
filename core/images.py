"""The one input preprocessing: what the release's data layers and its infer.py feed a net.

An RGB picture becomes C×H×W float32 BGR minus the dataset's mean. The rounding is part
of the fact: the picture is float32 and the subtraction happens in place, so a float64
mean (VOC's, from param_str) rounds the float64 difference once to float32, while a
float32 mean (the other datasets' layers) subtracts in float32. Feeding the same bits
as the data layers is what makes `make infer` agree with `make score`.
"""

from __future__ import annotations

import numpy as np


def bgr_minus_mean(rgb: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """H×W×3 RGB float32 → C×H×W BGR minus mean, in place (the release's arithmetic)."""
    bgr = rgb[:, :, ::-1]
    bgr -= mean
    return bgr.transpose((2, 0, 1))


def preprocess(rgb: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """An H×W×3 RGB picture (any integer or float dtype) → the net's C×H×W float32 input."""
    return np.ascontiguousarray(bgr_minus_mean(np.array(rgb, dtype=np.float32), mean))
