"""Compare two caffemodels blob by blob: bitwise, then max |Δ| and max ULP distance."""

from __future__ import annotations

import filecmp
from pathlib import Path

from compare.messages import describe, message_differences
from compare.numeric import compare_arrays
from compare.table import Comparison
from core.caffe_files import Layer, read_caffemodel

COLUMNS = ("layer", "blob", "shape A", "shape B", "status", "differing", "max |Δ|", "max ULP")


def first_definition_difference(a: Layer, b: Layer) -> tuple[str, str, str] | None:
    """(field path, A's value, B's value) of the first differing non-blob field of two
    layers (type, params), if any."""
    if a.definition == b.definition:
        return None
    if a.legacy != b.legacy:
        return ("format", "V1 'layers'" if a.legacy else "layer",
                "V1 'layers'" if b.legacy else "layer")
    # Caffe loads on use, so this module imports without it
    from caffe.proto import caffe_pb2
    message_type = caffe_pb2.V1LayerParameter if a.legacy else caffe_pb2.LayerParameter
    diffs = message_differences(message_type.FromString(a.definition),
                                message_type.FromString(b.definition))
    if not diffs:
        return ("field order", "stored in one order", "in another")
    return describe(diffs[0])


def definition_difference(a: Layer, b: Layer) -> str | None:
    """The first differing non-blob field of two layers, in words: a difference for a
    caffemodel, provenance for compare.runs (a data layer's paths live here)."""
    found = first_definition_difference(a, b)
    if found is None:
        return None
    path, value_a, value_b = found
    if path == "format":
        return "one layer is in the V1 ('layers') format, the other is not"
    if path == "field order":
        return "same fields, stored in a different order"
    return f"{path}: {value_a} vs {value_b}"


def _compare_layer(name: str, a: Layer, b: Layer, rows: list[tuple]) -> bool:
    same = True
    definition = definition_difference(a, b)
    if definition:
        rows.append((name, "-", None, None, f"definition differs: {definition}", None, None,
                     None))
        same = False
    if len(a.blobs) != len(b.blobs):
        rows.append((name, "-", None, None,
                     f"{len(a.blobs)} blobs vs {len(b.blobs)}", None, None, None))
        same = False
    for i, (blob_a, blob_b) in enumerate(zip(a.blobs, b.blobs)):
        if blob_a.shape != blob_b.shape or blob_a.dtype != blob_b.dtype \
                or blob_a.count != blob_b.count:
            status = "shape differs" if blob_a.shape != blob_b.shape else "storage differs"
            rows.append((name, i, blob_a.shape, blob_b.shape, status, None, None, None))
            same = False
            continue
        diff = compare_arrays(blob_a.array(), blob_b.array())
        if diff.identical:
            rows.append((name, i, blob_a.shape, blob_b.shape, "identical", 0, 0.0, 0))
            continue
        same = False
        status = "differs" if not diff.nan_mismatch else f"differs ({diff.nan_mismatch} NaN/inf)"
        rows.append((name, i, blob_a.shape, blob_b.shape, status,
                     f"{diff.differing}/{diff.count}", diff.max_abs, diff.max_ulp))
    return same


def compare_caffemodel(a: Path, b: Path) -> Comparison:
    """Identical means the same bytes; otherwise every layer and blob gets a row."""
    result = Comparison("caffemodel", str(a), str(b), identical=False, columns=COLUMNS)
    layers_a, layers_b = read_caffemodel(a), read_caffemodel(b)
    if filecmp.cmp(a, b, shallow=False):
        result.identical = True
        blobs = sum(len(layer.blobs) for layer in layers_a.values())
        result.notes.append(f"same bytes: {len(layers_a)} layers, {blobs} blobs")
        return result
    all_same = True
    for name, layer_a in layers_a.items():
        if name not in layers_b:
            result.rows.append((name, "-", None, None, "missing in B", None, None, None))
            all_same = False
            continue
        all_same &= _compare_layer(name, layer_a, layers_b[name], result.rows)
    for name in layers_b:
        if name not in layers_a:
            result.rows.append((name, "-", None, None, "extra in B", None, None, None))
            all_same = False
    if list(layers_a) != list(layers_b) and set(layers_a) == set(layers_b):
        result.notes.append("the layers are stored in a different order")
    elif all_same:
        result.notes.append("every layer and blob is equal; the files differ outside the layers "
                            "(net name or other NetParameter fields)")
    return result
