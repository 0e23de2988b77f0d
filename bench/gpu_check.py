"""`make gpu-check`: the GPU side of the harness in one run, from the GPU bundle alone.

It runs on a machine with no network and no package manager: everything comes from the
bundle `make gpu-bundle` made (caffe-recipe/gpu_bundle.py, CUDA.md) and the working tree;
cudart, cuBLAS and cuRAND from the machine's own NVIDIA packages (found by the bundle's
bin/python). Run by caffe-recipe/gpu-check.sh, which unpacks the bundle if needed.

The CPU half, always: the bundle's versions and libraries, a few of Caffe's CPU gtests, and
a short training through the Python data layers on synthetic data, ending in a score. The
GPU half, when a GPU answers (else it writes "no GPU: why" and exits 0):
1. Caffe's GPU gtests (the typed tests' GPU devices, parameters 2 and 3, and the GPU suites);
2. FCN-8s (full width, 500×500, seeded weights) on the GPU against the same build on the
   CPU: the score map and every parameter gradient (max relative difference: other
   summation orders, so float precision, not bits), and the GPU forward (median of 20, as
   the paper averages 20 trials) and forward+backward against the paper's ~100 ms;
3. `make voc-fcn8s GPU=0` as that target runs it (training.schedule: 32s → 16s → 8s from
   random weights on synthetic data, a few hundred iterations, then the score), twice,
   with NVIDIA_TF32_OVERRIDE=0: whether GPU training is deterministic (the final weights'
   digests and the scores compared).
Everything lands in --out (default $OUT, else bench/results/gpu-check): gpu-check.json,
gpu-check.md (the table) and the logs, at most 8 files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from core.defaults import CAFFE_LOG_LEVEL, REPO
from core.errors import ReportedError, cli_main

PAPER_FCN8S_MS = 100.0  # Table 1 / Table 6 of the paper: FCN-8s, 500×500, Titan X
TOLERANCE = 1e-3        # max relative difference GPU vs CPU accepted (float32, other order)
CPU_TESTS = ("PoolingNanTest/0.*:PoolingNanTest/1.*:ConvolutionLayerTest/0.*:"
             "DeconvolutionLayerTest/0.*:CropLayerTest/0.*:SoftmaxWithLossLayerTest/0.*")
GPU_TESTS = "*/2.*:*/3.*:*GPU*"


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


def why_failed(output: str) -> str:
    """The line that says why a child failed: glog's 'Check failed', else an error line,
    else the last line that is not a stack trace."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("Check failed", "error:", "Error"):
        hits = [line for line in lines if marker in line]
        if hits:
            return hits[-1]
    plain = [line for line in lines if not line.startswith(("***", "@ "))]
    return (plain or ["no output"])[-1]


def gtests(bundle: Path, pattern: str, timeout: float, log: Path) -> dict:
    """Caffe's gtests matching `pattern`, from the bundle's copy of their data folders:
    passed/total and the failures, counted from gtest's per-test lines so that a run cut
    by its timeout still says how far it got; the output's tail in `log`."""
    started = time.perf_counter()
    timed_out = False
    try:
        done = subprocess.run([str(bundle / "bin/test.testbin"), f"--gtest_filter={pattern}",
                               "--gtest_color=no"], cwd=bundle / "caffe-src",
                              capture_output=True, text=True, timeout=timeout, check=False)
        out, err, status = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as cut:
        timed_out = True
        out, err, status = (text.decode(errors="replace") if isinstance(text, bytes)
                            else text or "" for text in (cut.stdout, cut.stderr, None))
    log.write_text("\n".join((out + err).splitlines()[-400:]) + "\n")
    lines = out.splitlines()
    planned = next((int(line.split()[2]) for line in lines
                    if line.startswith("[==========] Running")), None)
    passed = sum(line.startswith("[       OK ]") for line in lines)
    failed = [line.split("]", 1)[1].strip() for line in lines
              if line.startswith("[  FAILED  ]") and " ms)" in line]
    seconds = time.perf_counter() - started
    if timed_out:
        return {"error": f"timed out after {timeout:.0f} s: {passed} of {planned} passed, "
                         f"{len(failed)} failed so far", "failed": failed[:20]}
    if planned is None or not any(line.startswith("[  PASSED  ]") for line in lines):
        return {"error": f"the gtest binary stopped (exit status {status}) after {passed} "
                         f"passed tests: {why_failed(out + err)}"}
    return {"filter": pattern, "total": planned, "passed": passed, "failed": failed[:20],
            "exit_status": status, "seconds": seconds}


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

def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "GLOG_minloglevel": CAFFE_LOG_LEVEL, **extra}


