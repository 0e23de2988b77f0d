"""`make paper`: the paper's numbers as data, the plan, and the shortened miniature end to
end — report shape, three numbers a cell, missing tables said as missing, and a second run
that reuses everything and gives the same numbers."""

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core import paper_numbers as N
from paper.plan import (
    TABLES,
    Settings,
    components,
    first_lr,
    gpu_hours,
    make_plan,
    mini_settings,
    parse_tables,
    render,
)

REPO = Path(__file__).resolve().parents[1]


# --- the paper's numbers --------------------------------------------------------------------
def test_paper_numbers_agree_with_each_other_where_the_paper_says_they_must():
    # "FCN-32s is FCN-VGG16, renamed" and Table 3's FCN-32s is Table 2's heavy row
    assert N.number("3", "FCN-32s", N.MEAN_IU) == N.number("2", "FCN-heavy", N.MEAN_IU) == 63.6
    assert [r.value(c) for r in N.rows("3")[:1] for c in N.STANDARD] == \
        [N.number("2", "FCN-heavy", c) for c in N.STANDARD]
    # "only 73% of the full fine-tuning performance"
    fixed = N.number("3", "FCN-32s fixed", N.MEAN_IU) / N.number("3", "FCN-32s", N.MEAN_IU)
    assert round(fixed, 2) == N.FIXED_FINE_TUNING_FRACTION
    # Section 4.4's more-data rows: AlexNet's starting point is Table 1's 39.8
    assert N.number("1-data", "FCN-AlexNet, VOC 2011 train (1,112 images)", N.MEAN_IU) == \
        N.number("1", "FCN-AlexNet", "mean_iu") == 39.8
    # Section 6.3's bounds fall as the factor grows
    bounds = [N.number("bounds", f, N.MEAN_IU) for f in ("4", "8", "16", "32", "64", "128")]
    assert bounds == sorted(bounds, reverse=True) == [98.5, 96.4, 92.8, 86.1, 73.3, 50.9]
    # row counts as printed
    assert {t: len(N.rows(t)) for t in ("1", "2", "3", "4", "5", "6", "7", "8")} == \
        {"1": 3, "2": 3, "3": 8, "4": 3, "5": 5, "6": 8, "7": 5, "8": 6}
    assert N.number("6", "FCN-8s", N.GEOM_ACC) == 94.6
    assert N.number("5", "Gupta et al.", N.MEAN_ACC) is None
    with pytest.raises(KeyError, match="table 7 has no row 'FCN-4s'"):
        N.number("7", "FCN-4s", N.MEAN_IU)


def test_every_table_row_with_a_paper_row_finds_it():
    from paper.plan import paper_row

    # Table 6's separate single-task nets: the paper prints no number for them, only that
    # the two-headed net "performs as well on both tasks as two independently trained nets"
    unprinted = {("6", "FCN-8s, semantic only"), ("6", "FCN-8s, geometric only")}
    for groups in TABLES.values():
        for group in groups:
            for row in group.rows:
                if group.key in {r.table for r in N.ROWS} and group.key != "1-data" \
                        and (group.key, row.label) not in unprinted:
                    assert paper_row(group, row) is not None, (group.key, row.label)


# --- the plan -----------------------------------------------------------------------------------
def test_tables_parse_and_table_4_points_at_the_submission():
    assert parse_tables("3, 6") == ["3", "6"]
    assert parse_tables(None) == list(TABLES)
    with pytest.raises(ValueError, match="voc-submission"):
        parse_tables("4")
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['9'\]"):
        parse_tables("9")


def test_chains_that_share_a_stage_go_to_one_worker():
    groups = components(["voc-fcn32s", "voc-fcn8s", "voc-fcn8s-atonce", "nyud-fcn32s-color",
                         "nyud-fcn32s-color-hha", "voc-fcn16s"])
    assert groups == [["voc-fcn32s", "voc-fcn8s", "voc-fcn16s"], ["voc-fcn8s-atonce"],
                      ["nyud-fcn32s-color", "nyud-fcn32s-color-hha"]]


def test_gpu_hours_come_from_the_papers_36_hours_for_staged_fcn8s(tmp_path):
    full = Settings(data=tmp_path, runs=tmp_path)
    staged = sum(gpu_hours(name, 100_000, full) for name in ("voc-fcn32s", "voc-fcn16s",
                                                             "voc-fcn8s"))
    assert staged == pytest.approx(N.STAGED_FCN8S_GPU_HOURS)
    # AlexNet at Table 1's 16 ms vs VGG16's 100 ms, 20-image batches
    assert gpu_hours("voc-fcn-alexnet", 1000, full) == pytest.approx(
        1000 * 20 * 0.432 * 0.16 / 3600)
    # the miniature's single-image FCN-AlexNet: its own batch of 1, not the solver's 20
    assert gpu_hours("voc-fcn-alexnet", 1000, mini_settings(tmp_path)) == pytest.approx(
        1000 * 0.432 * 0.16 / 3600)


