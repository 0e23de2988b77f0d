"""The dataset catalog: every fact about a dataset, once.

Each entry says what a dataset's classes are (per label top, in label order), which
score blob predicts them, the BGR mean its data layer subtracts, where its files and
split lists live under a data root, which of the release's Python data layers reads it
in training and in testing, and which make target fetches it. nets/, layers/, data/,
training/ and the tools read these entries; none re-types a fact.

Facts from the release: its class lists, its layers' means and param_str keys (in the
order its Python 2 generator printed them, so generated prototxt match its bytes), its
data folder layout (the top-level folders under the data root and each layer's file
patterns: layers/ read them, data/ writes them) and its seed. VOC's mean travels in
param_str as Python floats (float64, the release's arithmetic); the other datasets' layers
hold float32 means.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.defaults import SEED

VOID = 255   # label value that no class has; ignored by the loss and the metrics

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
NYUD_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window",
    "bookshelf", "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser",
    "pillow", "mirror", "floor mat", "clothes", "ceiling", "books", "refridgerator",
    "television", "paper", "towel", "shower curtain", "box", "whiteboard", "person",
    "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure",
    "otherfurniture", "otherprop",
)
SIFTFLOW_SEMANTIC_CLASSES = (
    "awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car", "cow",
    "crosswalk", "desert", "door", "fence", "field", "grass", "moon", "mountain", "person",
    "plant", "pole", "river", "road", "rock", "sand", "sea", "sidewalk", "sign", "sky",
    "staircase", "streetlight", "sun", "tree", "window",
)
SIFTFLOW_GEOMETRIC_CLASSES = ("sky", "horizontal", "vertical")
PASCALCONTEXT_CLASSES = VOC_CLASSES + (
    "bag", "bed", "bench", "book", "building", "cabinet", "ceiling", "clothes", "computer",
    "cup", "door", "fence", "floor", "flower", "food", "grass", "ground", "keyboard", "light",
    "mountain", "mouse", "curtain", "platform", "sign", "plate", "road", "rock", "shelves",
    "sidewalk", "sky", "snow", "bedcloth", "track", "tree", "truck", "wall", "water",
    "window", "wood",
)

# PASCAL-Context's 59_labels.txt spells three classes differently from its labels.txt (the
# 459 names the LabelMap values index): task spelling → full spelling.
PASCALCONTEXT_FULL_SPELLING = {"diningtable": "table", "bedcloth": "bedclothes",
                               "clothes": "cloth"}
PASCALCONTEXT_FULL_NAMES = "labels.txt"    # under the context folder: the 459 names
PASCALCONTEXT_TASK_NAMES = "59_labels.txt"  # under the context folder: the task's 59
# The one scene-category folder SIFT Flow keeps its images and labels in.
SIFTFLOW_CATEGORY_DIR = "spatial_envelope_256x256_static_8outdoorcategories"

# Input channels per input top (NYUD's depth is one channel of log depth).
INPUT_CHANNELS = {"data": 3, "color": 3, "hha": 3, "depth": 1}


@dataclass(frozen=True)
class Head:
    """One output of a net: the label top it learns and the score blob that predicts it."""
    label: str                 # label top of the data layer: label, sem, geo
    suffix: str                # score blob = "score" + suffix
    classes: tuple[str, ...]   # names in label order (index = class id, void is VOID)
    present_only: bool = False  # mean IU over the classes present in the split (SIFT Flow's
                                # semantic head, as the paper scores it)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def score_blob(self) -> str:
        return "score" + self.suffix


@dataclass(frozen=True)
class FileLayout:
    """Where one data layer's files lie, as (folder, path) pairs: each named folder is a
    param_str key's directory plus an optional sub-folder. The data layers read exactly
    these (layers/seg_dataset.py); split_list() and the tools derive their paths from them."""
    folders: tuple[tuple[str, str, str], ...]   # (folder, param_str key, sub-folder or "")
    split_list: tuple[str, str]                 # (folder, path with {split})
    files: tuple[tuple[str, str, str], ...]     # (top, folder, path with {id})
    setup_files: tuple[tuple[str, str], ...] = ()   # read once at setup (class name lists)

    def roots(self, params: dict) -> dict[str, Path]:
        """The named folders under the directories a param_str gives."""
        return {name: Path(params[key]) / sub if sub else Path(params[key])
                for name, key, sub in self.folders}

    def split_file(self, split: str) -> tuple[str, str]:
        folder, path = self.split_list
        return folder, path.format(split=split)

    def file(self, top: str, index: str) -> str:
        """Top `top`'s file of example `index`, relative to its folder (for the tools that
        write or check a dataset folder by folder)."""
        return self.example_files(index, [top])[top][1]

    def example_files(self, index: str, tops: list[str]) -> dict[str, tuple[str, str]]:
        """The file each of `tops` of example `index` comes from, in the order of `tops`."""
        patterns = {top: (folder, path) for top, folder, path in self.files}
        return {top: (patterns[top][0], patterns[top][1].format(id=index)) for top in tops}


@dataclass(frozen=True)
class DataLayer:
    """One of the release's Python data layers, as a net's prototxt names it."""
    module: str                      # layers/<module>.py
    layer: str                       # the caffe.Layer class
    dataset_class: str               # its Caffe-free dataset (packers, checks, tests)
    keys: tuple[str, ...]            # param_str key order (the release's)
    folders: tuple[tuple[str, str], ...]  # (param_str key, folder under the data root)
    layout: FileLayout               # the files under those folders

    def split_list(self, split: str) -> str:
        """The split list's path under the data root (the folders joined as the layer does)."""
        folder, path = self.layout.split_file(split)
        key, sub = {name: (key, sub) for name, key, sub in self.layout.folders}[folder]
        return "/".join(part for part in (dict(self.folders)[key], sub, path) if part)

    def param_values(self, root: str, split: str, seed: int, *,
                     mean: tuple[float, ...] | None = None,
                     tops: list[str] | None = None) -> dict:
        """The param_str dict under data root `root` (a string, as written into prototxt)."""
        values = {key: f"{root}/{folder}" for key, folder in self.folders}
        values.update(seed=seed, split=split)
        if "mean" in self.keys:
            values["mean"] = mean
        if "tops" in self.keys:
            values["tops"] = tops
        return values

    def param_str(self, values: dict, extra: dict | None = None) -> str:
        """param_str text with the keys in the release's order, then `extra` keys (the
        layers' optional mask, mirror, jitter)."""
        differ = set(self.keys) ^ set(values)
        if differ:
            raise ValueError(f"{self.module}.{self.layer}: param_str keys differ: {differ}")
        items = [(k, values[k]) for k in self.keys] + list((extra or {}).items())
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in items) + "}"


