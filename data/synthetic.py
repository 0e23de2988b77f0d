"""Small datasets in each real on-disk layout, with content a segmentation net can learn.

For tests and the demo: real JPEG / PNG / .mat files where the real datasets keep them,
and the split lists the data layers read. Each class has its own colour and stripe
texture; scenes mix large shapes with fine structure (1–3 px bars, small blobs) that a
stride-32 prediction cannot draw but a stride-8 one can; VOC-style labels outline every
object with a void (255) band. Everything is a function of `seed`: same seed, same bytes.

    python -m data.synthetic voc datasets-synth --n-train 20 --n-val 5
"""

from __future__ import annotations

import argparse
import colorsys
import io
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from scipy import ndimage

from core.catalog import (
    DATASETS,
    FOLDERS,
    PASCALCONTEXT_CLASSES,
    PASCALCONTEXT_FULL_NAMES,
    PASCALCONTEXT_FULL_SPELLING,
    PASCALCONTEXT_TASK_NAMES,
    SIFTFLOW_SEMANTIC_CLASSES,
    VOID,
)
from core.errors import cli_main
from core.outputs import Output, check_outputs
from core.palette import voc_palette
from data.splits import derive_seg11valid

SIFTFLOW_SCENES = ("coast", "forest", "highway", "insidecity", "mountain", "opencountry",
                   "street", "tallbuilding")
JPEG_QUALITY = 92
# The file layouts written here are the ones the data layers read (core.catalog).
SBDD_LAYOUT = DATASETS["voc"].train_layer.layout
VOC_LAYOUT = DATASETS["voc"].test_layer.layout
NYUD_LAYOUT = DATASETS["nyud"].train_layer.layout
SIFTFLOW_LAYOUT = DATASETS["siftflow"].train_layer.layout
PASCALCONTEXT_LAYOUT = DATASETS["pascalcontext"].train_layer.layout


@dataclass
class Scene:
    rgb: np.ndarray        # H×W×3 uint8
    label: np.ndarray      # H×W int: 0 = background, k = class k
    outline: np.ndarray    # H×W bool: background pixels touching an object (VOC-style void)


# --- appearance -----------------------------------------------------------------------------
def class_colour(k: int) -> np.ndarray:
    """A fixed colour per class (spread around the hue circle); class 0 is a dull grey-blue."""
    if k == 0:
        return np.array([110.0, 120.0, 135.0])
    hue = (k * 0.618034) % 1.0
    saturation = 0.55 + 0.4 * ((k * 7) % 5) / 4
    value = 0.55 + 0.4 * ((k * 3) % 4) / 3
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value)) * 255


def class_texture(k: int, h: int, w: int) -> np.ndarray:
    """Stripes whose angle and period identify the class (a second cue beside colour)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = (k * 2.399963) % np.pi
    period = 4 + (k * 5) % 9
    return 22.0 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)


def paint(rng: np.random.Generator, h: int, w: int, label: np.ndarray,
          looks: dict[int, int] | None = None,
          tint: tuple[int, int, float] | None = None) -> np.ndarray:
    """Render a label map: each class its colour and texture, plus light noise and shading.
    `looks` paints a class as another one (k → the class it looks like); `tint`
    (background, scene class, share) moves the background's colour that share of the way
    toward the scene class's: context that predicts the class."""
    canvas = np.zeros((h, w, 3), np.float32)
    for k in np.unique(label):
        where = label == k
        shown = looks.get(int(k), int(k)) if looks else int(k)
        colour = class_colour(shown) + rng.normal(0, 6, 3)
        if tint is not None and k == tint[0]:
            colour = colour + tint[2] * (class_colour(tint[1]) - class_colour(tint[0]))
        texture = class_texture(shown, h, w)[where]
        canvas[where] = colour[None, :] + texture[:, None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shading = 18 * (yy / h - 0.5) + 10 * np.sin(xx / max(w, 1) * np.pi * rng.uniform(0.5, 2))
    canvas += shading[..., None] + rng.normal(0, 5, (h, w, 3))
    return np.clip(canvas, 0, 255).astype(np.uint8)


# --- geometry ---------------------------------------------------------------------------------
def shape_mask(rng: np.random.Generator, h: int, w: int, kind: str,
               centre: tuple[float, float] | None = None) -> np.ndarray:
    """One object's mask; its centre drawn within the picture's middle 70 %, or `centre`
    (row, column) where given (blobs scatter anywhere either way)."""
    yy, xx = np.mgrid[0:h, 0:w]
    if centre is None:
        cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    else:
        cy, cx = centre
    if kind == "disc":
        r = rng.uniform(0.12, 0.28) * min(h, w)
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == "box":
        bh, bw = rng.uniform(0.15, 0.4) * h, rng.uniform(0.15, 0.4) * w
        return (abs(yy - cy) <= bh / 2) & (abs(xx - cx) <= bw / 2)
    if kind == "bar":  # thin and long: below what a stride-32 output can resolve
        width = rng.uniform(1.0, 3.0)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.4, 0.8) * max(h, w)
        along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        across = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
        return (abs(across) <= width / 2) & (abs(along) <= length / 2)
    if kind == "blobs":  # a few small blobs of one class
        mask = np.zeros((h, w), bool)
        for _ in range(int(rng.integers(2, 5))):
            by, bx = rng.uniform(0.05, 0.95) * h, rng.uniform(0.05, 0.95) * w
            r = rng.uniform(1.5, 4.0)
            mask |= (yy - by) ** 2 + (xx - bx) ** 2 <= r * r
        return mask
    raise ValueError(kind)


