"""bench/gpu_check.py (make gpu-check): its verdicts, how it reads Caffe's gtest output
(also when cut by a timeout or a crash), and what it says without a GPU or a bundle. The
whole check from the bundle in a bare root: tests/test_gpu_bundle.py."""

import os
import subprocess
import sys

from bench import gpu_check
from bench.run import REPO


def fake_tool(folder, name, script):
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return tool


def test_a_driver_without_a_gpu_says_why(tmp_path, monkeypatch):
    fake_tool(tmp_path / "bin", "nvidia-smi", "echo 'No devices were found' >&2\nexit 6\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    present, why = gpu_check.gpu_present()
    assert not present and "nvidia-smi lists no GPU" in why and "No devices" in why
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpu_check.gpu_present() == (False,
                                      "no NVIDIA driver (nvidia-smi is not installed)")
    fake_tool(tmp_path / "gpu", "nvidia-smi", "echo 'NVIDIA H100 80GB HBM3, 9.0'\n")
    monkeypatch.setenv("PATH", str(tmp_path / "gpu"))
    assert gpu_check.gpu_present() == (True, "NVIDIA H100 80GB HBM3, 9.0")


def test_without_a_bundle_it_says_how_to_run_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FCN_BUNDLE"}
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "gpu-check.sh" in done.stderr
    assert "Traceback" not in done.stderr


def test_architecture_from_compute_capability():
    assert gpu_check.architecture("NVIDIA H200, 9.0") == "90"
    assert gpu_check.architecture("Tesla T4, 7.5") == "75"


GTEST = """echo '[==========] Running 3 tests from 1 test case.'
echo '[ RUN      ] A/2.One'
echo '[       OK ] A/2.One (3 ms)'
echo '[ RUN      ] A/2.Two'
echo 'x.cpp:9: Failure'
echo '[  FAILED  ] A/2.Two, where TypeParam = caffe::GPUDevice<float> (1 ms)'
echo '[ RUN      ] A/2.Three'
"""


def gtest_bundle(tmp_path, tail):
    bundle = tmp_path / "bundle"
    (bundle / "caffe-src").mkdir(parents=True)
    fake_tool(bundle / "bin", "test.testbin", GTEST + tail)
    return bundle


def test_gtests_counted_from_a_whole_run(tmp_path):
    bundle = gtest_bundle(tmp_path, "echo '[       OK ] A/2.Three (2 ms)'\n"
                          "echo '[==========] 3 tests from 1 test case ran. (6 ms total)'\n"
                          "echo '[  PASSED  ] 2 tests.'\n"
                          "echo '[  FAILED  ] A/2.Two, where TypeParam = x'\nexit 1\n")
    got = gpu_check.gtests(bundle, "*", 30, tmp_path / "log")
    assert (got["total"], got["passed"], got["exit_status"]) == (3, 2, 1)
    assert got["failed"] == ["A/2.Two, where TypeParam = caffe::GPUDevice<float> (1 ms)"]
    row, ok = gpu_check._test_row("GPU tests", got)
    assert not ok and "2/3 passed" in row and "A/2.Two" in row
    assert "A/2.Three" in (tmp_path / "log").read_text()


def test_gtests_cut_by_the_timeout_say_how_far_they_got(tmp_path):
    bundle = gtest_bundle(tmp_path, "sleep 30\n")
    got = gpu_check.gtests(bundle, "*", 1, tmp_path / "log")
    assert got["error"].startswith("timed out after 1 s: 1 of 3 passed, 1 failed so far")
    assert gpu_check._test_row("GPU tests", got)[1] is False


def test_a_crashed_gtest_names_the_check_that_failed(tmp_path):
    bundle = gtest_bundle(tmp_path, (
        "echo 'F1206 12:18:00 syncedmem.hpp:22] Check failed: error == cudaSuccess (35 vs. "
        "0)  CUDA driver version is insufficient' >&2\necho '*** Check failure stack trace:"
        " ***' >&2\nkill -ABRT $$\n"))
    got = gpu_check.gtests(bundle, "*", 30, tmp_path / "log")
    assert "stopped" in got["error"] and "after 1 passed" in got["error"]
    assert "CUDA driver version is insufficient" in got["error"]


def sample(score=2e-6, passed=540, same=True):
    run = {"seconds": 60.0, "iterations_per_stage": 100, "final_sha256": "a" * 64,
           "score": {"label": {"mean_iu": 0.4, "pixel_accuracy": 0.8}}}
    return {"gpu": "NVIDIA H200, 9.0", "elapsed_s": 400.0,
            "environment": {"entry": "caffe-cuda90-x", "python": "3.11.7", "numpy": "2.4"},
            "cpu_tests": {"total": 39, "passed": 39, "failed": [], "exit_status": 0,
                          "seconds": 3.0},
            "cpu_train": run,
            "gpu_tests": {"total": 540, "passed": passed, "failed": [], "exit_status": 0,
                          "seconds": 90.0},
            "compare": {"score_max_relative_difference": score,
                        "gradient_max_relative_difference": 3e-6, "worst_gradient": "conv1_1",
                        "loss_cpu": 1.0, "loss_gpu": 1.0, "forward_ms": 25.0,
                        "forward_backward_ms": 80.0, "forward_runs_s": []},
            "gpu_train": [run, {**run, "final_sha256": "a" * 64 if same else "b" * 64}]}


def test_report_passes_and_fails_on_the_numbers():
    table, ok = gpu_check.report(sample())
    assert ok and "540/540" in table and "~100 ms" in table and "4.0× faster" in table
    assert "yes: the two runs' final weights are identical" in table
    assert "mean IU 0.4000" in table
    assert not gpu_check.report(sample(score=0.5))[1]
    assert not gpu_check.report(sample(passed=539))[1]
    table, ok = gpu_check.report(sample(same=False))
    assert ok and "**no**: final weights differ" in table  # a finding, not a failure
    broken = sample()
    broken["compare"] = {"error": "CUDA out of memory"}
    table, ok = gpu_check.report(broken)
    assert not ok and "CUDA out of memory" in table
    failed_run = sample()
    failed_run["gpu_train"][1] = {"error": "schedule: error: GPU 0 is not usable"}
    table, ok = gpu_check.report(failed_run)
    assert not ok and "GPU 0 is not usable" in table


def test_without_a_gpu_the_cpu_half_decides():
    result = {key: value for key, value in sample().items()
              if key in ("environment", "cpu_tests", "cpu_train", "elapsed_s")}
    result.update(gpu="none", no_gpu="no GPU: no NVIDIA driver")
    table, ok = gpu_check.report(result)
    assert ok and "| GPU half | no GPU: no NVIDIA driver |" in table
    result["cpu_train"] = {"error": "ModuleNotFoundError: No module named 'voc_layers'"}
    assert not gpu_check.report(result)[1]
    result = {**sample(), "no_gpu": "not run: NVIDIA B200, 10.0, but the bundle is cuda90"}
    assert not gpu_check.report(result)[1]


def test_why_failed_prefers_the_failed_check_to_the_stack_trace():
    text = "I0 start\nF1 x.cpp:3] Check failed: a == b\n*** Check failure stack trace: ***\n@ 0x1"
    assert gpu_check.why_failed(text) == "F1 x.cpp:3] Check failed: a == b"
    assert gpu_check.why_failed("") == "no output"
    assert gpu_check.why_failed("a\nlast words\n@ 0x2") == "last words"
