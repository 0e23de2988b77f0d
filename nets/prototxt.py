"""Protobuf text in field-number order, the order the release's generator printed.

The values are written as protobuf's own printer writes them (`str(message)`): floats
in shortest form without a trailing ".0", strings C-escaped.

protobuf 4 (upb) prints fields in declaration order; older protobuf printed them by field
number. caffe.proto declares ConvolutionParameter's `stride` (6) before `group` (5), so
only nets with an explicit `group` (FCN-AlexNet) tell the two apart. Printing by number
keeps every release file byte-identical.
"""

from __future__ import annotations

from io import StringIO

from google.protobuf import descriptor, text_format
from google.protobuf.internal import type_checkers

FLOAT = descriptor.FieldDescriptor.CPPTYPE_FLOAT


def _print(message, out: StringIO, indent: int) -> None:
    for field, value in sorted(message.ListFields(), key=lambda item: item[0].number):
        values = value if field.label == descriptor.FieldDescriptor.LABEL_REPEATED else [value]
        for item in values:
            if field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
                out.write(" " * indent + field.name + " {\n")
                _print(item, out, indent + 2)
                out.write(" " * indent + "}\n")
            else:
                out.write(" " * indent + field.name + ": ")
                if field.cpp_type == FLOAT:  # shortest repr, integers without ".0" (as upb)
                    text = str(type_checkers.ToShortestFloat(item))
                    out.write(text[:-2] if text.endswith(".0") else text)
                else:
                    text_format.PrintFieldValue(field, item, out)
                out.write("\n")


def to_prototxt(message) -> str:
    """Text format of a protobuf message, fields ordered by number at every level."""
    out = StringIO()
    _print(message, out, 0)
    return out.getvalue()
