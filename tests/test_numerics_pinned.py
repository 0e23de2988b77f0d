"""Pinned numerics: a reduced-width FCN-8s forward gives the bits recorded on another machine,
whatever OPENBLAS_NUM_THREADS says and whatever the machine's own OpenBLAS would pick; the
opt-out runs the system's library and says so. Each setting is a fresh process
(tests/testkit/numerics_probe.py), since a BLAS reads its environment once, when it loads.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are never set or unset here: the machine's values pass
through untouched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.fingerprint import PINNED_FIELDS
from testkit.numerics_probe import PINNED, PINNED_SCORE

REPO = Path(__file__).resolve().parents[1]
ENTRY = Path((REPO / ".venv/caffe-root").read_text().strip())


def probe(*args: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "tests/testkit/numerics_probe.py", *args], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def pinned():
    result = probe(OPENBLAS_NUM_THREADS="2")
    if result["fingerprint"]["numerics"] != "pinned":
        pytest.skip("this build runs the system's OpenBLAS (CPU without AVX2/FMA, or "
                    f"CAFFE_BLAS=system): {result['fingerprint']['blas_config']}")
    return result


def test_the_pinned_build_gives_the_recorded_bits(pinned):
    fp = pinned["fingerprint"]
    assert {k: fp[k] for k in PINNED_FIELDS} == PINNED
    assert pinned["score"] == PINNED_SCORE


def test_the_environments_thread_count_is_followed_and_recorded_and_changes_no_bit(pinned):
    one = probe(OPENBLAS_NUM_THREADS="1")     # as a user sets it
    assert one["fingerprint"]["env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert one["fingerprint"]["blas_threads"] == 1
    assert pinned["fingerprint"]["blas_threads"] == 2
    assert one["score"] == pinned["score"]


def test_a_run_uses_every_cpu_of_the_process_by_default(pinned):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "tests/testkit/numerics_probe.py"], cwd=REPO,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["fingerprint"]["blas_threads"] == len(os.sched_getaffinity(0))
    assert result["score"] == pinned["score"]


def test_native_runs_the_system_openblas_and_records_it(pinned):
    native_dir = ENTRY / "blas-native"
    if not native_dir.is_dir():
        pytest.skip(f"no {native_dir}: the system has no libopenblas.so.0")
    native = probe(LD_LIBRARY_PATH=f"{native_dir}:{os.environ.get('LD_LIBRARY_PATH', '')}",
                   NUMERICS="native")
    fp = native["fingerprint"]
    assert fp["numerics"] == "native"
    assert "libopenblas_pinned" not in fp["blas_path"]
    assert fp["env"]["NUMERICS"] == "native"
    # the system library picks its kernels by CPU; its AVX-512 ones sum in another order:
    # other bits (what the pinned build protects against)
    if fp["blas_kernel"].lower() in ("skylakex", "cooperlake", "sapphirerapids"):
        assert native["score"] != pinned["score"]
        assert fp["blas_probe"] != pinned["fingerprint"]["blas_probe"]


def test_a_preloaded_system_openblas_is_never_reported_as_pinned(pinned):
    # LD_PRELOAD puts the system's cblas_sgemm in front of the pinned one for every library
    # in the process; the fingerprint must see which library computed, not which was linked
    system = next((p for p in ("/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
                               "/lib/x86_64-linux-gnu/libopenblas.so.0") if Path(p).exists()),
                  None)
    if system is None:
        pytest.skip("no system libopenblas.so.0 to preload")
    preloaded = probe(LD_PRELOAD=system)
    fp = preloaded["fingerprint"]
    assert fp["numerics"] == "native" and "libopenblas_pinned" not in fp["blas_path"]
    assert fp["env"]["LD_PRELOAD"] == system
