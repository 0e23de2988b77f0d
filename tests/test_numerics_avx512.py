"""The pinned sgemm at AVX-512 width gives the bits of its AVX2 (Haswell) code.

caffe-recipe/patches/openblas/0002 gives the pinned library a second sgemm kernel for CPUs
with AVX-512F and AVX-512VL, chosen once when it loads (CPUID and XGETBV), which performs
each element's Haswell sequence of fused multiply-adds on 16-float lanes
(caffe-recipe/NUMERICS.md, "The AVX-512 path"). OPENBLAS_PINNED_SGEMM=avx2 forces the
Haswell code; openblas_pinned_sgemm_path() says which runs; openblas_pinned_set_sgemm_path()
switches between calls, so one process can run every call on both paths with the same inputs.

These tests fail the day the two paths differ in one bit: every CBLAS call Caffe makes
(tests/testkit/blas_threads.py's 414) on both paths at 1-16 threads, an FCN-8s forward and
four SGD iterations on each path. Where the CPU has no AVX-512 the comparison is skipped
(only the AVX2 path can run), and the choice itself is still checked; under qemu, which
emulates no AVX-512, the library must pick AVX2 and give the bits this CPU gives.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.numerics_probe import PINNED_SCORE

REPO = Path(__file__).resolve().parents[1]
THREADS = (1, 2, 3, 4, 8, 16)
QEMU = shutil.which("qemu-x86_64")
FORCE = "OPENBLAS_PINNED_SGEMM"


def cpu_has_avx512() -> bool:
    """What the library asks CPUID for: AVX-512F and AVX-512VL."""
    from core.fingerprint import cpu

    return {"avx512f", "avx512vl"} <= set(cpu()["cpu_flags"].split())


def python(*args: str, prefix: tuple[str, ...] = (), timeout: float = 900, **env: str):
    done = subprocess.run([*prefix, sys.executable, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def sgemm_path(library: Path, prefix: tuple[str, ...] = (), **env: str) -> str:
    """The path a fresh process's library chose when it loaded."""
    return python("-c", "import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); "
                  "lib.openblas_pinned_sgemm_path.restype = ctypes.c_char_p; "
                  "print(lib.openblas_pinned_sgemm_path().decode())", str(library),
                  prefix=prefix, **env).strip()


def sweep(library: Path, *args: str, prefix: tuple[str, ...] = (), **env: str) -> dict:
    out = python("tests/testkit/blas_threads.py", str(library), *args, prefix=prefix, **env)
    return json.loads(out.splitlines()[-1])


def test_the_path_follows_cpuid_and_the_switch_forces_avx2(pinned_library):
    assert sgemm_path(pinned_library) == ("avx512" if cpu_has_avx512() else "avx2")
    assert sgemm_path(pinned_library, **{FORCE: "avx2"}) == "avx2"


def test_every_blas_call_caffe_makes_has_the_same_bits_on_both_paths_at_every_thread_count(
        pinned_library):
    result = sweep(pinned_library, "--threads", ",".join(map(str, THREADS)),
                   "--paths", "avx2,avx512")
    assert result["threads"] == list(THREADS)
    assert result["calls"] > 400
    assert result["differ"] == []
    if result["paths"] != ["avx2", "avx512"]:
        pytest.skip("this CPU has no AVX-512F/VL: only the AVX2 path ran (invariant over threads)")


def test_an_fcn8s_forward_has_the_recorded_bits_on_both_paths(pinned_library):
    if not cpu_has_avx512():
        pytest.skip("this CPU has no AVX-512F/VL: only the AVX2 path can run")
    for threads in ("1", "3"):
        for force in ({}, {FORCE: "avx2"}):
            out = python("tests/testkit/numerics_probe.py", "--threads", threads, **force)
            result = json.loads(out.splitlines()[-1])
            assert result["score"] == PINNED_SCORE, (threads, force)
            # the run records the switch (every OPENBLAS_* variable goes into `env`)
            assert result["fingerprint"]["env"].get(FORCE) == force.get(FORCE)