@dataclass(frozen=True)
class Style:
    """What a scene holds beyond PLAIN's 2–5 objects of random classes and kinds (the tests'
    and the demo's scenes). FINDINGS (`make paper MINI=1`) gives the paper's findings a
    chance to show: one class dominates each scene (3 objects in 4 are of it) and tints its
    background (context that predicts the class: Table 8's BG-only row), each class has its
    own kind of shape 4 times in 5 (the Shape row), and NYUD's second object class is
    painted like its first while its third stands at the first's depth (colour and depth
    each carry what the other lacks: Table 5's fusion)."""
    scene_class: bool = False
    context: float = 0.0      # share of the way the background moves to the class's colour
    look_alike: bool = False  # NYUD only
    voc2011_share: float = 1.0  # VOC 2011 train: this share of SBD train outside VOC val
                                # (FINDINGS: the real sets' 1,112 of 8,498, for "more data")


PLAIN = Style()
FINDINGS = Style(scene_class=True, context=0.3, look_alike=True, voc2011_share=1112 / 8498)
SHAPE_OF_CLASS = ("disc", "box", "bar")   # FINDINGS: the i-th class's own kind
CLASSIFIED_KINDS = ("disc", "box", "bar")  # the objects of a classification picture


def findings_scene(rng: np.random.Generator, h: int, w: int, classes: list[int],
                   background: int, style: Style, looks: dict[int, int]) -> Scene:
    """3–5 objects (about 3/4 of the pixels stay background, PASCAL's share), 3 in 4 of
    the scene's class, each of its class's kind 4 times in 5
    (else any kind, small blobs included); the background tinted toward the scene class."""
    label = np.full((h, w), background, np.int32)
    main = classes[int(rng.integers(len(classes)))]
    kinds = ("disc", "box", "bar", "blobs")
    for _ in range(int(rng.integers(3, 6))):
        k = main if rng.random() < 0.75 else classes[int(rng.integers(len(classes)))]
        kind = (SHAPE_OF_CLASS[classes.index(k) % len(SHAPE_OF_CLASS)]
                if rng.random() < 0.8 else kinds[int(rng.integers(len(kinds)))])
        label[shape_mask(rng, h, w, kind)] = k
    objects = label != background
    outline = ndimage.binary_dilation(objects, iterations=1) & ~objects
    tint = (background, main, style.context) if style.context else None
    return Scene(paint(rng, h, w, label, looks=looks, tint=tint), label, outline)


def make_scene(rng: np.random.Generator, h: int, w: int, classes: list[int],
               background: int = 0, style: Style = PLAIN,
               looks: dict[int, int] | None = None) -> Scene:
    """A background plus 2–5 objects of the given classes, large shapes and fine ones
    (FINDINGS: findings_scene)."""
    if style.scene_class:
        return findings_scene(rng, h, w, classes, background, style, looks or {})
    label = np.full((h, w), background, np.int32)
    kinds = ("disc", "box", "bar", "blobs")
    for n in range(int(rng.integers(2, 6))):
        kind = kinds[n % len(kinds)] if n < len(kinds) else kinds[int(rng.integers(4))]
        label[shape_mask(rng, h, w, kind)] = classes[int(rng.integers(len(classes)))]
    objects = label != background
    outline = ndimage.binary_dilation(objects, iterations=1) & ~objects  # keeps thin bars
    return Scene(paint(rng, h, w, label), label, outline)


