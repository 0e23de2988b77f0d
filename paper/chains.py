"""One chain's unit of `make paper`: train its stages, score its rows. The serial run
(paper.run) and each Ray task (paper.ray_runner) call exactly `work`, and the report's
collection reads the same cached scores (`score_row`).

Training goes through training.schedule (the same loop and rules as `make voc-fcn8s`);
scores are kept in RUNS/paper/scores/ keyed by the weights' digest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core import paper_numbers as N
from core.manifest import sha256
from core.weights import run_weights_path
from evaluation.metrics import mean_iu_no_bg, present_classes, scores
from evaluation.score import score_weights
from paper.plan import Group, Row, Settings, chain, first_lr, stage_iterations
from training.runlog import JSON_NAME, read_records


# --- training ----------------------------------------------------------------------------------
def train_targets(targets: list[str], settings: Settings, equal_images: set[str],
                  progress: bool = False) -> None:
    """Train each target's chain in order (shared stages once; finished ones skipped)."""
    # training.schedule imports Caffe: loaded on use, so this module imports without it
    from training.schedule import ScheduleConfig, run_schedule

    # a target that is a stage of another one's chain is trained as part of that chain
    leaves = [t for t in targets if not any(t != o and t in chain(o) for o in targets)]
    for target in leaves:
        iters, first_iters = ((stage_iterations(target, settings, target in equal_images),
                               stage_iterations(target, settings, target in equal_images, True))
                              if settings.iters else (None, None))
        run_schedule(ScheduleConfig(
            target, settings.data, runs=settings.runs, weights=settings.weights,
            iters=iters, first_iters=first_iters, test_every=settings.test_every,
            first_until_learned=(first_iters * settings.first_extension
                                 if first_iters and settings.first_extension else None),
            width=settings.width,
            gpu=settings.gpu, seed=settings.seed, lr=first_lr(target, settings),
            lr_drop=settings.lr_drop, overrides=settings.overrides(target),
            progress=progress, score=False, base_dir=settings.base_dir))


# --- scoring -----------------------------------------------------------------------------------
def metrics_of(result: dict, hists: dict | None) -> dict:
    """A table row's columns from a scoring (evaluation.score's as_dict shape)."""
    metrics = {}
    if "geo" in result:
        metrics[N.GEOM_ACC] = result["geo"]["pixel_accuracy"]
    head = next((h for h in ("sem", "label") if h in result), None)
    if head is None:  # a net of SIFT Flow's geometry alone (Table 6's separate net)
        return metrics
    metrics |= {k: result[head][k] for k in N.STANDARD}
    # the claims' guard against ties at the background (core.paper_claims.LEARNED_ABOVE)
    if hists and head in hists:
        metrics[N.BACKGROUND_MEAN_IU] = constant_baseline(np.array(hists[head]),
                                                          "classes_scored" in result[head])
    elif N.BACKGROUND_MEAN_IU in result[head]:  # a test record: class 0's (VOC's background)
        metrics[N.BACKGROUND_MEAN_IU] = result[head][N.BACKGROUND_MEAN_IU]
    if N.MEAN_IU_NO_BG in result[head]:
        metrics[N.MEAN_IU_NO_BG] = result[head][N.MEAN_IU_NO_BG]
    elif hists and head in hists:
        metrics[N.MEAN_IU_NO_BG] = mean_iu_no_bg(np.array(hists[head]))
    return metrics


def constant_baseline(hist: np.ndarray, present_only: bool) -> float:
    """Mean IU of the best one-class prediction everywhere, scored as the head is (SIFT
    Flow: over the classes present): the score of a net that learned nothing. It is the
    all-background score where background is the commonest class (VOC, NYUD, Context);
    for SIFT Flow's semantics, whose label 0 never occurs, it is the sky's."""
    hist = np.asarray(hist, dtype=np.float64)
    classes = present_classes(hist) if present_only else None
    best = 0.0
    for k in np.flatnonzero(hist.sum(1) > 0):
        constant = np.zeros_like(hist)
        constant[:, k] = hist.sum(1)
        best = max(best, float(scores(constant, classes).mean_iu))
    return best


