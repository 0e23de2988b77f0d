"""Run two nets on the same input(s) and compare every blob of the forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compare.errors import CompareError
from compare.numeric import compare_arrays
from compare.release_infer import RELEASE_INFER_MEAN, read_rgb, release_preprocess
from compare.table import Comparison
from core.caffe_files import check_finite, load_net

COLUMNS = ("input", "blob", "shape A", "shape B", "status", "differing", "max |Δ|", "max ULP")


def read_input(path: Path, mean: tuple[float, ...]) -> dict[str | None, np.ndarray]:
    """An input file as arrays by blob name (None: the net's first input).

    Images are preprocessed as the release's infer.py does; .npy holds one (C, H, W) or
    (N, C, H, W) array; .npz holds arrays named after the input blobs.
    """
    path = Path(path)
    if not path.is_file():
        raise CompareError(f"{path}: no such input file")
    try:
        if path.suffix == ".npz":
            with np.load(path) as arrays:
                return {name: arrays[name] for name in arrays.files}
        if path.suffix == ".npy":
            return {None: np.load(path, allow_pickle=False)}
    except ValueError as e:   # objects (never unpickled: that would run code) or not numpy
        raise CompareError(f"{path}: not a numeric NumPy array file ({e})") from None
    return {None: release_preprocess(read_rgb(path), mean)}


def _feed(net, arrays: dict[str | None, np.ndarray], source: Path, which: str) -> None:
    for name, array in arrays.items():
        blob_name = name if name is not None else (net.inputs[0] if net.inputs else None)
        if blob_name is None or blob_name not in net.inputs:
            raise CompareError(f"{source}: net {which} has no input blob "
                           f"{blob_name or '(none at all)'}; its inputs: {list(net.inputs)}")
        array = array[None] if array.ndim == 3 else array
        expected = net.blobs[blob_name].data.shape
        if array.ndim != len(expected) or (len(expected) > 1 and array.shape[1] != expected[1]):
            raise CompareError(f"{source}: input {blob_name!r} of net {which} is "
                           f"{'×'.join(map(str, expected))}, the file gives "
                           f"{'×'.join(map(str, array.shape))}")
        net.blobs[blob_name].reshape(*array.shape)
        net.blobs[blob_name].data[...] = array


def _compare_blobs(label: str, net_a, net_b, rows: list[tuple]) -> bool:
    same = True
    for name, blob_a in net_a.blobs.items():
        if name not in net_b.blobs:
            rows.append((label, name, blob_a.data.shape, None, "missing in B", None, None, None))
            same = False
            continue
        data_a, data_b = blob_a.data, net_b.blobs[name].data
        if data_a.shape != data_b.shape:
            rows.append((label, name, data_a.shape, data_b.shape, "shape differs", None, None,
                         None))
            same = False
            continue
        diff = compare_arrays(data_a, data_b)
        if diff.identical:
            rows.append((label, name, data_a.shape, data_b.shape, "identical", 0, 0.0, 0))
        else:
            same = False
            rows.append((label, name, data_a.shape, data_b.shape, "differs",
                         f"{diff.differing}/{diff.count}", diff.max_abs, diff.max_ulp))
    for name in net_b.blobs:
        if name not in net_a.blobs:
            rows.append((label, name, None, net_b.blobs[name].data.shape, "extra in B", None,
                         None, None))
            same = False
    return same


def compare_forward(net_a: Path, weights_a: Path | None, net_b: Path, weights_b: Path | None,
                    inputs: list[Path], *, mean: tuple[float, ...] = RELEASE_INFER_MEAN
                    ) -> Comparison:
    """Identical means every blob of every forward pass has the same bits in both nets."""
    for weights, option in ((weights_a, "--weights-a"), (weights_b, "--weights-b")):
        if weights is not None:  # NaN is never equal to itself: a comparison would mislead
            check_finite(weights, option)
    loaded_a, loaded_b = load_net(net_a, weights_a), load_net(net_b, weights_b)
    result = Comparison("forward", f"{net_a} + {weights_a}", f"{net_b} + {weights_b}",
                        identical=True, columns=COLUMNS)
    if not inputs and (loaded_a.inputs or loaded_b.inputs):
        raise CompareError("the nets take inputs: give at least one --input")
    for source in inputs or [None]:
        if source is not None:
            arrays = read_input(source, mean)
            _feed(loaded_a, arrays, source, "A")
            _feed(loaded_b, arrays, source, "B")
        loaded_a.forward()
        loaded_b.forward()
        label = Path(source).name if source is not None else "(data layers)"
        result.identical &= _compare_blobs(label, loaded_a, loaded_b, result.rows)
    return result
