"""FCN-8s and the sgemm at 1, 2 and all threads, and what the thread-count invariance costs.

The recipe's pinned OpenBLAS carries a patch (caffe-recipe/patches/openblas/) that makes
its bits the same at any thread count, so the harness no longer pins 2 threads. Each row
here runs in its own process (OpenBLAS reads OPENBLAS_NUM_THREADS when it loads, Caffe's
own loops CAFFE_NUM_THREADS once), with both set to the row's count: the patched library
at 1, 2 and all threads (the CPUs of this process's affinity mask; where that is 1 or 2
the row says so instead of timing it twice), and "before invariance": the same libcaffe on
the pinned OpenBLAS built without the patch (bench.builds.build_unpatched_blas), under the
file name libcaffe asks for, at 2 threads, the harness's pin until then. Each row reports
the threads OpenBLAS says it uses, whether it is thread-count invariant (measured as the
fingerprint measures it), its sgemm rate (median of the probes paired with the timings),
FCN-8s's forward and training iteration (median s), and whether its forward output has the
bits of the patched 1-thread row's. The cost of invariance is before ÷ patched speed at 2
threads. `python -m bench.threads` measures one row under its own environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core.errors import cli_main

OLD_PIN = 2          # the harness's BLAS threads before the invariance patch
EXPERIMENT = "voc-fcn8s"


def all_threads() -> int:
    """The CPUs this process may run on: OpenBLAS's and Caffe's default thread count."""
    return len(os.sched_getaffinity(0))


def settings(cpus: int, before_blas: Path | None) -> list[dict]:
    """The rows in the order they are measured: the two the cost compares first (so they
    run moments apart), then 1 thread, then all if that is neither 1 nor 2."""
    rows = [{"key": f"patched-{OLD_PIN}", "blas": "patched", "threads": OLD_PIN},
            {"key": f"before-{OLD_PIN}", "blas": "before-invariance", "threads": OLD_PIN,
             "library": None if before_blas is None else str(before_blas)},
            {"key": "patched-1", "blas": "patched", "threads": 1}]
    if cpus not in (1, OLD_PIN):
        rows.append({"key": "patched-all", "blas": "patched", "threads": cpus})
    for row in rows:
        row["all"] = row["blas"] == "patched" and row["threads"] == cpus
    return rows


def environment(row: dict) -> dict[str, str]:
    """The row's thread count for OpenBLAS and Caffe's loops, and for the before row its
    library first on LD_LIBRARY_PATH (which outranks libcaffe's RUNPATH)."""
    env = {"OPENBLAS_NUM_THREADS": str(row["threads"]), "CAFFE_NUM_THREADS": str(row["threads"])}
    if row["blas"] == "before-invariance":
        from bench.levers import as_caffes_blas

        folder = as_caffes_blas("openblas-unpatched", before_library(row["library"]))
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (folder, os.environ.get("LD_LIBRARY_PATH")) if p)
    return env


def before_library(folder: Path | str) -> Path:
    """The unpatched build's library file, by the name libcaffe asks for."""
    from bench.levers import caffe_blas_name

    return (Path(folder) / "lib" / caffe_blas_name()).resolve()


def before_invariance_blas() -> tuple[Path | None, str | None]:
    """(the unpatched pinned OpenBLAS's folder, None), built when missing, or (None, why not)."""
    from bench.builds import BuildError, build_unpatched_blas

    try:
        return build_unpatched_blas(), None
    except BuildError as e:
        return None, str(e)


