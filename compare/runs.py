"""Two runs' numbers and what decided their bits: `compare runs/a runs/b`.

A run is a run folder (train.jsonl, score.json), a train.jsonl, or a results file with a
"fingerprint" (score.json, the demo's results.json). The numbers are every number in the
last test record or the results file; the fingerprint is core.fingerprint's. When the numbers
differ, the table names the fingerprint fields that differ too, so "other CPU kernels" and
"other data" are told apart from a change in the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from compare.errors import CompareError
from compare.table import Comparison
from core.fingerprint import bits_fields, diff


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


def compare_runs(a: Path, b: Path) -> Comparison:
    """Numbers first, then the fingerprint fields that differ."""
    numbers_a, fp_a = load_run(a)
    numbers_b, fp_b = load_run(b)
    rows: list[tuple] = []
    for key in sorted(set(numbers_a) | set(numbers_b)):
        va, vb = numbers_a.get(key), numbers_b.get(key)
        if va != vb:
            rows.append((key, va, vb))
    numbers_equal = not rows
    fields = diff(fp_a, fp_b)
    rows += [(f"fingerprint.{key}", _short(va), _short(vb)) for key, va, vb in fields]
    notes = []
    if not fp_a or not fp_b:
        notes.append("one side has no fingerprint (a run from before fingerprints were "
                     "recorded): what decided its bits is unknown")
    if numbers_equal:
        notes.append(f"numbers: identical ({len(numbers_a)} compared)")
    else:
        pinned = [k for k, _, _ in fields if k in bits_fields(fp_a, fp_b)]
        if pinned:
            notes.append("numbers differ, and so do the BLAS fields that decide the bits ("
                         + ", ".join(pinned) + "): other kernels round differently")
        elif fields:
            notes.append("numbers differ with the same BLAS kernels; look at the other "
                         "fingerprint fields above (inputs, versions, seed)")
        else:
            notes.append("numbers differ with identical fingerprints: the code or the "
                         "settings differ, not the machine")
    return Comparison("runs", str(a), str(b), numbers_equal and not fields,
                      ("field", "A", "B"), rows, notes)


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 70 else text[:67] + "..."
