"""`python -m zoo.export`: write a trained net as a Caffe Model Zoo folder.

The folder holds readme.md (YAML front matter that Caffe's download_model_binary.py
reads, and a description with the scores from the training log), the net definitions
(deploy, train/val or trainval/test), solver.prototxt, the caffemodel and a
caffemodel-url file like the release's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from core.caffe_files import (
    CaffeFileError,
    check_finite,
    check_shapes,
    ends_before,
    parse_prototxt,
    read_caffemodel,
    uncovered_layers,
)
from core.defaults import NETS_DIR
from core.download import file_digest
from core.errors import cli_main
from core.fingerprint import fingerprint, summary
from core.geometry import net_parameter_shapes
from core.manifest import verify_result_file
from core.outputs import Output, check_outputs
from zoo.errors import ZooError
from zoo.frontmatter import check_fields, render_readme
from zoo.scores import describe_scores, read_scores, summary_line

CAFFE_COMMIT = "99bd99795dcdf0b1d3086a8d67ab1782a8a08383"  # the BVLC commit the recipe builds
PHASE_NETS = ("train.prototxt", "val.prototxt", "trainval.prototxt", "test.prototxt")


def resolve_net_dir(net: str | Path) -> Path:
    """A folder with the experiment's prototxt: a path, or a name under nets/."""
    candidate = Path(net)
    if candidate.is_dir():
        return candidate
    named = NETS_DIR / str(net)
    if named.is_dir():
        return named
    known = sorted(p.name for p in NETS_DIR.iterdir() if (p / "deploy.prototxt").is_file()) \
        if NETS_DIR.is_dir() else []
    raise ZooError(f"{net}: neither a folder nor an experiment under {NETS_DIR} "
                   f"(known: {', '.join(known) or 'none'})")


def check_weights_cover_deploy(deploy: Path, weights: Path) -> None:
    """Every learnable layer of the deploy net must have blobs in the caffemodel, of the
    shapes the deploy net gives them.

    Caffe silently keeps its random initialisation for a layer the weights do not name,
    which would publish a model that scores at chance, and aborts on a blob of another shape.
    """
    definition, layers = parse_prototxt(deploy), read_caffemodel(weights)
    missing = uncovered_layers(definition, layers)
    if missing:
        name, kind = missing[0]
        last = ends_before(layers, [layer.name for layer in definition.layer],
                           [n for n, _ in missing])
        cut = (f" (the file ends after layer {last!r}: cut short between two layers)"
               if last else "")
        raise ZooError(f"{weights}: no parameters for layer {name!r} ({kind}) of {deploy}{cut}")
    try:
        check_shapes(net_parameter_shapes(definition), layers, str(weights), str(deploy))
    except CaffeFileError as e:
        raise ZooError(str(e)) from None


