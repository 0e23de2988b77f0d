"""Compare two prototxt files: bytes first, then the parsed messages field by field."""

from __future__ import annotations

from pathlib import Path

from compare.messages import describe, message_differences
from compare.table import Comparison
from core.caffe_files import parse_prototxt

SHOWN_DIFFERENCES = 10


def first_byte_difference(a: bytes, b: bytes) -> tuple[int, int]:
    """(offset, 1-based line) of the first byte where a and b differ."""
    offset = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return offset, a[:offset].count(b"\n") + 1


def compare_prototxt(a: Path, b: Path, *, semantic: bool = False) -> Comparison:
    """Bytes, then messages. With semantic=True, equal messages count as identical."""
    bytes_a, bytes_b = Path(a).read_bytes(), Path(b).read_bytes()
    result = Comparison("prototxt", str(a), str(b), identical=bytes_a == bytes_b,
                        columns=("check", "A", "B"))
    if result.identical:
        result.rows.append(("bytes", f"{len(bytes_a)} bytes", "identical"))
        return result
    offset, line = first_byte_difference(bytes_a, bytes_b)
    result.rows.append(("bytes", f"{len(bytes_a)} bytes",
                        f"{len(bytes_b)} bytes; first differs at byte {offset} (line {line})"))
    message_a, message_b = parse_prototxt(a), parse_prototxt(b)
    type_a, type_b = type(message_a).__name__, type(message_b).__name__
    result.rows.append(("parsed as", type_a, type_b))
    if type_a != type_b:
        result.notes.append("the two files describe different kinds of message")
        return result
    differences = message_differences(message_a, message_b)
    if not differences:
        result.rows.append(("message", "equal", "equal (param_str as Python literals)"))
        result.notes.append("bytes differ only in formatting, comments or param_str spelling")
        result.identical = semantic
        return result
    count = f"{len(differences)}{'+' if len(differences) == 50 else ''}"
    result.rows.append(("message", "differs", f"{count} fields differ"))
    for n, diff in enumerate(differences[:SHOWN_DIFFERENCES]):
        path, value_a, value_b = describe(diff)
        result.rows.append(((path + "  <- first") if n == 0 else path, value_a, value_b))
    return result
