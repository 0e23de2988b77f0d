"""`make paper`: train what the chosen tables lack, score each row, write the report.

    python -m paper.run [--tables 3,5,6,7] --data DATA [--runs RUNS] [--gpu N] [--mini]
                        [--plan] [--ray-address ADDR]

Training goes through training.schedule (the same loop and rules as `make voc-fcn8s`):
a stage whose final weights exist is reused, one with snapshots resumes from the latest.
Each row is then scored on its table's split with its table's metric, and the scores are
kept in RUNS/paper/scores/ keyed by the weights' digest, so a second run recomputes
nothing. MINI=1 writes synthetic data in each dataset's real layout first and trains
width-reduced nets on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from analyses.iu_bounds import iu_bounds
from core import arguments
from core import paper_numbers as N
from core.catalog import split_list
from core.defaults import DATA_ROOT, RUNS_DIR, TEST_EVERY
from core.errors import ReportedError, cli_main
from core.processes import stopped, stopping_with_parent, usable_cpus
from core.weights import base_weights_path, run_weights_path
from evaluation.labels import split_labels
from paper.chains import score_row, work
from paper.miniature import backbone_of, mini_bases, mini_data
from paper.plan import (
    MINI,
    SHORT,
    TABLES,
    Group,
    Miniature,
    Plan,
    Settings,
    chain,
    components,
    make_plan,
    mini_settings,
    parse_tables,
    picture_passes,
    registered,
    render,
    say,
)
from paper.processes import Job, payload_of, run_side_by_side
from paper.ray_runner import run_on_ray
from paper.report import architecture, write_report
from training.runlog import JSON_NAME, read_records


# --- the whole run -----------------------------------------------------------------------------
def collect(plan: Plan) -> dict:
    """Per group: 'missing' with the reason, or the metrics of every row with a run."""
    out = {}
    for group in plan.groups:
        reason = group_missing(plan, group)
        if reason:
            out[group.key] = {"missing": reason}
            continue
        if group.computed == "bounds":
            out[group.key] = {"rows": bounds_rows(group, plan.settings)}
            continue
        rows = {}
        for row in group.rows:
            if row.experiment:
                rows[row.label] = score_row(row, plan.settings)
        out[group.key] = {"rows": rows}
        if group.key == "1":
            out[group.key]["nets"] = net_facts(group, plan.settings)
    return out


def group_missing(plan: Plan, group: Group) -> str | None:
    if plan.missing.get(group.key):
        return "; ".join(f"experiment {name} not registered" for name in
                         plan.missing[group.key])
    if group.computed == "bounds":

        listing = split_list("voc", "test", Path(plan.settings.data), "seg11valid")
        if not listing.is_file():
            return (f"{listing}: the VOC 2011 seg11valid list is missing (`make data-fetch "
                    f"DATASET=voc`)")
        return None
    problems = plan.problems(group)
    if problems:
        return "; ".join(problems)
    unfinished = [n for n in group.runs()
                  if not run_weights_path(plan.settings.runs, n).is_file()]
    if unfinished:
        return "; ".join(f"run {n} {why_unfinished(plan.settings.runs / n)}"
                         for n in unfinished)
    return None


def why_unfinished(run_dir: Path) -> str:
    """'diverged (…)' when the run's log ends in divergence (a result of its settings, not
    a run still to do), else 'not finished'."""
    log = run_dir / JSON_NAME
    last = read_records(log)[-1:] if log.is_file() else []
    if last and last[0].get("type") == "diverged":
        return f"diverged ({last[0].get('message', 'the loss is not finite')})"
    return "not finished"


def bounds_rows(group: Group, settings: Settings) -> dict:
    """Section 6.3 on this run's VOC seg11valid labels (analyses.iu_bounds), cached by the
    split list's digest. Mean IU as a fraction, like every other score."""

    listing = split_list("voc", "test", Path(settings.data), "seg11valid")
    cache = settings.report_dir / "scores" / "iu-bounds.json"
    stamp = hashlib.sha256(f"{Path(settings.data).resolve()}\n".encode()
                           + listing.read_bytes()).hexdigest()
    if cache.is_file() and json.loads(cache.read_text()).get("split_sha256") == stamp:
        return json.loads(cache.read_text())["rows"]
    _, num_classes, labels = split_labels("voc", Path(settings.data), "seg11valid", "test",
                                          progress=False)
    factors = [int(r.label) for r in group.rows]
    bounds = iu_bounds(labels, num_classes, factors)
    rows = {str(f): {N.MEAN_IU: bounds[f] / 100} for f in factors}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"split_sha256": stamp, "rows": rows}, indent=1) + "\n")
    return rows


def net_facts(group: Group, settings: Settings) -> dict:
    """Table 1's architecture columns, computed from the generated nets at the run's width."""

    return {row.label: architecture(row.experiment, settings.width) for row in group.rows}


class ChainsFailed(ReportedError, RuntimeError):
    """Some chains diverged or met bad data; the report was written without them."""