def score_key(row: Row) -> str:
    return row.experiment + (f"@mask-{row.test_mask}" if row.test_mask else "") + \
        ("#best" if row.best else "")


def score_row(row: Row, settings: Settings) -> dict:
    """The row's metrics (fractions), cached in RUNS/paper/scores/ by the weights' digest."""
    final = run_weights_path(settings.runs, row.experiment)
    if not final.is_file():
        raise FileNotFoundError(f"{final}: {row.experiment} has not finished")
    cache = settings.report_dir / "scores" / f"{score_key(row)}.json"
    stamp = sha256(final)
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("weights_sha256") == stamp:
            return cached["metrics"] | run_facts(settings.runs / row.experiment)
    if row.best:
        metrics = best_during_training(settings.runs / row.experiment)
    else:

        masked = {"mask": row.test_mask} if row.test_mask else {}
        result = score_weights(row.experiment, final, settings.data, width=settings.width,
                               progress=False, memory=settings.gpu is None, **masked)
        metrics = metrics_of(result.as_dict(), {k: v.tolist() for k, v in
                                                result.hists.items()})
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"weights": str(final), "weights_sha256": stamp,
                                 "metrics": metrics}, indent=1) + "\n")
    return metrics | run_facts(settings.runs / row.experiment)


def run_facts(run_dir: Path) -> dict:
    """What the run's train.jsonl says beside the scores, read afresh with each (a score
    cached before a fact existed lacks it): the training's wall-clock, the steps it took,
    and the mean IU of each test it took (keyed by the iteration as text, as JSON keeps
    it; what a claim at equal iterations reads)."""
    records = read_records(run_dir / JSON_NAME)
    done = [r["iter"] for r in records if r.get("type") == "done"]
    tests = {str(r["iter"]): r["label"]["mean_iu"] for r in records
             if r.get("type") == "test" and "mean_iu" in r.get("label", {})}
    steps = done[-1] if done else max((int(k) for k in tests), default=0)
    return {N.TRAIN_SECONDS: train_seconds(records), N.ITERATIONS: steps,
            N.TEST_MEAN_IU: tests}


def train_seconds(records: list[dict]) -> float:
    """Wall-clock seconds of a run's training steps (Section 4.4's time of sampling): the
    gaps between consecutive step records of train.jsonl, so tests, snapshots and the
    time before a resume are left out."""
    total, previous = 0.0, None
    for record in records:
        if record.get("type") == "step" and previous is not None:
            total += record["time"] - previous
        previous = record["time"] if record.get("type") == "step" else None
    return round(total, 3)


def best_during_training(run_dir: Path) -> dict:
    """Table 2's scores: the test with the highest mean IU among those taken in training."""

    tests = [r for r in read_records(run_dir / JSON_NAME, "test") if "label" in r]
    if not tests:
        raise RuntimeError(f"{run_dir / JSON_NAME}: no test records")
    best = max(tests, key=lambda r: (r["label"]["mean_iu"] or 0.0, -r["iter"]))
    metrics = metrics_of(best, None)
    metrics["iteration"] = best["iter"]
    return metrics


def score_component(targets: list[str], settings: Settings, groups: list[Group]) -> None:
    """Score every row whose weights come from this component (run where it was trained)."""
    stages = {s for t in targets for s in chain(t)}
    for group in groups:
        for row in group.rows:
            if row.experiment in stages:
                score_row(row, settings)


def work(targets: list[str], settings: Settings, equal_images: set[str],
         groups: list[Group], progress: bool = False) -> list[str]:
    """One component: train its chains, score its rows. A serial run and each Ray task
    call exactly this."""
    train_targets(targets, settings, equal_images, progress)
    score_component(targets, settings, groups)
    return targets