def export_model(net: str | Path, weights: Path | str, out: Path | str, *,
                 log: Path | str | None = None, url: str | None = None,
                 name: str | None = None, license: str = "BSD-2-Clause",
                 gist_id: str | None = None, caffemodel_name: str | None = None,
                 force: bool = False) -> Path:
    """Write the zoo folder `out`; return the path of its readme.md."""
    net_dir, weights, out = resolve_net_dir(net), Path(weights), Path(out)
    deploy, solver = net_dir / "deploy.prototxt", net_dir / "solver.prototxt"
    for required in (deploy, solver):
        if not required.is_file():
            raise ZooError(f"{net_dir}: has no {required.name}")
    phase_nets = [net_dir / n for n in PHASE_NETS if (net_dir / n).is_file()]
    if not phase_nets:
        raise ZooError(f"{net_dir}: has no train/val or trainval/test prototxt")
    for prototxt in (deploy, solver, *phase_nets):
        parse_prototxt(prototxt)
    check_weights_cover_deploy(deploy, weights)
    scores = read_scores(log) if log is not None else None
    if out.exists() and any(out.iterdir()) and not force:
        raise ZooError(f"{out}: exists and is not empty (pass --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)

    caffemodel = out / (caffemodel_name or weights.name)
    for source in (deploy, solver, *phase_nets):
        shutil.copyfile(source, out / source.name)
    shutil.copyfile(weights, caffemodel)
    sha1 = file_digest(caffemodel, "sha1")
    url = url or caffemodel.resolve().as_uri()
    experiment = name or net_dir.name
    description = f"FCN {experiment} for semantic segmentation, trained on BVLC Caffe"
    if scores:
        description += f"; {summary_line(scores)}"
    fields = {"name": f"{experiment} (fcn-caffe)", "caffemodel": caffemodel.name,
              "caffemodel_url": url, "license": license, "sha1": sha1,
              "caffe_commit": CAFFE_COMMIT, "description": description}
    if gist_id:
        fields["gist_id"] = gist_id
    fields["fingerprint"] = json.dumps(training_fingerprint(weights), sort_keys=True)
    check_fields(fields, out / "readme.md")
    (out / "caffemodel-url").write_text(url)
    readme = out / "readme.md"
    readme.write_text(render_readme(fields, _body(experiment, fields, phase_nets, scores)))
    return readme


def training_fingerprint(weights: Path) -> dict:
    """What decided the weights' bits: the fingerprint of the run that wrote them (the start
    record of a train.jsonl beside them or one folder up), else this process's, marked so."""
    for log in (weights.parent / "train.jsonl", weights.parent.parent / "train.jsonl"):
        if log.is_file():
            starts = [r for r in map(json.loads, filter(None, log.read_text().splitlines()))
                      if r.get("type") == "start" and "fingerprint" in r]
            if starts:
                return {**starts[-1]["fingerprint"], "recorded_by": str(log.name)}
    return {**fingerprint(weights=weights), "recorded_by": "export (no train.jsonl found)"}


def _body(experiment: str, fields: dict[str, str], phase_nets: list[Path],
          scores: dict[int, dict[str, float]] | None) -> str:
    nets = ", ".join(f"`{p.name}`" for p in phase_nets)
    parts = [
        f"# {experiment}",
        "",
        f"{fields['description']}.",
        "",
        "Fully Convolutional Networks for Semantic Segmentation (Shelhamer, Long, Darrell, "
        "PAMI 2016; Long, Shelhamer, Darrell, CVPR 2015).",
        "",
        f"Files: `deploy.prototxt` (inference), {nets} (learning), `solver.prototxt`, "
        f"`{fields['caffemodel']}` (sha1 `{fields['sha1']}`), `caffemodel-url`.",
        "",
    ]
    if scores:
        parts += [describe_scores(scores), ""]
    parts += [
        "Fetch the weights with Caffe's own script, from the Caffe source tree:",
        "",
        "    python scripts/download_model_binary.py <this folder>",
        "",
        "or with this project: `python -m zoo.fetch <this folder>`.",
        "",
        f"Caffe commit: {fields['caffe_commit']}. License: {fields['license']}.",
        "",
        f"Numerics: {summary(json.loads(fields['fingerprint']))} (the `fingerprint` field "
        "has all of it; `python -m compare.cli` names the fields two runs differ in).",
    ]
    return "\n".join(parts)


@cli_main("zoo-export", exit_code=2)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--net", required=True,
                        help="experiment name under nets/ (e.g. voc-fcn8s) or a folder of prototxt")
    parser.add_argument("--weights", required=True, type=Path, help="the trained caffemodel")
    parser.add_argument("--out", required=True, type=Path, help="the zoo folder to write")
    parser.add_argument("--log", type=Path, help="training log with score lines")
    parser.add_argument("--url", help="where the caffemodel will be published "
                                      "(default: a file:// URL of the exported copy)")
    parser.add_argument("--name", help="model name (default: the net folder's name)")
    parser.add_argument("--license", default="BSD-2-Clause")
    parser.add_argument("--gist-id", help="the GitHub gist the folder is published as")
    parser.add_argument("--caffemodel-name", help="file name of the exported weights")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    args = parser.parse_args(argv)
    inputs = {"the weights (WEIGHTS=/--weights)": args.weights, "the log (LOG=/--log)": args.log}
    if Path(args.net).exists():
        inputs["the net folder (NET=/--net)"] = Path(args.net)
    # an existing OUT is export_model's to refuse without --force; here: never over an input
    for line in check_outputs([Output("OUT=/--out", Path(args.out), folder=True)], inputs,
                              force=True):
        if args.force:
            print(f"zoo-export: {line}", file=sys.stderr)
    verify_result_file(args.weights)  # never publish a finished run's weights damaged since
    check_finite(args.weights)
    readme = export_model(args.net, args.weights, args.out, log=args.log, url=args.url,
                          name=args.name, license=args.license, gist_id=args.gist_id,
                          caffemodel_name=args.caffemodel_name, force=args.force)
    print(f"wrote {readme.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
