"""`make bench`: speed and memory of the harness against the machine's limit and a peer.

One process measures, in order: the sgemm bound of the BLAS Caffe links; FCN-8s, FCN-32s
and FCN-AlexNet forward (deploy net) and forward+backward (training net over a synthetic
dataset, data layer and loss included) on the CPU; where FCN-8s's forward time goes; the
same FCN-8s in PyTorch, and its ONNX export in onnxruntime and OpenVINO (each checked
against Caffe's output first); Section 3.1's grid vs
patches; the data layers' loading rate; then, each in a fresh process, peak memory of a
training iteration (and data waiting without prefetch), FCN-8s and the sgemm at 1, 2 and
all threads and on the BLAS before its thread-count invariance (bench.threads), the BLAS
levers, and the GPU when there is one. Results go to bench/results/<date>.json and .md,
and the table is printed. This process runs the BLAS as the harness does: no thread pin,
the library's default (every CPU of the process, or OPENBLAS_NUM_THREADS when set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.engines import TOLERANCE as PEER_TOLERANCE  # the same for every peer
from bench.measure import rates, subprocess_json, time_caffe_net
from core.defaults import REPO
from core.errors import cli_main

NETS = ("voc-fcn8s", "voc-fcn32s", "voc-fcn-alexnet")
STEPS = ("blas", "nets", "breakdown", "peer", "engines", "patches", "data", "memory", "flags",
         "threads", "levers", "gpu")


def machine_info() -> dict:
    from bench.blas import BLAS_ENV
    from bench.timing import load_average

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
    from core.fingerprint import cpu as cpu_identity

    ident = cpu_identity()   # a VM may name only "AMD EPYC": vendor, family, model, features
    return {"cpu": cpu, "cpu_id": ident["cpu_id"], "cpu_flags": ident["cpu_flags"],
            "cores": os.cpu_count(), "memory_gib": mem_kib / 2 ** 20,
            "kernel": os.uname().release, "load_before": load_average(),
            "blas_env": {k: os.environ[k] for k in BLAS_ENV if k in os.environ}}


def caffe_build_info(caffe_root: Path) -> str:
    """The build's folder name, type and C++ flags, from its CMake cache."""
    cache = caffe_root / "build/CMakeCache.txt"
    values = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key.split(":")[0]] = value
    kind = values.get("CMAKE_BUILD_TYPE", "?")
    flags = " ".join(filter(None, (values.get("CMAKE_CXX_FLAGS", ""),
                                   values.get(f"CMAKE_CXX_FLAGS_{kind.upper()}", ""))))
    cpu_only = "CPU_ONLY" if values.get("CPU_ONLY") == "ON" else "CUDA"
    return f"{caffe_root.name} ({kind}, {flags or 'default flags'}, {cpu_only})"


def forward_breakdown(args, workdir: Path, lib, gflops: float) -> dict:
    from bench.breakdown import breakdown
    from bench.flops import layer_flops
    from bench.models import deploy_net, fill_weights, random_image

    size = tuple(args.size)
    net, net_param = deploy_net("voc-fcn8s", size, workdir, width=args.width)
    fill_weights(net, args.seed)
    net.blobs["data"].data[...] = random_image(size, args.seed)
    by_layer = {c.name: c.forward for c in layer_flops(net, net_param)}
    return breakdown(net, lib, by_layer, gflops)


def column_copy_levers(args, workdir: Path, root: Path) -> dict:
    """Caffe's original im2col/col2im with the build's flags and -march=native, and the
    build's own (patch 0002), timed on FCN-8s's layer shapes (bench.flags)."""
    from bench import flags
    from bench.models import deploy_net

    net, net_param = deploy_net("voc-fcn8s", tuple(args.size), workdir, width=args.width)
    try:
        return flags.run(workdir, root, net, net_param)
    except (flags.BuildError, subprocess.CalledProcessError) as e:
        return {"error": str(e)}


