"""`make mutate`: mutation testing (cosmic-ray) of the modules that decide the paper's numbers.

Each module is mutated against the fast tests that guard it, where a silent error would
change the paper's numbers.

    python tests/mutate.py [--only metrics interp …] [--budget-min 60] [--out runs/mutate]
                           [--warm]

For each target below: copy the repository's tracked files into OUT/tree (mutants never
touch the working tree, so work can go on meanwhile), let cosmic-ray list every mutant of
the module, skip those outside the functions (and lines) named, then apply each mutant in
the copy and run the target's tests (real Caffe, subprocesses included: the copy is a
repository of its own). Sessions are sqlite files in OUT, so a run cut short by the time
budget resumes where it stopped. OUT/report.md lists the counts and every survivor's diff.

This file is the driver, not a test (pytest collects test_*.py only). It runs under the
mutation tool's own venv (cosmic-ray and its dependencies stay out of the project's venv);
the tests run under the project's .venv.

With --warm, one process of the project's Python imports pytest, numpy, scipy and Caffe
once, and each mutant's tests run in a fork of it (cosmic-ray's test command only asks for
the fork's exit status): on a loaded machine a fresh pytest spends minutes importing before
its first test. The forks import the project's modules afresh, from the mutated copy.
"""

from __future__ import annotations

import argparse
import ast
import ctypes
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PR_SET_PDEATHSIG = 1    # linux/prctl.h
TIMED_OUT = "timeout"   # cosmic-ray's output for a test command killed by its timeout
PYTEST = "{python} -m pytest -x -q -p no:cacheprovider -o addopts= {tests}"
# --warm's test command: the exit status of a fork of the warm process (serve_tests)
WARM_CLIENT = ("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && read -r status <&3; "
               "exit ${{status:-3}}'")
# Operators left out to fit the time: each binary operator becomes every other one, but a test
# that notices `+` turning into `-`, `*` or `/` notices `%`, `**`, shifts and bit operations
# too (`/` → `//` is kept: integer division is a real risk in metrics); `<` turning into
# `is` / `is not` only fails on numbers (`is` ↔ `is not` is kept).
OPERATORS_SKIPPED = re.compile(
    r"ReplaceBinaryOperator_\w+_(Mod|Pow|RShift|LShift|BitOr|BitAnd|BitXor)$"
    r"|ReplaceBinaryOperator_(?!Div_)\w+_FloorDiv$"
    r"|ReplaceComparisonOperator_(?!Is_|IsNot_)\w+_(Is|IsNot)$")


@dataclass(frozen=True)
class Target:
    name: str
    module: str                      # path relative to the repository
    functions: tuple[str, ...]       # qualified names (Class.method); () = the whole module
    tests: str                       # pytest arguments, relative to the repository
    lines: str | None = None         # also keep only lines matching this regex (in functions)
    timeout_s: int = 120


LAYER_TESTS = ("tests/test_layers_voc.py tests/test_layers_siftflow.py "
               "tests/test_layers_pascalcontext.py tests/test_layers_nyud.py "
               "tests/test_layers_errors.py tests/test_layers_augment.py")