def test_plan_disk_is_8_bytes_a_parameter_per_snapshot_plus_init_and_final(tmp_path):
    """A snapshot keeps weights and momentum (4 + 4 bytes a parameter, the fixed bilinear
    upsampling too: 21·21·64·64 for VOC's FCN-32s, 33·33·64·64 + 3·3·64·64 for SIFT Flow's
    two heads), one per solver `snapshot` interval, else per TEST_EVERY, else one; at least
    one; init and final weights add 8 bytes more."""
    from paper.plan import parameter_count, snapshot_gb

    learned = parameter_count("voc-fcn32s", 1.0)
    # VGG16's 13 convolutions, fc6 and fc7 as convolutions, score_fr: weights and biases
    assert learned == 14_714_688 + (7 * 7 * 512 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 21
    assert parameter_count("voc-fcn32s") == learned   # full width unless told
    voc = parameter_count("voc-fcn32s", 1.0, learned_only=False)
    assert voc - learned == 21 * 21 * 64 * 64
    sift = parameter_count("siftflow-fcn32s", 1.0, learned_only=False)
    assert sift - parameter_count("siftflow-fcn32s", 1.0) == (33 * 33 + 3 * 3) * 64 * 64
    assert parameter_count("voc-fcn32s", 0.5) < learned / 3
    full = Settings(data=tmp_path, runs=tmp_path)           # voc-fcn32s: snapshot 4000
    assert snapshot_gb("voc-fcn32s", full, 100_000) == pytest.approx(voc * 8 * 26 / 1e9,
                                                                      rel=1e-12)
    assert snapshot_gb("voc-fcn32s", full, 3_999) == pytest.approx(voc * 8 * 2 / 1e9)
    assert snapshot_gb("voc-fcn32s", full, 10_000) == pytest.approx(voc * 8 * 3 / 1e9)  # 2 kept
    # SIFT Flow's solver takes no snapshots of its own: TEST_EVERY's, or one at the end
    every_500 = replace(full, test_every=500)
    assert snapshot_gb("siftflow-fcn32s", every_500, 2_000) == pytest.approx(sift * 8 * 5 / 1e9)
    assert snapshot_gb("siftflow-fcn32s", replace(full, test_every=0), 2_000) == \
        pytest.approx(sift * 8 * 2 / 1e9)
    assert snapshot_gb("voc-fcn32s", replace(full, width=0.5), 4_000) == pytest.approx(
        parameter_count("voc-fcn32s", 0.5, learned_only=False) * 8 * 2 / 1e9)


def test_plan_picture_passes_count_the_batch_and_each_stream(tmp_path):
    """iterations × the run's iter_size (the miniature's single-image override wins over
    the solver's 20), × 2 for a late fusion (each stream's net sees each picture)."""
    from paper.plan import picture_passes

    full = Settings(data=tmp_path, runs=tmp_path)
    mini = mini_settings(tmp_path)
    assert picture_passes("voc-fcn32s", 7, full) == 7
    assert picture_passes("table1-fcn-vgg16", 7, full) == 140
    assert picture_passes("table1-fcn-vgg16", 7, mini) == 7
    assert picture_passes("sampling-p25", 7, full) == 28
    assert picture_passes("nyud-fcn32s-color-hha", 7, full) == 14
    assert picture_passes("nyud-fcn32s-color-d", 7, full) == 7
    # and the estimate scales with them, and with the picture size (NYUD's 560×425, SIFT
    # Flow's 256×256 against VOC's 500×375)
    assert gpu_hours("nyud-fcn32s-color-hha", 7, full) == pytest.approx(
        2 * gpu_hours("nyud-fcn32s-color", 7, full))
    per_voc_picture = gpu_hours("voc-fcn32s", 1, full)
    assert gpu_hours("nyud-fcn32s-color", 1, full) == pytest.approx(
        per_voc_picture * 560 * 425 / (500 * 375))
    assert gpu_hours("siftflow-fcn32s", 1, full) == pytest.approx(
        per_voc_picture * 256 * 256 / (500 * 375))


def test_plan_stage_iterations_first_iters_and_the_equal_images_rule(tmp_path):
    """ITERS= (first: a chain's first stage's own count, where given), else the solver's
    max_iter; Table 2's equal-images rule divides by the batch, the run's override before
    the solver's, and never to 0; without ITERS= the paper's own counts stand."""
    from paper.plan import MINI, stage_iterations

    mini = mini_settings(tmp_path)
    assert stage_iterations("voc-fcn32s", mini, True, first=True) == MINI.first_iters
    assert stage_iterations("voc-fcn32s", mini, True) == MINI.iters
    assert stage_iterations("voc-fcn8s", mini, False) == MINI.iters
    assert stage_iterations("table2-accumulated", mini, True, first=True) \
        == MINI.first_iters // 20
    assert stage_iterations("table2-accumulated", mini, False, first=True) == MINI.first_iters
    assert stage_iterations("table1-fcn-vgg16", mini, True) == MINI.iters   # iter_size 1 here
    assert stage_iterations("sampling-p25", replace(mini, iters=10), True) == 2   # 10 // 4
    assert stage_iterations("table2-accumulated", replace(mini, iters=19), True) == 1
    same = replace(mini, first_iters=None)
    assert stage_iterations("voc-fcn32s", same, False, first=True) == MINI.iters
    paper = Settings(data=tmp_path, runs=tmp_path)
    assert mini.mini and not paper.mini   # the report's and the plan's miniature lines
    assert stage_iterations("voc-fcn32s", paper, True, first=True) == 100_000
    assert stage_iterations("table2-accumulated", paper, True) == 5_000   # its own solver
    assert stage_iterations("nyud-fcn32s-color", paper, False) == 300_000


def test_the_miniatures_plan_gives_a_chains_first_stage_its_first_iters(tmp_path):
    """A stage from a classifier trains MINI.first_iters, later stages MINI.iters; a
    fusion stage, from two streams, is a later stage."""
    from paper.plan import MINI

    stages = make_plan(parse_tables(None), mini_settings(tmp_path)).stages
    assert MINI.first_iters != MINI.iters
    assert stages["voc-fcn32s"].iterations == MINI.first_iters
    assert stages["nyud-fcn32s-hha"].iterations == MINI.first_iters
    assert stages["voc-fcn16s"].iterations == MINI.iters
    assert stages["nyud-fcn32s-color-hha"].iterations == MINI.iters


def test_jobs_start_the_chains_with_the_most_picture_passes_first(tmp_path):
    """JOBS=N: the NYUD chain (two streams, then their fusion's two nets) before VOC's
    four stages, the three-stage chains before every one-stage chain; Table 2's
    accumulated run counts its 20 images a step."""
    import paper.run as paper_run
    from paper.plan import MINI, chain, components, picture_passes

    plan = make_plan(parse_tables(None), mini_settings(tmp_path))
    ordered = paper_run.longest_first(paper_run.by_reach(components(plan.targets), plan), plan)
    assert "nyud-fcn32s-color-hha" in ordered[0]
    assert "voc-fcn8s" in ordered[1]
    stage_counts = [len({s for t in c for s in chain(t)}) for c in ordered]
    assert stage_counts[:6] == [3, 4, 3, 3, 3, 3] and set(stage_counts[6:]) == {1}
    accumulated = plan.stages["table2-accumulated"]
    assert picture_passes("table2-accumulated", accumulated.iterations,
                          plan.settings) == MINI.first_iters


def test_table_1_architecture_columns_are_read_off_the_generated_nets():
    from paper.report import architecture

    vgg = architecture("voc-fcn32s")
    alex = architecture("voc-fcn-alexnet")
    assert (vgg["conv_layers"], vgg["rf_size"], vgg["max_stride"]) == (16, 404, 32)
    assert (alex["conv_layers"], alex["rf_size"], alex["max_stride"]) == (8, 355, 32)
    assert round(vgg["parameters_m"]) == 134 and round(alex["parameters_m"]) == 57
    from paper.plan import parameter_count

    assert vgg["parameters_m"] * 1e6 == parameter_count("voc-fcn32s", 1.0)   # in millions
    google = architecture("voc-fcn-googlenet")       # 22 deep, 6M parameters as printed;
    assert (google["conv_layers"], round(google["parameters_m"])) == (22, 6)
    assert google["rf_size"] == 715                  # the paper prints 907: the report shows it


def test_a_group_table_shows_paper_this_run_and_difference_and_each_groups_extras():
    """group_table on hand-made scores: each cell is paper · this run · this run − paper;
    a group with a claim compares every other row with its first; Table 2 alone adds
    Section 6.2's momentum rule, Table 1 alone the paper's forward times."""
    from paper.report import group_table

    groups = {g.key: g for gs in TABLES.values() for g in gs}
    ref, control, null = (r.label for r in groups["nullbg"].rows)
    scores = {"rows": {ref: {"mean_iu": 0.4037, "pixel_accuracy": 0.9}, null: {"mean_iu": 0.20}}}
    table = group_table(groups["nullbg"], scores, mini=True)
    assert table.startswith(f"## {groups['nullbg'].title}\n\nThe paper: “"
                            f"{groups['nullbg'].claim}”.\n\neach cell: paper · the "
                            "miniature's run · difference\n\n| | pixel acc. | mean acc. | "
                            "mean IU | f.w. IU |\n")
    assert group_table(groups["3"], scores, False).startswith(
        f"## {groups['3'].title}\n\neach cell: paper · this run · difference\n")
    assert f"| {ref} (voc-fcn32s) | 90.5 · 90.0 · -0.5 | 76.5 · — · — | 63.6 · 40.4 · " \
           "-23.2 | 83.5 · — · — |" in table
    assert table.endswith(f"\n\nThis run against {ref}: {null}: -20.4 mean IU.")
    assert "This run against" not in group_table(groups["nullbg"], {"missing": "x"}, True)
    momentum = ("Section 6.2's rule: momentum 0.9 at batch 20 ≈ momentum 0.9947 at batch 1 "
                "(0.9^(1/20)); 0.99 at batch 1 ≈ 0.818 at batch 20.")
    assert group_table(groups["2"], {"rows": {}}, False).endswith("\n\n" + momentum)
    forward = "Forward time (paper, 500×500 on a Titan X): FCN-AlexNet 16 ms, "
    assert forward in group_table(groups["1"], {"rows": {}}, False)
    for key in ("1", "3", "nullbg"):
        others = group_table(groups[key], scores, False)
        assert "Section 6.2" not in others and (key == "1") == (forward in others)
    assert "This run against" not in group_table(groups["3"], scores, False)
    assert "| | pixel acc. | mean acc. | mean IU | f.w. IU |" in group_table(groups["3"],
                                                                       scores, False)
    balanced = {"rows": {"FCN-32s": {"mean_iu": 0.40},
                         "FCN-32s, class-balanced loss": {"mean_iu": 0.41}}}
    assert group_table(groups["balance"], balanced, False).endswith(
        "\n\nThis run against FCN-32s: FCN-32s, class-balanced loss: +1.0 mean IU.")


def test_plan_names_what_is_missing_and_how_to_fetch_it(tmp_path):
    settings = Settings(data=tmp_path / "nothing", runs=tmp_path / "runs",
                        base_dir=tmp_path / "ilsvrc-nets")
    plan = make_plan(["3", "5", "8"], settings)
    text = render(plan)
    assert "make data-fetch DATASET=voc" in text and "make data-fetch DATASET=nyud" in text
    assert "make vgg16-fcn" in text
    assert re.search(r"voc-fcn8s\s+100000\s+voc:train\s+missing", text)
    assert "GPU hours" in text and "disk: about" in text
    assert plan.components() == []          # nothing can run without data
    from nets.experiments import EXPERIMENTS

    if "mask-reference" not in EXPERIMENTS:
        assert "missing: experiment(s) mask-reference" in text


def test_mean_iu_without_background_leaves_out_class_0():
    from evaluation.metrics import mean_iu_no_bg  # what paper.run reports for Table 8

    hist = np.array([[50, 5, 0], [5, 10, 0], [0, 0, 0]])  # class 2 absent everywhere
    assert mean_iu_no_bg(hist) == pytest.approx(10 / 20)


# --- the shortened miniature, end to end ---------------------------------------------------------
CELL = re.compile(r"(—|\d+\.\d) · (—|\d+\.\d) · (—|[+-]\d+\.\d)")


def run_paper(runs: Path, tables: str, jobs: int = 1,
              ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "paper.run", "--mini", "--short", "--tables",
                           tables, "--runs", str(runs), "--quiet", "--jobs", str(jobs)],
                          cwd=REPO, capture_output=True, text=True)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def miniature(tmp_path_factory):
    runs = tmp_path_factory.mktemp("paper-mini")
    first = run_paper(runs, "6,7,8")
    return runs, first


