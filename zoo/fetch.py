"""`python -m zoo.fetch`: import a model's weights from a zoo folder or a caffemodel-url file.

A zoo folder's readme.md names the caffemodel, its URL and its sha1: the download is
resumable and verified (core/download.py). The release's caffemodel-url files carry only a
URL; a digest can be given on the command line, and the file is always checked to be a
caffemodel that covers the deploy net beside it, every learned layer with blobs of the
shapes that net gives them (with or without a digest).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

from core.caffe_files import read_caffemodel
from core.download import DownloadError, fetch, file_digest
from core.errors import cli_main
from core.outputs import Output, check_outputs
from core.weights import PUBLISHED
from zoo.errors import ZooError
from zoo.export import check_weights_cover_deploy
from zoo.frontmatter import parse_readme


def read_url_file(path: Path) -> str:
    """The single URL in a release-style caffemodel-url file."""
    words = path.read_text(encoding="utf-8", errors="replace").split()
    if len(words) != 1 or urlparse(words[0]).scheme not in ("http", "https", "file"):
        raise ZooError(f"{path}: expected one http(s) or file URL, found {len(words)} words")
    return words[0]


def import_weights(source: Path | str, dest: Path | str | None = None, *,
                   sha1: str | None = None, sha256: str | None = None,
                   progress: bool = True) -> Path:
    """Fetch (or re-verify) the weights that `source` describes; return their path.

    `source` is a zoo folder, its readme.md, a folder holding a caffemodel-url, or a
    caffemodel-url file. An existing verified copy at the destination is kept.
    """
    source = Path(source)
    if source.is_dir():
        folder, readme, url_file = source, source / "readme.md", source / "caffemodel-url"
    elif source.name == "readme.md":
        folder, readme, url_file = source.parent, source, None
    else:
        folder, readme, url_file = source.parent, None, source
    if readme is not None and readme.is_file():
        fields = parse_readme(readme)
        url, name = fields["caffemodel_url"], fields["caffemodel"]
        if sha1 and sha1.lower() != fields["sha1"]:
            raise ZooError(f"{readme}: sha1 {fields['sha1']} differs from the given {sha1}")
        sha1 = fields["sha1"]
    elif url_file is not None and url_file.is_file():
        url = read_url_file(url_file)
        name = Path(urlparse(url).path).name or "weights.caffemodel"
        if not sha1 and not sha256:
            # the release's caffemodel-url files carry no digest: take a published one
            sha1 = PUBLISHED[url].sha1 if url in PUBLISHED else None
    else:
        raise ZooError(f"{source}: neither a zoo folder (readme.md) nor a caffemodel-url file")
    target = Path(dest) if dest is not None else folder / name
    if target.is_dir():
        target = target / name
    deploy = folder / "deploy.prototxt"
    # the download never replaces the files it is checked against (a verified copy already
    # at DEST is the fetch's own: re-verified, not refused)
    check_outputs([Output("DEST=/--dest", target, resumable=True)],
                  {"the zoo readme": readme, "the caffemodel-url file": url_file,
                   "the deploy net": deploy})

    def whole_and_fitting(path: Path) -> str:
        """The structural check of a download with no known digest, before it is kept: it
        parses, and covers every learnable layer of the deploy net beside it with blobs of
        the shapes the net gives them. Without a
        deploy net, a file cut at a layer boundary would parse whole: not called good."""
        read_caffemodel(path)  # its errors are ValueErrors: the download is refused
        if not deploy.is_file():
            raise ValueError(f"no digest is known and no {deploy.name} in {folder} to check "
                             f"the weights against (a file cut between two layers parses "
                             f"whole); give its published digest (--sha1/--sha256) or put the "
                             f"model's {deploy.name} there")
        check_weights_cover_deploy(deploy, path)
        return f"caffemodel parses to its end and covers {deploy.name}"

    try:
        fetch(url, target, sha1=sha1, sha256=sha256, check=whole_and_fitting,
              progress=progress)
    except DownloadError as e:
        raise ZooError(str(e)) from e
    read_caffemodel(target)
    if deploy.is_file():
        check_weights_cover_deploy(deploy, target)
    return target


@cli_main("zoo-fetch", exit_code=2)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.fetch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path,
                        help="zoo folder, readme.md, or a release caffemodel-url file")
    parser.add_argument("--dest", type=Path, help="file or folder for the weights "
                                                  "(default: beside the source)")
    parser.add_argument("--sha1", help="expected sha1 (a zoo readme already gives one)")
    parser.add_argument("--sha256", help="expected sha256")
    args = parser.parse_args(argv)
    path = import_weights(args.source, args.dest, sha1=args.sha1, sha256=args.sha256)
    print(f"{path}  sha1 {file_digest(path, 'sha1')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