# In order of what a silent error would cost; a time budget cuts the list from the end.
TARGETS = (
    Target("metrics", "evaluation/metrics.py",
           ("fast_hist", "_ratio", "class_accuracy", "class_iu", "_nanmean", "scores",
            "present_classes", "background_baseline"),
           "tests/test_score_metrics.py", timeout_s=60),
    Target("heads", "nets/heads.py",
           ("_concat_passes_through", "crop", "upsample", "fcn_head", "single_layer_head"),
           "tests/test_nets_crop_offsets.py tests/test_nets_generate.py "
           "-k 'crop_offsets or closed_forms or byte_for_byte or declared_once or as_a_message'",
           timeout_s=120),
    Target("data-order", "layers/seg_data.py",
           ("release_randint", "SegDataLayer.setup", "SegDataLayer.reshape",
            "SegDataLayer.forward", "SegDataLayer.skip", "SegDataLayer._advance"),
           LAYER_TESTS, timeout_s=180),
    Target("preprocessing", "layers/seg_io.py",
           ("read_rgb", "read_index_png", "read_mat", "check_label_values"),
           LAYER_TESTS, timeout_s=180),
    Target("mean", "core/images.py", ("bgr_minus_mean", "preprocess"),
           LAYER_TESTS + " tests/test_infer_input.py", timeout_s=180),
    Target("resume", "training/train.py",
           ("fast_forward", "LossMeter.__init__", "LossMeter._after", "LossMeter.take",
            "_resume_target", "train"),
           "tests/test_training_train.py -k 'accumulated and 2 or mean_over or fast_forward'",
           lines=r"fast_forward|restore|set_random_seed|resume_from|layer\.skip|forwards",
           timeout_s=300),
    Target("transplant", "surgery/transplant.py",
           ("source_params", "_same_shape", "transplant", "expand_score"),
           "tests/test_surgery_transplant.py", timeout_s=120),
    Target("interp", "surgery/interp.py", (), "tests/test_surgery_interp.py", timeout_s=90),
    # issue 35: what loses a result or lets a bad file through, smallest first
    Target("loss-sampling", "layers/loss_layers.py",
           ("one_hot", "cell_mask", "LossSamplingLayer.setup", "LossSamplingLayer.forward",
            "LossSamplingLayer.skip_forwards"),
           "tests/test_paper_layers.py", timeout_s=60),
    Target("augment", "layers/seg_augment.py", ("Augment.__call__", "Augment._mask", "shift"),
           "tests/test_layers_augment.py", timeout_s=60),
    Target("iu-bounds", "analyses/iu_bounds.py",
           ("downsample", "_centres", "upsample", "bound_hist", "iu_bounds"),
           "tests/test_paper_tools.py -k 'not mean_iu_without and not shift and not best_test "
           "and not table2'", timeout_s=60),
    Target("export-verify", "export/verify.py", ("Comparison.passed", "compare", "failures"),
           "tests/test_export_verify.py", timeout_s=60),
    Target("snapshots", "training/snapshots.py",
           ("RunLock.__enter__", "RunLock.__exit__", "holds", "clean_orphans",
            "_replace_atomically", "available", "verify", "latest_intact", "restore"),
           "tests/test_training_snapshots.py", timeout_s=60),
    Target("snapshot-writing", "training/snapshots.py",
           ("param_bytes", "check_space", "take", "save_weights"),
           "tests/test_training_snapshots.py", timeout_s=60),
    Target("balance", "training/balance.py",
           ("class_counts", "inverse_frequency", "write_infogain", "read_infogain"),
           "tests/test_paper_layers.py", timeout_s=60),
    Target("geometry", "core/geometry.py",
           ("_repeated", "_conv_pair", "conv_window", "pool_window", "crop_offsets",
            "window_step", "conv_size", "deconv_size", "pooled_size", "output_shape",
            "layer_parameters"),
           "tests/test_geometry.py tests/test_tiling.py -k 'not huge and not infer and not "
           "measured and not stitched and not defined_once and not binding and not "
           "translation'", timeout_s=120),
    Target("memory", "core/memory.py", ("column_limit", "column_values"),
           "tests/test_core_memory.py tests/test_tiling.py -k 'not tiling or chunk or "
           "column_buffer'", timeout_s=120),
    Target("tiling", "evaluation/tiling.py", ("reach", "blob_shapes", "forward_bytes", "spans"),
           "tests/test_tiling.py -k 'not huge and not infer and not measured and not "
           "voc-fcn8s-size0'", timeout_s=300),
    Target("fingerprint", "core/fingerprint.py",
           ("digest_bytes", "file_digest", "split_digest", "diff", "bits_fields",
            "pinned_differences"),
           "tests/test_fingerprint.py", timeout_s=60),
    # the graph's own tests (a second, no ONNX or PyTorch): they pin the every-layer net's
    # whole Graph, the only thing of graph.py that test_export_layers.py's run of both
    # exporters against Caffe reads, so that run (ten times the CPU) could kill no more
    Target("export-graph", "export/graph.py", (), "tests/test_export_graph.py",
           timeout_s=300),
    # a whole dataset fetched and placed is data/fetch.py's claim (its downloads take the
    # paths test_fetch_resumes_after_a_cut_connection covers): 10 s a mutant left out
    Target("download", "core/download.py", (),
           "tests/test_faults_downloads.py tests/test_data_fetch.py -k 'not voc_is_fetched and "
           "not pascalcontext'", timeout_s=300),
    # a first stage still at the background trains on (the miniature's HHA and from-scratch
    # rows): the decision, its test, where it stops, and what a finished run's request holds
    Target("until-learned", "training/train.py",
           ("at_background", "Run.must_test", "Run.finished", "Run.test", "Run.start",
            "Run._read_settings", "generate_nets", "request_of"),
           "tests/test_training_train.py -k 'background or decision'",
           lines=r"decide|left_background|until_learned|LEARNED_ABOVE|mean_iu|heads",
           timeout_s=240),
    # the comparisons and claims; test_paper_report's miniature runs (minutes each) stay out
    Target("paper-report", "paper/report.py",
           ("title", "fmt", "cell", "this_run", "architecture", "group_table", "claim_check",
            "claims_under", "claims_summary", "momentum_note"),
           "tests/test_paper_report.py tests/test_paper_claims.py -k 'not miniature and not "
           "second_run and not table_8 and not diverging and not sigterm'", timeout_s=120),
    Target("paper-claims", "core/paper_claims.py", (), "tests/test_paper_claims.py",
           timeout_s=120),
    # issue 35, what the architecture step made: result manifests, outputs never over
    # inputs, the command-line ranges, train.jsonl and its torn-line repair
    Target("manifest", "core/manifest.py", (), "tests/test_core_manifest.py", timeout_s=60),
    Target("outputs", "core/outputs.py", (), "tests/test_core_outputs.py", timeout_s=60),
    Target("arguments", "core/arguments.py", (), "tests/test_faults_arguments.py -k 'not make'",
           timeout_s=60),
    Target("runlog", "training/runlog.py", (),
           "tests/test_training_runlog.py tests/test_training_curves.py", timeout_s=60),
    # the scoring loop, whose every number is reported (score_weights, glue, is left to the
    # whole-experiment runs: 15 to 30 s each), and the memory refusal before Caffe allocates
    # (a job let through is killed for memory: lost work; one refused that fits is lost too)
    Target("score", "evaluation/score.py",
           ("experiment_heads", "TestResult.scores", "TestResult.as_dict", "load_covering",
            "json_scores", "data_layer", "first_top", "next_example", "split_size",
            "check_example_fits", "seg_test"),
           "tests/test_score_cli.py -k 'not recount and not siftflow_semantics and not "
           "one_stream and not unknown_split'", timeout_s=60),
    Target("runtime", "evaluation/runtime.py",
           ("memory_limit", "available_memory", "_refusal", "_counts", "_bytes",
            "forward_bytes", "_limit", "refuse_clearly_too_big", "reshape_checked",
            "check_memory", "training_bytes"),
           "tests/test_core_memory.py -k 'not childs_peak'", timeout_s=60),
    # issue 35, what would say "identical" when it is not, or score the wrong images: the
    # bit-for-bit comparisons (one module a target) and the split lists
    # (both files: 30 to 50 s under the load of parallel passes; 60 s timed survivors out)
    Target("compare-numeric", "compare/numeric.py", (),
           "tests/test_compare_caffemodel.py tests/test_compare_forward.py", timeout_s=240),
    Target("compare-prototxt", "compare/prototxt.py", (), "tests/test_compare_prototxt.py",
           timeout_s=60),
    Target("compare-segmentation", "compare/segmentation.py", (),
           "tests/test_compare_segmentation.py", timeout_s=60),
    Target("compare-caffemodel", "compare/caffemodel.py", (),
           "tests/test_compare_caffemodel.py", timeout_s=60),
    Target("compare-forward", "compare/forward.py", (), "tests/test_compare_forward.py",
           timeout_s=240),
    # hand-made run folders; test_faults_compare.py's trainings and `make compare` stay out
    Target("compare-runs", "compare/runs.py", (), "tests/test_compare_runs.py", timeout_s=60),
    Target("splits", "data/splits.py", (), "tests/test_data_splits.py", timeout_s=60),
    # issue 35: every regime's rate, momentum and batch (every number trained), the
    # classifier's convolutionalization (every run's starting weights), the data check
    Target("solver-settings", "nets/solver_settings.py",
           ("heavy", "online", "accumulated", "alexnet_normalized", "summed_lr", "table1",
            "sampled", "equivalent_momentum", "_rate", "solver_prototxt"),
           "tests/test_nets_generate.py tests/test_paper_experiments.py -k 'solver_file or "
           "table1_trains or table2_regimes or momentum_rule or sampling_rates or "
           "lrdrop_continues or impossible'", timeout_s=120),
    Target("convert", "surgery/convert.py",
           ("fully_convolutional", "_to_convolution", "convolutionalize", "check_base_fits"),
           "tests/test_surgery_convert.py tests/test_surgery_errors.py -k 'not deconvolution'",
           timeout_s=120),
    Target("check-data", "training/check_data.py",
           ("_stats", "check_split", "_note_size", "check_experiment", "experiment_for"),
           "tests/test_training_check_data.py tests/test_faults_inputs.py -k 'check_data or "
           "byte_order'", timeout_s=120),
    # issue 35, the paper runner and the schedule: each stage's lr, iterations and starting
    # weights; the plan's estimates; JOBS=N's workers (a job's code carried back)
    Target("schedule", "training/schedule.py",
           ("chain", "stage_lr", "_depth", "base_weights", "check_finite", "check_done"),
           "tests/test_training_train.py -k 'chain or depth or stage_lr_of or base_weights "
           "or nan_or_inf or vouches'", timeout_s=60),
    Target("plan", "paper/plan.py",
           ("Settings.overrides", "mini_settings", "stage_iterations", "first_lr",
            "picture_passes", "gpu_hours", "parameter_count", "snapshot_gb", "make_plan"),
           "tests/test_paper_report.py -k 'gpu_hours or first_iters or picture_passes or "
           "quick_lr or one_image_a_step or most_groups or its_wave or "
           "architecture_columns or plan_'", timeout_s=120),
    # the driver's loop and the worker's, each mutant against real worker processes (~16 s a
    # mutant on quiet cores): the argparse main, Job's label and the Worker records left out
    Target("processes", "paper/processes.py",
           ("settings_payload", "settings_from", "payload_of", "Workers.run",
            "Workers.start", "Workers.collect_ended", "Workers.collect", "Workers.release",
            "Workers.stop", "serve", "job_main"),
           "tests/test_paper_report.py -k jobs_worker", timeout_s=120),
)