def needed_bases(targets: list[str], plan: Plan) -> set[str]:
    """The FCN bases (not earlier stages) the targets' chains start from."""
    stages = {s for t in targets for s in chain(t)}
    return {registered()[s].base for s in stages} - set(registered()) - {"streams"}


def base_waves(plan: Plan) -> list[set[str]]:
    """The miniature's bases in the order they are made: VGG16's first (most tables start
    from it), then each other backbone's, so the VGG16 tables' chains train before the
    other classifiers' pre-training (a partial run has the most claims to show)."""
    bases = needed_bases(plan.targets, plan)
    first = {b for b in bases if b.startswith("vgg16")}
    return [first] + [{b} for b in sorted(bases - first)]


def by_reach(work_items: list[list[str]], plan: Plan) -> list[list[str]]:
    """The components in the order that finishes the most groups soonest: those whose
    stages serve the most groups first (VOC's FCN-32s chain: Tables 2, 3, 8 and every
    control), then the shorter chains, then the plan's order. Results do not depend on
    the order (each chain is seeded on its own); a partial run shows more whole groups."""
    def reach(targets: list[str]) -> tuple[int, int]:
        stages = {s for t in targets for s in chain(t)}
        served = sum(bool(stages & set(g.runs())) for g in plan.groups)
        return -served, len(stages)

    return sorted(work_items, key=reach)


def longest_first(work_items: list[list[str]], plan: Plan) -> list[list[str]]:
    """The components by their picture passes (paper.plan.picture_passes), most first,
    ties in their order: with JOBS workers a long chain started last runs alone at the end
    (PASCAL-Context's three stages did, ~4 minutes of one idle CPU, in the run of
    2026-12-07). Passes, not the plan's GPU hours: the miniature's pictures are all one
    size, and at its width the backbones' costs are not the paper's Table 1 ratios."""
    def passes(targets: list[str]) -> int:
        stages = {s for t in targets for s in chain(t)}
        return sum(picture_passes(s, plan.stages[s].iterations, plan.settings)
                   for s in stages if s in plan.stages)

    return sorted(work_items, key=lambda targets: -passes(targets))


def finishes_a_group(targets: list[str], plan: Plan) -> bool:
    """Whether one of the groups these targets serve has every run startable now (its
    data and starting weights there): Table 1's VGG16 net waits for AlexNet's and
    GoogLeNet's bases, since its group shows nothing without them."""
    stages = {s for t in targets for s in chain(t)}
    return any(not any(r in plan.data or r in plan.weights for r in g.runs())
               for g in plan.groups if stages & set(g.runs()))


def run_serially(work_items: list[list[str]], settings: Settings, plan: Plan,
                 progress: bool) -> list[str]:
    """Train and score each component in turn; returns the failed chains (a diverging
    chain or bad data stops only its own component)."""
    # training.train imports Caffe: loaded on use, so this module imports without it
    from training.train import DataFault, Diverged

    failed = []
    for targets in work_items:
        try:
            work(targets, settings, plan.equal_images, plan.groups, progress)
        except (Diverged, DataFault) as e:
            # one chain's fault; the others still train and the report is still written
            # (its groups say which run did not finish), then the run fails
            failed.append(f"{' + '.join(targets)}: {e}")
            say(f"chain {' + '.join(targets)} failed; going on with the others")
    return failed


def run_in_processes(plan: Plan, mini: Miniature | None, jobs: int) -> list[str]:
    """Every base, then every chain, `jobs` worker processes at a time (paper.processes):
    a chain starts once the bases it needs are made, the longest first."""
    settings = plan.settings
    plan = make_plan(plan.tables, settings)  # the miniature's data is there now
    to_make = set()
    if mini is not None:
        to_make = {b for b in needed_bases(plan.targets, plan)
                   if not base_weights_path(b, settings.base_dir).is_file()}
    backbones: dict[str, list[str]] = {}
    for base in sorted(to_make):
        backbones.setdefault(backbone_of(base), []).append(base)
    work_jobs = [Job("bases", names) for _, names in
                 sorted(backbones.items(), key=lambda kv: (kv[0] != "vgg16", kv[0]))]
    startable = [t for t in plan.targets if t not in plan.data
                 and (t not in plan.weights or needed_bases([t], plan) & to_make)]
    chains = longest_first(by_reach(components(startable), plan), plan)
    work_jobs += [Job("chain", c, needs=needed_bases(c, plan) & to_make) for c in chains]
    say(f"{len(chains)} independent chains, {len(backbones)} backbone(s) to pre-train, "
        f"{jobs} at a time (logs: {settings.report_dir / 'logs'})")
    payload = payload_of(settings, plan.equal_images, plan.tables,
                         "short" if mini is SHORT else "full")
    return run_side_by_side(work_jobs, payload, jobs, settings.report_dir / "logs")


