"""Segmentation scores from a training log, for the zoo readme's description.

The release's score.py prints one line per metric after each test, e.g.
`>>> 2016-03-02 10:11:12.131415 Iteration 4000 mean IU 0.6234`; the metrics are the
paper's four (overall accuracy, mean accuracy, mean IU, fwavacc) and the loss. Those
lines are what is read here; anything else in the log is ignored.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from zoo.errors import ZooError

METRICS = ("overall accuracy", "mean accuracy", "mean IU", "fwavacc", "loss")
_SCORE_LINE = re.compile(
    r"Iteration[:,]?\s+(\d+)[:,]?\s+(overall accuracy|mean accuracy|mean IU|fwavacc|loss)"
    r"\s*[:=]?\s+([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan)\b", re.IGNORECASE)
_CANONICAL = {m.lower(): m for m in METRICS}


def read_scores(log: Path | str) -> dict[int, dict[str, float]]:
    """Scores by iteration, in the order the log gives them; ZooError if there are none."""
    log = Path(log)
    if not log.is_file():
        raise ZooError(f"{log}: no such training log")
    scores: dict[int, dict[str, float]] = {}
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            for match in _SCORE_LINE.finditer(line):
                iteration, metric, value = match.groups()
                scores.setdefault(int(iteration), {})[_CANONICAL[metric.lower()]] = float(value)
    if not any("mean IU" in s for s in scores.values()):
        raise ZooError(f"{log}: no score lines like '>>> DATE Iteration 4000 mean IU 0.62' "
                       "(the release's score.py format)")
    return scores


def describe_scores(scores: dict[int, dict[str, float]], split: str = "validation") -> str:
    """A Markdown paragraph and table: last scored iteration, best mean IU."""
    scored = {i: s for i, s in scores.items() if "mean IU" in s}
    last = max(scored)
    best = max(scored, key=lambda i: -math.inf if math.isnan(scored[i]["mean IU"])
               else scored[i]["mean IU"])
    lines = [f"Scores on the {split} set at iteration {last} (the weights in this folder):", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {m} | {scored[last][m]:.4f} |" for m in METRICS if m in scored[last]]
    lines += ["", f"Best mean IU during training: {scored[best]['mean IU']:.4f} "
                  f"at iteration {best} ({len(scored)} scored iterations in the log)."]
    return "\n".join(lines)


def summary_line(scores: dict[int, dict[str, float]]) -> str:
    """One line for the front matter's description."""
    scored = {i: s for i, s in scores.items() if "mean IU" in s}
    last = max(scored)
    parts = [f"{m} {scored[last][m]:.4f}" for m in METRICS[:4] if m in scored[last]]
    return f"iteration {last}: " + ", ".join(parts)
