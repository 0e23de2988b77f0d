"""Whole-image inference exactly as the release's infer.py does it.

Bit-exactness with the release's output depends on the preprocessing's rounding: the
image is float32, the mean float64, and the in-place subtraction rounds the float64
result back to float32 — the data layers' arithmetic, core.images. Only the mean values
differ: the release's infer.py typed more digits than its data layers' param_str.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from compare.errors import CompareError
from core.images import preprocess

RELEASE_INFER_MEAN = (104.00698793, 116.66876762, 122.67891434)  # BGR


def release_preprocess(rgb: np.ndarray, mean: tuple[float, ...] = RELEASE_INFER_MEAN
                       ) -> np.ndarray:
    """(H, W, 3) RGB uint8 → (3, H, W) float32 BGR minus mean, as the release computes it."""
    return preprocess(rgb, np.array(mean, dtype=np.float64))


def read_rgb(path: Path | str) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; CompareError for anything else."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode != "RGB":
                raise CompareError(f"{path}: image mode {image.mode}, expected an RGB image")
            return np.array(image)
    except OSError as e:
        raise CompareError(f"{path}: cannot read as an image ({e})") from e


def forward_image(net, chw: np.ndarray, input_blob: str | None = None) -> None:
    """Reshape the net's input to one (C, H, W) image and run the forward pass."""
    name = input_blob or (net.inputs[0] if net.inputs else None)
    if name is None or name not in net.blobs:
        raise CompareError(f"the net has no input blob {input_blob or ''} to feed an image to")
    channels = net.blobs[name].data.shape[1] if net.blobs[name].data.ndim > 1 else None
    if channels is not None and channels != chw.shape[0]:
        raise CompareError(f"input blob {name!r} takes {channels} channels, "
                       f"the image has {chw.shape[0]}")
    net.blobs[name].reshape(1, *chw.shape)
    net.blobs[name].data[...] = chw
    net.forward()


def segment(net, rgb: np.ndarray, *, score_blob: str = "score",
            mean: tuple[float, ...] = RELEASE_INFER_MEAN) -> np.ndarray:
    """Class-index map (H, W) of one image: argmax over the score blob's channels."""
    forward_image(net, release_preprocess(rgb, mean))
    if score_blob not in net.blobs:
        raise CompareError(f"the net has no blob {score_blob!r} to take the argmax of")
    scores = net.blobs[score_blob].data[0]
    return scores.argmax(axis=0).astype(np.uint8 if scores.shape[0] <= 256 else np.uint16)
