"""What decides a run's bits, recorded beside its numbers so two runs can be told apart.

Caffe on the CPU is deterministic on one machine; across machines the bits follow the BLAS
kernels (OpenBLAS picks them by CPU unless it is the recipe's pinned build), the library
versions that read and decode the data, and the inputs. `fingerprint()` gathers those facts
from the running process (the BLAS is the one libcaffe actually loaded, found in
/proc/self/maps, checked against a float64 reference before it is trusted); `diff()` names the
fields in which two fingerprints differ. caffe-recipe/NUMERICS.md explains the choices.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from core import blas
from core.errors import ReportedError, cli_main

PINNED_PREFIX = "libopenblas_pinned"   # the pinned build's file names (caffe-recipe/openblas.sh)
# Fields that decide the BLAS's bits: equal in two runs => same kernels on the same inputs.
# The thread count is not one of them where the library is thread-count invariant (the pinned
# build is, by its patch: caffe-recipe/NUMERICS.md); where either run's is not, it is.
PINNED_FIELDS = ("numerics", "blas_version", "blas_kernel", "blas_probe", "blas_thread_invariant")
# M, N, K of the invariance probe: FCN's score layer at a small size, a GEMM whose bits
# OpenBLAS's unpatched threaded driver changes between 1, 2 and 3 threads.
INVARIANCE_SHAPE = (21, 1024, 64)
INVARIANCE_THREADS = (1, 2, 3)
# The environment that can change which kernels or threads run (recorded, never changed).
ENV_PREFIXES = ("OPENBLAS_", "GOTO_", "OMP_", "MKL_", "BLIS_")
ENV_NAMES = ("NUMERICS", "LD_LIBRARY_PATH", "LD_PRELOAD")
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw",
             "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")
BLAS_NAME = re.compile(r"lib(?:open)?blas|libmkl_rt|libblis|libcblas")
PROBE_SHAPE = (8, 40, 300)   # M, N, K of the self-check GEMM (Caffe's InnerProduct)


class NumericsError(ReportedError, RuntimeError):
    """The BLAS Caffe runs on computes wrong results or cannot run on this CPU."""


def digest_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def file_digest(path: Path | str) -> str:
    """sha256 (first 16 hex digits) of a file's bytes: nets, solvers, weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()[:16]


def split_digest(split_file: Path | str, data_root: Path | str) -> dict:
    """A data split's identity: its list file, and every file under data_root whose name
    (without suffix) is one of the split's items, by relative path and content."""
    split_file, data_root = Path(split_file), Path(data_root)
    names = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    wanted = set(names)
    lines = []
    for folder, _, files in os.walk(data_root):
        for name in files:
            path = Path(folder, name)
            if name.split(".")[0] in wanted and path.resolve() != split_file.resolve():
                lines.append(f"{path.relative_to(data_root)} {file_digest(path)}")
    lines.sort()
    return {"split": split_file.name, "items": len(names),
            "names": digest_bytes("\n".join(names).encode()), "files": len(lines),
            "digest": digest_bytes("\n".join(lines).encode())}


def dataset_split_digest(dataset: str, phase: str, root: Path | str, split: str) -> dict:
    """split_digest() of a catalog dataset's split: its list file, and the split's files
    under the dataset's top folder in the data root (sbdd/, pascal/, nyud/ …)."""
    from core.catalog import split_list  # noqa: PLC0415

    listing = split_list(dataset, phase, root, split)
    if not listing.is_file():
        return {"split": str(listing), "digest": "missing"}
    top = Path(root) / listing.relative_to(root).parts[0]
    return split_digest(listing, top)


# numpy's names for the CPUID feature bits it detects, as /proc/cpuinfo spells them
NUMPY_CPU_FEATURES = {"SSE42": "sse4_2", "AVX": "avx", "AVX2": "avx2", "FMA3": "fma",
                      "F16C": "f16c", "AVX512F": "avx512f", "AVX512DQ": "avx512dq",
                      "AVX512BW": "avx512bw", "AVX512VL": "avx512vl",
                      "AVX512VNNI": "avx512_vnni"}