def test_a_training_run_ends_in_the_same_weights_on_both_paths(pinned_library, tmp_path):
    """Four SGD iterations of the all-at-once FCN-8s (forward, backward: every transposition
    of the convolution GEMMs, momentum update) on each path: the same final weights."""
    if not cpu_has_avx512():
        pytest.skip("this CPU has no AVX-512F/VL: only the AVX2 path can run")
    from data.synthetic import make_dataset

    data = make_dataset("voc", tmp_path / "data", n_train=4, n_val=2, size=(64, 64),
                        num_classes=3, seed=0)
    weights = {}
    for name, force in (("avx512", {}), ("avx2", {FORCE: "avx2"})):
        runs = tmp_path / name
        python("-m", "training.schedule", "voc-fcn8s-atonce", "--data", str(data), "--weights",
               "none", "--iters", "4", "--test-every", "0", "--width", "0.0625", "--lr",
               "1e-6", "--no-score", "--quiet", "--runs", str(runs), **force)
        weights[name] = (runs / "voc-fcn8s-atonce/final.caffemodel").read_bytes()
    assert weights["avx512"] == weights["avx2"]


def test_every_tile_of_the_kernel_has_the_same_bits_on_both_paths(pinned_library, tmp_path):
    """The kernel itself, below the drivers: every M <= 72, N <= 40 and 16 values of K, two
    alphas (92,160 calls, tests/testkit/sgemm_kernel_paths.c), so that each tile of the
    AVX-512 code (the 32- and 16-row one-sum tiles, the first and last pairs, an odd last
    block, leftover rows and columns) meets every edge of its loop, whatever shapes Caffe's
    calls happen to produce."""
    if not cpu_has_avx512():
        pytest.skip("this CPU has no AVX-512F/VL: only the AVX2 path can run")
    harness = tmp_path / "sgemm_kernel_paths"
    subprocess.run(["cc", "-O2", "-o", str(harness),
                    str(REPO / "tests/testkit/sgemm_kernel_paths.c"), str(pinned_library),
                    f"-Wl,-rpath,{pinned_library.parent}"], check=True, timeout=120)
    out = subprocess.run([str(harness)], capture_output=True, text=True, check=True,
                         timeout=300).stdout
    assert out.strip() != "no-avx512", "CPUID shows AVX-512F/VL but the library refused it"
    differ, calls = map(int, out.split())
    assert calls == 72 * 40 * 16 * 2
    assert differ == 0, f"{differ} of {calls} kernel calls differ between the two paths"


@pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 missing (`make test` installs qemu-user)")
def test_an_avx2_only_cpu_emulated_picks_avx2_and_gives_the_same_bits(pinned_library):
    """qemu 7.2 emulates AVX2 and FMA but no AVX-512: shown a Haswell Xeon through CPUID the
    library must choose its AVX2 code, and every call must give this CPU's bits (the AVX-512
    path's, where this CPU has it). One thread (the thread count is proven elsewhere), and
    the calls of up to 2·10⁷ multiply-adds (10 of the 20 GEMM shapes, among them tiles of
    both paths: seconds emulated, where all 414 calls, 76 GFLOP, would take many minutes)."""
    emulated = ("qemu-x86_64", "-cpu", "Haswell-v4,model=207")
    assert sgemm_path(pinned_library, prefix=emulated) == "avx2"
    small = ("--threads", "1", "--digests", "--max-size", "2e7")
    there = sweep(pinned_library, *small, prefix=emulated)
    here = sweep(pinned_library, *small)
    assert there["calls"] == here["calls"] > 150
    assert there["paths"] == ["avx2"]
    assert here["paths"] == (["avx512"] if cpu_has_avx512() else ["avx2"])
    assert there["digests"] == here["digests"]