def scene_size(rng: np.random.Generator, size: tuple[int, int], size_jitter: int):
    h, w = size
    if size_jitter:
        h -= int(rng.integers(0, size_jitter + 1))
        w -= int(rng.integers(0, size_jitter + 1))
    return h, w


# --- writers ------------------------------------------------------------------------------------
def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # through memory so the bytes do not depend on the file system
    Image.fromarray(rgb).save(buffer, "JPEG", quality=JPEG_QUALITY)
    path.write_bytes(buffer.getvalue())


def write_png(path: Path, array: np.ndarray, palette: bytes | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if palette is not None:
        image.putpalette(palette)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())


MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, written by data.synthetic".ljust(116)


def write_mat(path: Path, variables: dict) -> None:
    """A MATLAB v5 file; its 116-byte text header (a timestamp, from savemat) is fixed so
    the same content gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=True)
    path.write_bytes(MAT_HEADER + buffer.getvalue()[len(MAT_HEADER):])


def write_list(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


def sbdd_struct(segmentation: np.ndarray) -> np.ndarray:
    """SBD's GTcls: a 1×1 struct with Segmentation, Boundaries and CategoriesPresent."""
    struct = np.zeros((1, 1), dtype=[("Segmentation", object), ("Boundaries", object),
                                     ("CategoriesPresent", object)])
    present = np.unique(segmentation)
    struct[0, 0]["Segmentation"] = segmentation.astype(np.uint8)
    struct[0, 0]["Boundaries"] = np.zeros((20, 1), dtype=object)
    struct[0, 0]["CategoriesPresent"] = present[present > 0].astype(np.uint8).reshape(-1, 1)
    return struct


def class_choice(num_classes: int | None, full: int, first: int = 1) -> list[int]:
    """The classes that appear: `first`..num_classes-1 (all of the dataset's by default)."""
    count = full if num_classes is None else num_classes
    if not 1 + first <= count <= full:
        raise ValueError(f"num_classes must be in {1 + first}..{full}, found {num_classes}")
    return list(range(first, count))


def make_voc(root: Path, rng, n_train, n_val, size, size_jitter, num_classes,
             style: Style = PLAIN) -> None:
    """sbdd/dataset (train) and pascal/VOC2011 (train, val, seg11valid derived from it).

    VOC2011's own train split (Table 1 trains on it) is the SBD train pictures outside VOC
    val (or style.voc2011_share of them), written again in VOC's layout, as the real sets
    share their pictures."""
    classes = class_choice(num_classes, 21)
    palette = bytes(voc_palette())
    sbdd, voc = root / FOLDERS["sbdd"], root / FOLDERS["voc2011"]
    train_ids = [f"2008_{i:06d}" for i in range(1, n_train + 1)]
    val_ids = [f"2011_{i:06d}" for i in range(1, n_val + 1)]
    overlap = train_ids[:2]  # VOC's val shares images with SBD train, as the real sets do
    for i in train_ids:
        scene = make_scene(rng, *scene_size(rng, size, size_jitter), classes, style=style)
        write_jpeg(sbdd / SBDD_LAYOUT.file("data", i), scene.rgb)
        write_mat(sbdd / SBDD_LAYOUT.file("label", i), {"GTcls": sbdd_struct(scene.label)})
        write_voc_example(voc, i, scene, palette)
    for i in val_ids:
        write_voc_example(voc, i, make_scene(rng, *scene_size(rng, size, size_jitter),
                                             classes, style=style), palette)
    write_list(sbdd / SBDD_LAYOUT.split_file("train")[1], train_ids)
    write_list(sbdd / SBDD_LAYOUT.split_file("val")[1], [])
    voc_val = sorted(val_ids + overlap)
    write_list(voc / VOC_LAYOUT.split_file("val")[1], voc_val)
    outside = [i for i in train_ids if i not in overlap]
    keep = len(outside) if style.voc2011_share >= 1 else \
        max(1, round(style.voc2011_share * len(outside)))
    write_list(voc / VOC_LAYOUT.split_file("train")[1], outside[:keep])
    derive_seg11valid(voc, sbdd, check_release=False)


def write_voc_example(voc: Path, index: str, scene: Scene, palette: bytes) -> None:
    label = scene.label.astype(np.uint8)
    label[scene.outline] = VOID
    write_jpeg(voc / VOC_LAYOUT.file("data", index), scene.rgb)
    write_png(voc / VOC_LAYOUT.file("label", index), label, palette)


