"""The demo's results: a Table-3-shaped markdown table, a Figure-4-shaped picture, the
model-zoo round trip of the FCN-8s and inference on a fresh picture."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from compare.cli import compare_files
from compare.forward import compare_forward
from core.fingerprint import bits_fields, fingerprint, pinned_differences, summary
from core.palette import colorize
from core.paper_claims import BY_KEY, judge, render
from core.paper_numbers import ITERATIONS
from data.synthetic import make_dataset
from evaluation.infer import load_segmenter, segment_files
from zoo.export import export_model
from zoo.fetch import import_weights
from zoo.serve import serve_directory

EXPECTED = Path(__file__).with_name("expected.json")  # the README's numbers, and CI's
METRICS = (("pixel acc.", "pixel_accuracy"), ("mean acc.", "mean_accuracy"),
           ("mean IU", "mean_iu"), ("f.w. IU", "fw_iu"))
FIGURE_NETS = (("FCN-32s", "voc-fcn32s"), ("FCN-16s", "voc-fcn16s"),
               ("FCN-8s", "voc-fcn8s"))


def say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def results_table(results: dict) -> str:
    lines = ["| net | " + " | ".join(m for m, _ in METRICS) + " |",
             "|---|" + "---:|" * len(METRICS)]
    for name, result in results.items():
        scores = result["test"]["label"]
        lines.append(f"| {name} | " + " | ".join(f"{100 * scores[key]:.1f}"
                                                for _, key in METRICS) + " |")
    background = next(iter(results.values()))["test"]["label"]["background_mean_iu"]
    lines.append(f"\nAll-background baseline mean IU: {100 * background:.1f}")
    return "\n".join(lines)


DEMO_CLAIMS = ("3-skips", "3-8s-gain", "transfer")   # core.paper_claims keys the demo checks


def expectations(results: dict) -> str:
    """The paper's findings this miniature should reproduce, each checked on its numbers by
    the paper report's own claims (core.paper_claims), in the paper's score shape."""
    # each row with the iteration of its test: the transfer claim compares at equal ones
    labels = {name: {**r["test"]["label"], ITERATIONS: r["test"]["iter"]}
              for name, r in results.items()}
    scores = {"3": {"rows": labels},
              "transfer": {"rows": {"FCN-32s": labels["FCN-32s"],
                                    "FCN-32s from scratch": labels["FCN-32s from scratch"]}}}
    return render([judge(BY_KEY[key], scores) for key in DEMO_CLAIMS], sentences=False)


def val_names(out: Path) -> tuple[Path, list[str]]:
    """The demo's VOC folder and its seg11valid picture names, in list order."""
    voc = out / "data" / "pascal" / "VOC2011"
    return voc, (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()


def figure(out: Path, width: float, results: dict, examples: int = 3) -> Path:
    """Input, ground truth and the 32s/16s/8s outputs for the first val pictures."""
    # matplotlib only where a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib only where a figure is drawn
    import matplotlib.pyplot as plt


    voc, names = val_names(out)
    names = names[:examples]
    segmenters = [(title, load_segmenter(net, Path(results[title if title != "FCN-8s"
                                                           else "FCN-8s staged"]["weights"]),
                                         width=width)) for title, net in FIGURE_NETS]
    columns = ["input", "ground truth"] + [title for title, _ in FIGURE_NETS]
    fig, axes = plt.subplots(len(names), len(columns), figsize=(2.2 * len(columns),
                                                                2.2 * len(names)))
    for row, name in enumerate(names):
        rgb = np.asarray(Image.open(voc / f"JPEGImages/{name}.jpg").convert("RGB"))
        truth = np.asarray(Image.open(voc / f"SegmentationClass/{name}.png"))
        panels = [rgb, colorize(truth)]
        panels += [colorize(next(iter(seg(rgb).values()))) for _, seg in segmenters]
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=10)
    fig.tight_layout()
    path = out / "figure.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def zoo_round_trip(out: Path, width: float, weights: Path) -> str:
    """Export the FCN-8s in the model-zoo convention, import it back through the zoo's
    fetch path (HTTP on 127.0.0.1, sha1 checked) and compare weights and outputs bit for
    bit."""
    # nets.generate imports Caffe: loaded on use, so this module imports without it
    from nets.generate import write_experiment

    nets = write_experiment("voc-fcn8s", out / "zoo-nets" / "voc-fcn8s", width=width,
                            data_root=str(out / "data"))
    folder = out / "zoo" / "voc-fcn8s"
    export_model(nets["deploy"].parent, weights, folder, force=True)
    caffemodel = next(folder.glob("*.caffemodel"))
    with serve_directory(folder) as url:
        readme = folder / "readme.md"
        text = readme.read_text()
        served = folder.parent / "served"
        served.mkdir(parents=True, exist_ok=True)
        (served / "readme.md").write_text(text.replace(
            next(line for line in text.splitlines() if line.startswith("caffemodel_url:")),
            f"caffemodel_url: {url}/{caffemodel.name}"))
        imported = import_weights(served, served / caffemodel.name)
    weights_check = compare_files(weights, imported)
    # and what the re-imported model computes: every blob of a forward pass on a val picture
    voc, names = val_names(out)
    picture = voc / "JPEGImages" / f"{names[0]}.jpg"
    deploy = folder / "deploy.prototxt"
    outputs_check = compare_forward(nets["deploy"], weights, deploy, imported, [picture])

    def verdict(comparison) -> str:
        return ("identical, bit for bit" if comparison.identical
                else f"DIFFERENT ({len(comparison.rows)} differing rows)")

    return (f"exported {folder} (readme.md, deploy/train/val/solver prototxt, caffemodel); "
            f"re-imported over HTTP with its sha1 checked.\n"
            f"weights: {verdict(weights_check)}\n"
            f"outputs (every blob of a forward pass on {picture.name}): "
            f"{verdict(outputs_check)}")