@dataclass(frozen=True)
class Dataset:
    name: str
    heads: tuple[Head, ...]
    train_layer: DataLayer
    test_layer: DataLayer
    means: dict[str, tuple[float, ...]]  # input top → mean its layer subtracts (BGR order)
    mean_dtype: str                      # the release's arithmetic: float64 (VOC's
                                         # param_str floats) or float32 (the layer's array)
    background_is_zero: bool             # class 0 is background (masking, Table 8)
    picture: tuple[int, int]             # a typical picture, width × height (time estimates)
    fetch_target: str                    # `make <this>` fetches the dataset

    def layer(self, phase: str) -> DataLayer:
        """The data layer of a phase: 'train' (the first phase of an experiment) or 'test'."""
        if phase not in ("train", "test"):
            raise ValueError(f"phase is 'train' or 'test', not {phase!r}")
        return self.train_layer if phase == "train" else self.test_layer

    def head(self, label: str) -> Head:
        for head in self.heads:
            if head.label == label:
                return head
        raise KeyError(f"{self.name} has no label top {label!r}; it has "
                       f"{[h.label for h in self.heads]}")

    def mean(self, top: str = "data") -> np.ndarray:
        """The mean input `top`'s layer subtracts, in the dtype its arithmetic uses."""
        if top not in self.means:
            raise KeyError(f"{self.name} has no mean for input {top!r}; it has "
                           f"{sorted(self.means)}")
        return np.array(self.means[top], dtype=self.mean_dtype)

    @property
    def label_tops(self) -> tuple[str, ...]:
        return tuple(h.label for h in self.heads)

    @property
    def num_classes(self) -> int:
        """Classes of the first head (the only one, except SIFT Flow's semantic head)."""
        return self.heads[0].num_classes


