"""The result every comparison returns: a verdict and a table a person can read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Comparison:
    """Outcome of comparing two artifacts of one kind.

    `identical` is the verdict the exit status reports; `rows` explain it, one finding
    per row under `columns`; `notes` are sentences printed after the table. `provenance`
    rows (field, A, B) are differences that do not decide the verdict (where and how the
    numbers were made: paths, solver text, machine); with them an identical result reads
    "IDENTICAL IN NUMBERS".
    """
    kind: str
    a: str
    b: str
    identical: bool
    columns: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: list[tuple] = field(default_factory=list)

    def render(self) -> str:
        """Aligned plain-text table with a header and a one-line verdict."""
        verdict = "DIFFERENT"
        if self.identical:
            verdict = "IDENTICAL IN NUMBERS" if self.provenance else "IDENTICAL"
        lines = [f"{self.kind}: {self.a}  vs  {self.b}"]
        if self.rows:
            lines += _table(self.columns, self.rows)
        if self.provenance:
            lines.append("provenance (differs without deciding the verdict):")
            lines += _table(("field", "A", "B"), self.provenance)
        lines.extend(self.notes)
        lines.append(verdict)
        return "\n".join(lines)


def _table(columns: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """Aligned lines: the header, a rule, one line per row."""
    cells = [tuple(columns)] + [tuple(_cell(v) for v in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "×".join(str(v) for v in value) if value else "scalar"
    return str(value)
