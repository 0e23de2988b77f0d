"""Field-by-field differences between two protobuf messages, param_str read as literals.

`==` on messages says only "not equal"; a person needs the path of the first field that
differs (`layer[3] "upscore2".convolution_param.kernel_size`). The Python layers'
param_str is code-like text whose dict order changed between Python 2 and 3, so it is
compared as the Python literal it denotes (ast.literal_eval, never eval).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from google.protobuf import descriptor

_MISSING = object()


@dataclass(frozen=True)
class FieldDifference:
    path: str
    a: object
    b: object


def _show(value) -> str:
    if value is _MISSING:
        return "(absent)"
    if hasattr(value, "ListFields"):
        text = str(value).replace("\n", " ").strip()
        return "{" + (text[:60] + " …" if len(text) > 60 else text) + "}"
    text = repr(value)
    return text[:80] + " …" if len(text) > 80 else text


def literal_or_text(text: str):
    """The Python literal a param_str denotes, or the text itself when it is not one."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _label(item, index: int, name: str) -> str:
    label = f"{name}[{index}]"
    item_name = getattr(item, "name", None) if hasattr(item, "DESCRIPTOR") else None
    if isinstance(item_name, str) and item_name:
        label += f" {item_name!r}"
    return label


def _named(fd: descriptor.FieldDescriptor, value):
    """An enum field's value by its name (pool: MAX, not 0), as the prototxt writes it."""
    if fd.enum_type is not None and isinstance(value, int):
        known = fd.enum_type.values_by_number.get(value)
        return EnumName(known.name) if known is not None else value
    return value


class EnumName(str):
    """An enum value's name, shown bare (MAX), as in a prototxt."""

    def __repr__(self) -> str:
        return str(self)


def _scalar_differences(fd: descriptor.FieldDescriptor, where: str, a, b
                        ) -> list[FieldDifference]:
    """[] when equal; param_str dicts are compared key by key as Python literals."""
    if a == b:
        return []
    a, b = _named(fd, a), _named(fd, b)
    if fd.name == "param_str" and isinstance(a, str) and isinstance(b, str):
        value_a, value_b = literal_or_text(a), literal_or_text(b)
        if value_a == value_b:
            return []
        if isinstance(value_a, dict) and isinstance(value_b, dict):
            keys = list(value_a) + [k for k in value_b if k not in value_a]
            return [FieldDifference(f"{where}[{k!r}]", value_a.get(k, _MISSING),
                                    value_b.get(k, _MISSING))
                    for k in keys if value_a.get(k, _MISSING) != value_b.get(k, _MISSING)]
    return [FieldDifference(where, a, b)]


def message_differences(a, b, path: str = "", limit: int = 50) -> list[FieldDifference]:
    """Differences between two messages of one type, in declaration order, at most `limit`."""
    found: list[FieldDifference] = []
    _walk(a, b, path, found, limit)
    return found


def _walk(a, b, path: str, found: list[FieldDifference], limit: int) -> None:
    for fd in a.DESCRIPTOR.fields:
        if len(found) >= limit:
            return
        where = f"{path}.{fd.name}" if path else fd.name
        is_message = fd.type == descriptor.FieldDescriptor.TYPE_MESSAGE
        if fd.label == descriptor.FieldDescriptor.LABEL_REPEATED:
            va, vb = getattr(a, fd.name), getattr(b, fd.name)
            for i in range(max(len(va), len(vb))):
                if len(found) >= limit:
                    return
                ia = va[i] if i < len(va) else _MISSING
                ib = vb[i] if i < len(vb) else _MISSING
                label = _label(ia if ia is not _MISSING else ib, i, where)
                if ia is _MISSING or ib is _MISSING:
                    found.append(FieldDifference(label, _named(fd, ia), _named(fd, ib)))
                elif is_message:
                    _walk(ia, ib, label, found, limit)
                else:
                    found.extend(_scalar_differences(fd, label, ia, ib))
            continue
        has_a, has_b = a.HasField(fd.name), b.HasField(fd.name)
        if not has_a and not has_b:
            continue
        va = getattr(a, fd.name) if has_a else _MISSING
        vb = getattr(b, fd.name) if has_b else _MISSING
        if has_a and has_b and is_message:
            _walk(va, vb, where, found, limit)
        elif not (has_a and has_b):
            found.append(FieldDifference(where, _named(fd, va), _named(fd, vb)))
        else:
            found.extend(_scalar_differences(fd, where, va, vb))


def describe(diff: FieldDifference) -> tuple[str, str, str]:
    """(path, A's value, B's value) as short strings for a table row."""
    return diff.path, _show(diff.a), _show(diff.b)
