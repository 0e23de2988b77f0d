"""Two runs' numbers and what decided their bits: `compare runs/a runs/b`.

A run is a run folder (train.jsonl, score.json, final.caffemodel), a train.jsonl, or a
results file with a "fingerprint" (score.json, the demo's results.json). The verdict is the
*numbers'*: every number in the last test record or the results file, and a run folder's
final weights blob by blob. Everything else is *provenance*, named but never a difference:
the fingerprint (core.fingerprint: machine, libraries, digests of the net and solver text),
the request in result.manifest.json (the data root's path among it) and the weights' layer
definitions (a data layer's paths). So two runs with the same numbers are "identical in
numbers" (exit 0) however their folders, data paths or machines differ; when the numbers
differ, the notes say whether the BLAS fields that decide the bits differ too, so "other
CPU kernels" and "other data" are told apart from a change in the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from compare.caffemodel import first_definition_difference
from compare.errors import CompareError
from compare.numeric import compare_arrays
from compare.table import Comparison
from core.caffe_files import read_caffemodel
from core.fingerprint import bits_fields, diff
from core.manifest import read_result, verify_result_file
from core.weights import FINAL_WEIGHTS


def is_run(path: Path) -> bool:
    """A run folder, a train.jsonl, or a JSON file that carries a fingerprint."""
    path = Path(path)
    if path.is_dir():
        return (path / "train.jsonl").is_file() or (path / "score.json").is_file()
    if path.name.endswith(".jsonl"):
        return True
    if path.suffix == ".json" and path.is_file():
        try:
            return "fingerprint" in json.loads(path.read_text())
        except (ValueError, TypeError):
            return False
    return False


def _numbers(value, prefix: str = "") -> dict[str, float]:
    """Every number in a nested JSON value, keyed by its path (a.b.c)."""
    out: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in ("fingerprint", "time", "type"):
                out.update(_numbers(item, f"{prefix}{key}."))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix.rstrip(".")] = value
    return out


def _read_jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except ValueError as e:
        raise CompareError(f"{path}: not a JSON-lines log ({e})") from None


def load_run(path: Path) -> tuple[dict[str, float], dict]:
    """(numbers, fingerprint) of a run folder, train.jsonl or results JSON."""
    path = Path(path)
    if path.is_dir():
        log = path / "train.jsonl"
        if not (path / "score.json").is_file():
            return load_run(log)
        numbers, fingerprint = load_run(path / "score.json")
        if not fingerprint and log.is_file():   # the run's scores; its start's fingerprint
            fingerprint = load_run(log)[1]
        return numbers, fingerprint
    if not path.is_file():
        raise CompareError(f"{path}: no such file")
    if path.name.endswith(".jsonl"):
        records = _read_jsonl(path)
        starts = [r for r in records if r.get("type") == "start"]
        tests = [r for r in records if r.get("type") == "test"]
        if not starts:
            raise CompareError(f"{path}: no start record; is it a train.jsonl?")
        numbers = _numbers(tests[-1]) if tests else {}
        return numbers, starts[-1].get("fingerprint", {})
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise CompareError(f"{path}: not JSON ({e})") from None
    return _numbers(data), data.get("fingerprint", {})


def compare_weights(a: Path, b: Path) -> tuple[list[tuple], list[tuple], int]:
    """(number rows, provenance rows, blobs compared) of two caffemodels: blobs are numbers,
    the layers' other fields (a data layer's paths, a solver's names) provenance."""
    layers_a, layers_b = read_caffemodel(a), read_caffemodel(b)
    numbers: list[tuple] = []
    provenance: list[tuple] = []
    blobs = 0
    for name in list(layers_a) + [n for n in layers_b if n not in layers_a]:
        layer_a, layer_b = layers_a.get(name), layers_b.get(name)
        if layer_a is None or layer_b is None:
            numbers.append((f"weights.{name}", "absent" if layer_a is None else "present",
                            "absent" if layer_b is None else "present"))
            continue
        definition = first_definition_difference(layer_a, layer_b)
        if definition:
            path, value_a, value_b = definition
            provenance.append((f"weights.{name} ({path})", value_a, value_b))
        if len(layer_a.blobs) != len(layer_b.blobs):
            numbers.append((f"weights.{name} blobs", len(layer_a.blobs), len(layer_b.blobs)))
            continue
        for i, (blob_a, blob_b) in enumerate(zip(layer_a.blobs, layer_b.blobs)):
            blobs += 1
            if blob_a.shape != blob_b.shape or blob_a.dtype != blob_b.dtype:
                numbers.append((f"weights.{name}[{i}] shape", blob_a.shape, blob_b.shape))
                continue
            found = compare_arrays(blob_a.array(), blob_b.array())
            if not found.identical:
                numbers.append((f"weights.{name}[{i}]",
                                f"{found.differing}/{found.count} values differ",
                                f"max |Δ| {found.max_abs:.3g}, {found.max_ulp} ULP"))
    return numbers, provenance, blobs