def cpuid_flags() -> dict[str, bool]:
    """The CPU_FLAGS numpy's run-time CPUID detection answers for ({} if it cannot)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        return {}
    return {flag: bool(features[name]) for name, flag in NUMPY_CPU_FEATURES.items()
            if name in features}


def cpu() -> dict:
    """Model and the instruction-set flags that decide which kernels can run."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "vendor_id", "cpu family", "model", "flags") \
                    and key not in fields:
                fields[key] = value.strip()
            if key == "flags":
                break
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    # what CPUID tells this process (numpy asks it at import) outranks /proc/cpuinfo, which
    # describes the host: under an emulator or a masked VM the two differ, and the kernels
    # can only use what CPUID grants
    for flag, present in cpuid_flags().items():
        (flags.add if present else flags.discard)(flag)
    found = {"cpu_model": fields.get("model name", platform.processor() or platform.machine()),
             "cpu_id": "{} family {} model {}".format(fields.get("vendor_id", "?"),
                                                      fields.get("cpu family", "?"),
                                                      fields.get("model", "?")),
             "cpu_flags": " ".join(f for f in CPU_FLAGS if f in flags),
             "cpu_count": os.cpu_count()}
    if os.environ.get("FCN_EMULATED_CPU"):   # make EMULATE_CPU=…: qemu shows this CPU instead
        found["cpu_emulated"] = os.environ["FCN_EMULATED_CPU"]
    return found


