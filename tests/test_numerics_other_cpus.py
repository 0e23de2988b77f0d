"""Other CPU models, emulated: the pinned build's bits do not depend on the CPU it runs on.

On the CPU, what decides a run's bits is the code each library picks from CPUID: OpenBLAS's
kernel set (Debian's 0.3.21 picks Prescott's on an Intel model it does not know, family 6
model 207 as the issue's Xeon), glibc's libm variants, libjpeg-turbo's SIMD paths. qemu's
user-mode emulator (`qemu-x86_64 -cpu MODEL`) shows the process another vendor, family,
model and feature set through CPUID and computes each instruction as IEEE 754 specifies (an
FMA rounded once), so these tests check that the recorded bits follow from the code the
pinned build runs and from nothing the CPU model selects. QEMU 7.2 emulates AVX2 and FMA,
not AVX-512; /proc/cpuinfo still describes the host. `make test` installs qemu-user.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.numerics_probe import PINNED, PINNED_SCORE
from testkit.optional import require_program

REPO = Path(__file__).resolve().parents[1]
ENTRY = Path((REPO / ".venv/caffe-root").read_text().strip())
QEMU = require_program("qemu-x86_64")  # qemu-user
UNKNOWN_INTEL = "Haswell-v4,model=207"   # Intel family 6 model 207: new to OpenBLAS 0.3.21
KNOWN_INTEL = "Skylake-Client-v4"        # Intel family 6 model 94


def emulated(cpu: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([QEMU, "-cpu", cpu, sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **env},
                          timeout=600)


def probe(cpu: str, **env: str) -> dict:
    done = emulated(cpu, "tests/testkit/numerics_probe.py", **env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def system_kernels(cpu: str) -> str:
    done = emulated(cpu, "-c", "import ctypes; lib = ctypes.CDLL('libopenblas.so.0'); "
                    "lib.openblas_get_corename.restype = ctypes.c_char_p; "
                    "print(lib.openblas_get_corename().decode())")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.fixture(scope="module")
def pinned_here():
    done = subprocess.run([sys.executable, "tests/testkit/numerics_probe.py"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    if result["fingerprint"]["numerics"] != "pinned":
        pytest.skip("this build runs the system's OpenBLAS")
    return result


@pytest.mark.parametrize("cpu", [UNKNOWN_INTEL, KNOWN_INTEL])
def test_an_intel_cpu_gets_the_recorded_bits(pinned_here, cpu):
    result = probe(cpu)
    fp = result["fingerprint"]
    assert {k: fp[k] for k in PINNED} == PINNED
    assert result["score"] == PINNED_SCORE == pinned_here["score"]


def test_the_system_openblas_would_fall_back_to_generic_kernels_there(pinned_here):
    # the situation of the Xeon, which the pinned build is immune to
    assert system_kernels(UNKNOWN_INTEL) == "Prescott"
    assert system_kernels(KNOWN_INTEL) == "Haswell"
    native_dir = ENTRY / "blas-native"
    if not native_dir.is_dir():
        pytest.skip(f"no {native_dir}: the system has no libopenblas.so.0")
    done = emulated(UNKNOWN_INTEL, "tests/testkit/numerics_probe.py", NUMERICS="native",
                    LD_LIBRARY_PATH=f"{native_dir}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    assert done.returncode == 0, done.stderr[-2000:]
    native = json.loads(done.stdout.splitlines()[-1])
    fp = native["fingerprint"]
    assert fp["numerics"] == "native" and fp["blas_kernel"].lower() == "prescott"
    assert native["score"] != PINNED_SCORE
    # never on a generic fallback without saying so: recorded, and said out loud
    assert fp["blas_fallback"] is True
    assert "WARNING: Caffe computes with OpenBLAS's generic Prescott kernels" in done.stderr
    assert pinned_here["fingerprint"]["blas_fallback"] is False


def test_make_runs_a_target_on_the_emulated_cpu(pinned_here):
    """`make … EMULATE_CPU=MODEL` puts qemu in front of every Python the target starts: with
    NUMERICS=native the fingerprint then shows what Debian's OpenBLAS picks for Intel model
    207 (Prescott), not for this CPU."""
    if not (ENTRY / "blas-native").is_dir():
        pytest.skip("the system has no libopenblas.so.0 to run NUMERICS=native on")
    done = subprocess.run(["make", "--no-print-directory", "-s", "-o", "setup", "numerics",
                           "JSON=1", "NUMERICS=native", f"EMULATE_CPU={UNKNOWN_INTEL}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    fp = json.loads(done.stdout[done.stdout.index("{"):])
    assert fp["numerics"] == "native" and fp["blas_kernel"].lower() == "prescott"
    # /proc/cpuinfo still names the host, so the run says what it was shown
    assert fp["cpu_emulated"] == UNKNOWN_INTEL
    assert "cpu_emulated" not in pinned_here["fingerprint"]


def test_the_fingerprint_records_the_features_cpuid_grants():
    # /proc/cpuinfo describes the host (AVX2 here); the process may be granted less
    done = emulated("Westmere-v1", "-c", "import json; from core.fingerprint import cpu; "
                    "print(json.dumps(cpu()))")
    assert done.returncode == 0, done.stderr[-2000:]
    flags = json.loads(done.stdout.splitlines()[-1])["cpu_flags"].split()
    assert "sse4_2" in flags and not {"avx", "avx2", "fma"} & set(flags)


def test_a_training_run_ends_in_the_same_weights_on_an_intel_cpu(pinned_here, tmp_path):
    """Four SGD iterations of FCN-32s (JPEG decoding, the data layer's seeded order, forward,
    backward, momentum update) on this CPU and on the emulated Intel model 207: the final
    weights are the same bytes."""
    from data.synthetic import make_dataset

    data = make_dataset("voc", tmp_path / "data", n_train=4, n_val=2, size=(64, 64),
                        num_classes=3, seed=0)
    args = ["-m", "training.schedule", "voc-fcn32s", "--data", str(data), "--weights", "none",
            "--iters", "4", "--test-every", "0", "--width", "0.0625", "--lr", "1e-6",
            "--no-score", "--quiet"]
    weights = {}
    for where in ("here", "emulated"):
        runs = ["--runs", str(tmp_path / where)]
        if where == "here":
            done = subprocess.run([sys.executable, *args, *runs], cwd=REPO, capture_output=True,
                                  text=True, timeout=600)
        else:
            done = emulated(UNKNOWN_INTEL, *args, *runs)
        assert done.returncode == 0, done.stderr[-2000:]
        weights[where] = (tmp_path / where / "voc-fcn32s/final.caffemodel").read_bytes()
    assert weights["here"] == weights["emulated"]
