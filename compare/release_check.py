"""`python -m compare.release_check`: the release's demo image through voc-fcn8s, bit for bit.

PASCAL VOC 2007_000129 goes through nets/voc-fcn8s/deploy.prototxt with the release's
fcn8s-heavy-pascal.caffemodel, preprocessed exactly as the release's infer.py; the
class map must equal the release's own output.png at every pixel. The project ships
none of these files: zoo/README.md says where to get them. The digests below (sha256)
are the release's, so a wrong or re-encoded file is caught before any comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from compare.errors import CompareError
from compare.release_infer import read_rgb, segment
from compare.segmentation import agreement_and_mean_iu, compare_segmentation, load_label_map
from compare.table import Comparison
from core.caffe_files import load_net
from core.defaults import NETS_DIR, RUNS_DIR
from core.download import DownloadError, fetch, file_digest, verify
from core.errors import cli_main
from core.palette import colorize
from core.weights import RELEASE_VOC_FCN8S

DEPLOY = NETS_DIR / RELEASE_VOC_FCN8S.experiment / "deploy.prototxt"
WEIGHTS_URL = RELEASE_VOC_FCN8S.source
WEIGHTS_SHA1 = RELEASE_VOC_FCN8S.sha1
DEMO_SHA256 = {
    "image": "657b36fed1ea84a44fde2ad641d52726947e9ff23652836273730f7b1ee0d7d8",
    "label": "baa7290b79283e4b4812436587af4585d5810da38752b4dfedf7b0ac910d6568",
    "output": "954592a652351795e2176a9a3cb4c709fc0a3ec2fda76aa1fd6863df221e6a85",
}
WHERE = ("the release's demo/ folder (image.jpg, label.png, output.png) in the "
         "fcn.berkeleyvision.org repository; see zoo/README.md")


def _check_file(role: str, path: Path, expected_sha256: str | None) -> None:
    if not path.is_file():
        raise CompareError(f"{role} {path}: not found; it comes from {WHERE}")
    if expected_sha256 is not None:
        got = file_digest(path, "sha256")
        if got != expected_sha256:
            raise CompareError(f"{role} {path}: sha256 {got} is not the release's "
                           f"{expected_sha256} (a different or re-encoded file)")


def ensure_weights(weights: Path, *, download: bool, sha1: str | None = WEIGHTS_SHA1) -> None:
    """The release weights are where given (and verified), or fetched when asked;
    otherwise the error says how to get them."""
    try:
        if weights.is_file():
            verify(weights, sha1=sha1, source="the release's fcn8s-heavy-pascal weights")
            return
        if not download:
            raise CompareError(f"{weights}: not found. Download {WEIGHTS_URL} (about 513 MB) to "
                           "that path, or rerun with --download (make release-check FETCH=1)")
        fetch(WEIGHTS_URL, weights, sha1=sha1)
    except DownloadError as e:
        raise CompareError(str(e)) from e


def render_segmentation(image: Path, weights: Path, deploy: Path, save: Path):
    """Segment `image` with the net and save the class map as a VOC-coloured RGB PNG."""
    net = load_net(deploy, weights)
    indices = segment(net, read_rgb(image))
    save.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(colorize(indices)).save(save)
    return indices


def release_check(image: Path, output: Path, weights: Path, *, label: Path | None = None,
                  deploy: Path = DEPLOY, save: Path | None = None, download: bool = False,
                  release_files: bool = True) -> Comparison:
    """Segment `image` and compare with the release's `output`; identical means bit for bit.

    With release_files (the default) every file must carry the release's digest;
    release_files=False compares other files (the tests do, with a small net).
    """
    digests = DEMO_SHA256 if release_files else {}
    _check_file("image", Path(image), digests.get("image"))
    _check_file("output", Path(output), digests.get("output"))
    if label is not None:
        _check_file("label", Path(label), digests.get("label"))
    ensure_weights(Path(weights), download=download,
                   sha1=WEIGHTS_SHA1 if release_files else None)
    save = Path(save) if save is not None else RUNS_DIR / "release-check" / "output.png"
    ours = render_segmentation(image, weights, deploy, save)
    result = compare_segmentation(save, output)
    result.kind = "release check"
    if label is not None:
        truth, _ = load_label_map(label)
        release, _ = load_label_map(output)
        for who, prediction in (("ours", ours), ("release", release)):
            if prediction.shape == truth.shape:
                accuracy, mean_iu, _ = agreement_and_mean_iu(truth, prediction.astype(truth.dtype))
                result.rows.append((f"vs label ({who})", f"pixel acc {accuracy:.4f}",
                                    f"mean IU {mean_iu:.4f}"))
    result.notes.append(f"our output: {save}")
    return result


@cli_main("release-check", exit_code=2)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compare.release_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, required=True, help="the release's image.jpg")
    parser.add_argument("--output", type=Path, required=True, help="the release's output.png")
    parser.add_argument("--weights", type=Path, required=True,
                        help="fcn8s-heavy-pascal.caffemodel (see --download)")
    parser.add_argument("--label", type=Path, help="the release's label.png (adds scores)")
    parser.add_argument("--deploy", type=Path, default=DEPLOY)
    parser.add_argument("--save", type=Path, help="where to write our output PNG")
    parser.add_argument("--download", action="store_true",
                        help=f"fetch the weights from {WEIGHTS_URL} if missing")
    parser.add_argument("--any-files", action="store_true",
                        help="skip the release digest checks (other images or nets)")
    args = parser.parse_args(argv)
    result = release_check(args.image, args.output, args.weights, label=args.label,
                           deploy=args.deploy, save=args.save, download=args.download,
                           release_files=not args.any_files)
    print(result.render())
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
