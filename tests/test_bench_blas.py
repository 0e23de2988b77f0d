"""The bound is the machine's: every BLAS option checked, the best one named, a generic
fallback never the bound, and the machine's kernel variables dropped in one probe only."""

import json
import os
import subprocess
import sys

from bench import levers, report
from bench.run import REPO


def row(name, gflops, corename="Haswell", correct=True):
    return {"lever": name, "blas": {"corename": corename, "threads": 2, "config": ""},
            "sgemm": {"gflops": gflops}, "correct": correct,
            "check_max_relative_error": 1e-7 if correct else 0.3}


def test_machine_bound_is_the_best_checked_non_fallback(monkeypatch):
    monkeypatch.setattr(levers, "cpu_has_avx2", lambda: True)
    rows = [row("default", 32, "Prescott"), row("numpy", 180, "SkylakeX"),
            row("haswell", 200, "Haswell", correct=False), row("openmp", 150, "Zen"),
            {"lever": "blis", "error": "timed out"}]
    best = levers.machine_bound(rows)
    assert best["lever"] == "numpy"
    assert levers.is_fallback("Prescott") and not levers.is_fallback("SkylakeX")
    table = "\n".join(report.blas_table({"blas_options": rows}))
    assert "GENERIC FALLBACK" in table and "**WRONG**" in table and "timed out" in table


def test_no_fallback_warning_on_old_cpus(monkeypatch):
    monkeypatch.setattr(levers, "cpu_has_avx2", lambda: False)
    assert not levers.is_fallback("Prescott")


def test_kernel_override_drops_the_machines_variables_in_that_probe_only(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Zen")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    overrides = levers.kernel_override("Haswell")
    env = levers.child_environment(overrides)
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and "OPENBLAS_L2_SIZE" not in env
    assert "unset in this probe only" in levers.machine_kernel_note(overrides)
    assert os.environ["OPENBLAS_L2_SIZE"] == "1048576"  # this process keeps them
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.delenv("OPENBLAS_L2_SIZE")
    assert levers.kernel_override("Haswell") == {"OPENBLAS_CORETYPE": "Haswell"}
    assert levers.machine_kernel_note({"OPENBLAS_CORETYPE": "Haswell"}) == ""


def test_sgemm_only_probe_checks_then_times():
    done = subprocess.run([sys.executable, "-m", "bench.probe", "--sgemm-only",
                           "--sgemm-n", "256"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["correct"] and result["check_max_relative_error"] < 1e-5
    assert result["sgemm"]["gflops"] > 0 and result["sgemm"]["n"] == 256


def test_goals_say_met_or_not():
    results = {"nets": {"voc-fcn8s": {"forward_over_bound": 1.3}},
               "machine_bound": {"over_caffe_blas": 1.1, "lever": "x", "gflops": 1,
                                 "corename": "y", "config": ""},
               "peer": {"caffe_over_torch_forward": 0.9, "caffe_over_torch_train": 1.1},
               "memory": {"peak_rss_mib": 2.5 * 1024}, "elapsed_s": 800}
    text = "\n".join(report.goals(results))
    assert "1.43× — NOT met" in text
    assert "0.90× · 1.10× PyTorch's time — NOT met" in text
    assert "2.50 GiB — met" in text and "13.3 min — met" in text
    # the sgemm goal: Caffe's BLAS at 1/1.1 of the best here
    assert "machine bound: 0.91× — met" in text
    results["machine_bound"]["over_caffe_blas"] = 1.9    # the Xeon: 175 vs 335
    assert "machine bound: 0.53× — NOT met" in "\n".join(report.goals(results))


def test_goals_say_whether_the_two_sgemm_paths_agree_and_the_engines_ran():
    def goals(levers_rows, engines):
        return "\n".join(report.goals({"levers": levers_rows, "engines": engines}))

    same = {"lever": "pinned-avx2-path", "bit_exact_vs_default": True}
    assert "AVX2 sgemm path: met" in goals([same], None)
    assert "AVX2 sgemm path: NOT met" in goals([{**same, "bit_exact_vs_default": False}], None)
    assert "sgemm path" not in goals([], None)           # an AVX2-only CPU has no such lever
    both = {"onnxruntime": {"forward": {}, "caffe_over_engine_forward": 2.9},
            "openvino": {"forward": {}, "caffe_over_engine_forward": 2.7}}
    assert "onnxruntime 2.90, openvino 2.70 — met" in goals([], both)
    assert "openvino 2.70 — NOT met" in goals([], {**both, "onnxruntime": {"error": "x"}})
    assert "inference peers" not in goals([], None)       # --skip engines


def test_every_sgemm_rate_is_taken_at_the_timings_thread_count():
    """The issue's Xeon: the side-by-side table's default row read a one-thread rate (90
    GFLOP/s) while the levers table read 179 for the same library, so 'fwd / machine bound'
    was off by 2×. Every probe now sets the count through the library and reports it."""
    done = subprocess.run([sys.executable, "-m", "bench.probe", "--sgemm-only",
                           "--sgemm-n", "256", "--threads", "1"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1])["blas"]["threads"] == 1

    rows = [row("default", 90), row("numpy", 180, "SkylakeX")]
    rows[0]["blas"]["threads"], rows[0]["threads_match"] = 1, False   # ran at another count
    rows[1]["threads_match"] = True
    assert levers.machine_bound(rows)["lever"] == "numpy"
    rows[1]["threads_match"] = False
    assert levers.machine_bound(rows) is None
    assert "not the timings' count" in "\n".join(report.blas_table({"blas_options": rows}))


def test_caffes_sgemm_must_agree_between_the_tables():
    side = [row("default", 175.0)]
    lever = [{**row("default", 179.0)}]
    check = levers.sgemm_consistency(2, 171.0, side, lever)
    assert check["consistent"] and check["gflops"] == {"in-process": 171.0,
                                                       "side-by-side": 175.0, "levers": 179.0}
    assert "consistent" in report.consistency_lines({"sgemm_consistency": check})[0]
    off = levers.sgemm_consistency(2, 171.0, [row("default", 90.0)], lever)
    assert not off["consistent"] and round(off["spread"], 2) == 1.99
    assert "INCONSISTENT" in report.consistency_lines({"sgemm_consistency": off})[0]
    # another thread count in a table is inconsistent whatever the rates
    assert not levers.sgemm_consistency(16, 171.0, side, lever)["consistent"]