def blas_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """OPENBLAS_* (CORETYPE, L2_SIZE, NUM_THREADS …) and kin as this process has them."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in sorted(environ)
            if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def mapped_libraries(maps: Path = Path("/proc/self/maps")) -> list[Path]:
    """Shared objects mapped into this process (real files: symlinks resolved)."""
    found: list[Path] = []
    try:
        text = maps.read_text()
    except OSError:
        return found
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and ".so" in parts[5]:
            path = Path(parts[5].strip())
            if path not in found:
                found.append(path)
    return found


def mapped_blas_libraries(maps: Path = Path("/proc/self/maps")) -> list[Path]:
    """The mapped shared objects that are BLAS libraries."""
    return [p for p in mapped_libraries(maps) if BLAS_NAME.search(p.name)]


def _open(path: Path) -> ctypes.CDLL | None:
    try:
        return blas.load(path)
    except OSError:
        return None


def describe_blas(path: Path) -> dict:
    """What a loaded BLAS says about itself (OpenBLAS answers; others give blanks)."""
    lib = _open(path)
    info = {"blas_library": path.name, "blas_path": str(path), "blas_version": "",
            "blas_config": "", "blas_kernel": "", "blas_sgemm_path": "", "blas_threads": -1}
    if lib is None:
        return info
    info["blas_config"] = blas.library_text(lib, "openblas_get_config")
    info["blas_kernel"] = blas.library_text(lib, "openblas_get_corename")
    # the pinned library's sgemm path (avx512 or avx2: the same bits, recorded, not compared)
    info["blas_sgemm_path"] = blas.library_text(lib, "openblas_pinned_sgemm_path")
    match = re.match(r"OpenBLAS ([0-9.]+)", info["blas_config"])
    info["blas_version"] = f"OpenBLAS {match.group(1)}" if match else ""
    info["blas_threads"] = blas.openblas_threads(lib)
    return info


def _sgemm_nt(lib: ctypes.CDLL, x: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """x · wᵀ through lib's cblas_sgemm, the call Caffe's InnerProduct makes."""
    if not blas.has_sgemm(lib):
        return None
    out = np.zeros((x.shape[0], w.shape[0]), np.float32)
    return blas.sgemm(lib, x, w, out, transpose_b=True)


def _probe_inputs() -> tuple[np.ndarray, np.ndarray]:
    m, n, k = PROBE_SHAPE
    rng = np.random.RandomState(1234)
    return (rng.standard_normal((m, k)).astype(np.float32),
            rng.standard_normal((n, k)).astype(np.float32))


def caffe_gemm(x: np.ndarray, w: np.ndarray, gpu: int | None = None) -> np.ndarray:
    """x · wᵀ computed by Caffe itself: a one-layer InnerProduct net, forward on the CPU
    (then back to GPU `gpu` if the run uses one: pycaffe cannot say which mode is set)."""
    import caffe  # noqa: PLC0415  (only here: fingerprint's other parts need no Caffe)

    (m, k), n = x.shape, w.shape[0]
    text = (f'input: "x" input_shape {{ dim: {m} dim: {k} }}\n'
            f'layer {{ name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
            f'inner_product_param {{ num_output: {n} bias_term: false }} }}\n')
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as f:
        f.write(text)
        f.flush()
        caffe.set_mode_cpu()
        net = caffe.Net(f.name, caffe.TEST)
    net.params["ip"][0].data[...] = w
    net.blobs["x"].data[...] = x
    out = net.forward()["y"].copy()
    if gpu is not None:
        caffe.set_mode_gpu()
        caffe.set_device(gpu)
    return out


def check_blas(caffe_out: np.ndarray, x: np.ndarray, w: np.ndarray) -> float:
    """Largest error of Caffe's GEMM against float64, in units of float32 rounding over the
    sum (√K·ε·Σ|x·w|: the statistical bound; correct kernels stay far below it, ~0.05);
    raises NumericsError above 1 (the kernels compute wrong results)."""
    reference = x.astype(np.float64) @ w.astype(np.float64).T
    bound = np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64).T \
        * np.sqrt(x.shape[1]) * np.finfo(np.float32).eps
    ratio = float(np.max(np.abs(caffe_out - reference) / bound))
    if not np.isfinite(ratio) or ratio > 1.0:
        raise NumericsError(
            f"Caffe's BLAS computes a wrong GEMM on this CPU (error {ratio:.3g}× the float32 "
            f"bound against a float64 reference). The kernels cannot be trusted here: rebuild "
            f"with CAFFE_BLAS=system (make setup), see caffe-recipe/NUMERICS.md")
    return ratio


def _library_at(address: int, maps: Path = Path("/proc/self/maps")) -> Path | None:
    """The mapped file that holds `address`."""
    for line in maps.read_text().splitlines():
        parts = line.split(maxsplit=5)
        start, _, end = parts[0].partition("-")
        if len(parts) == 6 and int(start, 16) <= address < int(end, 16):
            return Path(parts[5].strip())
    return None


def caffe_sgemm_library() -> Path | None:
    """The file whose cblas_sgemm libcaffe's calls reach, found as the dynamic linker finds
    it: the global scope first (the program, LD_PRELOAD, libraries loaded RTLD_GLOBAL),
    then libcaffe's own dependencies (pycaffe loads libcaffe RTLD_LOCAL)."""
    address = None
    try:
        address = ctypes.cast(ctypes.CDLL(None).cblas_sgemm, ctypes.c_void_p).value
    except AttributeError:
        libcaffe = next((p for p in mapped_libraries() if p.name.startswith("libcaffe.so")),
                        None)
        lib = _open(libcaffe) if libcaffe is not None else None
        if lib is not None and hasattr(lib, "cblas_sgemm"):
            address = ctypes.cast(lib.cblas_sgemm, ctypes.c_void_p).value
    return _library_at(address) if address else None


def check_cpu(libraries: list[Path], cpu_flags: list[str]) -> None:
    """Refuse the pinned kernels on a CPU without AVX2/FMA (they would stop the process with
    an illegal instruction, or worse, on an emulator, compute)."""
    pinned = [p for p in libraries if p.name.startswith(PINNED_PREFIX)]
    missing = sorted({"avx2", "fma"} - set(cpu_flags))
    if pinned and missing:
        raise NumericsError(
            f"this CPU lacks {' and '.join(missing)}, which the pinned OpenBLAS ({pinned[0]}) "
            f"needs. Run `make setup` again (on such a CPU it links the system OpenBLAS), or "
            f"run with NUMERICS=native; see caffe-recipe/NUMERICS.md")


def set_blas_threads(threads: int) -> int | None:
    """Run the pinned OpenBLAS on `threads` threads (a test or a benchmark that compares
    counts; a run needs none of this: the library starts with every CPU of the process, or
    OPENBLAS_NUM_THREADS, and its bits do not depend on the count). A system OpenBLAS
    (NUMERICS=native, or a build without the pinned library) is left as it is: None."""
    import caffe  # noqa: PLC0415, F401  (loads libcaffe and its BLAS)

    for path in mapped_blas_libraries():
        if path.name.startswith(PINNED_PREFIX):
            lib = _open(path)
            if lib is not None and blas.set_openblas_threads(lib, threads):
                return threads
    return None


