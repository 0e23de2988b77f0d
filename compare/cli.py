"""`python -m compare.cli A B`: exit 0 only when the two artifacts are identical.

The kind is detected from the files: prototxt (bytes, then parsed messages), caffemodel
(blob by blob), segmentation image (class indices per pixel), runs (run folders, train.jsonl
or results JSON: numbers, and the fingerprint fields that differ). With --net-a/--net-b and
--input, two nets run on the same inputs and every blob of the forward pass is compared.
A table explains any difference; exit status 1 means different, 2 means bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compare.caffemodel import compare_caffemodel
from compare.errors import CompareError
from compare.forward import compare_forward
from compare.prototxt import compare_prototxt
from compare.runs import compare_runs, is_run
from compare.segmentation import compare_segmentation
from compare.table import Comparison
from core.errors import cli_main

KINDS = ("prototxt", "caffemodel", "segmentation", "runs")
SUFFIX_KINDS = {".prototxt": "prototxt", ".pbtxt": "prototxt", ".caffemodel": "caffemodel",
                ".png": "segmentation", ".bmp": "segmentation", ".gif": "segmentation",
                ".tif": "segmentation", ".tiff": "segmentation"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def detect_kind(path: Path) -> str:
    """The artifact kind of one file, from its suffix or else its first bytes."""
    path = Path(path)
    if is_run(path):
        return "runs"
    if not path.is_file():
        raise CompareError(f"{path}: no such file")
    if path.suffix.lower() in SUFFIX_KINDS:
        return SUFFIX_KINDS[path.suffix.lower()]
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(PNG_MAGIC):
        return "segmentation"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "caffemodel"
    return "prototxt" if text.strip() else "caffemodel"


def compare_files(a: Path, b: Path, *, kind: str | None = None,
                  semantic: bool = False) -> Comparison:
    """Compare two files of one kind (detected unless given)."""
    kind_a, kind_b = (kind, kind) if kind else (detect_kind(a), detect_kind(b))
    if kind_a != kind_b:
        raise CompareError(f"cannot compare {a} ({kind_a}) with {b} ({kind_b}); "
                       "pass --kind if the detection is wrong")
    if kind_a == "prototxt":
        return compare_prototxt(a, b, semantic=semantic)
    if kind_a == "runs":
        return compare_runs(a, b)
    if kind_a == "caffemodel":
        return compare_caffemodel(a, b)
    return compare_segmentation(a, b)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compare.cli", description=__doc__.splitlines()[0],
        epilog="Examples: compare a.prototxt b.prototxt | compare a.caffemodel b.caffemodel | "
               "compare out.png release/output.png | compare runs/a runs/b | "
               "compare a/score.json b/score.json | compare --net-a deploy.prototxt "
               "--weights-a a.caffemodel --weights-b b.caffemodel --input image.jpg")
    parser.add_argument("a", nargs="?", type=Path, help="first file")
    parser.add_argument("b", nargs="?", type=Path, help="second file")
    parser.add_argument("--kind", choices=KINDS, help="skip detection")
    parser.add_argument("--semantic", action="store_true",
                        help="prototxt: equal parsed messages count as identical")
    forward = parser.add_argument_group("two nets on the same inputs")
    forward.add_argument("--net-a", type=Path, help="net definition A")
    forward.add_argument("--weights-a", type=Path, help="caffemodel for net A")
    forward.add_argument("--net-b", type=Path, help="net definition B (default: net A)")
    forward.add_argument("--weights-b", type=Path, help="caffemodel for net B")
    forward.add_argument("--input", type=Path, nargs="+", default=[],
                         help="images (preprocessed as the release's infer.py), .npy or .npz")
    return parser


@cli_main("compare", exit_code=2)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.net_a is not None:
        if args.a is not None:
            parser.error("give either two files or --net-a/--net-b, not both")
        result = compare_forward(args.net_a, args.weights_a, args.net_b or args.net_a,
                                 args.weights_b, args.input)
    else:
        if args.a is None or args.b is None:
            parser.error("two files to compare, or --net-a with --input")
        result = compare_files(args.a, args.b, kind=args.kind, semantic=args.semantic)
    print(result.render())
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