def torch_peer(args, workdir: Path, data_root: Path, probe, threads: int,
               caffe_row: dict) -> dict:
    """FCN-8s in PyTorch from the same weights and input; timed only if outputs agree."""
    try:
        import torch
    except ImportError:
        return {"skipped": "torch is not installed (make bench installs torch==2.13.0+cpu)"}
    from bench.engines import compare_outputs
    from bench.models import deploy_net, fill_weights, random_image, train_net
    from bench.timing import timed_against_bound
    from bench.torch_peer import from_caffe

    torch.set_num_threads(max(1, threads))
    size = tuple(args.size)
    net, net_param = deploy_net("voc-fcn8s", size, workdir, width=args.width)
    fill_weights(net, args.seed)
    image = random_image(size, args.seed)
    expected = net.forward(data=image)[net.outputs[0]].copy()
    peer = from_caffe(net, net_param).eval()
    del net
    x = torch.from_numpy(image)
    with torch.no_grad():
        got = peer(data=x)["score"].numpy()
    row = {"experiment": "voc-fcn8s", "torch_version": torch.__version__,
           "threads": torch.get_num_threads(), **compare_outputs(expected, got),
           "forward_flops": caffe_row["forward_flops"], "train_flops": caffe_row["train_flops"]}
    if row["max_relative_difference"] > PEER_TOLERANCE:
        row["error"] = (f"PyTorch output differs from Caffe's by "
                        f"{row['max_relative_difference']:.2e} > {PEER_TOLERANCE}; not timed")
        return row

    row["forward"] = _time_inference(peer, x, args.repeats, row["forward_flops"], probe)
    del peer
    train, train_param = train_net("voc-fcn8s", data_root, workdir, width=args.width)
    fill_weights(train, args.seed)
    train.forward(end=list(train._layer_names)[0])
    data = torch.from_numpy(train.blobs["data"].data.copy())
    label = torch.from_numpy(train.blobs["label"].data.copy())
    train_peer = from_caffe(train, train_param).train()
    del train

    def step():
        for p in train_peer.parameters():
            p.grad = None
        train_peer(data=data, label=label)["loss"].backward()

    row["train"] = timed_against_bound(step, row["train_flops"], probe, args.train_repeats)
    row["caffe_over_torch_forward"] = caffe_row["forward"]["median_s"] / \
        row["forward"]["median_s"]
    row["caffe_over_torch_train"] = caffe_row["train"]["median_s"] / row["train"]["median_s"]
    return rates(row)


def inference_engines(args, workdir: Path, probe, threads: int, caffe_row: dict) -> dict:
    """FCN-8s's ONNX export (the project's, export/) in onnxruntime and OpenVINO, same
    input and threads as Caffe; each timed only if its output agrees (bench.engines)."""
    from bench import engines
    from bench.models import deploy_net, fill_weights, random_image
    from bench.timing import timed_against_bound

    size = tuple(args.size)
    net, net_param = deploy_net("voc-fcn8s", size, workdir, width=args.width)
    fill_weights(net, args.seed)
    image = random_image(size, args.seed)
    expected = net.forward(data=image)[net.outputs[0]].copy()
    model = engines.export_onnx(net, net_param, "voc-fcn8s", args.width,
                                workdir / "voc-fcn8s.onnx")
    del net
    flops = caffe_row["forward_flops"]
    rows = engines.run(model, image, expected, threads=max(1, threads),
                       timer=lambda forward: timed_against_bound(forward, flops, probe,
                                                                 args.repeats))
    model.unlink()
    for row in rows.values():
        if "forward" in row:
            row.update(experiment="voc-fcn8s", forward_flops=flops, train_flops=None,
                       caffe_over_engine_forward=caffe_row["forward"]["median_s"] /
                       row["forward"]["median_s"])
            rates(row)
    return rows


def _time_inference(peer, x, repeats: int, flops: int, probe) -> dict:
    import torch

    from bench.timing import timed_against_bound

    def forward():
        with torch.no_grad():
            return peer(data=x)["score"]

    return timed_against_bound(forward, flops, probe, repeats)


def levers_standard() -> tuple[str, ...]:
    from bench.levers import STANDARD

    return STANDARD


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results",
                        help="folder for <date>.json and <date>.md (default bench/results)")
    parser.add_argument("--size", type=int, nargs=2, default=(500, 500), metavar=("H", "W"))
    parser.add_argument("--width", type=float, default=1.0,
                        help="channel width of the nets (1.0: the paper's; less for a smoke run)")
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS)
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards (median)")
    parser.add_argument("--train-repeats", type=int, default=3,
                        help="timed training iterations (median)")
    parser.add_argument("--sgemm-n", type=int, default=4096)
    parser.add_argument("--grid", type=int, default=10,
                        help="Section 3.1: the output grid's side (the paper's 10)")
    parser.add_argument("--data-images", type=int, default=20,
                        help="images per timed pass of the data-loading rate")
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS)
    parser.add_argument("--levers", nargs="+", default=list(levers_standard()),
                        help="levers to probe ('all': every one available, BLIS included)")
    parser.add_argument("--lever-repeats", type=int, default=3)
    parser.add_argument("--thread-repeats", type=int, default=3,
                        help="timed forwards per thread-count row (median)")
    parser.add_argument("--thread-train-repeats", type=int, default=2,
                        help="timed training iterations per thread-count row (median)")
    parser.add_argument("--unpatched", action="store_true",
                        help="build the unpatched recipe first if it is not cached (~6 min "
                             "on 2 cores), so it is compared; by default it is used when "
                             "built. (The OpenBLAS without its invariance patch, ~1.5 min, "
                             "is built when missing unless --skip threads)")
    parser.add_argument("--budget", type=float, default=840,
                        help="seconds the whole run may take (default 14 min, inside the "
                        "15-min goal); thread rows and levers past it are skipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", help="results file name without suffix (default: the date)")
    return parser.parse_args(argv)