def thread_invariant(lib: ctypes.CDLL) -> bool | None:
    """Whether an OpenBLAS gives the same GEMM bits at 1, 2 and 3 threads, measured on the
    invariance probe (the count is restored); None for a library that cannot set it."""
    if not all(hasattr(lib, f) for f in ("openblas_get_num_threads", "openblas_set_num_threads")):
        return None
    before = blas.openblas_threads(lib)
    m, n, k = INVARIANCE_SHAPE
    rng = np.random.RandomState(4321)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    seen = set()
    try:
        for count in INVARIANCE_THREADS:
            blas.set_openblas_threads(lib, count)
            out = _sgemm_nt(lib, x, w)
            seen.add(out.tobytes() if out is not None else b"")
    finally:
        blas.set_openblas_threads(lib, before)
    return len(seen) == 1


def caffe_blas(gpu: int | None = None) -> dict:
    """The BLAS libcaffe computes with: which library, its kernels and threads, a check of its
    GEMM against float64, and a digest of that GEMM's bits (another digest: other kernels)."""
    import caffe  # noqa: PLC0415, F401  (loads libcaffe and its BLAS)

    candidates = mapped_blas_libraries()   # real files: symlinks resolved by the kernel
    check_cpu(candidates, cpu()["cpu_flags"].split())
    x, w = _probe_inputs()
    out = caffe_gemm(x, w, gpu)
    ratio = check_blas(out, x, w)
    # Caffe's library, confirmed: its own sgemm must give Caffe's bits.
    used = caffe_sgemm_library()
    lib = _open(used) if used is not None else None
    direct = _sgemm_nt(lib, x, w) if lib is not None else None
    if direct is None or direct.tobytes() != out.tobytes():
        used = None
    info = describe_blas(used) if used else {"blas_library": "unknown", "blas_path": "",
                                              "blas_version": "", "blas_config": "",
                                              "blas_kernel": "", "blas_threads": -1}
    if used is None:
        numerics = "unknown"
    elif used.name.startswith(PINNED_PREFIX):
        numerics = "pinned"
    elif (caffe_entry() / "blas-native").is_dir():
        numerics = "native"   # a pinned build run on the system's library (NUMERICS=native)
    else:
        numerics = "system"   # a build linked against the system's OpenBLAS (no AVX2/FMA)
    flags = cpu()["cpu_flags"].split()
    fallback = is_generic_fallback(info["blas_kernel"], flags)
    invariant = thread_invariant(lib) if used is not None and lib is not None else None
    info.update(numerics=numerics, blas_probe=digest_bytes(out.tobytes()),
                blas_thread_invariant=invariant,
                blas_selfcheck=f"ok: error {ratio:.2g} of the float32 bound",
                blas_fallback=fallback)
    if fallback:
        print(f"WARNING: Caffe computes with OpenBLAS's generic {info['blas_kernel']} kernels "
              f"({info['blas_path']}): the library did not recognise this CPU, which has "
              f"AVX2, and fell back (several times slower, other bits). The default pinned "
              f"numerics (no NUMERICS=native) run the Haswell kernels here; see "
              f"caffe-recipe/NUMERICS.md", file=sys.stderr)
    return info


# OpenBLAS kernel sets older than AVX2: on a CPU with AVX2 they mean OpenBLAS did not
# recognise the CPU and fell back (Debian 12's 0.3.21 picks Prescott on newer Intel parts)
GENERIC_KERNELS = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                   "coppermine", "northwood", "banias", "opteron", "opteron_sse3", "barcelona",
                   "bobcat", "generic", "sandybridge"}


def is_generic_fallback(kernel: str, cpu_flags: list[str]) -> bool:
    """True when OpenBLAS runs pre-AVX2 kernels on a CPU that has AVX2."""
    return kernel.strip().lower() in GENERIC_KERNELS and "avx2" in cpu_flags


