"""Read finished runs the way the paper reports them: Table 2's best scores with Section
6.2's equivalent regimes, Figure 5's mean IU against iterations and wall-clock time.

    python -m analyses.reports table2 [--runs runs]
    python -m analyses.reports figure5 [--runs runs] [--out runs/figure5.png]
    python -m analyses.reports table8 --data DATA [--runs runs] [--width 1.0]

Scores come from each run's train.jsonl (every seg test the loop ran): "the best achieved
during training" is the test with the highest mean IU, reported with its other metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from core.defaults import RUNS_DIR
from core.errors import cli_main
from core.weights import run_weights_path
from evaluation.score import score_weights
from nets.experiments import EXPERIMENTS
from nets.solver_settings import equivalent_momentum
from training.curves import save_figure
from training.runlog import JSON_NAME, read_records

TABLE2 = ("table2-accumulated", "table2-online", "table2-heavy")
# Table 8's rows: (condition, the run whose final weights are scored, a mask added at test
# time); the masked trainings' nets mask their test inputs as they masked training's
TABLE8 = (("Reference", "mask-reference", None), ("Reference-FG", "mask-reference", "bg"),
          ("Reference-BG", "mask-reference", "fg"), ("FG-only", "mask-fg-only", None),
          ("BG-only", "mask-bg-only", None), ("Shape", "mask-shape", None))
TABLE8_PAPER = {"Reference": 84.8, "Reference-FG": 81.0, "Reference-BG": 19.8,
                "FG-only": 76.1, "BG-only": 37.8, "Shape": 29.1}
FIGURE5 = ("voc-fcn32s", "sampling-p50", "sampling-p25")
METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu")


def tests(run_dir: Path, head: str = "label") -> list[dict]:
    """The run's seg tests in order, each {'iter', 'time', metrics…} (the latest record of a
    repeated iteration, as after a resume)."""
    log = Path(run_dir) / JSON_NAME
    if not log.is_file():
        raise FileNotFoundError(f"{log}: no training log (train the experiment first)")
    by_iter = {}
    for record in read_records(log, "test"):
        if isinstance(record.get(head), dict):
            by_iter[record["iter"]] = {"iter": record["iter"], "time": record.get("time"),
                                       **record[head]}
    return [by_iter[k] for k in sorted(by_iter)]


def best_test(run_dir: Path, metric: str = "mean_iu", head: str = "label") -> dict:
    """The test with the highest `metric` (Table 2: "the best achieved during training")."""
    found = tests(run_dir, head)
    if not found:
        raise ValueError(f"{run_dir}: the run has no seg test yet")
    return max(found, key=lambda t: t[metric])


def training_seconds(run_dir: Path) -> dict[int, float]:
    """Wall-clock seconds of training (tests excluded) reached at each tested iteration.
    A test's duration is its record's time less the step record just before it; a resumed
    segment's clock restarts at zero and is added on."""
    log = Path(run_dir) / JSON_NAME
    offset = last = step_clock = testing = 0.0
    out = {}
    for record in read_records(log):
        if record["type"] not in ("step", "test") or record.get("time") is None:
            continue
        if record["time"] < last:  # a resumed segment's clock starts again at zero
            offset += last
        last = record["time"]
        clock = offset + last
        if record["type"] == "step":
            step_clock = clock
        else:
            out[record["iter"]] = step_clock - testing
            testing += clock - step_clock
            step_clock = clock
    return out


