"""The report: every table in the paper's layout, three numbers per cell — the paper's,
this run's, and the difference — plus the figures, as RUNS/paper/report.md and .html.

A group whose runs are not all there says what is missing and shows no numbers of its
own (the paper's rows are still listed, so the reader sees what will be compared).
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from core import paper_claims as C
from core import paper_numbers as N
from core.caffe_files import load_weights
from core.catalog import DATASETS
from core.palette import colorize
from core.weights import run_weights_path
from paper.plan import Group, Plan, paper_row, parameter_count
from training.runlog import JSON_NAME, read_records

EXTRA_TITLES = {"conv_layers": "conv. layers", "parameters_m": "parameters (M)",
                "rf_size": "rf size", "max_stride": "max stride"}
PERCENT = set(N.COLUMN_TITLES)          # metrics kept as fractions, shown ×100


def title(column: str) -> str:
    return N.COLUMN_TITLES.get(column) or EXTRA_TITLES.get(column, column)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def cell(paper: float | None, ours: float | None) -> str:
    """'paper · this run · difference' (difference = this run − paper)."""
    diff = None if paper is None or ours is None else ours - paper
    return f"{fmt(paper)} · {fmt(ours)} · {'—' if diff is None else f'{diff:+.1f}'}"


def this_run(metrics: dict | None, column: str) -> float | None:
    if not metrics or metrics.get(column) is None:
        return None
    value = metrics[column]
    return 100 * value if column in PERCENT else value


# --- Table 1's architecture columns --------------------------------------------------------
def architecture(experiment: str, width: float = 1.0) -> dict:
    """Conv. layers (the deepest chain of convolutions, the FCN's score layer included),
    parameters in millions, receptive field and stride of the score layer — read off the
    generated deploy net (nets.analysis), never typed in."""
    # nets.analysis imports Caffe: loaded on use, so this module imports without it
    from nets.analysis import geometry
    from nets.experiments import build

    net = build(experiment, "deploy", width=width)
    depth: dict[str, int] = {}
    deepest = 0
    for layer in net.layer:
        below = max((depth.get(b, 0) for b in layer.bottom), default=0)
        here = below + (layer.type == "Convolution")
        for top in layer.top:
            depth[top] = here
        deepest = max(deepest, here)
    score = "score_fr" if any(t == "score_fr" for layer in net.layer for t in layer.top) \
        else "score"
    shape = geometry(net, score)
    return {"conv_layers": deepest, "parameters_m": parameter_count(experiment, width) / 1e6,
            "rf_size": shape.receptive_field, "max_stride": shape.stride}


# --- tables ------------------------------------------------------------------------------------
def group_table(group: Group, result: dict, mini: bool) -> str:
    """One group as markdown: the paper's layout, a cell per (row, column)."""
    lines = [f"## {group.title}", ""]
    if group.claim:
        lines += [f"The paper: “{group.claim}”.", ""]
    if "missing" in result:
        lines += [f"**missing: {result['missing']}**", ""]
    lines.append("each cell: paper · " + ("the miniature's run" if mini else "this run")
                 + " · difference")
    lines.append("")
    extra = ["train FG", "train BG", "test FG", "test BG"] if group.key == "8" else []
    lines.append("| | " + " | ".join(extra + [title(c) for c in group.columns]) + " |")
    lines.append("|---|" + "---|" * len(extra) + "---:|" * len(group.columns))
    rows = result.get("rows", {})
    nets = result.get("nets", {})
    for row in group.rows:
        printed = paper_row(group, row)
        ours = {**rows.get(row.label, {}), **nets.get(row.label, {})} \
            if (row.experiment or group.computed) and "missing" not in result else None
        cells = []
        for column in group.columns:
            paper = printed.value(column) if printed else None
            cells.append(cell(paper, this_run(ours, column)))
        masks = list(N.MASKING.get(row.label, ())) if extra else []
        label = row.label + (f" ({row.experiment})" if row.experiment else "")
        lines.append(f"| {label} | " + " | ".join(masks + cells) + " |")
    if group.key == "1":
        lines += ["", "Forward time (paper, 500×500 on a Titan X): " + ", ".join(
            f"{r.row} {r.value('forward_ms'):g} ms" for r in N.rows("1"))
            + "; this machine's timings are `make bench`'s."]
    if group.claim and "rows" in result and len(group.rows) > 1:
        lines += ["", claim_check(group, rows)]
    if group.key == "2" and "rows" in result:
        lines += ["", momentum_note()]
    return "\n".join(lines)


def claim_check(group: Group, rows: dict) -> str:
    """Each other row's mean IU against the group's first (reference) row, this run."""
    reference = group.rows[0]
    base = rows.get(reference.label, {}).get(N.MEAN_IU)
    parts = []
    for row in group.rows[1:]:
        value = rows.get(row.label, {}).get(N.MEAN_IU)
        if base is not None and value is not None:
            parts.append(f"{row.label}: {100 * (value - base):+.1f} mean IU")
    return f"This run against {reference.label}: " + "; ".join(parts) + "."


def claims_under(group_key: str, results: dict) -> str:
    """The paper's claims shown under one group, yes/NO/missing with their numbers (the
    demo's rendering: core.paper_claims.render), or '' when the group has none."""
    verdicts = C.judge_group(group_key, results)
    return ("What the paper found, checked here:\n\n" + C.render(verdicts)) if verdicts \
        else ""


def claims_summary(groups: list[Group], results: dict) -> str:
    """How many of the paper's claims this run checks and holds, and the claims whose
    group is not in this report (they stay missing, never silently dropped)."""
    shown = {g.key for g in groups}
    verdicts = [C.judge(c, results) for c in C.CLAIMS]
    count = {word: sum(v.word == word for v in verdicts) for word in ("yes", "NO", "missing")}
    lines = ["## The paper's claims, in sum", "",
             f"{len(verdicts)} claims: {count['yes']} hold (yes), {count['NO']} do not (NO), "
             f"{count['missing']} lack numbers in this run (missing). Margins are fixed in "
             "core/paper_claims.py before any run."]
    elsewhere = [v for v in verdicts if v.claim.group not in shown]
    if elsewhere:
        lines += ["", "Claims with no table in this report:", "", C.render(elsewhere)]
    return "\n".join(lines)


def momentum_note() -> str:
    """Section 6.2: momentum p with batch k ≈ p^(k'/k) with batch k'."""
    return (f"Section 6.2's rule: momentum 0.9 at batch 20 ≈ momentum "
            f"{0.9 ** (1 / 20):.4f} at batch 1 (0.9^(1/20)); 0.99 at batch 1 ≈ "
            f"{0.99 ** 20:.3f} at batch 20.")


# --- figures -----------------------------------------------------------------------------------
def figure_outputs(plan: Plan, experiments: list[tuple[str, str]], out: Path,
                   examples: int = 3, weights_from: dict | None = None) -> Path | None:
    """Figure 4 / Figure 7 style: input, ground truth and each net's output on the first
    test pictures, read through the test net itself (so masked or shape-only inputs show
    as the net saw them)."""
    # matplotlib only where a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib only where a figure is drawn
    import matplotlib.pyplot as plt


    columns: list[list[np.ndarray]] = []
    inputs = truths = None
    for _, name in experiments:
        weights = run_weights_path(plan.settings.runs, (weights_from or {}).get(name, name))
        if not weights.is_file():
            return None
        images, labels, outputs = test_net_outputs(name, weights, plan, examples)
        if inputs is None:
            inputs, truths = images, labels
        columns.append(outputs)
    titles = ["input", "ground truth"] + [t for t, _ in experiments]
    fig, axes = plt.subplots(len(inputs), len(titles),
                             figsize=(2.1 * len(titles), 2.1 * len(inputs)), squeeze=False)
    for r in range(len(inputs)):
        panels = [inputs[r], colorize(truths[r])] + [colorize(c[r]) for c in columns]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def test_net_outputs(experiment: str, weights: Path, plan: Plan, count: int):
    """Input picture, label and argmax of the first `count` examples of the test split."""
    # Caffe loads on use, so this module imports without it
    import caffe

    from nets.experiments import EXPERIMENTS
    from nets.generate import write_experiment

    exp = EXPERIMENTS[experiment]
    means = DATASETS[exp.dataset].means
    with tempfile.TemporaryDirectory(prefix="fcn-figure-") as tmp:
        paths = write_experiment(experiment, tmp, width=plan.settings.width,
                                 data_root=str(Path(plan.settings.data).resolve()))
        net = caffe.Net(str(paths["test"]), caffe.TEST)
    load_weights(net, weights)
    images, labels, outputs = [], [], []
    for _ in range(count):
        net.forward()
        data = net.blobs[exp.input_blobs[0]].data[0]
        if data.shape[0] == 3:
            mean = means.get(exp.input_blobs[0]) or means.get(exp.modalities[0]) or (0, 0, 0)
            bgr = data.transpose(1, 2, 0) + np.asarray(mean, dtype=np.float64)
            picture = np.clip(bgr[:, :, ::-1], 0, 255).astype(np.uint8)
        else:  # one channel (a mask, depth): stretched to grey
            plane = data[0]
            span = float(plane.max() - plane.min()) or 1.0
            picture = ((plane - plane.min()) / span * 255).astype(np.uint8)
            picture = np.stack([picture] * 3, -1)
        images.append(picture)
        label = net.blobs[exp.label_blobs[0]].data[0, 0].astype(np.int64)
        labels.append(label.astype(np.uint8))
        outputs.append(net.blobs[exp.score_blobs[0]].data[0].argmax(0).astype(np.uint8))
    return images, labels, outputs


def sampling_figure(plan: Plan, rows: list[tuple[str, str]], out: Path) -> Path | None:
    """Figure 5: test mean IU against iterations and against wall-clock time."""
    # matplotlib only where a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib only where a figure is drawn
    import matplotlib.pyplot as plt


    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, name in rows:
        log = plan.settings.runs / name / JSON_NAME
        if not log.is_file():
            return None
        elapsed, offset, last, tests = 0.0, 0.0, 0.0, {}
        for record in read_records(log):
            t = float(record.get("time") or 0.0)
            if t < last:          # a resumed process restarts its clock
                offset += last
            last = t
            elapsed = offset + t
            if record["type"] == "test" and "label" in record:
                tests[record["iter"]] = (elapsed, record["label"]["mean_iu"])
        iters = sorted(tests)
        left.plot(iters, [100 * tests[i][1] for i in iters], marker="o", label=label)
        right.plot([tests[i][0] for i in iters], [100 * tests[i][1] for i in iters],
                   marker="o", label=label)
    left.set_xlabel("iteration")
    right.set_xlabel("wall-clock seconds")
    for ax in (left, right):
        ax.set_ylabel("mean IU")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def figures(plan: Plan, results: dict) -> list[tuple[str, str]]:
    """(caption, path relative to the report, or 'missing: …') for each figure."""
    folder = plan.settings.report_dir / "figures"
    made: list[tuple[str, str]] = []

    def add(caption: str, group: str, make) -> None:
        if group not in results:
            return
        if "missing" in results[group]:
            made.append((caption, f"missing: {results[group]['missing']}"))
            return
        path = make()
        made.append((caption, str(path.relative_to(plan.settings.report_dir)) if path
                     else "missing: the runs' weights or logs"))

    add("Figure 4: input, ground truth, FCN-32s, FCN-16s, FCN-8s", "3",
        lambda: figure_outputs(plan, [("FCN-32s", "voc-fcn32s"), ("FCN-16s", "voc-fcn16s"),
                                      ("FCN-8s", "voc-fcn8s")], folder / "figure4.png"))
    add("Figure 5: loss sampling, mean IU by iteration and by wall-clock time", "sampling",
        lambda: sampling_figure(plan, [(r.label, r.experiment) for r in
                                       next(g for g in plan.groups if g.key == "sampling").rows],
                                folder / "figure5.png"))
    add("Figure 7: shape-only input (the mask the net sees), ground truth, output", "8",
        lambda: figure_outputs(plan, [("Shape", "mask-shape")], folder / "figure7.png"))
    return made


def learning_curves(plan: Plan) -> list[str]:
    """Each trained stage's curves.png (written by the schedule), relative to the report."""
    found = []
    for name in plan.stages:
        png = plan.settings.runs / name / "curves.png"
        if png.is_file():
            found.append(Path("..") / name / "curves.png")
    return [str(p) for p in found]


# --- writing -----------------------------------------------------------------------------------
def write_report(plan: Plan, results: dict) -> Path:
    s = plan.settings
    folder = s.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    header = ["# The paper's tables, reproduced", ""]
    if s.mini:
        header += ["**The miniature** (`make paper MINI=1`): synthetic pictures in each "
                   f"dataset's real layout, nets ÷{1 / s.width:g} in width from "
                   "pre-trained miniature classifiers, "
                   + (f"{s.first_iters} iterations for a stage that starts from a "
                      f"classifier and {s.iters} for a later one"
                      if s.first_iters and s.first_iters != s.iters
                      else f"{s.iters} iterations a stage")
                   + (f" (one still at the background after them trains on to "
                      f"{s.first_extension}× as many)"
                      if s.first_iters and s.first_extension else "")
                   + " on the CPU. Its numbers are the "
                   "miniature's, not PASCAL's: the report's shape is the point, not the "
                   "values.", ""]
    header += [f"Data: `{s.data}`; runs: `{s.runs}`; width {s.width:g}; seed {s.seed}.",
               "Each cell: the paper's number · this run's · the difference (this run − "
               "paper), in percent; Table 1's architecture columns are counts.", ""]
    body = []
    for group in plan.groups:
        body.append(group_table(group, results[group.key], s.mini))
        claims = claims_under(group.key, results)
        if claims:
            body.append(claims)
    body.append(claims_summary(plan.groups, results))
    made = figures(plan, results)
    body.append("## Figures\n")
    for caption, where in made:
        body.append(f"- {caption}: {where}" if where.startswith("missing")
                    else f"### {caption}\n\n![{caption}]({where})\n")
    curves = learning_curves(plan)
    if curves:
        body.append("### Learning curves\n\n" + "\n".join(f"- [{Path(c).parent.name}]({c})"
                                                          for c in curves))
    text = "\n".join(header) + "\n" + "\n\n".join(body) + "\n"
    report = folder / "report.md"
    report.write_text(text)
    (folder / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True,
                                                    default=float) + "\n")
    (folder / "report.html").write_text(to_html(text))
    return report


def to_html(markdown: str) -> str:
    """The report's markdown subset (headings, tables, images, lists, paragraphs) as HTML."""
    out = ["<!doctype html><meta charset='utf-8'><title>FCN paper report</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
           "padding:2px 8px}td:not(:first-child){text-align:right;white-space:nowrap}"
           "</style>"]
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            table = []
            while i < len(lines) and lines[i].startswith("|"):
                table.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in table[0])
                       + "</tr>")
            for r in table[2:]:
                out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>")
            out.append("</table>")
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](", 1)
            out.append(f"<p><img src='{html.escape(src.rstrip(')'))}' "
                       f"alt='{html.escape(alt)}' style='max-width:100%'></p>")
        elif line.startswith("- "):
            out.append(f"<li>{_inline(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then **bold**, `code` and [links](href)."""
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
    return re.sub(r"\[(.+?)\]\((.+?)\)", r"<a href='\2'>\1</a>", text)