def make_nyud(root: Path, rng, n_train, n_val, size, size_jitter, num_classes,
              style: Style = PLAIN) -> None:
    """nyud/ in the release's prepared layout: colour, depth (mm), HHA, 40-class labels."""
    classes = class_choice(num_classes, 41, first=2)  # raw 1 (wall) is the background
    # FINDINGS: the 2nd class looks like the 1st, the 3rd stands at the 1st's depth; no tint
    # (it would tell the look-alikes apart by colour)
    looks = {classes[1]: classes[0]} if style.look_alike and len(classes) > 1 else {}
    depth_looks = {classes[2]: classes[0]} if style.look_alike and len(classes) > 2 else {}
    scene_style = replace(style, context=0.0)
    nyud = root / FOLDERS["nyud"]
    ids = [str(5001 + i) for i in range(n_train + n_val)]
    for i in ids:
        h, w = scene_size(rng, size, size_jitter)
        scene = make_scene(rng, h, w, classes, background=1, style=scene_style, looks=looks)
        raw = scene.label.astype(np.uint8)
        raw[scene.outline] = 0  # void
        depth = synthetic_depth(rng, scene.label, depth_looks)
        write_png(nyud / NYUD_LAYOUT.file("color", i), scene.rgb)
        write_png(nyud / NYUD_LAYOUT.file("depth", i), depth)
        write_png(nyud / NYUD_LAYOUT.file("hha", i),
                  synthetic_hha(depth, remap(scene.label, depth_looks)))
        write_mat(nyud / NYUD_LAYOUT.file("label", i), {"segmentation": raw})
    trainval, test = ids[:n_train], ids[n_train:]
    half = len(trainval) // 2
    for split, split_ids in (("train", trainval[:half]), ("val", trainval[half:]),
                             ("trainval", trainval), ("test", test)):
        write_list(nyud / NYUD_LAYOUT.split_file(split)[1], split_ids)