def stored_run(cfg, expected_path: Path = EXPECTED) -> tuple[str, dict] | None:
    """(name, entry) of the stored run made with these settings, if any."""
    if not expected_path.is_file():
        return None
    settings = json.loads(json.dumps(cfg.__dict__))
    runs = json.loads(expected_path.read_text())["runs"]
    return next(((n, run) for n, run in runs.items() if run["config"] == settings), None)


def reproduction(cfg, rows: dict, fp: dict, expected_path: Path = EXPECTED) -> str:
    """Whether these numbers are the stored ones for these settings (demo/expected.json),
    and if not, whether the BLAS fields that decide the bits explain it."""
    stored = stored_run(cfg, expected_path)
    if stored is None:
        return f"none stored for these settings in {expected_path.name}"
    name, run = stored
    if rows == run["results"]:
        return f"identical to the stored '{name}' run, bit for bit"
    differing = [row for row in rows if rows[row] != run["results"].get(row)]
    pinned = pinned_differences(run["fingerprint"], fp)
    if pinned:
        return (f"differ from the stored '{name}' run ({', '.join(differing)}), as expected: "
                f"this machine's numerics differ in " + ", ".join(
                    f"{k} ({a} stored, {b} here)" for k, a, b in pinned))
    return (f"DIFFERENT from the stored '{name}' run ({', '.join(differing)}) with the same "
            f"pinned numerics: something other than the machine changed the bits")


def store_expected(out: Path, cfg, name: str, expected_path: Path = EXPECTED) -> None:
    """Record a finished run's numbers as the expected ones for its settings, with the
    fingerprint fields a machine must share to reproduce them and the CPU they came from."""
    results = json.loads((out / "results.json").read_text())
    fp = results.pop("fingerprint")
    expected = json.loads(expected_path.read_text()) if expected_path.is_file() else {"runs": {}}
    expected["runs"][name] = {
        "config": json.loads(json.dumps(cfg.__dict__)), "results": results,
        "fingerprint": {k: fp.get(k) for k in bits_fields(fp)},
        "made_on": f"{fp['cpu_model']} ({fp['cpu_id']}), {fp['caffe_recipe']}"}
    expected_path.write_text(json.dumps(expected, indent=1) + "\n")


def write_report(out: Path, cfg, results: dict) -> Path:
    table = results_table(results)
    say("5/7 figure: input, ground truth, 32s, 16s, 8s")
    picture = figure(out, cfg.width, results)
    say("6/7 model-zoo export of FCN-8s, re-import, bit-for-bit comparison")
    try:
        zoo = zoo_round_trip(out, cfg.width, Path(results["FCN-8s staged"]["weights"]))
    except Exception as e:  # the report still says what failed
        zoo = f"zoo round trip failed: {e}"
    say("7/7 inference on a fresh synthetic picture")

    # a picture none of the nets saw, of an odd size
    new = make_dataset("voc", out / "inference" / "new-data", n_train=1, n_val=1,
                       size=(cfg.size + 37, cfg.size + 11), num_classes=cfg.classes,
                       seed=cfg.seed + 1)
    fresh = out / "inference" / "fresh.jpg"
    fresh.write_bytes(next((new / "pascal/VOC2011/JPEGImages").glob("*.jpg")).read_bytes())
    segmenter = load_segmenter("voc-fcn8s", Path(results["FCN-8s staged"]["weights"]),
                               width=cfg.width)
    segment_files(segmenter, [fresh], out / "inference")
    rows = {name: {k: v for k, v in r["test"].items() if k != "time"}  # the clock is no result
            for name, r in results.items()}
    fp = fingerprint(seed=cfg.seed)
    stored = f"Against the stored numbers (demo/expected.json): {reproduction(cfg, rows, fp)}"
    report = out / "report.md"
    report.write_text(
        "# FCN in miniature (synthetic data, CPU)\n\n"
        "Numbers from the demo's synthetic data and width-reduced nets, not PASCAL VOC.\n\n"
        f"{table}\n\nWhat the paper found, checked here:\n\n{expectations(results)}\n\n"
        f"![Figure 4 in miniature]({picture.name})\n\n"
        f"Model-zoo round trip of FCN-8s:\n\n```\n{zoo}\n```\n\n"
        f"Inference: {fresh.parent.name}/fresh.png, fresh_overlay.jpg\n\n"
        f"Settings: `{json.dumps(cfg.__dict__)}`\n\n"
        f"Numerics: {summary(fp)}\n\n"
        f"{stored}\n")
    (out / "results.json").write_text(json.dumps({**rows, "fingerprint": fp}, indent=1) + "\n")
    print(table)
    print(expectations(results))
    print(stored)    # the README's promise, said where the user looks, not only in the report
    return report