def _weights_of(path: Path) -> Path | None:
    """A run folder's final weights (compare_runs has verified them against its result
    manifest: a damaged result is refused, never compared)."""
    weights = Path(path) / FINAL_WEIGHTS
    return weights if Path(path).is_dir() and weights.is_file() else None


def _request(path: Path) -> dict:
    """The request a run folder's result manifest records (data root, ITERS, …), or {}."""
    path = Path(path)
    return (read_result(path) or {}).get("request", {}) if path.is_dir() else {}


def compare_runs(a: Path, b: Path) -> Comparison:
    """Numbers decide (scores, final weights); provenance is named beside them."""
    for side in (a, b):
        if Path(side).is_dir():  # a result its manifest lists, damaged or gone, is refused
            for name in ("score.json", FINAL_WEIGHTS):
                verify_result_file(Path(side) / name)
    numbers_a, fp_a = load_run(a)
    numbers_b, fp_b = load_run(b)
    rows: list[tuple] = []
    for key in sorted(set(numbers_a) | set(numbers_b)):
        va, vb = numbers_a.get(key), numbers_b.get(key)
        if va != vb:
            rows.append((key, va, vb))
    provenance: list[tuple] = []
    weights_a, weights_b = _weights_of(a), _weights_of(b)
    blobs = 0
    if weights_a and weights_b:
        weight_rows, definition_rows, blobs = compare_weights(weights_a, weights_b)
        rows += weight_rows
        provenance += definition_rows
    elif weights_a or weights_b:
        rows.append((FINAL_WEIGHTS, "present" if weights_a else "absent",
                     "present" if weights_b else "absent"))
    numbers_equal = not rows
    fields = diff(fp_a, fp_b)
    provenance = ([(f"fingerprint.{key}", _short(va), _short(vb)) for key, va, vb in fields]
                  + [(f"request.{key}", _short(va), _short(vb))
                     for key, va, vb in diff(_request(a), _request(b))]
                  + provenance)
    notes = []
    if not fp_a or not fp_b:
        notes.append("one side has no fingerprint (a run from before fingerprints were "
                     "recorded): what decided its bits is unknown")
    compared = f"{len(numbers_a)} scores" + (f" and {blobs} weight blobs" if blobs else "")
    if numbers_equal:
        notes.append(f"numbers: identical ({compared} compared)")
        if provenance:
            notes.append("provenance differs (" + ", ".join(_field_names(provenance))
                         + "): where and how the runs were made, not what they computed")
    else:
        pinned = [k for k, _, _ in fields if k in bits_fields(fp_a, fp_b)]
        if pinned:
            notes.append("numbers differ, and so do the BLAS fields that decide the bits ("
                         + ", ".join(pinned) + "): other kernels round differently")
        elif fields:
            notes.append("numbers differ with the same BLAS kernels; look at the "
                         "provenance fields above (inputs, versions, seed)")
        else:
            notes.append("numbers differ with identical fingerprints: the code or the "
                         "settings differ, not the machine")
    return Comparison("runs", str(a), str(b), numbers_equal, ("field", "A", "B"), rows,
                      notes, provenance)


def _field_names(rows: list[tuple]) -> list[str]:
    """The provenance rows' fields, the weights' layer definitions counted as one."""
    names = [row[0] for row in rows if not row[0].startswith("weights.")]
    layers = sum(1 for row in rows if row[0].startswith("weights."))
    if layers:
        names.append(f"the definition of {layers} weight layer(s)")
    return names


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 70 else text[:67] + "..."
