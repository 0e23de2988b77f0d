"""Segment pictures with a trained FCN: `python -m evaluation.infer`.

    python -m evaluation.infer --net voc-fcn8s --weights W.caffemodel IMAGE|FOLDER ... --out DIR

Whole images of any size: the deploy net's input is reshaped to each picture, and the
net's crop layers bring the output back to the input's H×W. For each picture, DIR gets
<name>.png (the class map, a palette PNG in VOC colours) and <name>_overlay.jpg; a
second head (SIFT Flow's geometry) adds <name>_<head>.png. Prints the time per image.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core import arguments
from core.caffe_files import check_buildable, check_builds, check_finite, read_prototxt
from core.catalog import DATASETS
from core.errors import cli_main, reason
from core.images import preprocess
from core.outputs import Output, check_outputs
from core.palette import overlay, save_label_png, save_picture
from evaluation.runtime import OutOfMemory, memory_limit, reshape_checked, select_device
from evaluation.score import load_covering
from evaluation.tiling import default_budget, label_maps, parse_budget

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff")

def list_images(inputs: list[Path]) -> list[Path]:
    """Image files named directly or found (sorted, not recursively) in named folders."""
    images = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{item}: no images ({', '.join(IMAGE_SUFFIXES)})")
            images += found
        elif item.is_file():
            images.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such image or folder")
    return images


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.width * image.height > Image.MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: {image.width}×{image.height} pixels, more than "
                                 f"the {Image.MAX_IMAGE_PIXELS} a picture may have here "
                                 f"(a decompression bomb, or a picture to scale down first)")
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as e:
        raise ValueError(f"{path}: {e} (scale the picture down first)") from None
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({reason(e)})") from None


@dataclass
class Segmenter:
    """A deploy net with weights, ready to label whole images of any size."""
    net: object
    input_blob: str
    score_blobs: tuple[str, ...]
    mean: np.ndarray   # in the dtype of the dataset's data layer (core.images)
    net_param: object = None   # the deploy NetParameter: with `memory`, tiles when needed
    memory: int | None = None  # bytes a forward may take (evaluation.tiling); None: no tiling
    memory_limit: int | None = None  # without tiling: refuse beyond this (None: what is free)

    def __call__(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Class maps (H×W uint8) by score blob for one RGB picture."""
        if self.memory is not None:

            return label_maps(self.net, self.net_param, self.input_blob,
                              preprocess(rgb, self.mean), self.score_blobs, self.memory)

        reshape_checked(self.net, *rgb.shape[:2], f"a {rgb.shape[0]}×{rgb.shape[1]} picture",
                        self.memory_limit)  # refused before Caffe's allocator aborts
        self.net.blobs[self.input_blob].data[...] = preprocess(rgb, self.mean)
        self.net.forward()
        out = {}
        for name in self.score_blobs:
            scores = self.net.blobs[name].data[0]
            if scores.shape[1:] != rgb.shape[:2]:
                raise RuntimeError(f"{name} is {scores.shape[1]}×{scores.shape[2]} for a "
                                   f"{rgb.shape[0]}×{rgb.shape[1]} input: the net's crop "
                                   f"layers do not restore the input size")
            out[name] = scores.argmax(0).astype(np.uint8)
        return out


def load_segmenter(net: str, weights: Path, *, width: float = 1.0,
                   mean: tuple[float, float, float] | None = None,
                   memory: int | None = None,
                   allow_missing: tuple[str, ...] = ()) -> Segmenter:
    """`net`: an experiment name (its deploy net is generated at `width`) or a deploy
    prototxt path (then give `mean`, default VOC's). The input is what the dataset's data
    layer feeds the net, bit for bit (core.images, the catalog's mean and its dtype).
    `memory`: bytes one forward may take; larger pictures go in exact tiles (evaluation.tiling).
    The weights must cover every learned layer except those in `allow_missing`."""
    # Caffe loads on use, so this module imports without it
    import caffe

    from nets.experiments import EXPERIMENTS

    if net in EXPERIMENTS:
        # nets.generate imports Caffe: loaded on use, so this module imports without it
        from nets.generate import write_experiment

        exp = EXPERIMENTS[net]
        if len(exp.input_blobs) != 1:
            raise ValueError(f"{net} takes {len(exp.input_blobs)} inputs "
                             f"({', '.join(exp.input_blobs)}); infer feeds one RGB image")
        with tempfile.TemporaryDirectory(prefix="fcn-infer-") as tmp:
            deploy = write_experiment(net, tmp, width=width)["deploy"]
            model = caffe.Net(str(deploy), caffe.TEST)
            net_param = read_prototxt(deploy)
        input_blob, scores = exp.input_blobs[0], exp.score_blobs
        dataset, mean_top = DATASETS[exp.dataset], exp.modalities[0]
    else:
        path = Path(net)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: neither an experiment name nor a prototxt "
                                    f"(experiments: {', '.join(EXPERIMENTS)})")

        net_param = read_prototxt(path)  # a clear error for a file that is not a net
        check_buildable(net_param, str(path))
        check_builds(path)  # a clear error, not an abort, for a net Caffe cannot build
        model = caffe.Net(str(path), caffe.TEST)
        if len(model.inputs) != 1:
            raise ValueError(f"{path} has inputs {list(model.inputs)}; infer feeds one")
        input_blob = model.inputs[0]
        scores = tuple(b for b in model.outputs if b.startswith("score")) or \
            tuple(model.outputs[:1])
        dataset, mean_top = DATASETS["voc"], "data"
    if model.blobs[input_blob].data.shape[1] != 3:
        raise ValueError(f"input {input_blob} has {model.blobs[input_blob].data.shape[1]} "
                         f"channels; infer feeds RGB pictures")
    # a prototxt given by path has its own widths: no WIDTH to tell a mismatch by
    load_covering(model, weights, allow_missing, width if net in EXPERIMENTS else None)
    mean_array = (dataset.mean(mean_top) if mean is None
                  else np.array(mean, dtype=dataset.mean_dtype))
    return Segmenter(model, input_blob, tuple(scores), mean_array, net_param, memory)


