"""The command line both exporters share: export, then verify against Caffe.

Exit status: 0 exported and verified, 1 exported but over the tolerance, 2 bad input
(one line naming the cause; no traceback). Each exporter module hands its own functions in
as an `Exporter`, so this module imports neither (they import it for their main()).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from core import arguments
from core.caffe_files import check_finite
from core.errors import reason
from core.manifest import export_manifest, record_export, sha256, verify_export
from core.outputs import Output, check_outputs
from export import verify
from export.caffe_net import forward, load
from export.graph import ExportError

FORMATS = {"onnx": "ONNX (onnxruntime checks it)", "torch": "a PyTorch module + state_dict"}


def parser(kind: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m export.{kind}_export",
        description=f"Export an FCN experiment's deploy net and weights as {FORMATS[kind]}, "
                    "then run it beside Caffe's forward pass and fail above the tolerance.")
    p.add_argument("--net", required=True, help="experiment name (nets/experiments.py)")
    p.add_argument("--weights", required=True, type=Path, help="its .caffemodel")
    p.add_argument("--out", type=Path, help="output file (.onnx) or folder (torch); default "
                   "runs/export/<net>/")
    p.add_argument("--width", type=arguments.width(), default=1.0,
                   help="the channel width the weights were trained at (default 1.0)")
    p.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in verify.SIZES),
                   help="picture sizes HxW to verify at (default %(default)s)")
    p.add_argument("--image", type=Path, help="verify on this picture (resized to each "
                   "size) instead of synthetic scenes")
    p.add_argument("--seed", type=int, default=verify.SEED, help="synthetic pictures' seed")
    p.add_argument("--rtol", type=float, default=verify.RTOL,
                   help="max |caffe − exported| / max |caffe| per output (default %(default)g)")
    p.add_argument("--min-agreement", type=float, default=verify.MIN_ARGMAX_AGREEMENT,
                   help="fraction of pixels whose argmax must agree (default %(default)g)")
    p.add_argument("--no-verify", action="store_true", help="export only")
    p.add_argument("--check-existing", action="store_true",
                   help="verify the export already at --out against Caffe; write nothing")
    return p


@dataclass(frozen=True)
class Exporter:
    """What one format brings to the shared command line."""

    kind: str                                   # a key of FORMATS
    target: Callable[[str, Path | None], Path]  # (net, --out) → the file written or checked
    export: Callable[[str, Path, Path, float], tuple[Any, Path]]  # (net, weights, target,
    #                                             width) → (loaded Caffe net, written path)
    runner: Callable[[Path], Any]               # the exported file → a forward like Caffe's


def _written(kind: str, path: Path) -> list[Path]:
    """The files an export wrote: the .onnx (its weights inside), or the module and its .pt;
    not whatever else beside them shares the stem (the caffemodel, an older copy)."""
    return [path] if kind == "onnx" else [path, path.with_suffix(".pt")]


def _staging(path: Path) -> Path:
    """A fresh folder beside the export's final place (the same file system, so the finished
    files are renamed into place): a failed or interrupted export leaves nothing at OUT."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part"))


def _publish(kind: str, staged: Path, path: Path) -> None:
    """Rename the verified export's files from the staging folder to their place."""
    for file in _written(kind, staged):
        os.replace(file, path.parent / file.name)


def _progress(step: str) -> None:
    """On a terminal only: a log file gets the table, not the steps."""
    print(f"verify: {step} …".ljust(40), end="\r", file=sys.stderr, flush=True)


