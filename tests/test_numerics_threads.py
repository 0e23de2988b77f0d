"""Pinned numerics at any thread count: the same bits for 1, 2, 3, 4, 8 and 16 BLAS threads.

The pinned OpenBLAS carries caffe-recipe/patches/openblas/0001 (every thread count makes the
same kernel calls; level 1 and 2 on one thread), so the harness runs it on every core and
the count is no longer one of the fields that decide a run's bits. Threads need not equal
cores for this: 16 threads on 2 cores run the same partition as on 16. Without the patch
each of these tests fails (the unpatched library differs in 233 of the 414 calls below, and
in the forward's and the training run's bits; caffe-recipe/NUMERICS.md).
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THREADS = (1, 2, 3, 4, 8, 16)


def test_every_blas_call_caffe_makes_gives_the_same_bits_at_every_thread_count(pinned_library):
    done = subprocess.run([sys.executable, "tests/testkit/blas_threads.py", str(pinned_library),
                           "--threads", ",".join(map(str, THREADS))], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["threads"] == list(THREADS)    # each count really ran
    assert result["calls"] > 400
    assert result["differ"] == []


def test_the_fingerprint_measures_the_invariance_and_drops_the_count_from_the_bits():
    from core.fingerprint import PINNED_FIELDS, bits_fields, fingerprint

    fp = fingerprint()
    assert fp["blas_thread_invariant"] is True
    assert "blas_threads" not in bits_fields(fp)
    # a run on a library that is not invariant (the unpatched one, a system OpenBLAS) keeps
    # the count among the fields its bits depend on
    assert bits_fields(fp, {**fp, "blas_thread_invariant": False}) == (*PINNED_FIELDS,
                                                                         "blas_threads")


def probe_forward(threads: int) -> dict:
    done = subprocess.run([sys.executable, "tests/testkit/numerics_probe.py", "--threads",
                           str(threads)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_an_fcn8s_forward_is_the_same_at_every_thread_count(pinned_library):
    runs = {t: probe_forward(t) for t in THREADS}
    assert {t: r["fingerprint"]["blas_threads"] for t, r in runs.items()} == {t: t for t in THREADS}
    assert len({r["score"] for r in runs.values()}) == 1


def test_a_training_run_ends_in_the_same_weights_at_every_thread_count(pinned_library, tmp_path):
    """Four SGD iterations of the all-at-once FCN-8s (skips, the data layer's seeded order,
    forward, backward, momentum update): the final weights are the same bytes at every
    count. (The count is set through the library: OPENBLAS_NUM_THREADS, a user's way, is
    capped at the cores, and this machine may have fewer than 16.)"""
    from data.synthetic import make_dataset

    data = make_dataset("voc", tmp_path / "data", n_train=4, n_val=2, size=(64, 64),
                        num_classes=3, seed=0)
    weights, recorded = {}, {}
    for threads in THREADS:
        runs = tmp_path / f"threads-{threads}"
        arguments = ["voc-fcn8s-atonce", "--data", str(data), "--weights", "none", "--iters",
                     "4", "--test-every", "0", "--width", "0.0625", "--lr", "1e-6",
                     "--no-score", "--quiet", "--runs", str(runs)]
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from core.fingerprint import set_blas_threads; "
             "from training.schedule import main; set_blas_threads(int(sys.argv[1])); "
             "sys.exit(main(sys.argv[2:]))", str(threads), *arguments],
            cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        stage = runs / "voc-fcn8s-atonce"
        weights[threads] = (stage / "final.caffemodel").read_bytes()
        first = json.loads((stage / "train.jsonl").read_text().splitlines()[0])
        recorded[threads] = first["fingerprint"]["blas_threads"]
    assert recorded == {t: t for t in THREADS}   # the run says what it ran on
    assert len(set(weights.values())) == 1
