"""Learning curves from a run's JSON-lines log: `python -m training.curves RUN_DIR|LOG`.

One PNG with the training loss per step (and its running mean) above the test mean IU per
test, against the iteration — the two things to look at when a run goes wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.errors import cli_main
from training.runlog import JSON_NAME, read_records


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, values.size + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, values.size + 1) - starts)


def curves(log: Path) -> dict[str, np.ndarray]:
    """Iterations and values: step loss, test mean IU per head, the background baseline.
    A resumed run's repeated iterations keep their latest record."""
    steps = {r["iter"]: r["loss"] for r in read_records(log, "step")
             if r.get("loss") is not None}
    out = {"step_iter": np.array(sorted(steps)),
           "loss": np.array([steps[k] for k in sorted(steps)])}
    tests = {r["iter"]: r for r in read_records(log, "test")}
    out["test_iter"] = np.array(sorted(tests))
    heads = sorted({h for r in tests.values() for h, m in r.items()
                    if isinstance(m, dict) and "mean_iu" in m})
    for head in heads:
        out[f"mean_iu:{head}"] = np.array([_get(tests[k], head, "mean_iu")
                                           for k in sorted(tests)])
        out[f"background:{head}"] = np.array(
            [_get(tests[k], head, "background_mean_iu") for k in sorted(tests)])
    return out


def _get(record: dict, head: str, key: str) -> float:
    value = (record.get(head) or {}).get(key)
    return float("nan") if value is None else float(value)


def plot(log: Path, out: Path, title: str | None = None, window: int = 20) -> Path:
    # matplotlib only where a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib only where a figure is drawn
    import matplotlib.pyplot as plt

    data = curves(log)
    if data["step_iter"].size == 0:
        raise ValueError(f"{log}: no step records to plot")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    top.plot(data["step_iter"], data["loss"], lw=0.6, alpha=0.5, label="loss per step")
    top.plot(data["step_iter"], running_mean(data["loss"], window), lw=1.5,
             label=f"mean of last {window}")
    top.set_ylabel("training loss")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    for key in (k for k in data if k.startswith("mean_iu:")):
        head = key.split(":", 1)[1]
        bottom.plot(data["test_iter"], 100 * data[key], marker="o", label=f"mean IU ({head})")
        bottom.plot(data["test_iter"], 100 * data[f"background:{head}"], ls="--", lw=1,
                    label=f"all-background ({head})")
    bottom.set_xlabel("iteration")
    bottom.set_ylabel("test mean IU (%)")
    bottom.grid(alpha=0.3)
    if data["test_iter"].size:
        bottom.legend(loc="lower right")
    fig.suptitle(title or Path(log).parent.name)
    return save_figure(fig, out)


def save_figure(fig, out: Path | str) -> Path:
    """Lay out, write as PNG (its folder made) and close a matplotlib figure."""
    # matplotlib only where a figure is drawn
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


@cli_main("curves", also=(ValueError, OSError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plot loss and mean IU against iteration "
                                                 "from a run's train.jsonl.")
    parser.add_argument("run", type=Path, help="run folder (runs/<experiment>) or its train.jsonl")
    parser.add_argument("--out", type=Path, help="PNG to write (default: RUN/curves.png)")
    args = parser.parse_args(argv)
    log = args.run / JSON_NAME if args.run.is_dir() else args.run
    out = plot(log, args.out or log.parent / "curves.png")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
