"""The convolution's column copy (im2col/col2im) as Caffe had it and as the recipe builds it.

Caffe turns every convolution into im2col + sgemm (and deconvolution into sgemm +
col2im). The GEMM is the BLAS's; the column copy is Caffe's own C++, which the recipe's
patch 0002 rewrites. Here the copy is timed on FCN-8s's own layer shapes three ways:
Caffe's original im2col.cpp (recovered by reversing the patch, bench.builds) with the
build's flags, the same with candidate flags (-march=native), and the build's own
libcaffe. Result hashes show whether each is bit-exact with the original.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from core.errors import ReportedError
from core.geometry import conv_window

BENCH = Path(__file__).resolve().parent
CANDIDATE_FLAGS = "-march=native"
UNPATCHED = "caffe (unpatched)"
PATCHED = "recipe build (patch 0002)"


class BuildError(ReportedError, RuntimeError):
    """A probe did not compile; the message carries the compiler's last lines."""


def build_flags(caffe_root: Path) -> str:
    """The C++ flags the Caffe build used (CMake cache), e.g. '-fPIC -Wall -O3 -DNDEBUG'."""
    values = {}
    for line in (caffe_root / "build/CMakeCache.txt").read_text().splitlines():
        key, _, value = line.partition("=")
        values[key.split(":")[0]] = value
    kind = values.get("CMAKE_BUILD_TYPE", "Release").upper()
    return " ".join(filter(None, (values.get("CMAKE_CXX_FLAGS", ""),
                                  values.get(f"CMAKE_CXX_FLAGS_{kind}", ""), "-fPIC")))


def _compile(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BuildError(f"{shlex.join(command[:3])} … failed:\n{tail}")


def build_probes(workdir: Path, caffe_root: Path,
                 only: tuple[str, ...] | None = None) -> dict[str, Path]:
    """The im2col probe linked with each variant (or those in `only`): name → executable."""
    from bench.builds import COLUMN_PATCH, reversed_source

    flags = build_flags(caffe_root)
    include = ["-DCPU_ONLY", f"-I{caffe_root}/src/include", f"-I{caffe_root}/build/include"]
    original = str(reversed_source(caffe_root, "src/caffe/util/im2col.cpp", COLUMN_PATCH,
                                   Path(workdir) / "unpatched"))
    link = [f"-L{caffe_root}/build/lib", "-lcaffe", "-lglog",
            f"-Wl,-rpath,{caffe_root}/build/lib"]
    variants = {  # the first is the reference for bit-exactness
        UNPATCHED: (flags, [original], link),
        f"{UNPATCHED} {CANDIDATE_FLAGS}": (f"{flags} {CANDIDATE_FLAGS}", [original], link),
        PATCHED: (flags, [], link),
    }
    probes = {}
    for name, (variant_flags, sources, libraries) in variants.items():
        if only is not None and name not in only:
            continue
        out = Path(workdir) / f"im2col-probe-{len(probes)}"
        _compile(["g++", *shlex.split(variant_flags), *include,
                  str(BENCH / "im2col_probe.cpp"), *sources, *libraries, "-o", str(out)])
        probes[name] = out
    return probes


def column_shapes(net, net_param) -> list[tuple[str, str, tuple[int, ...]]]:
    """(layer, 'im2col' | 'col2im', (channels, height, width, kernel, pad, stride)) for the
    column work of one forward of a caffe.Net built from net_param: im2col before each
    convolution with a kernel above 1, col2im after each deconvolution."""
    declared = {layer.name: layer for layer in net_param.layer}
    shapes = []
    for name in net._layer_names:
        layer = net.layer_dict[name]
        if layer.type not in ("Convolution", "Deconvolution"):
            continue
        window = conv_window(declared[name].convolution_param)
        kernel, pad, stride = window.kernel[0], window.pad[0], window.stride[0]
        if layer.type == "Convolution" and kernel == 1 and pad == 0 and stride == 1:
            continue  # Caffe skips im2col for plain 1×1 convolutions
        if layer.type == "Convolution":
            image = net.blobs[net.bottom_names[name][0]].data.shape
            kind = "im2col"
        else:
            image = net.blobs[net.top_names[name][0]].data.shape
            kind = "col2im"
        shapes.append((name, kind, (*image[1:], kernel, pad, stride)))
    return shapes


def run(workdir: Path, caffe_root: Path, net, net_param, *, repeats: int = 3) -> dict:
    """Sum of column-copy milliseconds per FCN forward for each variant, and bit-exactness."""
    probes = build_probes(workdir, caffe_root)
    shapes = column_shapes(net, net_param)
    results: dict = {"build_flags": build_flags(caffe_root), "variants": {}}
    reference = None
    for name, probe in probes.items():
        total, hashes = 0.0, []
        for _, kind, shape in shapes:
            done = subprocess.run([str(probe), *map(str, shape), str(repeats)],
                                  capture_output=True, text=True, check=True)
            row = json.loads(done.stdout)
            total += row[f"{kind}_ms"]
            hashes.append(row["hash"])
        reference = reference or hashes
        results["variants"][name] = {"column_ms_per_forward": total,
                                     "bit_exact": hashes == reference}
    base = results["variants"][UNPATCHED]["column_ms_per_forward"]
    for row in results["variants"].values():
        row["speedup"] = base / row["column_ms_per_forward"]
    results["layers"] = [{"layer": n, "kind": k, "shape": list(s)} for n, k, s in shapes]
    return results
