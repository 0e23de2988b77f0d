"""Download an ImageNet classifier and convert it to FCN base weights.

    python -m surgery.fetch vgg16 [--dir ilsvrc-nets]   → ilsvrc-nets/vgg16-fcn.caffemodel

CaffeNet's and BVLC GoogLeNet's deploy definitions come from the model zoo folders of the
Caffe source this project builds, their caffemodel URL and sha1 from those folders'
readme.md. VGG16 is the 2014 release the FCN paper starts from (Simonyan & Zisserman, V1
format), from its authors' published URLs. Files already in the folder are used (and
verified) instead of downloaded; offline, the error says where to put them by hand.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import caffe

from core.defaults import BASE_WEIGHTS_DIR, REPO
from core.download import DownloadError, fetch
from core.errors import cli_main
from core.weights import base_weights_path
from surgery.convert import convolutionalize
from surgery.errors import SurgeryError


@dataclass(frozen=True)
class Remote:
    """A file to download and how to check it."""

    url: str
    name: str
    md5: str | None = None
    sha1: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Classifier:
    """An ImageNet classifier and the FCN base weights made from it."""

    fcn_name: str               # writes <dir>/<fcn_name>.caffemodel (+ .prototxt)
    drop: tuple[str, ...]       # its classification layers
    check_net: str              # an FCN definition (from the repo root) the result must fit
    zoo_folder: str | None = None   # Caffe source models/<folder>: deploy + readme.md
    deploy: Remote | None = None    # else: downloaded definition and weights
    caffemodel: Remote | None = None


VGG16_GIST = ("https://gist.githubusercontent.com/ksimonyan/211839e770f7b538e2d8/raw/"
              "0067c9b32f60362c74f4c445a080beed06b07eb3/")
CLASSIFIERS = {
    "vgg16": Classifier(
        "vgg16-fcn", ("fc8",), "nets/voc-fcn32s/deploy.prototxt",
        deploy=Remote(VGG16_GIST + "VGG_ILSVRC_16_layers_deploy.prototxt",
                      "VGG_ILSVRC_16_layers_deploy.prototxt",
                      md5="c70550f8203a4eaae53d7c39ef34c92d"),
        caffemodel=Remote("http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/"
                          "VGG_ILSVRC_16_layers.caffemodel", "VGG_ILSVRC_16_layers.caffemodel",
                          md5="441315b0ff6932dbfde97731be7ca852", size=553432081)),
    "caffenet": Classifier("alexnet-fcn", ("fc8",), "nets/voc-fcn-alexnet/deploy.prototxt",
                           zoo_folder="bvlc_reference_caffenet"),
    "googlenet": Classifier(
        "googlenet-fcn", ("pool5/7x7_s1", "loss3/classifier"),  # the paper drops both
        "nets/voc-fcn-googlenet/deploy.prototxt", zoo_folder="bvlc_googlenet"),
}


def caffe_models_dir() -> Path:
    """models/ of the Caffe source pycaffe comes from (the model zoo's readme files)."""
    here = Path(caffe.__file__).resolve()
    for root in here.parents[1:4]:
        if (root / "models" / "bvlc_reference_caffenet").is_dir():
            return root / "models"
    raise SurgeryError(f"no models/ folder of the Caffe source above {here}")


def zoo_front_matter(readme: Path) -> dict[str, str]:
    """The `key: value` front matter between the leading `---` lines of a zoo readme.md."""
    lines = readme.read_text().splitlines()
    if lines[:1] != ["---"] or "---" not in lines[1:]:
        raise SurgeryError(f"{readme}: no front matter between '---' lines")
    fields = {}
    for line in lines[1:lines.index("---", 1)]:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def zoo_remote(folder: Path) -> Remote:
    meta = zoo_front_matter(folder / "readme.md")
    missing = [k for k in ("caffemodel", "caffemodel_url", "sha1") if k not in meta]
    if missing:
        raise SurgeryError(f"{folder / 'readme.md'}: front matter lacks {missing}")
    name = meta["caffemodel"]
    return Remote(meta["caffemodel_url"], name if name.endswith(".caffemodel")
                  else name + ".caffemodel", sha1=meta["sha1"])


def _get(remote: Remote, directory: Path, *, progress: bool) -> Path:
    return fetch(remote.url, directory / remote.name, md5=remote.md5, sha1=remote.sha1,
                 size=remote.size, progress=progress)


def fetch_and_convert(classifier: Classifier, directory: Path | str, *,
                      models_dir: Path | None = None, progress: bool = True,
                      verbose: bool = True) -> Path:
    """Download `classifier` into `directory` (unless there and verified), convert it, and
    check the result fits its FCN net. Returns the FCN base caffemodel's path."""
    directory = Path(directory)
    if classifier.zoo_folder:
        folder = (models_dir or caffe_models_dir()) / classifier.zoo_folder
        deploy = folder / "deploy.prototxt"
        weights = _get(zoo_remote(folder), directory, progress=progress)
    else:
        local = directory / classifier.deploy.name
        # A copy put here by hand is taken as it is: the conversion checks it against the
        # weights, which are verified by checksum.
        deploy = local if local.is_file() else _get(classifier.deploy, directory,
                                                    progress=progress)
        weights = _get(classifier.caffemodel, directory, progress=progress)
    out = base_weights_path(classifier.fcn_name, directory)
    check = REPO / classifier.check_net
    if not check.is_file():
        print(f"note: {check} not found; the result is not checked against it",
              file=sys.stderr)
    convolutionalize(deploy, weights, out, drop=classifier.drop,
                     check_against=check if check.is_file() else None, verbose=verbose)
    return out


def files_needed(classifier: Classifier, directory: Path) -> list[str]:
    """'path  ← url' for each file a classifier downloads (for the offline message)."""
    remotes = ([zoo_remote(caffe_models_dir() / classifier.zoo_folder)]
               if classifier.zoo_folder else [classifier.deploy, classifier.caffemodel])
    return [f"{directory / r.name}  ← {r.url}" for r in remotes]


@cli_main("surgery-fetch")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m surgery.fetch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("classifier", choices=sorted(CLASSIFIERS))
    parser.add_argument("--dir", type=Path, default=BASE_WEIGHTS_DIR,
                        help="where the downloads and the FCN weights go (default ilsvrc-nets)")
    args = parser.parse_args(argv)
    classifier = CLASSIFIERS[args.classifier]
    try:
        print(fetch_and_convert(classifier, args.dir))
    except DownloadError as e:
        raise DownloadError(
            f"{e}\nfiles this needs (put them there by hand if this machine is offline):\n  "
            + "\n  ".join(files_needed(classifier, args.dir))) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