def run_export(exporter: Exporter, argv: list[str] | None = None) -> int:
    """Both exporters' main(): its ExportError (and a ValueError or OSError of the input) is
    the caller's cli_main's one line and exit 2. The export is written aside and moved to
    OUT only once verified: a failed one leaves no file there to be taken for good."""
    kind = exporter.kind
    args = parser(kind).parse_args(argv)
    sizes = verify.parse_sizes(args.sizes)
    if args.image is not None:
        if not args.image.is_file():
            raise ExportError(f"{args.image}: no such picture")
        try:
            verify.picture((1, 1), args.seed, args.image)
        except OSError as e:
            raise ExportError(f"{args.image}: not a picture PIL can read ({reason(e)})") \
                from None
    path = exporter.target(args.net, args.out)
    inputs = {"the weights (WEIGHTS=/--weights)": args.weights, "the picture (IMAGE=/--image)":
              args.image}
    if not args.check_existing:  # an export pointed at an input would replace it
        check_outputs([Output("OUT=/--out", file) for file in _written(kind, path)], inputs,
                      force=True)
    check_finite(args.weights)  # NaN would pass no tolerance and never be named
    if args.check_existing:
        if not path.is_file():
            raise ExportError(f"{path}: no such export to check; run without "
                              "--check-existing first")
        measured = _references(args, sizes, load(args.net, args.weights, args.width))
        gc.collect()  # Caffe's blobs go before the exported model allocates its own
        return _compare(exporter, args, measured, path)[0]
    staging = _staging(path)
    try:
        caffe_net, staged = exporter.export(args.net, args.weights, staging / path.name,
                                            args.width)
        size_mb = sum(p.stat().st_size for p in _written(kind, staged)) / 1e6
        print(f"export: wrote {path} ({size_mb:.1f} MB with its weights)")
        status, comparisons = 0, None
        if not args.no_verify:
            measured = _references(args, sizes, caffe_net)
            del caffe_net
            gc.collect()  # Caffe's blobs go before the exported model allocates its own
            status, comparisons = _compare(exporter, args, measured, staged, shown=path)
        if status == 0:
            export_manifest(path).unlink(missing_ok=True)  # it vouched for the old export
            _publish(kind, staged, path)
            if comparisons is not None:
                record_export(path, _written(kind, path), _facts(kind, args, comparisons))
        else:
            print(f"export: error: nothing was left at {path} (the export failed verification); "
                  f"--no-verify writes an unverified one", file=sys.stderr)
        return status
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _facts(kind: str, args, comparisons: list) -> dict:
    """What an export's manifest records beside its files' digests."""
    tools = ("numpy",) + (("onnx", "onnxruntime") if kind == "onnx" else ("torch",))
    return {"format": kind, "net": args.net, "width": args.width,
            "weights": {"path": str(args.weights), "sha256": sha256(args.weights)},
            "verification": {"sizes": sorted({f"{h}x{w}" for (h, w) in
                                              (c.size for c in comparisons)}),
                             "max_rel": max(c.max_rel for c in comparisons),
                             "argmax_agreement": min(1 - c.argmax_differs
                                                     for c in comparisons),
                             "rtol": args.rtol, "min_agreement": args.min_agreement},
            "versions": {"python": sys.version.split()[0],
                         **{t: importlib.metadata.version(t) for t in tools}}}


def _references(args, sizes, caffe_net) -> tuple:
    """Caffe's outputs at every size: (references, input channels, seconds taken)."""
    start = time.time()
    channels = caffe_net.graph.inputs
    progress = _progress if sys.stderr.isatty() else None
    references = verify.reference_outputs(partial(forward, caffe_net.net), channels, sizes,
                                          args.seed, args.image, progress)
    return references, channels, time.time() - start


def _compare(exporter: Exporter, args, measured: tuple, path: Path,
             shown: Path | None = None) -> tuple[int, list]:
    """Run the export at `path` on the pictures Caffe saw (`measured`, _references'): 0
    within the tolerance, 1 over it (reported as `shown`, the export's final place), and
    the comparisons. An export whose manifest lists other digests is refused first."""
    kind, shown = exporter.kind, shown or path
    references, channels, caffe_seconds = measured
    progress = _progress if sys.stderr.isatty() else None
    start = time.time()
    for file in _written(kind, path):
        if file.exists():
            verify_export(file)
    try:
        runner = exporter.runner(path)
    except (OSError, RuntimeError, ValueError) as e:   # onnxruntime / torch cannot load it
        raise ExportError(f"{shown}: cannot be loaded ({str(e).strip().splitlines()[-1]})") \
            from None
    comparisons = verify.check(runner, references, channels, args.seed, args.image, progress)
    if progress:
        print(" " * 40, end="\r", file=sys.stderr)
    print(f"verify: Caffe ({caffe_seconds:.1f} s) vs {kind} ({time.time() - start:.1f} s); "
          f"tolerance: max rel ≤ {args.rtol:g}, argmax agreement ≥ "
          f"{100 * args.min_agreement:g}%")
    print(verify.HEADER)
    for c in comparisons:
        print(verify.format_row(c, args.rtol, args.min_agreement))
    failed = verify.failures(comparisons, args.rtol, args.min_agreement)
    if failed:
        print(f"export: FAILED verification of {shown}:", *failed, sep="\n  ", file=sys.stderr)
        return 1, comparisons
    print(f"verify: {shown} agrees with Caffe at every size")
    return 0, comparisons