def function_lines(path: Path, names: tuple[str, ...]) -> set[int]:
    """Line numbers (1-based) of the bodies of the named functions and methods."""
    tree = ast.parse(path.read_text())
    found: dict[str, set[int]] = {}

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualified = prefix + child.name
                if isinstance(child, ast.ClassDef):
                    visit(child, qualified + ".")
                else:
                    found[qualified] = set(range(child.lineno, child.end_lineno + 1))
    visit(tree, "")
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"mutate: {path} has no function {missing}; update tests/mutate.py")
    return set().union(*(found[n] for n in names))


def copy_tree(out: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, copied to out/tree."""
    tree = out / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    return tree


def write_config(target: Target, out: Path, command: str) -> Path:
    """cosmic-ray's TOML config for one target (JSON strings are valid TOML strings)."""
    config = out / f"{target.name}.toml"
    config.write_text("[cosmic-ray]\n"
                      f"module-path = {json.dumps(target.module)}\n"
                      f"timeout = {float(target.timeout_s)}\n"
                      "excluded-modules = []\n"
                      f"test-command = {json.dumps(command)}\n\n"
                      "[cosmic-ray.distributor]\n"
                      'name = "local"\n')
    return config


def restrict(session: Path, tree: Path, target: Target) -> tuple[int, int]:
    """Mark every mutant outside the target's functions (and line pattern), or made by an
    operator of OPERATORS_SKIPPED, as skipped; returns (kept, skipped)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    path = tree / target.module
    text = path.read_text().splitlines()
    wanted = (function_lines(path, target.functions) if target.functions
              else set(range(1, len(text) + 1)))
    if target.lines:
        pattern = re.compile(target.lines)
        wanted = {n for n in wanted if pattern.search(text[n - 1])}
    kept = skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        done = {job_id for job_id, _ in db.results}
        for item in db.work_items:
            if item.job_id in done:
                continue
            lines = {m.start_pos[0] for m in item.mutations}
            operators = {m.operator_name for m in item.mutations}
            if lines <= wanted and not any(OPERATORS_SKIPPED.search(o) for o in operators):
                kept += 1
            else:
                skipped += 1
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    return kept, skipped


def forget_survivors(session: Path, timeouts: bool = False) -> int:
    """Drop the survivors' results so they run again (after tests were added for them);
    with `timeouts`, the mutants killed only by the timeout instead (a loaded machine can
    time out a test that would have passed)."""
    from cosmic_ray.work_db import WorkDB, WorkResultStorage, use_db
    from cosmic_ray.work_item import TestOutcome

    with use_db(str(session), WorkDB.Mode.open) as db, db._session_maker.begin() as rows:
        outcome = WorkResultStorage.test_outcome
        chosen = ((outcome == TestOutcome.KILLED) & (WorkResultStorage.output == TIMED_OUT)
                  if timeouts else outcome == TestOutcome.SURVIVED)
        return rows.query(WorkResultStorage).filter(chosen).delete()


def tally(session: Path) -> dict:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    counts = {"killed": 0, "timed out": 0, "survived": 0, "incompetent": 0, "pending": 0,
              "skipped": 0}
    survivors, timeouts = [], []
    with use_db(str(session), WorkDB.Mode.open) as db:
        results = dict(db.results)
        for item in db.work_items:
            result = results.get(item.job_id)
            if result is None:
                counts["pending"] += 1
            elif result.worker_outcome == WorkerOutcome.SKIPPED:
                counts["skipped"] += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                counts["survived"] += 1
                m = item.mutations[0]
                survivors.append((f"{m.module_path}:{m.start_pos[0]} {m.operator_name}",
                                  result.diff or ""))
            elif result.test_outcome == TestOutcome.INCOMPETENT:
                counts["incompetent"] += 1
            else:
                counts["killed"] += 1
                if result.output == TIMED_OUT:
                    counts["timed out"] += 1
                    m = item.mutations[0]
                    timeouts.append(f"{m.module_path}:{m.start_pos[0]} {m.operator_name}")
    counts["survivors"], counts["timeouts"] = survivors, timeouts
    return counts


def serve_tests(port_file: Path, tests: str) -> int:
    """--warm's test runner, under the project's Python in the copy: import the heavy
    modules once, then for each connection fork a child that runs the target's tests on
    the mutant now on disk and answer its exit status. A connection dropped before the
    answer (cosmic-ray's timeout killed the client) kills the child and its group."""
    # the driver's end (Ctrl-C, a kill) ends this process too: it would otherwise wait for
    # connections forever, holding the copy's Caffe (Linux prctl PR_SET_PDEATHSIG)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"   # a mutant may be younger than its .pyc
    sys.dont_write_bytecode = True
    os.environ.setdefault("GLOG_minloglevel", "2")   # as tests/conftest.py, before Caffe
    import numpy  # noqa: F401
    import pytest
    import scipy.io  # noqa: F401
    try:
        import caffe  # noqa: F401
    except ImportError:
        pass
    args = shlex.split(PYTEST.format(python="", tests=tests))[2:]   # after "-m pytest"
    server = socket.create_server(("127.0.0.1", 0))
    port_file.write_text(str(server.getsockname()[1]))
    while True:
        conn, _ = server.accept()
        with conn:
            child = os.fork()
            if child == 0:
                server.close()
                conn.close()
                os.setpgid(0, 0)
                quiet = os.open(os.devnull, os.O_WRONLY)
                os.dup2(quiet, 1)
                os.dup2(quiet, 2)
                code = 3
                try:
                    code = int(pytest.main(args))
                finally:
                    os._exit(code)
            while True:
                done, status = os.waitpid(child, os.WNOHANG)
                if done:
                    code = os.waitstatus_to_exitcode(status)
                    conn.sendall(f"{code if code >= 0 else 1}\n".encode())
                    break
                if select.select([conn], [], [], 0.1)[0] and not conn.recv(1):
                    try:
                        os.killpg(child, signal.SIGKILL)
                    except OSError:
                        os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                    break


def start_warm(target: Target, out: Path, tree: Path, python: str) -> tuple:
    """The warm process for one target, and cosmic-ray's test command that asks it."""
    port_file = out / f"{target.name}.port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen([python, str(tree / "tests" / "mutate.py"), "--serve-tests",
                               str(port_file), target.tests], cwd=tree)
    while not port_file.exists() or not port_file.read_text():
        if server.poll() is not None:
            raise SystemExit(f"mutate: the warm test process of {target.name} ended "
                             f"({server.returncode})")
        time.sleep(0.5)
    return server, WARM_CLIENT.format(port=port_file.read_text())