def compare(timeout: float) -> dict:
    """FCN-8s GPU vs CPU in the bundle's build, and the GPU timings (a child process)."""
    try:
        done = subprocess.run([sys.executable, "-c", COMPARE], cwd=REPO, env=child_env(),
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": why_failed(done.stderr)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthetic_data(root: Path, size: tuple[int, int], n_train: int) -> Path:
    from data.synthetic import make_dataset

    if not (root / ".complete").exists():
        make_dataset("voc", root, n_train=n_train, n_val=max(2, n_train // 4), size=size,
                     seed=0)
        (root / ".complete").write_text("")
    return root


def train(experiment: str, data: Path, runs: Path, *, gpu: int | None, iters: int,
          width: float, log: Path, timeout: float) -> dict:
    """`make <experiment> [GPU=n]` as mk/train.mk runs it, from random weights; the score
    and the final weights' digest of its last stage."""
    command = [sys.executable, "-m", "training.schedule", experiment, "--data", str(data),
               "--runs", str(runs), "--weights", "none", "--iters", str(iters),
               "--test-every", "0", "--width", str(width), "--quiet", "--no-check-data"]
    if gpu is not None:
        command += ["--gpu", str(gpu)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, check=False,
                              env=child_env(NVIDIA_TF32_OVERRIDE="0"))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    log.write_text("\n".join((done.stdout + done.stderr).splitlines()[-200:]) + "\n")
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": why_failed(done.stderr),
                "seconds": seconds}
    from core.manifest import sha256

    last = runs / experiment
    score = json.loads((last / "score.json").read_text())
    return {"seconds": seconds, "iterations_per_stage": iters, "score": score,
            "final_sha256": sha256(last / "final.caffemodel")}


def environment(bundle: Path) -> dict:
    import caffe
    import numpy
    import scipy

    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    return {"bundle": str(bundle), "entry": manifest["entry"], "flavour": manifest["flavour"],
            "python": sys.version.split()[0], "numpy": numpy.__version__,
            "scipy": scipy.__version__, "caffe": caffe.__file__,
            "cuda_library_folders": os.environ.get("FCN_CUDA_LIB_DIRS", "").split(":"),
            "bundled_libraries": len(manifest["libraries"])}


def _test_row(name: str, tests: dict) -> tuple[str, bool]:
    if tests.get("total"):
        good = tests["passed"] == tests["total"] and tests["exit_status"] == 0
        failures = "" if good else ": " + ", ".join(tests["failed"])
        return (f"| {name} | {tests['passed']}/{tests['total']} passed in "
                f"{tests['seconds']:.0f} s{failures} |", good)
    return f"| {name} | failed: {tests.get('error', tests)} |", False


def head_metrics(score: dict) -> dict:
    """The first head's metrics in a schedule's score.json ({"label": {"mean_iu": …}})."""
    return next(v for v in score.values() if isinstance(v, dict) and "mean_iu" in v)


def _train_cell(run: dict) -> str:
    if "score" not in run:
        return f"failed: {run.get('error', run)}"
    s = head_metrics(run["score"])
    return (f"mean IU {s['mean_iu']:.4f}, pixel acc. {s['pixel_accuracy']:.4f} "
            f"({run['seconds']:.1f} s, {run['iterations_per_stage']} iterations a stage)")


def report(result: dict) -> tuple[str, bool]:
    """The table, and whether every check passed."""
    env = result.get("environment", {})
    rows = [f"GPU: {result['gpu']}; bundle {env.get('entry', '–')}, Python "
            f"{env.get('python', '–')}, numpy {env.get('numpy', '–')}", "",
            "| check | result |", "|---|---|"]
    ok = True
    if "cpu_tests" in result:
        row, good = _test_row("Caffe's CPU tests (a few)", result["cpu_tests"])
        rows.append(row)
        ok &= good
    if "cpu_train" in result:
        rows.append(f"| CPU training through the Python data layers | "
                    f"{_train_cell(result['cpu_train'])} |")
        ok &= "score" in result["cpu_train"]
    if result.get("no_gpu"):
        rows.append(f"| GPU half | {result['no_gpu']} |")
        return "\n".join(rows), ok and result["no_gpu"].startswith("no GPU")
    row, good = _test_row("Caffe's GPU tests", result.get("gpu_tests", {}))
    rows.append(row)
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
    runs = result.get("gpu_train", [])
    for i, run in enumerate(runs, 1):
        rows.append(f"| voc-fcn8s on the GPU (32s → 16s → 8s), run {i} | {_train_cell(run)} |")
        ok &= "score" in run
    if len(runs) == 2 and all("score" in r for r in runs):
        same = runs[0]["final_sha256"] == runs[1]["final_sha256"]
        rows.append("| GPU training deterministic (TF32 off) | " + (
            "yes: the two runs' final weights are identical" if same else
            f"**no**: final weights differ (mean IU {head_metrics(runs[0]['score'])['mean_iu']:.6f}"
            f" · {head_metrics(runs[1]['score'])['mean_iu']:.6f})") + " |")
    rows.append(f"\n{result['elapsed_s']:.0f} s in all: " + ("every check passed" if ok else
                                                           "SOME CHECKS FAILED"))
    return "\n".join(rows), ok


def write(out: Path, result: dict) -> bool:
    table, ok = report(result)
    print(table)
    (out / "gpu-check.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "gpu-check.md").write_text(table + "\n")
    return ok


@cli_main("gpu-check")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=os.environ.get("FCN_BUNDLE"),
                        help="the unpacked GPU bundle (bin/python sets FCN_BUNDLE)")
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("OUT") or REPO / "bench/results/gpu-check"))
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder for data and runs (default: --out/../gpu-check-work)")
    parser.add_argument("--iters", type=int, default=100,
                        help="training iterations per stage on the GPU (3 stages)")
    parser.add_argument("--train-size", type=int, nargs=2, default=(320, 480),
                        metavar=("H", "W"), help="synthetic pictures for the GPU training")
    parser.add_argument("--test-timeout", type=float, default=240,
                        help="seconds for Caffe's GPU tests")
    parser.add_argument("--budget", type=float, default=450,
                        help="seconds for the whole check (the GPU machine gives a command "
                             "10 minutes; every step's timeout is cut to what is left)")
    args = parser.parse_args(argv)
    if args.bundle is None or not (args.bundle / "MANIFEST.json").exists():
        parser.error("no bundle: run through caffe-recipe/gpu-check.sh (make gpu-check), "
                     "which unpacks gpu-bundle/ and runs this with the bundle's Python")
    started = time.perf_counter()

    def left(cap: float) -> float:
        """A step's timeout: its own cap or what is left of --budget, at least 10 s."""
        return max(10.0, min(cap, args.budget - (time.perf_counter() - started)))

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out.parent / "gpu-check-work"
    work.mkdir(parents=True, exist_ok=True)
    present, description = gpu_present()
    result: dict = {"gpu": description if present else "none",
                    "environment": environment(args.bundle)}
    print("gpu-check: CPU half: Caffe's CPU tests and a short CPU training", flush=True)
    result["cpu_tests"] = gtests(args.bundle, CPU_TESTS, left(120), args.out / "gtest-cpu.log")
    tiny = synthetic_data(work / "data-cpu", (48, 64), 4)
    result["cpu_train"] = train("voc-fcn32s", tiny, work / "runs-cpu", gpu=None, iters=4,
                                width=0.0625, log=args.out / "train-cpu.log",
                                timeout=left(180))
    if not present:
        result["no_gpu"] = f"no GPU: {description}"
        result["elapsed_s"] = time.perf_counter() - started
        cpu_ok = write(args.out, result)
        print(f"gpu-check: no GPU on this machine ({description}): the GPU half is skipped. "
              f"Run `make gpu-check` on a machine with an NVIDIA GPU.")
        return 0 if cpu_ok else 1
    built_for = result["environment"]["entry"].split("-")[1]  # caffe-cuda90-… → cuda90
    if built_for != f"cuda{architecture(description)}":
        arch = architecture(description)
        result["no_gpu"] = (f"not run: {description}, but the bundle is the {built_for} "
                            f"build; make one for it (make gpu-bundle CUDA_ARCH={arch})")
        result["elapsed_s"] = time.perf_counter() - started
        write(args.out, result)
        raise ReportedError(result["no_gpu"])
    print(f"gpu-check: GPU half on {description}: Caffe's GPU tests", flush=True)
    result["gpu_tests"] = gtests(args.bundle, GPU_TESTS, left(args.test_timeout),
                                 args.out / "gtest-gpu.log")
    print("gpu-check: FCN-8s on the GPU vs the CPU, and GPU timings", flush=True)
    result["compare"] = compare(timeout=left(150))
    data = synthetic_data(work / "data-gpu", tuple(args.train_size), 40)
    result["gpu_train"] = []
    for i in (1, 2):
        print(f"gpu-check: voc-fcn8s on the GPU, run {i} of 2", flush=True)
        result["gpu_train"].append(train(
            "voc-fcn8s", data, work / f"runs-gpu-{i}", gpu=0, iters=args.iters, width=1.0,
            log=args.out / f"train-gpu-{i}.log", timeout=left(150)))
    result["elapsed_s"] = time.perf_counter() - started
    return 0 if write(args.out, result) else 1


if __name__ == "__main__":
    sys.exit(main())