def table2(runs: Path) -> str:
    """Table 2 from the three runs, with each regime's momentum at batch 1 and 20 by 6.2."""
    lines = ["| run | batch | momentum | ≈ momentum at batch 1 | ≈ at batch 20 | pixel acc. "
             "| mean acc. | mean IU | f.w. IU | best at iter |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in TABLE2:
        solver = EXPERIMENTS[name].solver
        k, p = solver.iter_size, solver.momentum
        row = [name, str(k), f"{p:g}", f"{equivalent_momentum(p, k, 1):.4f}",
               f"{equivalent_momentum(p, k, 20):.4f}"]
        try:
            best = best_test(runs / name)
            row += [f"{100 * best[m]:.1f}" for m in METRICS] + [str(best["iter"])]
        except (OSError, ValueError):
            row += ["-"] * 5
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def figure5(runs: Path, out: Path, names=FIGURE5) -> Path:
    """Mean IU against iterations (left) and against training wall-clock time relative to
    unsampled training's end (right), one line per sampling rate."""
    # matplotlib only where a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib only where a figure is drawn
    import matplotlib.pyplot as plt

    fig, (by_iter, by_time) = plt.subplots(1, 2, figsize=(10, 4))
    reference = None
    drawn = 0
    for name in names:
        run = runs / name
        if not (run / JSON_NAME).is_file():
            continue
        found = tests(run)
        seconds = training_seconds(run)
        p = EXPERIMENTS[name].sample_p or 1.0
        iters = np.array([t["iter"] for t in found])
        iu = np.array([100 * t["mean_iu"] for t in found])
        times = np.array([seconds.get(t["iter"], np.nan) for t in found])
        if reference is None and p == 1.0 and times.size:
            reference = np.nanmax(times)
        by_iter.plot(iters, iu, marker="o", label=f"p = {p:g}")
        by_time.plot(times, iu, marker="o", label=f"p = {p:g}")
        drawn += 1
    if not drawn:
        raise FileNotFoundError(f"{runs}: none of {list(names)} has a training log")
    if reference:
        for line in by_time.get_lines():
            line.set_xdata(np.asarray(line.get_xdata()) / reference)
        by_time.relim()
        by_time.autoscale_view()
    by_iter.set_xlabel("iteration")
    by_time.set_xlabel("relative wall-clock time" if reference else "training seconds")
    for axes in (by_iter, by_time):
        axes.set_ylabel("mean IU")
        axes.grid(alpha=0.3)
        axes.legend()
    fig.suptitle("Loss sampling (Section 4.4, Figure 5)")
    return save_figure(fig, out)


def table8(runs: Path, data_root: Path, *, width: float = 1.0, progress: bool = True) -> str:
    """Table 8: each condition's mean IU without background on the test split, from the
    run's score.json (the schedule's final scoring) or, for Reference-FG / -BG, mask-reference
    scored once with the test-time mask (kept as score-mask-<mask>.json and reused)."""

    lines = ["| condition | run | mask added at test | mean IU w/o background | paper |",
             "|---|---|---|---:|---:|"]
    for condition, name, mask in TABLE8:
        run = Path(runs) / name
        cached = run / (f"score-mask-{mask}.json" if mask else "score.json")
        value = "-"
        if cached.is_file():
            value = json.loads(cached.read_text())["label"].get("mean_iu_no_bg")
        elif run_weights_path(runs, name).is_file():
            result = score_weights(name, run_weights_path(runs, name), data_root, width=width,
                                   progress=progress, mask=mask).as_dict()
            cached.write_text(json.dumps(result, indent=2) + "\n")
            value = result["label"]["mean_iu_no_bg"]
        shown = f"{100 * value:.1f}" if isinstance(value, float) else "-"
        lines.append(f"| {condition} | {name} | {mask or 'none'} | {shown} | "
                     f"{TABLE8_PAPER[condition]} |")
    return "\n".join(lines)


@cli_main("reports", also=(OSError, ValueError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Table 2, Figure 5 and Table 8 from finished "
                                                 "runs.")
    parser.add_argument("what", choices=("table2", "figure5", "table8"))
    parser.add_argument("--runs", type=Path, default=RUNS_DIR, help="runs folder")
    parser.add_argument("--out", type=Path, help="figure5: PNG (default RUNS/figure5.png)")
    parser.add_argument("--data", type=Path, help="table8: dataset root the runs test on")
    parser.add_argument("--width", type=float, default=1.0, help="table8: the runs' width")
    args = parser.parse_args(argv)
    if args.what == "table8" and args.data is None:
        parser.error("table8 scores the runs' weights: give --data DATA")
    if args.what == "table2":
        print(table2(args.runs))
    elif args.what == "table8":
        print(table8(args.runs, args.data, width=args.width))
    else:
        print(figure5(args.runs, args.out or args.runs / "figure5.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
