"""The result every comparison returns: a verdict and a table a person can read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Comparison:
    """Outcome of comparing two artifacts of one kind.

    `identical` is the verdict the exit status reports; `rows` explain it, one finding
    per row under `columns`; `notes` are sentences printed after the table.
    """
    kind: str
    a: str
    b: str
    identical: bool
    columns: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """Aligned plain-text table with a header and a one-line verdict."""
        verdict = "IDENTICAL" if self.identical else "DIFFERENT"
        lines = [f"{self.kind}: {self.a}  vs  {self.b}"]
        if self.rows:
            cells = [tuple(self.columns)] + [tuple(_cell(v) for v in row) for row in self.rows]
            widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
            for n, row in enumerate(cells):
                lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
                if n == 0:
                    lines.append("  ".join("-" * w for w in widths))
        lines.extend(self.notes)
        lines.append(verdict)
        return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "×".join(str(v) for v in value) if value else "scalar"
    return str(value)