def remap(label: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """The label map with each class k of `mapping` replaced by mapping[k]."""
    out = label.copy()
    for k, other in mapping.items():
        out[label == k] = other
    return out


def synthetic_depth(rng, label: np.ndarray, looks: dict[int, int] | None = None) -> np.ndarray:
    """Millimetres, all > 0: a receding floor-to-wall ramp with objects standing nearer,
    each class at its own distance (`looks`: a class at another's)."""
    label = remap(label, looks) if looks else label
    h, w = label.shape
    ramp = np.linspace(4500, 1200, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    nearer = np.where(label > 1, 0.6 + 0.02 * (label % 10), 1.0).astype(np.float32)
    depth = ramp * nearer + rng.normal(0, 15, (h, w))
    return np.clip(depth, 500, 10000).astype(np.uint16)


def synthetic_hha(depth: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Three 8-bit channels in the spirit of HHA (disparity, height, angle)."""
    disparity = 255 * 600 / depth.astype(np.float32)
    height = np.linspace(255, 0, depth.shape[0])[:, None] * np.ones_like(disparity)
    angle = (label * 37) % 180 + 40
    return np.clip(np.stack([disparity, height, angle], -1), 0, 255).astype(np.uint8)


GEOMETRIC_BY_NAME = {  # SIFT Flow's geometric classes: 1 sky, 2 horizontal, 3 vertical
    "sky": 1, "sun": 1, "moon": 1,
    "crosswalk": 2, "desert": 2, "field": 2, "grass": 2, "river": 2, "road": 2,
    "sand": 2, "sea": 2, "sidewalk": 2, "staircase": 2,
}


def make_siftflow(root: Path, rng, n_train, n_val, size, size_jitter, num_classes,
                  style: Style = PLAIN) -> None:
    """sift-flow/ with Images, SemanticLabels and GeoLabels .mat files (key S)."""
    names = SIFTFLOW_SEMANTIC_CLASSES
    classes = class_choice(num_classes, len(names) + 1, first=1)
    sky = names.index("sky") + 1
    objects = [k for k in classes if k != sky] or classes
    geometric = np.array([0] + [GEOMETRIC_BY_NAME.get(n, 3) for n in names])
    base = root / FOLDERS["siftflow"]
    ids = [f"{SIFTFLOW_SCENES[i % len(SIFTFLOW_SCENES)]}_synth{i + 1}"
           for i in range(n_train + n_val)]
    for i in ids:
        scene = make_scene(rng, *scene_size(rng, size, size_jitter), objects, background=sky,
                           style=style)
        sem = scene.label.astype(np.float64)
        sem[scene.outline] = 0  # unlabelled
        geo = geometric[scene.label].astype(np.float64)
        geo[scene.outline] = -1
        write_jpeg(base / SIFTFLOW_LAYOUT.file("data", i), scene.rgb)
        write_mat(base / SIFTFLOW_LAYOUT.file("sem", i), {"S": sem})
        write_mat(base / SIFTFLOW_LAYOUT.file("geo", i), {"S": geo})
    write_list(base / SIFTFLOW_LAYOUT.split_file("trainval")[1], ids[:n_train])
    write_list(base / SIFTFLOW_LAYOUT.split_file("test")[1], ids[n_train:])


def context_names() -> tuple[list[str], dict[int, int]]:
    """A 459-name list holding the 59 task classes (full spelling) among placeholders,
    and the raw LabelMap value of each task class."""
    task = PASCALCONTEXT_CLASSES[1:]
    names = [f"other {n}" for n in range(459)]
    raw_of = {}
    for k, name in enumerate(task, 1):
        slot = (k * 7) % 459  # spread the task classes through the list
        names[slot] = PASCALCONTEXT_FULL_SPELLING.get(name, name)
        raw_of[k] = slot + 1
    return names, raw_of


def make_pascalcontext(root: Path, rng, n_train, n_val, size, size_jitter, num_classes,
                       style: Style = PLAIN):
    """pascal/VOC2010 images and Main splits, pascal-context/{trainval,labels,59_labels}."""
    classes = class_choice(num_classes, 60)
    names, raw_of = context_names()
    free = sorted(set(range(1, 460)) - set(raw_of.values()))
    voc, context = root / FOLDERS["voc2010"], root / FOLDERS["pascalcontext"]
    ids = [f"2010_{i:06d}" for i in range(1, n_train + n_val + 1)]
    for i in ids:
        scene = make_scene(rng, *scene_size(rng, size, size_jitter), classes, style=style)
        raw = np.vectorize(lambda k: raw_of.get(k, 0))(scene.label).astype(np.uint16)
        background = scene.label == 0  # a name outside the task: background after mapping
        raw[background] = free[int(rng.integers(len(free)))]
        write_jpeg(voc / PASCALCONTEXT_LAYOUT.file("data", i), scene.rgb)
        write_mat(context / PASCALCONTEXT_LAYOUT.file("label", i), {"LabelMap": raw})
    write_list(voc / PASCALCONTEXT_LAYOUT.split_file("train")[1], ids[:n_train])
    write_list(voc / PASCALCONTEXT_LAYOUT.split_file("val")[1], ids[n_train:])
    (context / PASCALCONTEXT_FULL_NAMES).write_text(
        "".join(f"{n}: {name}\n" for n, name in enumerate(names, 1)))
    task = PASCALCONTEXT_CLASSES[1:]
    (context / PASCALCONTEXT_TASK_NAMES).write_text(
        "".join(f"{n}: {name}\n" for n, name in enumerate(task, 1)))


WRITERS = {"voc": make_voc, "nyud": make_nyud, "siftflow": make_siftflow,
           "pascalcontext": make_pascalcontext}


def make_dataset(dataset: str, root: Path, *, n_train: int, n_val: int,
                 size: tuple[int, int] = (64, 80), num_classes: int | None = None,
                 seed: int = 0, size_jitter: int = 0, style: Style = PLAIN) -> Path:
    """Write a small `dataset` under the data root `root` and return `root`.

    'voc' writes sbdd/dataset (split 'train') and pascal/VOC2011 (split 'seg11valid');
    'nyud' writes nyud/ (trainval, test); 'siftflow' sift-flow/ (trainval, test);
    'pascalcontext' pascal/VOC2010 + pascal-context (train, val). `num_classes` counts
    the label values that may appear, background included (default: all the dataset's);
    `size_jitter` > 0 makes each image up to that many pixels shorter and narrower;
    `style` what the scenes hold (Style: PLAIN, or FINDINGS for the paper's miniature).
    """
    if dataset not in WRITERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(WRITERS)}")
    if n_train < 1 or n_val < 1:
        raise ValueError(f"need at least one training and one validation image, "
                         f"found n_train={n_train}, n_val={n_val}")
    h, w = size
    if min(h, w) - size_jitter < 16:
        raise ValueError(f"images of {h}×{w} (less {size_jitter}) are too small; "
                         f"use at least 16×16")
    root = Path(root)
    rng = np.random.default_rng(seed)
    WRITERS[dataset](root, rng, n_train, n_val, (h, w), size_jitter, num_classes, style)
    return root


def make_classification(root: Path, n: int, size: tuple[int, int], num_classes: int,
                        seed: int = 0, centred: bool = False) -> tuple[list[Path], list[int]]:
    """`n` images of the same kind, each dominated by one class: a miniature ImageNet.

    centred: object-centred pictures, as ImageNet's are: the labelled object (a disc, box or
    bar in turn) in the middle, moved by at most 8 % of the side, over one or two objects
    of other classes anywhere. A classifier trained on them weighs the middle of its
    window, so the FCN made from it says what lies at each output's own place (the paper's
    miniature; paper/README.md, "The miniature"). Otherwise the class's disc, box and bar
    anywhere (the demo's pictures).

    Writes root/classification/NNNNN.jpg and list.txt ("<path> <label>", the format of
    Caffe's ImageData layer); returns the paths and labels (0..num_classes-1).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, found {num_classes}")
    rng = np.random.default_rng(seed)
    h, w = size
    folder = Path(root) / "classification"
    paths, labels = [], []
    for i in range(n):
        label = i % num_classes  # balanced
        k = label + 1  # appearance of segmentation class k, so both tasks share features
        scene_label = np.zeros((h, w), np.int32)
        if centred:
            for _ in range(int(rng.integers(1, 3))):
                other = 1 + (label + 1 + int(rng.integers(num_classes - 1))) % num_classes
                kind = CLASSIFIED_KINDS[int(rng.integers(len(CLASSIFIED_KINDS)))]
                scene_label[shape_mask(rng, h, w, kind)] = other
            shift = rng.uniform(-0.08, 0.08, 2)
            kind = CLASSIFIED_KINDS[i // num_classes % len(CLASSIFIED_KINDS)]
            middle = (h * (0.5 + shift[0]), w * (0.5 + shift[1]))
            scene_label[shape_mask(rng, h, w, kind, centre=middle)] = k
        else:
            for kind in CLASSIFIED_KINDS:
                scene_label[shape_mask(rng, h, w, kind)] = k
        path = folder / f"{i:05d}.jpg"
        write_jpeg(path, paint(rng, h, w, scene_label))
        paths.append(path)
        labels.append(label)
    (folder / "list.txt").write_text("".join(f"{p} {lab}\n" for p, lab in zip(paths, labels)))
    return paths, labels


def dataset_folders(name: str, root: Path) -> list[Path]:
    """The folders under the data root `root` that writing dataset `name` fills (the
    catalog's layer folders; other datasets' folders beside them are left alone)."""
    if name == "classification":
        return [Path(root) / "classification"]
    folders = []
    for phase in ("train", "test"):
        layer = DATASETS[name].layer(phase)
        params = {key: Path(root) / folder for key, folder in layer.folders}
        folders += [f for f in layer.layout.roots(params).values() if f not in folders]
    return folders


@cli_main("synthetic")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=(*WRITERS, "classification"))
    parser.add_argument("root", type=Path, help="data root to write under")
    parser.add_argument("--n-train", type=int, default=20, help="training images (or all "
                        "images, for classification)")
    parser.add_argument("--n-val", type=int, default=5)
    parser.add_argument("--size", type=int, nargs=2, default=(64, 80), metavar=("H", "W"))
    parser.add_argument("--size-jitter", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="write over the dataset's folders where the root already has them")
    args = parser.parse_args(argv)
    for line in check_outputs([Output("OUT=, the data root", folder, folder=True)
                               for folder in dataset_folders(args.dataset, args.root)], {},
                              force=args.force):
        print(f"synthetic: {line}", file=sys.stderr)
    if args.dataset == "classification":
        paths, _ = make_classification(args.root, args.n_train, tuple(args.size),
                                       args.num_classes or 5, args.seed)
        print(f"{len(paths)} images under {args.root / 'classification'}")
        return 0
    make_dataset(args.dataset, args.root, n_train=args.n_train, n_val=args.n_val,
                 size=tuple(args.size), num_classes=args.num_classes, seed=args.seed,
                 size_jitter=args.size_jitter)
    print(f"{args.dataset}: {args.n_train} train + {args.n_val} val images under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
