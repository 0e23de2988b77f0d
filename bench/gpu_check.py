"""`make gpu-check`: the GPU side of the harness in one run, for the day a GPU is lent.

On a machine with an NVIDIA GPU and no network it
1. builds (or reuses) the CUDA build of the recipe for the GPU's own architecture
   (`CUDA=1 CUDA_ARCH=<compute capability>`, every core; caffe-recipe/CUDA.md), without
   switching the venv away from the CPU build;
2. runs Caffe's GPU tests (`test.testbin --gtest_filter=*GPU*`);
3. compares FCN-8s (full width, 500×500, seeded weights) on the GPU with the same build on
   the CPU: the forward's score map and, through a softmax loss on seeded labels, every
   parameter gradient (max relative difference; GPU and CPU sum in other orders, so the
   two agree to float precision, not bit for bit);
4. times the GPU forward (median of 20, as the paper averages 20 trials) against the
   paper's ~100 ms for FCN-8s on a Titan X, and the forward+backward.
It prints one table and writes bench/results/gpu-check.json. Without a GPU it says so and
exits 0. Designed to finish in under 8 minutes on a 16-core machine with a warm cache
(a cold CUDA build is most of that).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAPER_FCN8S_MS = 100.0  # Table 1 / Table 6 of the paper: FCN-8s, 500×500, Titan X
TOLERANCE = 1e-3        # max relative difference GPU vs CPU accepted (float32, other order)


def gpu_present() -> tuple[bool, str]:
    """(True, 'name, compute capability X.Y') or (False, why not)."""
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap",
                                 "--format=csv,noheader"], capture_output=True, text=True,
                                timeout=60, check=False)
    except FileNotFoundError:
        return False, "no NVIDIA driver (nvidia-smi is not installed)"
    except subprocess.TimeoutExpired:
        return False, "nvidia-smi did not answer within 60 s"
    lines = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
    if listed.returncode != 0 or not lines:
        return False, f"nvidia-smi lists no GPU ({(listed.stderr or listed.stdout).strip()})"
    return True, lines[0]


def architecture(description: str) -> str:
    """'NVIDIA H200, 9.0' → '90'."""
    return description.rsplit(",", 1)[-1].strip().replace(".", "")


def build(venv: Path, arch: str, jobs: int) -> Path:
    """Build or reuse the CUDA entry (never exposed to the venv); its folder."""
    env = {**os.environ, "CUDA": "1", "CUDA_ARCH": arch, "JOBS": str(jobs)}
    script = str(REPO / "caffe-recipe/build.sh")
    subprocess.run(["bash", script, "--venv", str(venv), "--no-expose"], check=True, env=env)
    done = subprocess.run(["bash", script, "--venv", str(venv), "--print-dir"], check=True,
                          env=env, capture_output=True, text=True)
    return Path(done.stdout.strip())


def gpu_tests(entry: Path, timeout: float) -> dict:
    """Caffe's GPU gtests from the source root; passed/total and the failures."""
    started = time.perf_counter()
    try:
        done = subprocess.run([str(entry / "build/test/test.testbin"), "--gtest_filter=*GPU*",
                               "--gtest_color=no"], cwd=entry / "src", capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    total = passed = None
    for line in done.stdout.splitlines():
        if line.startswith("[==========]") and "ran." in line:
            total = int(line.split()[1])
        if line.startswith("[  PASSED  ]"):
            passed = int(line.split()[3])
    failed = [line.split("]", 1)[1].strip() for line in done.stdout.splitlines()
              if line.startswith("[  FAILED  ]") and "," not in line]
    return {"total": total, "passed": passed or 0, "failed": failed[:20],
            "exit_status": done.returncode, "seconds": time.perf_counter() - started}


COMPARE = r"""
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
import caffe
from bench.models import deploy_net, fill_weights, random_image
from bench.timing import timed

size = (500, 500)
tmp = Path(tempfile.mkdtemp())
net, param = deploy_net('voc-fcn8s', size, tmp)
text = str(param) + '''
layer { name: "label" type: "Input" top: "label"
        input_param { shape { dim: 1 dim: 1 dim: 500 dim: 500 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss"
        loss_param { ignore_label: 255 normalize: false } }
'''
(tmp / 'train.prototxt').write_text(text)
del net
image = random_image(size, 0)
label = np.random.default_rng(1).integers(0, 21, (1, 1, *size)).astype(np.float32)

def run(mode):
    getattr(caffe, 'set_mode_' + mode)()
    if mode == 'gpu':
        caffe.set_device(0)
    net = caffe.Net(str(tmp / 'train.prototxt'), caffe.TRAIN)
    fill_weights(net, 0)
    net.blobs['data'].data[...] = image
    net.blobs['label'].data[...] = label
    net.forward()
    net.backward()
    out = {'score': net.blobs['score'].data.copy(), 'loss': float(net.blobs['loss'].data),
           'grads': {n: [b.diff.copy() for b in net.params[n]] for n in net.params}}
    forward = backward = None
    if mode == 'gpu':
        forward = timed(lambda: net.forward(end='score') and net.blobs['score'].data.sum(),
                        20, warmup=3)
        def step():
            net.forward(); net.backward(); net.params['score_fr'][0].diff.sum()
        backward = timed(step, 10, warmup=2)
    return out, forward, backward

def rel(a, b):
    scale = max(float(np.abs(a).max()), 1e-30)
    return float(np.abs(a - b).max()) / scale

gpu, forward, train = run('gpu')
cpu, _, _ = run('cpu')
grads = {n: max(rel(c, g) for c, g in zip(cpu['grads'][n], gpu['grads'][n]))
         for n in cpu['grads'] if any(np.abs(c).max() > 0 for c in cpu['grads'][n])}
print(json.dumps({'score_max_relative_difference': rel(cpu['score'], gpu['score']),
                  'loss_cpu': cpu['loss'], 'loss_gpu': gpu['loss'],
                  'gradient_max_relative_difference': max(grads.values()),
                  'worst_gradient': max(grads, key=grads.get),
                  'forward_ms': forward['median_s'] * 1e3,
                  'forward_backward_ms': train['median_s'] * 1e3,
                  'forward_runs_s': forward['runs_s']}))
"""


def compare(entry: Path, timeout: float) -> dict:
    """FCN-8s GPU vs CPU in the CUDA build, and the GPU timings (a child process)."""
    env = {**os.environ, "GLOG_minloglevel": "2",
           "PYTHONPATH": os.pathsep.join(p for p in (str(entry / "src/python"),
                                                     os.environ.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run([sys.executable, "-c", COMPARE, str(REPO)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(result: dict) -> tuple[str, bool]:
    """The table, and whether every check passed."""
    rows = [f"GPU: {result['gpu']}; CUDA build {result.get('entry', '–')} "
            f"({result.get('build_s', 0):.0f} s)", "", "| check | result |", "|---|---|"]
    ok = True
    tests = result.get("gpu_tests", {})
    if "total" in tests and tests["total"]:
        good = tests["passed"] == tests["total"] and tests["exit_status"] == 0
        failures = "" if good else ": " + ", ".join(tests["failed"])
        rows.append(f"| Caffe's GPU tests | {tests['passed']}/{tests['total']} passed in "
                    f"{tests['seconds']:.0f} s{failures} |")
    else:
        good = False
        rows.append(f"| Caffe's GPU tests | failed: {tests.get('error', tests)} |")
    ok &= good
    cmp = result.get("compare", {})
    if "score_max_relative_difference" in cmp:
        close = max(cmp["score_max_relative_difference"],
                    cmp["gradient_max_relative_difference"]) <= TOLERANCE
        ok &= close
        rows += [f"| FCN-8s score map, GPU vs CPU (max relative difference) | "
                 f"{cmp['score_max_relative_difference']:.1e} |",
                 f"| FCN-8s parameter gradients, GPU vs CPU (worst layer: "
                 f"{cmp['worst_gradient']}) | {cmp['gradient_max_relative_difference']:.1e} |",
                 f"| loss CPU · GPU | {cmp['loss_cpu']:.6g} · {cmp['loss_gpu']:.6g} |",
                 f"| FCN-8s forward, 500×500 (median of 20) | {cmp['forward_ms']:.1f} ms "
                 f"(paper, Titan X: ~{PAPER_FCN8S_MS:.0f} ms; "
                 f"{PAPER_FCN8S_MS / cmp['forward_ms']:.1f}× faster) |",
                 f"| FCN-8s forward+backward, 500×500 | {cmp['forward_backward_ms']:.1f} ms |"]
    else:
        ok = False
        rows.append(f"| FCN-8s GPU vs CPU | failed: {cmp.get('error', cmp)} |")
    rows.append(f"\n{result['elapsed_s']:.0f} s in all: " + ("every check passed" if ok else
                                                           "SOME CHECKS FAILED"))
    return "\n".join(rows), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=REPO / ".venv")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--test-timeout", type=float, default=240,
                        help="seconds for Caffe's GPU tests")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/gpu-check.json")
    args = parser.parse_args(argv)
    present, description = gpu_present()
    if not present:
        print(f"gpu-check: no GPU on this machine ({description}); nothing to check. "
              f"Run `make gpu-check` on a machine with an NVIDIA GPU.")
        return 0
    started = time.perf_counter()
    result: dict = {"gpu": description}
    print(f"gpu-check: {description}: building or reusing the CUDA build "
          f"(CUDA_ARCH={architecture(description)}, {args.jobs} jobs)", flush=True)
    try:
        entry = build(args.venv, architecture(description), args.jobs)
    except subprocess.CalledProcessError:
        print("gpu-check: error: the CUDA build failed (see its message above); "
              "caffe-recipe/CUDA.md lists what it needs", file=sys.stderr)
        return 1
    result["entry"], result["build_s"] = entry.name, time.perf_counter() - started
    print("gpu-check: Caffe's GPU tests", flush=True)
    result["gpu_tests"] = gpu_tests(entry, args.test_timeout)
    print("gpu-check: FCN-8s on the GPU vs the CPU, and GPU timings", flush=True)
    result["compare"] = compare(entry, timeout=300)
    result["elapsed_s"] = time.perf_counter() - started
    table, ok = report(result)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