@cli_main("bench")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import caffe
    from tqdm import tqdm

    from bench import builds, data_rate, levers, patches, report, threads
    from bench.blas import SgemmProbe, caffe_library, describe, linked_blas, open_blas
    from bench.gpu import unavailable_reason
    from bench.probe import caffe_root
    from bench.timing import load_average
    from data.synthetic import make_dataset

    caffe.set_mode_cpu()   # BLAS threads: the library's default, as the harness runs it
    if args.unpatched:
        builds.build_unpatched()
    # the OpenBLAS without its invariance patch: built when missing (~1.5 min, once), like
    # --unpatched before the clock starts
    before_blas, before_skipped = (threads.before_invariance_blas() if "threads" not in args.skip
                                   else (None, None))
    started = time.perf_counter()
    now = datetime.now()
    results: dict = {"date": now.strftime("%Y-%m-%d %H:%M"), "size": list(args.size),
                     "width": args.width, "machine": machine_info(),
                     "caffe_build": caffe_build_info(caffe_root())}
    steps = [s for s in STEPS if s not in args.skip]
    bar = tqdm(total=2 + len(steps), desc="bench", unit="step", file=sys.stderr)

    def done(message: str) -> None:
        bar.update(1)
        tqdm.write(f"bench: {message}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="fcn-bench-") as tmp:
        workdir = Path(tmp)
        path = linked_blas(caffe_library(caffe_root()))
        lib = open_blas(path)
        info = describe(lib, path)
        probe = SgemmProbe(lib, args.sgemm_n, args.seed)
        probe()  # warm-up
        first = [probe() for _ in range(5)]
        results["blas"] = {**info.as_dict(), "sgemm": {
            "n": args.sgemm_n, "gflops": float(sorted(first)[2]),
            "runs": [round(g, 2) for g in first]}}
        gflops = results["blas"]["sgemm"]["gflops"]
        done(f"sgemm {gflops:.1f} GFLOP/s ({info.corename}, {info.threads} threads)")
        if levers.is_fallback(info.corename):
            tqdm.write(f"bench: WARNING: Caffe's OpenBLAS runs its generic {info.corename} "
                       f"kernels on this CPU (it does not recognise it); its sgemm is not "
                       f"this machine's bound", file=sys.stderr)
        numpy_openblas = levers.build_numpy_openblas(workdir)
        unpatched = builds.unpatched_build()
        results["unpatched_build"] = str(unpatched) if unpatched else None
        # every sgemm rate of the run is taken at the thread count Caffe's timings use (this
        # process's library, as the harness runs it), set through each library in its probe
        timing_threads = info.threads if info.threads > 0 else (os.cpu_count() or 1)
        results["timing_threads"] = timing_threads
        rows: list[dict] = []
        if "blas" in steps:
            rows = levers.sgemm_by_blas(timing_threads, args.sgemm_n, numpy_openblas,
                                        mkl=levers.mkl_library())
            best = levers.machine_bound(rows)
            results["blas_options"] = rows
            results["machine_bound"] = None if best is None else {
                "lever": best["lever"], "gflops": best["sgemm"]["gflops"],
                "corename": best["blas"]["corename"], "config": best["blas"]["config"],
                "over_caffe_blas": best["sgemm"]["gflops"] / levers.default_gflops(rows, gflops)}
            done("machine bound: " + (f"{best['sgemm']['gflops']:.1f} GFLOP/s "
                                      f"({best['lever']}, {best['blas']['corename']})"
                                      if best else "none usable"))

        train_root = make_dataset("voc", workdir / "data-train", n_train=4, n_val=1,
                                  size=tuple(args.size), seed=args.seed)
        load_root = make_dataset("voc", workdir / "data-load", n_train=args.data_images,
                                 n_val=args.data_images,
                                 size=(375, 500), seed=args.seed)
        done("synthetic datasets written")

        results["nets"] = {}
        if "nets" in steps:
            for experiment in args.nets:
                row = time_caffe_net(experiment, workdir, train_root, probe,
                                     size=tuple(args.size), width=args.width,
                                     seed=args.seed, repeats=args.repeats,
                                     train_repeats=args.train_repeats)
                results["nets"][experiment] = row
                tqdm.write(f"bench: {experiment}: forward {row['forward']['median_s']:.2f} s "
                           f"({row['forward_over_bound']:.2f}× bound), fwd+bwd "
                           f"{row['train']['median_s']:.2f} s "
                           f"({row['train_over_bound']:.2f}× bound)", file=sys.stderr)
            done("nets timed")
        if "breakdown" in steps:
            results["breakdown"] = forward_breakdown(args, workdir, lib,
                                                     sorted(probe() for _ in range(3))[1])
            done(report.breakdown_lines(results)[0])
        fcn8s = results["nets"].get("voc-fcn8s")
        if "peer" in steps and fcn8s:
            results["peer"] = torch_peer(args, workdir, train_root, probe, info.threads, fcn8s)
            peer = results["peer"]
            done("torch peer: " + (f"Caffe/PyTorch forward {peer['caffe_over_torch_forward']:.2f}"
                                   if "forward" in peer else str(peer)))
        if "engines" in steps and fcn8s:
            results["engines"] = inference_engines(args, workdir, probe, timing_threads, fcn8s)
            done("inference engines: " + ", ".join(
                f"{k} {v['caffe_over_engine_forward']:.2f}" if "forward" in v else
                f"{k} {v.get('skipped') or v.get('error')}"
                for k, v in results["engines"].items()) + " (Caffe / engine, forward)")
        if "patches" in steps:
            results["patches"] = patches.run(workdir, grid=args.grid, width=args.width,
                                             seed=args.seed, repeats=2)
            done(f"Section 3.1 speed-up {results['patches']['speedup_vs_batched']:.1f}× (batched)")
        if "data" in steps:
            results["data"] = {"loading": data_rate.loading_rates(load_root, workdir,
                                                                  images=args.data_images)}
            if fcn8s:
                results["data"]["wait_fraction_prefetch"] = fcn8s["train"]["data_wait_fraction"]
            done("data layers timed")
        if "memory" in steps:
            memory = subprocess_json("bench.memory", "--data-root", str(train_root),
                                     "--width", str(args.width), "--iterations", "1")
            results["memory"] = memory
            if unpatched is not None:
                results["memory_unpatched"] = subprocess_json(
                    "bench.memory", "--data-root", str(train_root), "--width",
                    str(args.width), "--iterations", "1", env=builds.environment(unpatched))
            if "iteration" in memory and "data" in results:
                results["data"]["wait_fraction_no_prefetch"] = \
                    memory["iteration"]["data_wait_fraction"]
            done(f"peak RSS {memory.get('peak_rss_mib', float('nan')) / 1024:.2f} GiB")
        if "flags" in steps:
            results["flags"] = column_copy_levers(args, workdir, caffe_root())
            done("column copy: " + ", ".join(
                f"{k} {v['column_ms_per_forward']:.0f} ms"
                for k, v in results["flags"].get("variants", {}).items()))
        if "threads" in steps:
            results["threads"] = threads.run(
                workdir, train_root, size=tuple(args.size), width=args.width,
                repeats=args.thread_repeats, train_repeats=args.thread_train_repeats,
                sgemm_n=args.sgemm_n, seed=args.seed, before_blas=before_blas,
                before_skipped=before_skipped or "",
                deadline=time.monotonic() + args.budget - (time.perf_counter() - started),
                progress=lambda row: tqdm.write(
                    "bench: threads " + report.thread_row_line(row), file=sys.stderr))
            done(report.thread_cost_line(results) or "threads: no cost ratio")
        if "levers" in steps:
            results["levers"] = levers.run(
                workdir, cores=timing_threads, size=tuple(args.size), width=args.width,
                repeats=args.lever_repeats, sgemm_n=args.sgemm_n, unpatched=unpatched,
                numpy_openblas=numpy_openblas, mkl=levers.mkl_library(),
                only=None if args.levers == ["all"] else tuple(args.levers),
                deadline=time.monotonic() + args.budget - (time.perf_counter() - started),
                progress=lambda row: tqdm.write(
                    f"bench: lever {row['lever']}: " + (
                        f"forward {row['forward_s']:.2f} s, {row['forward_over_bound']:.2f}× "
                        f"own bound" if "forward_s" in row else row["error"]),
                    file=sys.stderr))
            done("levers probed")
        results["sgemm_consistency"] = levers.sgemm_consistency(
            timing_threads, gflops, rows, results.get("levers"))
        if not results["sgemm_consistency"]["consistent"]:
            tqdm.write("bench: WARNING: Caffe's sgemm rate differs between the tables: "
                       f"{results['sgemm_consistency']}", file=sys.stderr)
        if "gpu" in steps:
            reason = unavailable_reason(caffe_root())
            results["gpu"] = {"skipped": reason} if reason else subprocess_json(
                "bench.gpu", "--data-root", str(train_root))
            done("GPU: " + (reason or "measured"))
    bar.close()
    results["machine"]["load_after"] = load_average()
    results["elapsed_s"] = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    name = args.name or now.strftime("%Y-%m-%d")
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    table = report.markdown(results)
    (args.out / f"{name}.md").write_text(table)
    print(table)
    print(f"bench: wrote {args.out / name}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