def run(workdir: Path, data_root: Path, *, size: tuple[int, int] = (500, 500),
        width: float = 1.0, repeats: int = 3, train_repeats: int = 2, sgemm_n: int = 4096,
        seed: int = 0, cpus: int | None = None, before_blas: Path | None = None,
        before_skipped: str = "not built", deadline: float | None = None, progress=None,
        timeout: float = 600) -> dict:
    """Measure every row (past `deadline`, time.monotonic(), the rest are skipped), compare
    the forward outputs' bits and work out the cost of invariance."""
    from bench.measure import subprocess_json
    from bench.torch_peer import max_relative_difference

    cpus = cpus or all_threads()
    rows, longest = [], 0.0
    for row in settings(cpus, before_blas):
        started = time.monotonic()
        if row["blas"] == "before-invariance" and before_blas is None:
            row["skipped"] = before_skipped
        elif deadline is not None and started + longest > deadline:
            row["skipped"] = "the run's time budget is spent"
        else:
            save = Path(workdir) / f"threads-{row['key']}.npy"
            row.update(subprocess_json(
                "bench.threads", "--data-root", str(data_root), "--size", *map(str, size),
                "--width", str(width), "--repeats", str(repeats), "--train-repeats",
                str(train_repeats), "--sgemm-n", str(sgemm_n), "--seed", str(seed),
                "--save", str(save), env=environment(row), timeout=timeout))
            longest = max(longest, time.monotonic() - started)
            loaded = row.get("blas_info", {}).get("path")
            if row.get("library") and loaded and Path(loaded) != before_library(row["library"]):
                row["error"] = f"loaded {loaded}, not the unpatched library: row not used"
                row.pop("forward")
            if "forward" in row:
                row["output"] = str(save)
        rows.append(row)
        if progress is not None:
            progress(row)
    measured = {r["key"]: r for r in rows if "forward" in r}
    reference = next((measured[k] for k in ("patched-1", f"patched-{OLD_PIN}", "patched-all")
                      if k in measured), None)
    if reference is not None:
        expected = np.load(reference["output"])
        for row in measured.values():
            got = np.load(row.pop("output"))
            row["bits_reference"] = reference["key"]
            row["bits_equal_reference"] = bool(np.array_equal(got, expected))
            row["max_relative_difference_vs_reference"] = max_relative_difference(expected, got)
    result = {"cpus": cpus, "size": list(size), "width": width, "rows": rows}
    patched, before = measured.get(f"patched-{OLD_PIN}"), measured.get(f"before-{OLD_PIN}")
    if patched and before:
        result["cost_of_invariance"] = {  # speed before ÷ speed patched: > 1 is a cost
            "threads": OLD_PIN,
            "forward": patched["forward"]["median_s"] / before["forward"]["median_s"],
            "train": patched["train"]["median_s"] / before["train"]["median_s"],
            "sgemm": before["sgemm"]["gflops"] / patched["sgemm"]["gflops"]}
    return result


def measure(data_root: Path, size: tuple[int, int], *, width: float, repeats: int,
            train_repeats: int, sgemm_n: int, seed: int, save: Path) -> dict:
    """One row, in this process's environment: the BLAS, its invariance, FCN-8s's timings."""
    import caffe

    from bench.blas import SgemmProbe, caffe_library, describe, linked_blas, open_blas
    from bench.measure import time_caffe_net
    from bench.probe import caffe_root
    from core.fingerprint import thread_invariant

    caffe.set_mode_cpu()
    path = linked_blas(caffe_library(caffe_root()))
    lib = open_blas(path)
    info = describe(lib, path)  # before thread_invariant, which sets counts (and restores)
    invariant = thread_invariant(lib)
    probe = SgemmProbe(lib, sgemm_n, seed)
    probe()  # warm-up
    with tempfile.TemporaryDirectory(prefix="fcn-bench-threads-") as workdir:
        row = time_caffe_net(EXPERIMENT, Path(workdir), data_root, probe, size=size,
                             width=width, seed=seed, repeats=repeats,
                             train_repeats=train_repeats, save=save)
    rates = row["forward"]["sgemm_gflops_runs"] + row["train"]["sgemm_gflops_runs"]
    return {"blas_info": info.as_dict(), "threads_used": info.threads,
            "thread_invariant": invariant,
            "sgemm": {"n": sgemm_n, "gflops": float(np.median(rates))}, **row}


@cli_main("bench-threads")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One row of the thread table: sgemm and "
                                     "FCN-8s forward and training iteration under this "
                                     "process's environment (one JSON line on stdout).")
    parser.add_argument("--data-root", type=Path, required=True,
                        help="a synthetic VOC/SBDD dataset (data.synthetic) for the training net")
    parser.add_argument("--size", type=int, nargs=2, default=(500, 500), metavar=("H", "W"))
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards (median)")
    parser.add_argument("--train-repeats", type=int, default=2,
                        help="timed training iterations (median)")
    parser.add_argument("--sgemm-n", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, required=True,
                        help="write the forward's output here (.npy)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.data_root, tuple(args.size), width=args.width,
                             repeats=args.repeats, train_repeats=args.train_repeats,
                             sgemm_n=args.sgemm_n, seed=args.seed, save=args.save)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