def segment_files(segmenter: Segmenter, images: list[Path], out_dir: Path,
                  alpha: float = 0.5) -> list[float]:
    """Label each image into out_dir; returns seconds per image (the net's forward and
    argmax, not the file reading or writing)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds = []
    first = segmenter.score_blobs[0]
    for path in images:
        rgb = read_rgb(path)
        began = time.perf_counter()
        labels = segmenter(rgb)
        seconds.append(time.perf_counter() - began)
        save_label_png(labels[first], out_dir / f"{path.stem}.png")
        for name in segmenter.score_blobs[1:]:
            save_label_png(labels[name], out_dir / f"{path.stem}_{name.removeprefix('score_')}.png")
        save_picture(Image.fromarray(overlay(rgb, labels[first], alpha)),
                     out_dir / f"{path.stem}_overlay.jpg", "writing an overlay picture",
                     quality=90)
        print(f"{path.name}: {rgb.shape[0]}×{rgb.shape[1]} in {1000 * seconds[-1]:.1f} ms",
              flush=True)
    return seconds


@cli_main("infer", also=(ValueError, OSError, RuntimeError, MemoryError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Label pictures with an FCN: palette PNG "
                                                 "and overlay JPEG per picture, any size.")
    parser.add_argument("inputs", nargs="+", type=Path, help="images and/or folders of images")
    parser.add_argument("--net", required=True,
                        help="experiment name (e.g. voc-fcn8s) or a deploy prototxt")
    parser.add_argument("--weights", required=True, type=Path, help="trained caffemodel")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--width", type=arguments.width(), default=1.0,
                        help="width multiplier the weights were trained with")
    parser.add_argument("--mean", type=float, nargs=3, metavar=("B", "G", "R"),
                        help="BGR mean to subtract (default: the dataset's)")
    parser.add_argument("--gpu", type=int, metavar="N", help="GPU id (default: CPU)")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    parser.add_argument("--allow-missing", action="append", default=[], metavar="LAYER",
                        help="a layer the weights may lack (stays at its initial values)")
    parser.add_argument("--memory", help="memory one forward may take, e.g. 6G (default: half "
                        "of what is available); larger pictures go in exact tiles")
    parser.add_argument("--force", action="store_true",
                        help="write into an --out folder that already holds files")
    args = parser.parse_args(argv)

    inputs = {"the weights (WEIGHTS=/--weights)": args.weights,
              **{f"the input {path}": path for path in args.inputs}}
    if Path(args.net).exists():
        inputs["the net (NET=/--net)"] = Path(args.net)
    # before any work, not after it
    for line in check_outputs([Output("OUT=/--out", args.out, folder=True)], inputs,
                              force=args.force):
        print(f"infer: {line}", file=sys.stderr)
    check_finite(args.weights)
    device = select_device(args.gpu)
    images = list_images(args.inputs)
    memory = parse_budget(args.memory) if args.memory else default_budget()
    limit, words = memory_limit()
    if memory > limit:  # a budget the process cannot have: Caffe's allocator would abort
        raise OutOfMemory(f"MEMORY=/--memory {args.memory} is more than the "
                          f"{limit / 2**30:.2f} GiB {words}; give a smaller budget, or raise "
                          f"the limit (ulimit -v)")
    segmenter = load_segmenter(args.net, args.weights, width=args.width,
                               mean=tuple(args.mean) if args.mean else None, memory=memory,
                               allow_missing=tuple(args.allow_missing))
    seconds = segment_files(segmenter, images, args.out, args.alpha)
    later = seconds[1:] or seconds
    print(f"{len(seconds)} image(s) on {device}: first {1000 * seconds[0]:.1f} ms, then "
          f"{1000 * float(np.mean(later)):.1f} ms per image on average; outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