def test_short_miniature_writes_each_table_in_the_papers_shape(miniature):
    runs, done = miniature
    report = (runs / "paper" / "report.md").read_text()
    assert f"report: {runs / 'paper' / 'report.md'}" in done.stdout
    assert "**The miniature**" in report
    table7 = report.split("## Table 7")[1].split("\n## ")[0]
    assert "| | pixel acc. | mean acc. | mean IU | f.w. IU |" in table7
    rows = {line.split("|")[1].strip(): line for line in table7.splitlines()
            if line.startswith("| FCN") or line.startswith("| O2P")}
    assert set(rows) == {"FCN-32s (pascalcontext-fcn32s)", "FCN-16s (pascalcontext-fcn16s)",
                         "FCN-8s (pascalcontext-fcn8s)", "O2P"}
    for label, line in rows.items():
        cells = CELL.findall(line)
        assert len(cells) == 4, line
        if label.startswith("FCN"):
            paper, ours, diff = cells[2]                       # mean IU
            assert float(diff) == pytest.approx(float(ours) - float(paper), abs=0.11)
    assert "18.1 · — · —" in rows["O2P"]
    table6 = report.split("## Table 6")[1].split("\n## ")[0]
    assert "geom. acc." in table6 and "94.6 · " in table6
    results = json.loads((runs / "paper" / "results.json").read_text())
    assert set(results["6"]["rows"]) == {"FCN-8s", "FCN-8s, semantic only",
                                         "FCN-8s, geometric only"}
    assert 0 <= results["6"]["rows"]["FCN-8s"]["geo_pixel_accuracy"] <= 1
    html = (runs / "paper" / "report.html").read_text()
    assert html.count("<table>") == sum(line.startswith("|---|")
                                        for line in report.splitlines()) >= 3


def test_table_8_has_this_runs_numbers(miniature):
    runs, _ = miniature
    report = (runs / "paper" / "report.md").read_text()
    table8 = report.split("## Table 8")[1].split("\n## ")[0]
    assert "missing" not in table8
    assert "| Reference-FG (voc-fcn32s) | keep | keep | keep | mask | 81.0 · " in table8
    assert len(CELL.findall(table8)) == 6       # one mean IU cell a row, each with this run's


def test_each_row_carries_its_runs_steps_and_tests_for_claims_at_equal_iterations(miniature):
    """SHORT's nets learn nothing, so each first stage trains on from 4 to 8 (the
    miniature's first_extension); a row records the steps its run took and every test its
    training took, read from train.jsonl (paper.chains.run_facts)."""
    from core.paper_numbers import ITERATIONS, TEST_MEAN_IU
    from training.runlog import read_records

    runs, _ = miniature
    reference = json.loads((runs / "paper" / "results.json").read_text())
    row = reference["8"]["rows"]["Reference"]
    assert row[ITERATIONS] == 8 and set(row[TEST_MEAN_IU]) == {"2", "4", "6", "8"}
    tests = read_records(runs / "voc-fcn32s" / "train.jsonl", "test")
    assert row[TEST_MEAN_IU]["4"] == [t["label"]["mean_iu"] for t in tests if t["iter"] == 4][0]


def test_table_6_compares_the_two_headed_net_with_nets_of_one_label_set(miniature):
    """The separate nets learn one label top each: the semantic one is scored on semantics
    only, the geometric one on geometry only; the claim reads both."""
    runs, _ = miniature
    rows = json.loads((runs / "paper" / "results.json").read_text())["6"]["rows"]
    assert N.GEOM_ACC in rows["FCN-8s"] and N.MEAN_IU in rows["FCN-8s"]
    assert N.MEAN_IU in rows["FCN-8s, semantic only"]
    assert N.GEOM_ACC not in rows["FCN-8s, semantic only"]
    assert set(rows["FCN-8s, geometric only"]) == {N.GEOM_ACC, N.TRAIN_SECONDS,
                                                   N.ITERATIONS, N.TEST_MEAN_IU}
    assert rows["FCN-8s, geometric only"][N.TEST_MEAN_IU] == {}  # no semantic head to test
    report = (runs / "paper" / "report.md").read_text()
    table6 = report.split("## Table 6")[1].split("\n## ")[0]
    assert "two-headed FCN-8s within ±2 of separate nets on both label sets — semantic: " \
        in table6 and "missing:" not in table6