# Top-level folders under the data root, as the release's data/ lays them out (data/
# fetches into them, the layers' param_str point at them).
FOLDERS = {
    "voc2011": "pascal/VOC2011", "sbdd": "sbdd/dataset", "pascal": "pascal",
    "voc2010": "pascal/VOC2010", "pascalcontext": "pascal-context", "nyud": "nyud",
    "siftflow": "sift-flow",
}

_VOC_FILES = (("data", "voc", "JPEGImages/{id}.jpg"),
              ("label", "voc", "SegmentationClass/{id}.png"))
_SBDD = DataLayer("voc_layers", "SBDDSegDataLayer", "SBDDSegData",
                  ("sbdd_dir", "seed", "split", "mean"), (("sbdd_dir", FOLDERS["sbdd"]),),
                  FileLayout((("sbdd", "sbdd_dir", ""),), ("sbdd", "{split}.txt"),
                             (("data", "sbdd", "img/{id}.jpg"),
                              ("label", "sbdd", "cls/{id}.mat"))))
_VOC = DataLayer("voc_layers", "VOCSegDataLayer", "VOCSegData",
                 ("voc_dir", "seed", "split", "mean"), (("voc_dir", FOLDERS["voc2011"]),),
                 FileLayout((("voc", "voc_dir", ""),),
                            ("voc", "ImageSets/Segmentation/{split}.txt"), _VOC_FILES))
_NYUD = DataLayer("nyud_layers", "NYUDSegDataLayer", "NYUDSegData",
                  ("tops", "seed", "nyud_dir", "split"), (("nyud_dir", FOLDERS["nyud"]),),
                  FileLayout((("nyud", "nyud_dir", ""),), ("nyud", "{split}.txt"),
                             (("color", "nyud", "data/images/img_{id}.png"),
                              ("depth", "nyud", "data/depth/img_{id}.png"),
                              ("hha", "nyud", "data/hha/img_{id}.png"),
                              ("label", "nyud", "segmentation/img_{id}.mat"))))
_SIFTFLOW_FILES = tuple((top, "siftflow", f"{folder}/{SIFTFLOW_CATEGORY_DIR}/{{id}}.{ext}")
                        for top, folder, ext in (("data", "Images", "jpg"),
                                                 ("sem", "SemanticLabels", "mat"),
                                                 ("geo", "GeoLabels", "mat")))
_SIFTFLOW = DataLayer("siftflow_layers", "SIFTFlowSegDataLayer", "SIFTFlowSegData",
                      ("siftflow_dir", "seed", "split"), (("siftflow_dir", FOLDERS["siftflow"]),),
                      FileLayout((("siftflow", "siftflow_dir", ""),), ("siftflow", "{split}.txt"),
                                 _SIFTFLOW_FILES))