def run(tables: list[str], settings: Settings, *, mini: Miniature | None = None,
        ray_address: str | None = None, progress: bool = True,
        report_only: bool = False, jobs: int = 1) -> Path:
    """Train, score, report; returns the report's path. report_only: train nothing, score
    and report what has finished (the rest shows as missing: run X not finished). jobs > 1:
    that many chains side by side in local processes (paper.processes)."""
    began, failed = time.time(), []
    plan = make_plan(tables, settings)
    if report_only:
        return write_report(plan, collect(plan))
    waves: list[set[str]] = [set()]  # the bases to make before each wave of chains
    if mini is not None:
        datasets = {registered()[s].dataset for t in plan.targets for s in chain(t)}
        if any(g.computed == "bounds" for g in plan.groups):
            datasets.add("voc")
        mini_data(settings, mini, datasets)
        waves = base_waves(plan)
        if ray_address:  # every base before any task
            waves = [set().union(*waves)]
    for key, names in plan.missing.items():
        if names:
            say(f"table {key}: missing: " + ", ".join(f"experiment {n} not registered"
                                                      for n in names))
    if jobs > 1 and not ray_address:
        failed = run_in_processes(plan, mini, jobs)
        waves = []
    started: list[list[str]] = []
    for bases in waves:
        if mini is not None:
            mini_bases(settings, mini, bases)
            plan = make_plan(tables, settings)  # the data and these weights are there now
        pending = [c for c in plan.components() if c not in started]
        if bases is not waves[-1]:  # a chain waits for the wave that can finish its groups
            pending = [c for c in pending if finishes_a_group(c, plan)]
        work_items = by_reach(pending, plan)
        started += work_items
        say(f"{len(work_items)} independent chains: " + "; ".join(" + ".join(c)
                                                                  for c in work_items))
        if ray_address:
            run_on_ray(ray_address, work_items, plan)
            continue
        failed += run_serially(work_items, settings, plan, progress)

    plan = make_plan(tables, settings)  # what every chain has made
    results = collect(plan)
    report = write_report(plan, results)
    if failed:
        raise ChainsFailed(f"{len(failed)} chain(s) failed, the report ({report}) shows the "
                           f"rest: " + " | ".join(failed))
    missing = [key for key, value in results.items() if "missing" in value]
    say(f"done in {time.time() - began:.0f} s; {len(results) - len(missing)} of {len(results)} "
        f"groups have numbers" + (f" (missing: {', '.join(missing)}; `make paper PLAN=1` "
                                  f"says what each needs)" if missing else ""))
    return report


@cli_main("paper", also=(ValueError, OSError, RuntimeError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train what the paper's tables need, score each row, and write "
                    "RUNS/paper/report.md and report.html beside the paper's numbers.")
    parser.add_argument("--tables", help=f"comma-separated (default all): {','.join(TABLES)}")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="dataset root")
    parser.add_argument("--runs", type=Path, help="runs folder, on storage every worker "
                        "sees for Ray (default runs/, MINI runs/paper-mini)")
    parser.add_argument("--weights", help="base caffemodel for first stages; 'none': random")
    parser.add_argument("--gpu", type=int, metavar="N", help="GPU id (default: CPU)")
    parser.add_argument("--iters", type=arguments.iterations(),
                        help="iterations per stage (default the paper's)")
    parser.add_argument("--test-every", type=arguments.iterations("TEST_EVERY=/--test-every"),
                        help="seg test (and snapshot) interval "
                        f"(default {TEST_EVERY}; the miniature's own)")
    parser.add_argument("--mini", action="store_true", help="the miniature: synthetic data, "
                        "width-reduced nets, CPU")
    parser.add_argument("--short", action="store_true", help="with --mini: the shortened "
                        "miniature the tests run (few images, few iterations)")
    parser.add_argument("--plan", action="store_true", help="only list what is needed")
    parser.add_argument("--report-only", action="store_true", help="train nothing: score "
                        "and report the finished runs (a long run's progress)")
    parser.add_argument("--ray-address", help="submit each chain to this Ray cluster")
    parser.add_argument("--jobs", type=arguments.iterations("JOBS=/--jobs"),
                        help="chains side by side in local processes, the CPUs shared "
                        "among them (default: every CPU for the miniature, 1 for a GPU run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        tables = parse_tables(args.tables)
        mini = None
        if args.mini:
            mini = SHORT if args.short else MINI
            settings = mini_settings(args.runs or RUNS_DIR / "paper-mini", mini,
                                     gpu=args.gpu)
            settings = replace(settings, iters=args.iters or settings.iters,
                               first_iters=None if args.iters else settings.first_iters,
                               first_extension=(None if args.iters
                                                else settings.first_extension),
                               test_every=args.test_every or settings.test_every)
        else:
            settings = Settings(data=args.data, runs=args.runs or RUNS_DIR,
                                weights=args.weights, gpu=args.gpu, iters=args.iters,
                                test_every=args.test_every or TEST_EVERY)
        if args.plan:
            print(render(make_plan(tables, settings)))
            return 0
        with stopping_with_parent():  # make's SIGINT or SIGTERM stops every chain
            report = run(tables, settings, mini=mini, ray_address=args.ray_address,
                         progress=not args.quiet, report_only=args.report_only,
                         jobs=args.jobs or (usable_cpus() if mini and args.gpu is None
                                            else 1))
    except KeyboardInterrupt as e:
        return stopped("paper", e)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