def caffe_entry() -> Path:
    """The cache entry of the Caffe build this process imported (…/caffe-<flavour>-<key>)."""
    import caffe  # noqa: PLC0415

    return Path(caffe.__file__).resolve().parents[3]   # <entry>/src/python/caffe/__init__.py


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name, dist in (("numpy", "numpy"), ("pillow", "pillow"), ("protobuf", "protobuf"),
                       ("scipy", "scipy")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


_PROCESS_CACHE: dict = {}


def fingerprint(*, net: Path | str | None = None, solver: Path | str | None = None,
                weights: Path | str | None = None, data: dict | None = None,
                seed: int | None = None, gpu: int | None = None) -> dict:
    """Everything that decides this run's bits. The process part (Caffe build, BLAS, CPU,
    versions) is computed once per process; net/solver/weights are file digests, `data` a
    split_digest(), `seed` the run's seed, `gpu` the GPU a run computes on (None: the CPU;
    the BLAS is checked on the CPU either way, and the GPU mode restored)."""
    if not _PROCESS_CACHE:
        _PROCESS_CACHE.update(caffe_recipe=caffe_entry().name, **caffe_blas(gpu), **cpu(),
                              **versions())
    result = dict(_PROCESS_CACHE)
    result["device"] = "CPU" if gpu is None else f"GPU {gpu}"
    if result.get("blas_path"):   # threads can be set after the first call: read them now
        result["blas_threads"] = describe_blas(Path(result["blas_path"]))["blas_threads"]
    result["env"] = blas_environment()
    for key, path in (("net", net), ("solver", solver), ("weights", weights)):
        if path is not None:
            result[key] = file_digest(path)
    if data is not None:
        result["data"] = data
    if seed is not None:
        result["seed"] = seed
    return result


def diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(field, a's value, b's value) for every field that differs or is only in one."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "(absent)"), b.get(key, "(absent)")
        if va != vb:
            out.append((key, va, vb))
    return out


def bits_fields(*fingerprints: dict) -> tuple[str, ...]:
    """The fields that decide the BLAS's bits for these runs: PINNED_FIELDS, and the thread
    count unless every run's library is thread-count invariant."""
    if all(fp.get("blas_thread_invariant") is True for fp in fingerprints):
        return PINNED_FIELDS
    return (*PINNED_FIELDS, "blas_threads")


def pinned_differences(expected: dict, actual: dict) -> list[tuple[str, object, object]]:
    """Differences in the fields that decide the BLAS's bits (bits_fields)."""
    fields = bits_fields(expected, actual)
    return [d for d in diff({k: expected.get(k) for k in fields},
                            {k: actual.get(k) for k in fields})]


def summary(fp: dict) -> str:
    """One line for logs and reports."""
    env = ", ".join(f"{k}={v}" for k, v in fp.get("env", {}).items()) or "none set"
    path = fp.get("blas_sgemm_path")
    return (f"numerics {fp.get('numerics')} ({fp.get('blas_version')} {fp.get('blas_kernel')} "
            f"kernels{f' ({path.upper()} sgemm path)' if path else ''}, "
            f"{fp.get('blas_threads')} threads"
            f"{', thread-count invariant' if fp.get('blas_thread_invariant') else ''}, "
            f"probe {fp.get('blas_probe')}); "
            f"Caffe {fp.get('caffe_recipe')}; CPU {fp.get('cpu_model')}"
            f"{' emulated as ' + fp['cpu_emulated'] if fp.get('cpu_emulated') else ''} "
            f"[{fp.get('cpu_flags')}]; "
            f"numpy {fp.get('numpy')}, Pillow {fp.get('pillow')}, protobuf {fp.get('protobuf')}; "
            f"BLAS environment: {env}")


@cli_main("fingerprint")
def main(argv: list[str] | None = None) -> int:
    import argparse  # noqa: PLC0415
    import json  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m core.fingerprint",
        description="Print what decides this machine's bits: Caffe build, BLAS (checked), "
                    "CPU, library versions, BLAS environment.")
    parser.add_argument("--json", action="store_true", help="the whole fingerprint as JSON")
    args = parser.parse_args(argv)
    fp = fingerprint()
    print(json.dumps(fp, indent=2) if args.json else summary(fp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