_PASCALCONTEXT = DataLayer(
    "pascalcontext_layers", "PASCALContextSegDataLayer", "PASCALContextSegData",
    ("context_dir", "seed", "split", "voc_dir"),
    (("context_dir", FOLDERS["pascalcontext"]), ("voc_dir", FOLDERS["pascal"])),
    FileLayout((("voc", "voc_dir", Path(FOLDERS["voc2010"]).name), ("context", "context_dir", "")),
               ("voc", "ImageSets/Main/{split}.txt"),
               (_VOC_FILES[0], ("label", "context", "trainval/{id}.mat")),
               (("context", PASCALCONTEXT_FULL_NAMES), ("context", PASCALCONTEXT_TASK_NAMES))))

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    # PASCAL VOC: trained on SBD's images (train layer), tested on VOC2011 (seg11valid)
    Dataset("voc", (Head("label", "", VOC_CLASSES),), _SBDD, _VOC,
            means={"data": (104.00699, 116.66877, 122.67892)}, mean_dtype="float64",
            background_is_zero=True, picture=(500, 375),
            fetch_target="data-fetch DATASET=voc"),
    # NYUDv2: 40 classes (the layer shifts 1..40 to 0..39); colour, HHA and log depth inputs
    Dataset("nyud", (Head("label", "", NYUD_CLASSES),), _NYUD, _NYUD,
            means={"color": (116.190, 97.203, 92.318), "hha": (132.431, 94.076, 118.477),
                   "depth": (7.844,)}, mean_dtype="float32", background_is_zero=False,
            picture=(560, 425),  # the release's crops of NYUDv2's 640×480
            fetch_target="data-fetch DATASET=nyud"),
    # SIFT Flow: a semantic (33) and a geometric (3) head
    Dataset("siftflow", (Head("sem", "_sem", SIFTFLOW_SEMANTIC_CLASSES, present_only=True),
                         Head("geo", "_geo", SIFTFLOW_GEOMETRIC_CLASSES)), _SIFTFLOW, _SIFTFLOW,
            means={"data": (114.578, 115.294, 108.353)}, mean_dtype="float32",
            background_is_zero=False, picture=(256, 256),
            fetch_target="data-fetch DATASET=siftflow"),
    # PASCAL-Context, 59 classes + background
    Dataset("pascalcontext", (Head("label", "", PASCALCONTEXT_CLASSES),), _PASCALCONTEXT,
            _PASCALCONTEXT, means={"data": (104.007, 116.669, 122.679)}, mean_dtype="float32",
            background_is_zero=True, picture=(500, 375),  # VOC 2010's pictures
            fetch_target="data-fetch DATASET=pascalcontext"),
)}

# Data-layer names for the tools that read one layer's files (packing, checks, benches):
# the test layer of each dataset under the dataset's name, and SBD (VOC's training layer).
LAYER_NAMES: dict[str, tuple[str, str]] = {
    "voc": ("voc", "test"), "sbdd": ("voc", "train"), "nyud": ("nyud", "train"),
    "siftflow": ("siftflow", "train"), "pascalcontext": ("pascalcontext", "train"),
}


def dataset(name: str) -> Dataset:
    """The catalog entry `name`, or a ValueError listing the known ones."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return DATASETS[name]


def data_param(name: str, phase: str, split: str, root: str, *, seed: int = SEED,
               modalities: tuple[str, ...] = (),
               extra: dict | None = None) -> tuple[DataLayer, str]:
    """The data layer and its param_str for one phase ('train' | 'test') of dataset `name`
    under data root `root`; `modalities` are NYUD's input tops (the label is added);
    `extra` optional layer keys (mask, mirror, jitter) follow the release's."""
    entry = dataset(name)
    layer = entry.layer(phase)
    values = layer.param_values(root, split, seed, mean=entry.means.get("data"),
                                tops=[*modalities, *entry.label_tops])
    return layer, layer.param_str(values, extra)


def split_list(name: str, phase: str, root: Path | str, split: str) -> Path:
    """The split list file dataset `name`'s `phase` layer reads under data root `root`."""
    return Path(root) / dataset(name).layer(phase).split_list(split)


def class_weights_file(name: str, root: str, split: str) -> str:
    """Where per-class loss weights over a training split live (a BlobProto holding the
    diagonal H of Caffe's InfogainLoss): beside the split list of dataset `name`'s training
    layer, under data root `root` (a string, as written into prototxt)."""
    listing = dataset(name).train_layer.split_list(split).removesuffix(".txt")
    return f"{root}/{listing}-class-weights.binaryproto"


def relative_pixels(name: str) -> float:
    """Pixels of a typical picture of dataset `name` relative to VOC's."""
    width, height = dataset(name).picture
    voc_width, voc_height = DATASETS["voc"].picture
    return width * height / (voc_width * voc_height)


def class_names(name: str, label: str, num_classes: int) -> list[str]:
    """The names of a head's classes; plain numbers where the catalog's list does not match
    the head (a synthetic dataset with fewer classes, an unknown dataset)."""
    entry = DATASETS.get(name)
    names = None
    if entry is not None and label in entry.label_tops:
        names = entry.head(label).classes
    if names is None or len(names) != num_classes:
        return [str(i) for i in range(num_classes)]
    return list(names)