def test_an_unregistered_experiment_shows_as_missing_never_as_numbers(tmp_path, monkeypatch):
    """A group one of whose experiments is not registered shows the paper's numbers and
    what is missing; nothing is trained or scored for it."""
    import paper.plan as plan_module
    import paper.run as paper_run
    from paper.report import write_report

    everything = dict(plan_module.registered())
    del everything["mask-fg-only"]
    monkeypatch.setattr(plan_module, "registered", lambda: everything)
    settings = mini_settings(tmp_path)
    plan = make_plan(parse_tables("8"), settings)
    results = paper_run.collect(plan)
    assert results["8"] == {"missing": "experiment mask-fg-only not registered"}
    report = write_report(plan, results).read_text()
    table8 = report.split("## Table 8")[1].split("\n## ")[0]
    assert "**missing: experiment mask-fg-only not registered" in table8
    assert "| Reference (voc-fcn32s) | keep | keep | keep | keep | 84.8 · — · — |" in table8
    assert not re.search(r"\d · \d", table8)       # no number of this run anywhere
    assert not list(tmp_path.glob("*/train.jsonl"))


def test_a_second_run_reuses_everything_and_gives_the_same_numbers(miniature):
    runs, _ = miniature
    before = (runs / "paper" / "results.json").read_text()
    logs = {p: p.stat().st_mtime_ns for p in runs.glob("*/train.jsonl")}
    scores = {p: p.stat().st_mtime_ns for p in (runs / "paper" / "scores").glob("*.json")}
    # Table 6: three staged chains (two-headed, semantic, geometric); 7: one; 8: four nets
    assert len(logs) == 9 + 3 + 4 and len(scores) >= 4
    second = run_paper(runs, "6,7,8")
    assert second.stdout.count("done already") == len(logs)     # every stage reused
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/train.jsonl")} == logs
    assert {p: p.stat().st_mtime_ns for p in (runs / "paper" / "scores").glob("*.json")} \
        == scores                                        # no rescoring either
    assert (runs / "paper" / "results.json").read_text() == before


def test_bad_tables_are_one_clear_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "paper.run", "--mini", "--tables", "3,9",
                           "--runs", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == ("paper: error: unknown table(s) ['9']; choose from "
                                   + ", ".join(TABLES))