def run(targets: list[Target], out: Path, budget_s: float, python: str,
        warm: bool = False) -> int:
    out.mkdir(parents=True, exist_ok=True)
    tree = copy_tree(out)
    # the venv's .pth puts the working tree's layers/ on the path (the data layers import as
    # top-level modules): the copy's own must come first, or its mutants are never imported
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(tree), str(tree / "layers"), *filter(None, [os.environ.get("PYTHONPATH")])])
    tool = Path(sys.executable).parent
    deadline = time.monotonic() + budget_s
    summary = []
    for target in targets:
        server, command = (start_warm(target, out, tree, python) if warm else
                           (None, PYTEST.format(python=python, tests=target.tests)))
        config = write_config(target, out, command)
        session = out / f"{target.name}.sqlite"
        if not session.exists():
            subprocess.run([tool / "cosmic-ray", "init", str(config), str(session)], cwd=tree,
                           check=True)
        kept, skipped = restrict(session, tree, target)
        # (through a fork when warm: its output is not kept, rerun without --warm to see it)
        baseline = subprocess.run(shlex.split(command), cwd=tree, capture_output=True,
                                  text=True, check=False,
                                  env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        if baseline.returncode != 0:  # every mutant would count as killed
            print(f"mutate: {target.name}: its tests fail without any mutant; fix them "
                  f"first:\n{baseline.stdout[-3000:]}", flush=True)
            summary.append((target, tally(session)))
            if server is not None:
                server.kill()
            continue
        left = deadline - time.monotonic()
        print(f"mutate: {target.name}: {kept} mutants to run in {target.module} "
              f"({skipped} skipped: other functions, operators left out); {left / 60:.0f} min "
              f"left",
              flush=True)
        if left > 0 and kept:
            try:
                subprocess.run([tool / "cosmic-ray", "exec", str(config), str(session)],
                               cwd=tree, timeout=left, check=False)
            except subprocess.TimeoutExpired:
                print(f"mutate: time budget spent during {target.name}; rerun to go on",
                      flush=True)
        if server is not None:
            server.kill()
            server.wait()
        summary.append((target, tally(session)))
    write_report(out / "report.md", summary)
    print((out / "report.md").read_text())
    return 0


def write_report(path: Path, summary) -> None:
    lines = ["# Mutation report", "",
             "| target | module | killed | of which timed out | survived | incompetent | "
             "pending | skipped |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for target, c in summary:
        lines.append(f"| {target.name} | {target.module} | {c['killed']} | "
                     f"{c['timed out']} | {c['survived']} | {c['incompetent']} | "
                     f"{c['pending']} | {c['skipped']} |")
    lines += ["", "killed: a test failed (or the run timed out) with the mutant in; "
              "timed out: killed by the timeout alone (on a loaded machine, check with "
              "--retest-timeouts); "
              "incompetent: the mutant could not even be imported; skipped: outside the "
              "guarded functions, or an operator left out (OPERATORS_SKIPPED in "
              "tests/mutate.py); pending: not run yet (time budget).", ""]
    for target, c in summary:
        lines += [f"timed out: {target.name} {where}" for where in c["timeouts"]]
    for target, c in summary:
        for where, diff in c["survivors"]:
            lines += [f"## survived: {target.name} {where}", "", "```diff", diff.strip(), "```",
                      ""]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[t.name for t in TARGETS],
                        help="run these targets only")
    parser.add_argument("--budget-min", type=float, default=90,
                        help="stop starting new mutants after this many minutes")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "mutate",
                        help="sessions, the repository copy and report.md (runs/mutate)")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"),
                        help="the project's Python, which runs the tests")
    parser.add_argument("--fresh", action="store_true", help="forget earlier sessions")
    parser.add_argument("--retest-survivors", action="store_true",
                        help="run the survivors of earlier sessions again (after new tests)")
    parser.add_argument("--retest-timeouts", action="store_true",
                        help="run the mutants killed only by the timeout again")
    parser.add_argument("--warm", action="store_true",
                        help="run each mutant's tests in a fork of one process that imported "
                             "pytest, numpy, scipy and Caffe once (a loaded machine)")
    parser.add_argument("--serve-tests", nargs=2, metavar=("PORT_FILE", "TESTS"),
                        help=argparse.SUPPRESS)   # --warm's own test process
    args = parser.parse_args(argv)
    if args.serve_tests:
        return serve_tests(Path(args.serve_tests[0]), args.serve_tests[1])
    args.out = args.out.resolve()  # cosmic-ray runs in the copy, not here
    # a test that skips for a missing optional part would let every mutant survive: fail it
    # instead, as `make test` does (tests/testkit/optional.py)
    os.environ["FCN_OPTIONAL_PARTS"] = "required"
    targets = [t for t in TARGETS if not args.only or t.name in args.only]
    for t in targets:
        session = args.out / f"{t.name}.sqlite"
        if args.fresh:
            session.unlink(missing_ok=True)
            continue
        if args.retest_survivors and session.exists():
            print(f"mutate: {t.name}: {forget_survivors(session)} survivors to run again")
        if args.retest_timeouts and session.exists():
            print(f"mutate: {t.name}: {forget_survivors(session, timeouts=True)} timed-out "
                  f"mutants to run again")
    return run(targets, args.out, args.budget_min * 60, args.python, args.warm)


if __name__ == "__main__":
    sys.exit(main())
