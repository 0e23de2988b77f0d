"""The results of one `make bench` as markdown: the nets' table, the other ratios, the levers."""

from __future__ import annotations

NAMES = {"voc-fcn8s": "FCN-8s", "voc-fcn32s": "FCN-32s", "voc-fcn-alexnet": "FCN-AlexNet"}


def _f(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def machine_factor(results: dict) -> float | None:
    """Best sgemm of any BLAS here ÷ the sgemm of Caffe's BLAS (both at the start)."""
    best = results.get("machine_bound")
    return best["over_caffe_blas"] if best else None


def _times(x, factor):
    return None if x is None or factor is None else x * factor


def nets_table(results: dict) -> list[str]:
    size = "×".join(map(str, results["size"]))
    factor = machine_factor(results)
    lines = [f"| net ({size}, CPU) | GFLOP fwd | fwd s | GFLOP/s | fwd / bound | "
             f"fwd / machine bound | GFLOP fwd+bwd | fwd+bwd s | GFLOP/s | fwd+bwd / bound | "
             f"fwd+bwd / machine bound |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [(f"{NAMES.get(k, k)} Caffe", v) for k, v in results["nets"].items()]
    peer = results.get("peer") or {}
    peers = [(f"{NAMES.get(peer['experiment'], peer['experiment'])} PyTorch "
              f"{peer['torch_version']}", peer)] if "forward" in peer else []
    peers += [(f"{NAMES.get(row['experiment'], row['experiment'])} {engine} "
               f"{row['version']} (ONNX export)", row)
              for engine, row in (results.get("engines") or {}).items() if "forward" in row]
    rows[1:1] = peers
    for label, row in rows:
        fwd, train = row.get("forward") or {}, row.get("train") or {}
        train_gflop = row["train_flops"] / 1e9 if row.get("train_flops") else None
        lines.append(
            f"| {label} | {_f(row['forward_flops'] / 1e9, 1)} | {_f(fwd.get('median_s'))} | "
            f"{_f(row.get('forward_gflops'), 1)} | {_f(row.get('forward_over_bound'))} | "
            f"{_f(_times(row.get('forward_over_bound'), factor))} | "
            f"{_f(train_gflop, 1)} | {_f(train.get('median_s'))} | "
            f"{_f(row.get('train_gflops'), 1)} | {_f(row.get('train_over_bound'))} | "
            f"{_f(_times(row.get('train_over_bound'), factor))} |")
    return lines


def ratios_table(results: dict) -> list[str]:
    blas, peer = results["blas"], results.get("peer") or {}
    lines = ["| measure | value |", "|---|---|"]
    paired = [g for row in results.get("nets", {}).values() for key in ("forward", "train")
              for g in (row.get(key) or {}).get("sgemm_gflops_runs", [])]
    spread = (f" (probes paired with the timings: {min(paired):.0f}–{max(paired):.0f})"
              if paired else "")
    path = f", {blas['sgemm_path'].upper()} path" if blas.get("sgemm_path") else ""
    lines.append(f"| sgemm bound of Caffe's BLAS ({blas['sgemm']['n']}³, {blas['corename']} "
                 f"kernels{path}, {blas['threads']} threads) | {_f(blas['sgemm']['gflops'], 1)} "
                 f"GFLOP/s{spread} |")
    lines += consistency_lines(results)
    best = results.get("machine_bound")
    if best:
        lines.append(f"| machine bound: best checked sgemm of any BLAS here | "
                     f"{_f(best['gflops'], 1)} GFLOP/s ({best['lever']}, {best['corename']} "
                     f"kernels; {_f(best['over_caffe_blas'])}× Caffe's BLAS) |")
    if "forward" in peer:
        lines.append(f"| Caffe / PyTorch time, forward · fwd+bwd (torch {peer['threads']} "
                     f"threads) | {_f(peer['caffe_over_torch_forward'])} · "
                     f"{_f(peer.get('caffe_over_torch_train'))} |")
        lines.append(agreement_line("PyTorch", peer))
    elif peer:
        lines.append(f"| PyTorch peer | not run: {peer.get('skipped', peer.get('error'))} |")
    for engine, row in (results.get("engines") or {}).items():
        if "forward" in row:
            lines.append(f"| Caffe / {engine} time, forward ({row['threads']} threads) | "
                         f"{_f(row['caffe_over_engine_forward'])} |")
        else:
            lines.append(f"| {engine} (ONNX export) | not timed: "
                         f"{row.get('skipped') or row.get('error')} |")
        if "argmax_agreement" in row:
            lines.append(agreement_line(f"{engine} (ONNX export)", row))
    patches = results.get("patches")
    if patches:
        lines.append(f"| Section 3.1: {patches['grid']}×{patches['grid']} grid convolutionally "
                     f"vs per patch, speed-up batched · one by one (paper: > 5×) | "
                     f"{_f(patches['speedup_vs_batched'], 1)}× · "
                     f"{_f(patches['speedup_vs_one_by_one'], 1)}× (FLOP ratio "
                     f"{_f(patches['naive_flops'] / patches['convolutional_flops'], 1)}×) |")
    data = results.get("data")
    if data:
        for key, label in (("voc_jpeg_png", "VOC JPEG + PNG"),
                           ("sbdd_jpeg_mat", "SBDD JPEG + .mat")):
            off, on = data["loading"][f"{key}_no_prefetch"], data["loading"][f"{key}_prefetch"]
            shape = "×".join(map(str, off["shape"][2:]))
            lines.append(f"| {label} loading, images/s ({shape}) without · with prefetch | "
                         f"{_f(off['images_per_s'], 1)} · {_f(on['images_per_s'], 1)} |")
        lines.append(f"| waiting on data, share of an FCN-8s training iteration, with · "
                     f"without prefetch | {_pct(data.get('wait_fraction_prefetch'))} · "
                     f"{_pct(data.get('wait_fraction_no_prefetch'))} |")
    memory = results.get("memory") or {}
    if "peak_rss_mib" in memory:
        before = results.get("memory_unpatched") or {}
        was = (f" (unpatched build: {before['peak_rss_mib'] / 1024:.2f} GiB)"
               if "peak_rss_mib" in before else
               " (unpatched build not measured: `make caffe-unpatched` builds it)")
        lines.append(f"| peak RSS, FCN-8s training iteration "
                     f"{'×'.join(map(str, memory['input_shape'][2:]))} | "
                     f"{memory['peak_rss_mib'] / 1024:.2f} GiB{was} |")
    gpu = results.get("gpu") or {}
    lines.append("| GPU FCN-8s forward · fwd+bwd | " + (
        f"{_f(gpu['forward_ms'], 1)} ms · {_f(gpu['forward_backward_ms'], 1)} ms "
        f"({gpu['device']}) |" if "forward_ms" in gpu else
        f"not measured: {gpu.get('skipped') or gpu.get('error', 'not run')} |"))
    return lines


def agreement_line(peer: str, row: dict) -> str:
    """A peer's output against Caffe's: max abs · max relative difference · argmax share
    (rows of results written before the abs/argmax figures show the relative one alone)."""
    if "argmax_agreement" not in row:
        return (f"| {peer} vs Caffe output, max relative difference | "
                f"{row['max_relative_difference']:.1e} |")
    return (f"| {peer} vs Caffe output, max abs · max relative difference · same argmax | "
            f"{row['max_abs_difference']:.1e} · {row['max_relative_difference']:.1e} · "
            f"{_pct(row['argmax_agreement'])} |")


def breakdown_lines(results: dict) -> list[str]:
    b = results.get("breakdown")
    if not b:
        return []
    return [f"FCN-8s forward, layers timed alone: {_f(b['sum_of_layers_s'])} s = GEMMs "
            f"{_f(b['gemm_s'])} s (bound {_f(b['bound_s'])} s) + convolution overhead "
            f"(im2col, bias) {_f(b['conv_overhead_s'])} s + other layers "
            f"{_f(b['other_layers_s'])} s."]


def consistency_lines(results: dict) -> list[str]:
    """Caffe's sgemm rate as each table measured it, at the timings' thread count."""
    check = results.get("sgemm_consistency")
    if not check:
        return []
    seen = " · ".join(f"{name} {_f(g, 1)}" for name, g in check["gflops"].items())
    verdict = ("consistent" if check["consistent"] else
               "**INCONSISTENT**: the machine-bound ratios are not to be trusted")
    return [f"| Caffe's sgemm at the timings' {check['threads']} threads, as measured by · "
            f"(max ÷ min) | {seen} GFLOP/s ({_f(check['spread'])}×: {verdict}) |"]


def blas_table(results: dict) -> list[str]:
    rows = results.get("blas_options") or []
    if not rows:
        return []
    from bench.levers import is_fallback

    lines = ["| BLAS option | kernels | threads | sgemm GFLOP/s | result check |",
             "|---|---|---:|---:|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['lever']} | – | – | – | failed: {row['error']} |")
            continue
        blas = row["blas"]
        kernels = blas["corename"] or "?"
        if is_fallback(kernels):
            kernels = f"**{kernels}: GENERIC FALLBACK, not a bound**"
        if blas.get("sgemm_path"):
            kernels += f", {blas['sgemm_path'].upper()} path"
        if not row.get("threads_match", True):
            kernels += (f" (**ran at {blas['threads']} threads, not the timings' count: not a "
                        f"bound**)")
        check = (f"ok ({row['check_max_relative_error']:.0e})" if row["correct"] else
                 f"**WRONG** ({row['check_max_relative_error']:.0e}), not a bound")
        lines.append(f"| {row['lever']} | {kernels} | {blas['threads']} | "
                     f"{_f(row['sgemm']['gflops'], 1)} | {check} |")
    return lines


def goals(results: dict) -> list[str]:
    """Each goal of the speed/memory issue, met or the measured gap."""
    lines = []
    fcn8s = (results.get("nets") or {}).get("voc-fcn8s") or {}
    factor = machine_factor(results)
    if factor is not None:
        share = 1 / factor
        lines.append(f"- Caffe's pinned sgemm ≥ 0.9× the machine bound: {share:.2f}× — "
                     f"{'met' if share >= 0.9 else 'NOT met'}")
    avx2 = next((r for r in results.get("levers") or []
                 if r.get("lever") == "pinned-avx2-path" and "bit_exact_vs_default" in r), None)
    if avx2 is not None:
        lines.append(f"- FCN-8s forward bit-exact between the AVX-512 and the AVX2 sgemm path: "
                     f"{'met' if avx2['bit_exact_vs_default'] else 'NOT met'}")
    forward = _times(fcn8s.get("forward_over_bound"), factor)
    if forward is not None:
        lines.append(f"- FCN-8s forward ≤ 1.25× the machine bound: {forward:.2f}× — "
                     f"{'met' if forward <= 1.25 else 'NOT met'}")
    peer = results.get("peer") or {}
    if "caffe_over_torch_forward" in peer:
        f, t = peer["caffe_over_torch_forward"], peer.get("caffe_over_torch_train")
        lines.append(f"- faster than PyTorch, forward · fwd+bwd: Caffe takes {f:.2f}× · "
                     f"{_f(t)}× PyTorch's time — "
                     f"{'met' if f < 1 and t is not None and t < 1 else 'NOT met'}")
    if results.get("engines") is not None:
        engines = {name: row for name, row in results["engines"].items() if "forward" in row}
        timed = ", ".join(f"{name} {_f(row.get('caffe_over_engine_forward'))}"
                          for name, row in engines.items())
        lines.append(f"- inference peers on the ONNX export timed beside Caffe (Caffe ÷ "
                     f"engine, forward): {timed or 'none'} — "
                     f"{'met' if len(engines) >= 2 else 'NOT met'}")
    memory = results.get("memory") or {}
    if "peak_rss_mib" in memory:
        gib = memory["peak_rss_mib"] / 1024
        lines.append(f"- FCN-8s training iteration peak RSS ≤ 3.0 GiB: {gib:.2f} GiB — "
                     f"{'met' if gib <= 3.0 else 'NOT met'}")
    unpatched = next((r for r in results.get("levers") or []
                      if r.get("lever") == "unpatched-build" and "bit_exact_vs_default" in r),
                     None)
    if unpatched is not None:
        lines.append(f"- default output bit-exact with the unpatched build: "
                     f"{'met' if unpatched['bit_exact_vs_default'] else 'NOT met'}")
    if "elapsed_s" in results:
        lines.append(f"- `make bench` ≤ 15 min: {results['elapsed_s'] / 60:.1f} min — "
                     f"{'met' if results['elapsed_s'] <= 900 else 'NOT met'}")
    return lines


def flags_table(results: dict) -> list[str]:
    flags = results.get("flags") or {}
    if "variants" not in flags:
        return [f"Column-copy levers not measured: {flags['error']}"] if flags else []
    lines = [f"| im2col/col2im code and flags (build: `{flags['build_flags']}`) | ms per "
             f"FCN-8s forward | speed-up | result |", "|---|---:|---:|---|"]
    for name, row in flags["variants"].items():
        lines.append(f"| {name} | {_f(row['column_ms_per_forward'], 0)} | "
                     f"{_f(row['speedup'])}× | "
                     f"{'bit-exact' if row['bit_exact'] else 'differs'} |")
    return lines


def thread_label(row: dict, cpus: int) -> str:
    """'patched OpenBLAS, 2 threads (all: 2 CPUs here)' and the like."""
    what = ("patched OpenBLAS" if row["blas"] == "patched" else
            "before invariance (OpenBLAS without the patch)")
    n = row["threads"]
    every = f" (all: {cpus} CPU{'s' if cpus > 1 else ''} here)" if row.get("all") else ""
    return f"{what}, {n} thread{'s' if n > 1 else ''}{every}"


def _yes_no(x) -> str:
    return "–" if x is None else ("yes" if x else "**no**")


def thread_row_line(row: dict) -> str:
    """One row as a progress line."""
    head = f"{row['key']}: "
    if "forward" not in row:
        return head + row.get("skipped", row.get("error", "not measured"))
    return head + (f"{row['threads_used']} threads, sgemm {row['sgemm']['gflops']:.1f} GFLOP/s, "
                   f"forward {row['forward']['median_s']:.2f} s, fwd+bwd "
                   f"{row['train']['median_s']:.2f} s, invariant {row['thread_invariant']}")


def thread_cost_line(results: dict) -> str | None:
    cost = (results.get("threads") or {}).get("cost_of_invariance")
    if not cost:
        return None
    return (f"cost of invariance at {cost['threads']} threads (speed before ÷ speed patched; "
            f"above 1 the patch costs that factor): forward {_f(cost['forward'], 3)}×, "
            f"fwd+bwd {_f(cost['train'], 3)}×, sgemm {_f(cost['sgemm'], 3)}×")


def threads_table(results: dict) -> list[str]:
    """The thread-count rows side by side, PyTorch's (the peer step) beside them."""
    threads = results.get("threads")
    if not threads:
        return []
    cpus, size = threads["cpus"], "×".join(map(str, threads["size"]))
    lines = [f"| FCN-8s {size}, each row its own process | threads asked · used | "
             f"thread-invariant (measured) | sgemm GFLOP/s | fwd s | fwd+bwd s | "
             f"forward output bits |", "|---|---:|---|---:|---:|---:|---|"]
    order = sorted(threads["rows"], key=lambda r: (r["blas"] != "patched", r["threads"]))
    for row in order:
        label = thread_label(row, cpus)
        if "forward" not in row:
            why = row.get("skipped") or row.get("error", "not measured")
            lines.append(f"| {label} | {row['threads']} · – | – | – | – | – | not measured: "
                         f"{why} |")
            continue
        if row["key"] == row["bits_reference"]:
            bits = "the reference"
        elif row["bits_equal_reference"]:
            bits = f"identical to {row['bits_reference']}'s"
        else:
            bits = (f"**differ** from {row['bits_reference']}'s (max rel. "
                    f"{row['max_relative_difference_vs_reference']:.1e})")
        lines.append(f"| {label} | {row['threads']} · {row['threads_used']} | "
                     f"{_yes_no(row['thread_invariant'])} | {_f(row['sgemm']['gflops'], 1)} | "
                     f"{_f(row['forward']['median_s'])} | {_f(row['train']['median_s'])} | "
                     f"{bits} |")
    peer = results.get("peer") or {}
    if "forward" in peer:
        lines.append(f"| PyTorch {peer['torch_version']} (the peer step, main process) | "
                     f"{peer['threads']} · {peer['threads']} | – | – | "
                     f"{_f(peer['forward']['median_s'])} | "
                     f"{_f((peer.get('train') or {}).get('median_s'))} | max rel. "
                     f"{peer['max_relative_difference']:.1e} from Caffe's |")
    if cpus in (1, 2):
        lines += ["", f"All threads = {cpus} on this machine (the CPUs of the process's "
                      f"affinity mask): that row is the {cpus}-thread one, not timed twice."]
    cost = thread_cost_line(results)
    if cost:
        lines += ["", cost[0].upper() + cost[1:] + "."]
    return lines


def levers_table(results: dict) -> list[str]:
    levers = results.get("levers") or []
    if not levers:
        return []
    lines = ["| lever | sgemm GFLOP/s | FCN-8s fwd s | fwd / bound (paired) | vs default | "
             "output vs default |", "|---|---:|---:|---:|---:|---|"]
    for row in levers:
        if "error" in row:
            lines.append(f"| {row['lever']} | – | – | – | – | failed: {row['error']} |")
            continue
        exact = ("bit-exact" if row["bit_exact_vs_default"] else
                 f"max rel. diff {row['max_relative_difference_vs_default']:.1e}")
        lines.append(f"| {row['lever']} ({row['blas']['corename']}, {row['blas']['threads']} "
                     f"threads) | {_f(row['sgemm']['gflops'], 1)} | {_f(row['forward_s'])} | "
                     f"{_f(row['forward_over_bound'])} | {_f(row['speedup_vs_default'])}× | "
                     f"{exact} |")
    return lines


def cpu_detail(machine: dict) -> str:
    """' (AuthenticAMD family 25 model 17; AVX2, FMA, AVX-512)': which CPU, and what decides
    the kernels it can run."""
    if not machine.get("cpu_id"):
        return ""
    flags = set(machine.get("cpu_flags", "").split())
    features = [name for name, flag in (("AVX2", "avx2"), ("FMA", "fma"),
                                        ("AVX-512", "avx512f")) if flag in flags]
    return f" ({machine['cpu_id']}; {', '.join(features) or 'no AVX2'})"


def markdown(results: dict) -> str:
    machine = results["machine"]
    head = [f"## `make bench`, {results['date']}",
            "",
            f"Machine: {machine['cpu']}{cpu_detail(machine)}, {machine['cores']} cores, "
            f"{machine['memory_gib']:.0f} GiB; load average before · after: "
            f"{machine['load_before']} · {machine['load_after']}; BLAS environment "
            f"{machine['blas_env'] or '(none set)'}; {results['blas']['config']}; "
            f"Caffe {results['caffe_build']}; {_f(results['elapsed_s'], 0)} s in all.", ""]
    parts = [head, nets_table(results), [""], ratios_table(results), [""],
             breakdown_lines(results)]
    blas = blas_table(results)
    if blas:
        parts += [[""], ["sgemm of each BLAS option here (each in its own process, checked "
                         "against numpy first):", ""], blas]
    flag_lines = flags_table(results)
    if flag_lines:
        parts += [[""], ["Convolution overhead outside the GEMM (Caffe's column copy, timed "
                         "alone on FCN-8s's shapes):", ""], flag_lines]
    thread_lines = threads_table(results)
    if thread_lines:
        parts += [[""], ["Threads (OPENBLAS_NUM_THREADS and CAFFE_NUM_THREADS set per row; "
                         "sgemm: median of the probes paired with the timings):", ""],
                  thread_lines]
    lev = levers_table(results)
    if lev:
        parts += [[""], ["Levers (each in its own process; FCN-8s deploy forward):", ""], lev]
    goal_lines = goals(results)
    if goal_lines:
        parts += [[""], ["Goals:", ""], goal_lines]
    return "\n".join(line for part in parts for line in part) + "\n"