@pytest.mark.parametrize("jobs", ["0", "-2"])
def test_a_job_count_below_one_is_one_usage_error(tmp_path, jobs):
    """JOBS=0 or a negative count once ran silently serial; now it is refused, naming
    the variable, before any run folder is made."""
    done = subprocess.run([sys.executable, "-m", "paper.run", "--mini", "--short",
                           f"--jobs={jobs}", "--runs", str(tmp_path / "runs")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert f"JOBS=/--jobs must be an integer ≥ 1, found {jobs}" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()


def test_quick_lr_scales_a_sigmoid_loss_by_two_over_its_channels(tmp_path):
    # nullbg-fcn32s diverged (nan at iteration 22) on the miniature at the softmax rate
    settings = mini_settings(tmp_path)
    assert first_lr("voc-fcn32s", settings) == settings.lr
    assert first_lr("sigmoid-fcn32s", settings) == pytest.approx(settings.lr * 2 / 21)
    assert first_lr("nullbg-fcn32s", settings) == pytest.approx(settings.lr * 2 / 20)


def test_quick_lr_keeps_each_regimes_ratio_to_heavy_fcn32s(tmp_path):
    """The quick rate stands for heavy FCN-32s' 1e-10: an accumulated step sums 20 images'
    gradients (Caffe averages them, so 20×), a sampled one 1/p images'; a normalised loss
    takes the rate × the pixels for FCN-VGG16, and Table 1's other nets keep the paper's
    line-searched ratios to it (AlexNet 1e-3, GoogLeNet 5e-5 against VGG16's 1e-4)."""
    settings = replace(mini_settings(tmp_path), lr_scales=())
    pixels = settings.picture[0] * settings.picture[1]
    assert first_lr("table2-accumulated", settings) == pytest.approx(settings.lr * 20)
    assert first_lr("sampling-p25", settings) == pytest.approx(settings.lr * 4)
    assert first_lr("table2-online", settings) == pytest.approx(settings.lr)
    assert first_lr("table1-fcn-vgg16", settings) == pytest.approx(settings.lr * pixels)
    assert first_lr("table1-fcn-alexnet", settings) == pytest.approx(settings.lr * pixels * 10)
    assert first_lr("table1-fcn-googlenet", settings) == pytest.approx(settings.lr * pixels / 2)
    assert first_lr("voc-fcn-alexnet", settings) == pytest.approx(settings.lr * pixels)


def test_miniature_runs_the_accumulated_regime_at_its_line_searched_rate(tmp_path):
    """The miniature's accumulated step takes its line-searched share of the summed rate
    (20 images' gradients at the quick rate): ÷ 1 at today's quick rate (÷ 4 at the former
    1e-8, where the full sum diverged). No other chain is scaled, and a later stage of a
    scaled chain takes its first stage's rate."""
    settings = mini_settings(tmp_path)
    assert dict(settings.lr_scales) == {"table2-accumulated": 1.0}
    assert first_lr("table2-accumulated", settings) == pytest.approx(settings.lr * 20)
    quarter = replace(settings, lr_scales=(("table2-accumulated", 0.25),))
    assert first_lr("table2-accumulated", quarter) == pytest.approx(settings.lr * 5)
    assert first_lr("table2-online", settings) == pytest.approx(settings.lr)
    assert first_lr("voc-fcn32s", settings) == settings.lr
    scaled = replace(settings, lr_scales=(("voc-fcn32s", 0.5),))
    assert first_lr("voc-fcn32s", scaled) == pytest.approx(settings.lr / 2)
    assert first_lr("voc-fcn8s", scaled) == pytest.approx(settings.lr / 2)
    assert first_lr("table2-online", scaled) == pytest.approx(settings.lr)


def test_quick_lr_is_the_chains_first_stages_and_takes_the_pictures_width_by_height(tmp_path):
    """A later stage's chain starts where its first stage does (the quick rate is that
    stage's); a normalised loss takes width × height pixels (not a square's)."""
    settings = mini_settings(tmp_path)
    for later, first in (("voc-fcn8s", "voc-fcn32s"), ("nyud-fcn32s-color-hha",
                                                       "nyud-fcn32s-color"),
                         ("siftflow-fcn16s", "siftflow-fcn32s")):
        assert first_lr(later, settings) == first_lr(first, settings)
    assert first_lr("voc-fcn8s", settings) == settings.lr
    from paper.plan import SHORT

    assert mini_settings(tmp_path, SHORT).picture == (SHORT.size[1], SHORT.size[0]) == (80, 64)
    wide = replace(settings, picture=(500, 375))
    assert first_lr("table1-fcn-vgg16", wide) == pytest.approx(settings.lr * 500 * 375)
    assert first_lr("voc-fcn8s", replace(settings, lr=None)) is None


def test_quick_lr_keeps_a_ratio_below_one_to_heavy_fcn32s(tmp_path, monkeypatch):
    """Every registered regime's rate is a whole multiple of heavy FCN-32s' 1e-10; one at
    half of it (the registry given one more entry) gets half the quick rate, not none."""
    from nets.experiments import EXPERIMENTS

    heavy = EXPERIMENTS["voc-fcn32s"]
    monkeypatch.setitem(EXPERIMENTS, "half-fcn32s", replace(
        heavy, name="half-fcn32s", solver=heavy.solver.with_(base_lr=heavy.solver.base_lr / 2)))
    settings = mini_settings(tmp_path)
    assert first_lr("half-fcn32s", settings) == pytest.approx(settings.lr / 2)


def test_plan_of_a_group_with_an_unregistered_experiment_still_plans_the_next(tmp_path,
                                                                              monkeypatch):
    import paper.plan as plan_module

    everything = dict(plan_module.registered())
    del everything["mask-fg-only"]
    monkeypatch.setattr(plan_module, "registered", lambda: everything)
    plan = make_plan(parse_tables("8,3"), mini_settings(tmp_path))
    assert plan.missing["8"] == ["mask-fg-only"] and "mask-shape" not in plan.targets
    assert {"voc-fcn16s", "voc-fcn8s"} <= set(plan.targets) <= set(plan.stages)
    # Table 2's equal-images rule: only its rows' runs (and the sampling rows'), never all
    equal = make_plan(parse_tables("2,3,sampling"), mini_settings(tmp_path)).equal_images
    assert equal == {"voc-fcn32s", "table2-accumulated", "table2-online", "sampling-p50",
                     "sampling-p25"}
    assert {"voc-fcn16s", "voc-fcn8s"} <= set(plan.targets) <= set(plan.stages)


def test_plan_says_what_each_stage_starts_from(tmp_path):
    """The plan's column: an earlier stage's final weights, a fusion's streams, the base
    weights (WEIGHTS= or the built ones), or random init for WEIGHTS=none."""
    built = make_plan(parse_tables("3,5"), mini_settings(tmp_path)).stages
    assert built["voc-fcn16s"].starts_from == "runs/voc-fcn32s/final.caffemodel"
    assert built["nyud-fcn32s-color-hha"].starts_from == \
        "streams: nyud-fcn32s-color + nyud-fcn32s-hha"
    assert built["voc-fcn32s"].starts_from == str(tmp_path / "bases" / "vgg16-fcn.caffemodel")
    table1 = make_plan(parse_tables("1"), mini_settings(tmp_path)).stages   # bases before
    assert table1["table1-fcn-alexnet"].starts_from == str(          # "streams" in the
        tmp_path / "bases" / "alexnet-fcn.caffemodel")                 # alphabet
    random = make_plan(parse_tables("3"), replace(mini_settings(tmp_path), weights="none"))
    assert random.stages["voc-fcn32s"].starts_from == "random init (quick run)"
    assert random.stages["voc-fcn16s"].starts_from == "runs/voc-fcn32s/final.caffemodel"


def test_the_miniature_trains_table_1_one_image_a_step_and_shares_fcn32s(tmp_path):
    """Table 1's nets take one image a step at heavy momentum in the miniature (their
    20-image batches at equal images would leave 1/20 of the updates); Table 2's heavy
    row and Table 8's reference are the FCN-32s run, trained once."""
    from paper.plan import TABLES, make_plan, stage_iterations

    settings = mini_settings(tmp_path)
    assert settings.overrides("table1-fcn-vgg16") == {"iter_size": 1, "momentum": 0.99}
    assert settings.overrides("voc-fcn32s") == {}
    assert stage_iterations("table1-fcn-vgg16", settings, True) == settings.iters
    assert stage_iterations("table2-accumulated", settings, True) == settings.iters // 20
    rows = {r.label: r.experiment for g in (*TABLES["2"], *TABLES["8"]) for r in g.rows}
    assert rows["FCN-heavy"] == rows["Reference"] == "voc-fcn32s"
    plan = make_plan(parse_tables("2,3,8"), settings)
    assert "table2-heavy" not in plan.stages and "mask-reference" not in plan.stages


def test_a_stop_by_sigterm_exits_143_and_names_where_it_stopped(monkeypatch, capsys):
    # the same code and message as `make voc-fcn8s` (training.schedule), not a blanket 130
    import signal

    import paper.run as paper_run

    def stopped_by_sigterm(*args, **kwargs):
        raise KeyboardInterrupt("voc-fcn32s stopped at iteration 12", signal.SIGTERM)

    monkeypatch.setattr(paper_run, "run", stopped_by_sigterm)
    assert paper_run.main(["--mini", "--short", "--quiet"]) == 143
    err = capsys.readouterr().err
    assert "paper: stopped (voc-fcn32s stopped at iteration 12); run the same command" in err


def test_the_claims_baseline_is_the_best_one_class_prediction_scored_as_the_head_is():
    """VOC: predicting background (the commonest class) everywhere, the evaluation's own
    baseline; SIFT Flow semantics, whose label 0 never occurs and which is scored over the
    classes present: predicting its commonest class, not class 0 (whose 'baseline' would
    let a net that learned nothing pass the claims' guard)."""
    from evaluation.metrics import background_baseline
    from paper.chains import constant_baseline

    voc = np.array([[70, 5, 5], [10, 5, 0], [5, 0, 0]])
    assert constant_baseline(voc, False) == pytest.approx(background_baseline(voc).mean_iu)
    sem = np.array([[0, 0, 0], [0, 60, 10], [0, 20, 10]])   # class 0 absent, 1 commonest
    assert constant_baseline(sem, True) == pytest.approx(70 / 100 / 2)
    assert constant_baseline(sem, True) > background_baseline(sem).mean_iu


def test_components_that_serve_the_most_groups_train_first(tmp_path):
    """VOC's FCN-32s chain (Tables 2, 3, 8 and the controls) first, one-stage chains before
    the NYUD, SIFT Flow and PASCAL-Context chains of several stages."""
    import paper.run as paper_run
    from paper.plan import chain, components

    plan = make_plan(parse_tables(None), mini_settings(tmp_path))
    ordered = paper_run.by_reach(components(plan.targets), plan)
    assert "voc-fcn32s" in ordered[0]
    lengths = [len({s for t in c for s in chain(t)}) for c in ordered[1:]]
    assert lengths == sorted(lengths)


def test_report_only_trains_nothing_and_shows_unfinished_groups_as_missing(miniature,
                                                                          tmp_path):
    """REPORT_ONLY=1: the finished runs' numbers, every other group 'missing: run X not
    finished', and no training started."""
    import shutil

    runs = tmp_path / "runs"  # a copy: the shared miniature's report stays its own
    shutil.copytree(miniature[0], runs)
    logs = {p: p.stat().st_mtime_ns for p in runs.glob("*/train.jsonl")}
    done = subprocess.run([sys.executable, "-m", "paper.run", "--mini", "--short", "--tables",
                           "7,augment", "--runs", str(runs), "--quiet", "--report-only"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/train.jsonl")} == logs
    results = json.loads((runs / "paper" / "results.json").read_text())
    assert "rows" in results["7"]
    assert results["augment"] == {"missing": "run augment-fcn32s not finished"}


def test_a_chain_whose_groups_need_another_backbone_waits_for_its_wave(tmp_path):
    """With only VGG16's bases made, Table 1's VGG16 net finishes no group (AlexNet's and
    GoogLeNet's are not startable), so it waits; VOC's FCN-32s chain does not."""
    import paper.run as paper_run
    from paper.plan import components

    settings = mini_settings(tmp_path)
    plan = make_plan(parse_tables("1,3"), settings)
    vgg_only = {t: "no base" for t in plan.targets if "alexnet" in t or "googlenet" in t}
    plan = replace(plan, weights=vgg_only, data={})
    items = components(plan.targets)
    waiting = [c for c in items if not paper_run.finishes_a_group(c, plan)]
    assert ["table1-fcn-vgg16"] in waiting
    assert not any("voc-fcn32s" in c for c in waiting)


def numbers(runs: Path) -> dict:
    """results.json without the training wall-clock (a measurement, not a computed number)."""
    def without_clock(value):
        if isinstance(value, dict):
            return {k: without_clock(v) for k, v in value.items() if k != N.TRAIN_SECONDS}
        return value

    return without_clock(json.loads((runs / "paper" / "results.json").read_text()))


def test_the_whole_short_miniature_side_by_side_gives_the_serial_numbers(miniature, tmp_path):
    """`make paper MINI=1 SHORT=1` end to end, every table, JOBS=2: each chain in its own
    worker process with one BLAS thread. Every group has its numbers; the pinned numerics
    make Tables 6, 7 and 8 exactly the serial run's; a second run reuses every stage."""
    runs, _ = miniature
    done = run_paper(tmp_path, ",".join(TABLES), jobs=2)
    assert "2 at a time" in done.stderr and "1 BLAS thread(s) each" in done.stderr
    ours, serial = numbers(tmp_path), numbers(runs)
    assert [key for key, value in ours.items() if "missing" in value] == []
    assert {k: ours[k] for k in ("6", "7", "8")} == {k: serial[k] for k in ("6", "7", "8")}
    logs = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/train.jsonl")}
    assert len(logs) == 41
    before = (tmp_path / "paper" / "results.json").read_text()
    run_paper(tmp_path, ",".join(TABLES), jobs=2)
    worker_logs = "".join(p.read_text() for p in (tmp_path / "paper" / "logs").glob("*.log"))
    assert worker_logs.count("done already") >= len(logs)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/train.jsonl")} == logs
    assert (tmp_path / "paper" / "results.json").read_text() == before


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_diverging_chain_loses_nothing_else(tmp_path, jobs):
    """One chain diverging (here nullbg-fcn32s, its weights blown up by an absurd weight
    decay), serially or in a worker of JOBS=2, stops only that chain: the other chains
    finish, the report is written, the group says why it has no numbers, and the run fails
    naming the chain."""
    import paper.run as paper_run
    from paper.plan import SHORT

    settings = replace(mini_settings(tmp_path, SHORT),
                       solver_changes=(("nullbg-fcn32s", (("weight_decay", 1e12),)),))
    with pytest.raises(paper_run.ChainsFailed, match=r"nullbg-fcn32s: .*diverged") as failed:
        paper_run.run(parse_tables("nullbg,sampling"), settings, mini=SHORT, progress=False,
                      jobs=jobs)
    assert "error:" not in str(failed.value)        # the worker's line, not its prefix
    assert not (tmp_path / "nullbg-fcn32s" / "final.caffemodel").exists()
    for name in ("voc-fcn32s", "sigmoid-fcn32s", "sampling-p50", "sampling-p25"):
        assert (tmp_path / name / "final.caffemodel").is_file(), name
    results = json.loads((tmp_path / "paper" / "results.json").read_text())
    assert "run nullbg-fcn32s diverged (" in results["nullbg"]["missing"]
    assert set(results["sampling"]["rows"]) and "missing" not in results["sampling"]


def test_bad_data_in_a_worker_is_one_clear_error(tmp_path):
    """JOBS=2: a chain whose pictures cannot be read ends the run with one line naming the
    file (as the serial run does), after the running workers finish: no traceback."""
    from paper.miniature import mini_data
    from paper.plan import SHORT

    settings = mini_settings(tmp_path, SHORT)
    mini_data(settings, SHORT, {"pascalcontext", "siftflow"})
    for image in (tmp_path / "data" / "pascal" / "VOC2010" / "JPEGImages").glob("*.jpg"):
        image.write_bytes(image.read_bytes()[:200])   # cut: unreadable past its header
    done = run_paper(tmp_path, "6,7", jobs=2, ok=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("paper: error:")]
    assert "pascalcontext-fcn32s" in line and "is not a readable image" in line
    assert "JPEGImages/" in line and "log: " in line


def test_the_miniatures_first_stages_train_longer_than_the_later_ones(tmp_path):
    """A stage from a classifier (FCN-32s and its kin: zero score layers that must find the
    objects) gets first_iters, a stage from an earlier stage iters; Table 2's equal-images
    rule divides either by the batch."""
    from data.synthetic import make_dataset
    from paper.plan import MINI, stage_iterations
    from training.runlog import JSON_NAME, read_records
    from training.schedule import ScheduleConfig, run_schedule

    settings = mini_settings(tmp_path)
    assert (settings.first_iters, settings.iters) == (MINI.first_iters, MINI.iters)
    assert MINI.first_iters > MINI.iters
    assert stage_iterations("voc-fcn32s", settings, True, first=True) == MINI.first_iters
    assert stage_iterations("table2-accumulated", settings, True, first=True) \
        == MINI.first_iters // 20
    assert stage_iterations("voc-fcn8s", settings, False) == MINI.iters
    data = make_dataset("voc", tmp_path / "data", n_train=2, n_val=1, num_classes=3,
                        size=(32, 40), seed=4)
    run_schedule(ScheduleConfig("voc-fcn16s", data, runs=tmp_path / "runs", weights="none",
                                iters=2, first_iters=3, test_every=0, width=0.0625,
                                progress=False, score=False))
    starts = {name: read_records(tmp_path / "runs" / name / JSON_NAME, "start")[-1]["max_iter"]
              for name in ("voc-fcn32s", "voc-fcn16s")}
    assert starts == {"voc-fcn32s": 3, "voc-fcn16s": 2}


def test_only_a_chains_first_stage_trains_on_while_at_the_background(tmp_path):
    """first_until_learned reaches the stage from a classifier alone: at lr 0 voc-fcn32s
    stays at the background and trains on from 3 to 6 iterations, voc-fcn16s after it
    keeps its 2. The miniature asks for twice a first stage's steps."""
    from data.synthetic import make_dataset
    from paper.plan import MINI
    from training.runlog import JSON_NAME, read_records
    from training.schedule import ScheduleConfig, run_schedule

    assert mini_settings(tmp_path).first_extension == MINI.first_extension == 2
    data = make_dataset("voc", tmp_path / "data", n_train=2, n_val=1, num_classes=3,
                        size=(32, 40), seed=4)
    run_schedule(ScheduleConfig("voc-fcn16s", data, runs=tmp_path / "runs", weights="none",
                                iters=2, first_iters=3, first_until_learned=6, lr=0.0,
                                test_every=0, width=0.0625, progress=False, score=False))
    steps = {name: len(read_records(tmp_path / "runs" / name / JSON_NAME, "step"))
             for name in ("voc-fcn32s", "voc-fcn16s")}
    assert steps == {"voc-fcn32s": 6, "voc-fcn16s": 2}
    decided = read_records(tmp_path / "runs" / "voc-fcn32s" / JSON_NAME, "decided")
    assert [(d["iter"], d["left_background"]) for d in decided] == [(3, False)]
    assert not read_records(tmp_path / "runs" / "voc-fcn16s" / JSON_NAME, "decided")


# --- JOBS=N's workers (paper.processes), a job at a time, without the miniature -------------------
def worker_settings(tmp_path: Path, **given) -> Settings:
    """Tiny VOC data, a width-1/16 net, the bases in tmp_path/bases (made by the test)."""
    from data.synthetic import make_dataset

    data = make_dataset("voc", tmp_path / "data", n_train=2, n_val=1, num_classes=3,
                        size=(32, 40), seed=3)
    return Settings(data=data, runs=tmp_path / "runs", width=0.0625, test_every=0,
                    base_dir=tmp_path / "bases", **given)


def worker_payload(settings: Settings) -> dict:
    """What the driver tells each worker, for jobs that score no table."""
    from paper.processes import payload_of

    return payload_of(settings, set(), [], "full")


def nan_final(settings: Settings, name: str) -> Path:
    """runs/<name>/final.caffemodel holding a NaN, vouched for by a result manifest of the
    very request a chain without ITERS= or LR= asks: done already, and diverged."""
    from caffe.proto import caffe_pb2

    from core.manifest import record_result
    from training.train import TrainConfig, request_of

    final = settings.runs / name / "final.caffemodel"
    final.parent.mkdir(parents=True)
    net = caffe_pb2.NetParameter()
    blob = net.layer.add(name="fc7", type="Convolution").blobs.add()
    blob.shape.dim.append(2)
    blob.data.extend([1.0, float("nan")])
    final.write_bytes(net.SerializeToString())
    record_result(final.parent, [final], request_of(TrainConfig(
        name, settings.data, iters=None, width=settings.width, seed=settings.seed,
        overrides={})))
    return final


def test_jobs_worker_payload_gives_the_worker_the_parents_settings(tmp_path):
    """What a worker trains with is what the driver planned: every field, Paths, the
    picture and the per-experiment solver changes as tuples (a list would not equal)."""
    from paper.processes import payload_of, settings_from

    for settings in (mini_settings(tmp_path), Settings(data=tmp_path / "d", runs=tmp_path,
                                                      weights="none", lr=1e-9, lr_drop=4.0,
                                                      momentum=0.95, seed=7, gpu=1)):
        payload = json.loads(json.dumps(payload_of(settings, {"b", "a"}, ["3", "6"], "short")))
        assert settings_from(payload["settings"]) == settings
        assert (payload["equal_images"], payload["tables"], payload["mini"]) == \
            (["a", "b"], ["3", "6"], "short")
    assert mini_settings(tmp_path).solver_changes   # the case above has teeth


def test_jobs_workers_share_the_cpus_this_process_may_use():
    import os

    from core.processes import usable_cpus

    assert usable_cpus() == len(os.sched_getaffinity(0)) >= 1
    allowed = os.sched_getaffinity(0)
    try:   # `taskset -c 0 make paper JOBS=2`: one CPU, whatever the machine has
        os.sched_setaffinity(0, {min(allowed)})
        assert usable_cpus() == 1
    finally:
        os.sched_setaffinity(0, allowed)


def test_jobs_workers_stop_signals_raise_keyboard_interrupt_naming_the_signal():
    import os
    import signal

    from core.processes import stop_signals

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_signals() as received:
        with pytest.raises(KeyboardInterrupt) as stopped:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)   # let the handler run here, not later
        assert stopped.value.args == ("SIGTERM", signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt) as stopped:
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 0)
        assert stopped.value.args == ("SIGINT", signal.SIGINT)
        assert received == [signal.SIGTERM, signal.SIGINT]
    assert {s: signal.getsignal(s) for s in before} == before


def test_jobs_workers_carry_codes_back_a_chain_fault_is_reported_and_bases_made(tmp_path):
    """Two workers: a backbone's bases (there already: done at once), a chain that needs
    them (done already), a chain whose first stage's final weights hold NaN (its worker
    exits CHAIN_FAULT): the fault is reported with its own message, not lost, the others
    count as done, and nothing is 'broken'. The runs folder's name holds "error: ", as a
    message may: the fault is the whole of the worker's last error line."""
    from paper.processes import Job, Workers

    settings = replace(worker_settings(tmp_path), runs=tmp_path / "error: runs")
    settings.base_dir.mkdir()
    for base in ("vgg16-fcn", "alexnet-fcn"):
        (settings.base_dir / f"{base}.caffemodel").write_bytes(b"made before")
    nan_final(settings, "voc-fcn32s")
    payload = worker_payload(settings)
    # a job is ready once the bases it needs are among those made, not only equal to them
    jobs = [Job("bases", ["vgg16-fcn"]), Job("chain", ["voc-fcn32s"], needs={"vgg16-fcn"}),
            Job("chain", ["voc-fcn16s"]), Job("bases", ["alexnet-fcn"])]
    pool = Workers(jobs, payload, 2, tmp_path / "logs")
    pool.run()
    assert pool.made == {"vgg16-fcn", "alexnet-fcn"} and pool.broken == []
    assert len(pool.pool) == 2
    [fault] = pool.failed
    assert fault.startswith(f"voc-fcn16s: {settings.runs}/voc-fcn32s/final.caffemodel: ")
    assert "hold NaN or infinite values (layers fc7)" in fault
    assert "paper-worker:" not in fault   # the message, not its prefix
    assert "voc-fcn32s: done already" in (tmp_path / "logs" / "chain-voc-fcn32s.log").read_text()
    assert all(w.process.returncode == 0 for w in pool.pool)


def test_jobs_worker_error_stops_new_jobs_and_is_raised_with_its_log(tmp_path):
    """A job that fails otherwise (here an unknown experiment) is never done: no job
    starts after it, and the run fails naming the job, its exit code, its error line and
    its log; a failed bases job makes no bases."""
    from paper.plan import registered
    from paper.processes import Job, Workers, run_side_by_side

    settings = worker_settings(tmp_path)
    payload = worker_payload(settings)
    logs = tmp_path / "logs"
    with pytest.raises(RuntimeError) as failed:
        run_side_by_side([Job("chain", ["voc-fcn4s"]), Job("chain", ["voc-fcn32s"])],
                         payload, 1, logs)
    log = logs / "chain-voc-fcn4s.log"
    assert str(failed.value) == (f"paper: worker(s) failed: voc-fcn4s (exit 1): unknown "
                                 f"experiment 'voc-fcn4s'; choose from "
                                 f"{str(list(registered()))} (log: {log}); run the same "
                                 f"command again to resume")
    assert not (logs / "chain-voc-fcn32s.log").exists()
    pool = Workers([Job("bases", ["nope-fcn"]), Job("chain", ["voc-fcn32s"],
                                                    needs={"nope-fcn"})], payload, 2, logs)
    pool.run()
    assert pool.made == set() and len(pool.broken) == 1 and pool.failed == []
    assert not (logs / "chain-voc-fcn32s.log").exists()
    assert pool.broken[0].startswith("bases nope-fcn (exit 1)")


def test_jobs_workers_make_their_logs_folder_with_its_parents_run_after_run(tmp_path):
    from paper.processes import Workers

    logs = tmp_path / "runs" / "paper" / "logs"   # RUNS=/paper/ need not exist yet
    for _ in range(2):
        Workers([], worker_payload(Settings(data=tmp_path, runs=tmp_path)), 1, logs).run()
        assert logs.is_dir()


def test_jobs_worker_chains_waiting_for_bases_no_job_makes_are_refused(tmp_path):
    from paper.processes import Job, Workers

    payload = worker_payload(Settings(data=tmp_path, runs=tmp_path))
    pool = Workers([Job("chain", ["voc-fcn32s"], needs={"alexnet-fcn", "vgg16-fcn"})],
                   payload, 1, tmp_path / "logs")
    with pytest.raises(RuntimeError, match=r"chains wait for bases no job makes: "
                                           r"\['alexnet-fcn', 'vgg16-fcn'\]"):
        pool.run()
    assert all(w.process.poll() is not None for w in pool.pool)


def test_jobs_worker_serve_stops_at_the_first_job_that_broke_the_run(tmp_path):
    """The worker's own loop, as the driver starts it: one code line a job (0, 3 a chain
    fault, then 1), nothing done after the job that broke the run, which ends the worker
    with its code; the driver's pipe gets nothing but the code lines."""
    import os

    settings = worker_settings(tmp_path)
    nan_final(settings, "voc-fcn32s")
    payload = worker_payload(settings)
    logs = tmp_path / "logs"
    logs.mkdir()
    jobs = [("chain", ["voc-fcn32s"]), ("chain", ["voc-fcn16s"]), ("chain", ["voc-fcn4s"]),
            ("chain", ["voc-fcn32s"])]
    lines = "".join(json.dumps({"kind": kind, "names": names, "log": str(logs / f"{i}.log")})
                    + "\n" for i, (kind, names) in enumerate(jobs))
    done = subprocess.run([sys.executable, "-m", "paper.processes", "serve",
                           json.dumps(payload)], input=lines, capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "GLOG_minloglevel": "2"}, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert [json.loads(x) for x in done.stdout.splitlines()] == [{"code": 0}, {"code": 3},
                                                                {"code": 1}]
    assert "done already" in (logs / "0.log").read_text()
    assert "paper-worker: error: " in (logs / "1.log").read_text()
    assert "unknown experiment 'voc-fcn4s'" in (logs / "2.log").read_text()
    assert not (logs / "3.log").exists()


def test_jobs_workers_stop_through_their_training_loop_a_killed_one_is_broken(tmp_path,
                                                                             capfd,
                                                                             monkeypatch):
    """Ctrl-C in the driver: each busy worker gets the signal, finishes its iteration,
    snapshots and exits 130 (the same command resumes); an idle worker says it stopped on
    the driver's stderr, not in the log of the job it last ran, and stops even when the
    driver was started with SIGINT ignored (nohup, a background job: the workers inherit
    that). A worker killed outright ends its job with the kill's code: broken, never done."""
    import signal
    import time

    import paper.processes
    from paper.processes import CHAIN_FAULT, Job, Workers
    from training.runlog import read_records

    monkeypatch.setattr(paper.processes, "STOP_WAIT_S", 60)   # then a worker left is killed

    settings = worker_settings(tmp_path, weights="none", iters=100_000, lr=1e-9)
    settings.base_dir.mkdir()
    (settings.base_dir / "vgg16-fcn.caffemodel").write_bytes(b"made before")
    payload = worker_payload(settings)
    idle_job, busy, killed = (Job("bases", ["vgg16-fcn"]), Job("chain", ["voc-fcn32s"]),
                              Job("chain", ["voc-fcn8s-atonce"]))
    pool = Workers([idle_job, busy, killed], payload, 3, tmp_path / "logs")
    pool.logs.mkdir()
    ignoring = signal.signal(signal.SIGINT, signal.SIG_IGN)   # as under nohup or `&`
    try:
        for job in (idle_job, busy, killed):
            pool.start(pool.idle_worker(), job)
    finally:
        signal.signal(signal.SIGINT, ignoring)
    workers = list(pool.pool)
    assert len(workers) == 3
    logs = {n: settings.runs / n / "train.jsonl" for n in ("voc-fcn32s", "voc-fcn8s-atonce")}

    def until(done, what: str) -> None:
        end = time.monotonic() + 240
        while not done():
            assert time.monotonic() < end, what
            pool.collect_ended()

    try:
        until(lambda: all(p.is_file() and read_records(p, "step") for p in logs.values())
              and workers[0].job is None, "the workers never started training")
        assert pool.made == {"vgg16-fcn"} and pool.broken == []
        workers[2].process.kill()
        until(lambda: workers[2] not in pool.pool, "the killed worker was never collected")
        [broken] = pool.broken
        assert broken.startswith("voc-fcn8s-atonce (exit -9)") and pool.failed == []
        assert CHAIN_FAULT != -9
        pool.stop(signal.SIGINT)
        assert workers[1].process.returncode == 130 and workers[0].process.returncode == 130
        assert read_records(logs["voc-fcn32s"], "stopped")[-1]["signal"] == "SIGINT"
        assert "paper-worker: stopped" in capfd.readouterr().err
        assert "stopped" not in (tmp_path / "logs" / "bases-vgg16-fcn.log").read_text()
        # a job stopped by a signal (130) is no chain fault: nothing may count it as run
        until(lambda: not pool.running, "the stopped job's code never came back")
        assert pool.broken[1].startswith("voc-fcn32s (exit 130)") and pool.failed == []
    finally:   # a failing run of this test leaves no training behind
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
        pool.release()


def test_jobs_worker_that_does_not_stop_in_time_is_killed_at_the_bound(tmp_path, monkeypatch):
    """Stopping waits STOP_WAIT_S for the workers' snapshots, then kills what is left (here
    a worker frozen by SIGSTOP, which cannot act on the SIGINT): stop never returns with a
    worker still running."""
    import os
    import signal
    import time

    import paper.processes
    from paper.processes import Workers

    monkeypatch.setattr(paper.processes, "STOP_WAIT_S", 3)
    pool = Workers([], worker_payload(Settings(data=tmp_path, runs=tmp_path)), 1,
                   tmp_path / "logs")
    worker = pool.idle_worker()
    try:
        wchan = Path(f"/proc/{worker.process.pid}/wchan")
        end = time.monotonic() + 120
        while wchan.read_text() != "anon_pipe_read":   # started: waiting for a job line
            assert time.monotonic() < end, "the worker never started"
            time.sleep(0.05)
        os.kill(worker.process.pid, signal.SIGSTOP)
        began = time.monotonic()
        pool.stop(signal.SIGINT)
        assert worker.process.poll() == -signal.SIGKILL
        assert 3 <= time.monotonic() - began < 60   # the bound, counted from the stop
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
        pool.release()
