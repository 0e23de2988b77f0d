"""A minimal protobuf wire-format reader for caffemodels.

A caffemodel is a binary NetParameter whose blobs hold hundreds of MB of packed floats.
Parsing it into Python messages turns every float into a Python object (slow, and a
float32 NaN payload may not survive the round trip). Reading the wire format directly
gives each blob's payload as a zero-copy slice of the file, which is exactly what a
bitwise comparison needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


class Field(NamedTuple):
    number: int
    wire_type: int
    value: int | memoryview   # int for varints, a slice of the buffer otherwise
    raw: memoryview           # the whole field, tag included (to re-assemble a message)


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at `pos`; return (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise WireError(f"varint longer than 10 bytes at byte {pos}")


def iter_fields(buf: memoryview, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """Yield the fields of the message in buf[start:end] in the order they are stored."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        field_start = pos
        key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {field_start}")
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire_type == LENGTH_DELIMITED:
            size, pos = read_varint(buf, pos, end)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise WireError(f"unsupported wire type {wire_type} at byte {field_start}")
        if pos > end:
            raise WireError(f"field {number} at byte {field_start} runs past the end")
        yield Field(number, wire_type, value, buf[field_start:pos])


def packed_varints(field: Field) -> list[int]:
    """The integers of a repeated varint field, packed (one slice) or not (one value)."""
    if field.wire_type == VARINT:
        return [field.value]
    data, values, pos = field.value, [], 0
    while pos < len(data):
        value, pos = read_varint(data, pos, len(data))
        values.append(value)
    return values
