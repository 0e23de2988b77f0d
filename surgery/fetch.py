"""Download an ImageNet classifier from the Caffe Model Zoo and convert it to FCN weights.

    python -m surgery.fetch vgg16 [--dir ilsvrc-nets]   → ilsvrc-nets/vgg16-fcn.caffemodel

CaffeNet's and GoogLeNet's URLs and sha1 are read from the model-zoo readme.md files in the
Caffe source this project builds; VGG16 (Simonyan & Zisserman, 2014, the V1-format files
the release trained from) comes from its authors' published URLs. Offline, the error says
where to put the files by hand; the conversion then runs as usual.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import caffe

from data.download import DownloadError, fetch
from surgery.convert import convolutionalize

VGG16 = {
    "deploy_url": "https://gist.githubusercontent.com/ksimonyan/211839e770f7b538e2d8/raw/"
                  "ded9363bd93ec0c770134f4e387d8aaaaa2407ce/VGG_ILSVRC_16_layers_deploy.prototxt",
    "caffemodel_url": "http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/"
                      "VGG_ILSVRC_16_layers.caffemodel",
    "size": 553432081,
}
# name -> (model-zoo folder in Caffe's source, FCN weights name, layers to drop)
CLASSIFIERS = {
    "vgg16": (None, "vgg16-fcn", ("fc8", "prob")),
    "caffenet": ("bvlc_reference_caffenet", "alexnet-fcn", ("fc8", "prob")),
    "googlenet": ("bvlc_googlenet", "googlenet-fcn",
                  ("pool5/7x7_s1", "pool5/drop_7x7_s1", "loss3/classifier", "prob")),
}


def zoo_front_matter(folder: str) -> dict[str, str]:
    """The YAML front matter of a model-zoo readme.md in Caffe's source (key: value lines)."""
    readme = Path(caffe.__file__).resolve().parents[2] / "models" / folder / "readme.md"
    lines = readme.read_text().splitlines()
    if lines[:1] != ["---"] or "---" not in lines[1:]:
        raise ValueError(f"{readme}: no front matter")
    body = lines[1:lines.index("---", 1)]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in body)}


def fetch_and_convert(name: str, directory: Path) -> Path:
    folder, fcn_name, drop = CLASSIFIERS[name]
    directory.mkdir(parents=True, exist_ok=True)
    if folder is None:
        deploy = fetch(VGG16["deploy_url"], directory / "VGG_ILSVRC_16_layers_deploy.prototxt")
        weights = fetch(VGG16["caffemodel_url"], directory / "VGG_ILSVRC_16_layers.caffemodel",
                        size=VGG16["size"])
    else:
        meta = zoo_front_matter(folder)
        deploy = Path(caffe.__file__).resolve().parents[2] / "models" / folder / "deploy.prototxt"
        weights = fetch(meta["caffemodel_url"], directory / meta["caffemodel"], sha1=meta["sha1"])
    out = directory / f"{fcn_name}.caffemodel"
    report = convolutionalize(deploy, weights, out, drop=drop)
    print(f"{out}: {len(report.copied) + len(report.coerced)} layers", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("classifier", choices=sorted(CLASSIFIERS))
    parser.add_argument("--dir", type=Path, default=Path("ilsvrc-nets"))
    args = parser.parse_args(argv)
    try:
        print(fetch_and_convert(args.classifier, args.dir))
    except (DownloadError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
