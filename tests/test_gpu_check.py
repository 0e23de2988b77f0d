"""make gpu-check: says so and exits 0 without a GPU; its table and verdict from results."""

import os
import subprocess
import sys

from bench import gpu_check
from bench.run import REPO


def run_without_gpu(tmp_path, fake_smi: str | None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if fake_smi is not None:
        smi = bin_dir / "nvidia-smi"
        smi.write_text(fake_smi)
        smi.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])
    return subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out",
                           str(tmp_path / "out.json")], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PATH": path})


def test_no_driver_exits_cleanly(tmp_path):
    done = run_without_gpu(tmp_path, None)
    assert done.returncode == 0
    assert "no GPU on this machine" in done.stdout and "nvidia-smi" in done.stdout
    assert not (tmp_path / "out.json").exists()


def test_driver_without_gpu_exits_cleanly(tmp_path):
    done = run_without_gpu(tmp_path, "#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    assert done.returncode == 0
    assert "nvidia-smi lists no GPU" in done.stdout and "No devices were found" in done.stdout


def test_make_target_exists():
    text = (REPO / "mk/cuda.mk").read_text()
    assert "gpu-check:" in text and "bench.gpu_check" in text


def test_architecture_from_compute_capability():
    assert gpu_check.architecture("NVIDIA H200, 9.0") == "90"
    assert gpu_check.architecture("Tesla T4, 7.5") == "75"


def sample(score=2e-6, passed=540):
    return {"gpu": "NVIDIA H200, 9.0", "entry": "caffe-cuda90-x", "build_s": 200.0,
            "elapsed_s": 400.0,
            "gpu_tests": {"total": 540, "passed": passed, "failed": [], "exit_status": 0,
                          "seconds": 90.0},
            "compare": {"score_max_relative_difference": score,
                        "gradient_max_relative_difference": 3e-6, "worst_gradient": "conv1_1",
                        "loss_cpu": 1.0, "loss_gpu": 1.0, "forward_ms": 25.0,
                        "forward_backward_ms": 80.0, "forward_runs_s": []}}


def test_report_passes_and_fails_on_the_numbers():
    table, ok = gpu_check.report(sample())
    assert ok and "540/540" in table and "~100 ms" in table and "4.0× faster" in table
    assert not gpu_check.report(sample(score=0.5))[1]
    assert not gpu_check.report(sample(passed=539))[1]
    broken = sample()
    broken["compare"] = {"error": "CUDA out of memory"}
    table, ok = gpu_check.report(broken)
    assert not ok and "CUDA out of memory" in table
