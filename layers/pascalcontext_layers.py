"""PASCAL-Context, 59-class task (the release's `pascalcontext_layers`).

Images: `<voc_dir>/VOC2010/JPEGImages/<id>.jpg`, split lists from VOC2010
`ImageSets/Main/<split>.txt`. Labels: `<context_dir>/trainval/<id>.mat` (key `LabelMap`,
values index the 459 names of `<context_dir>/labels.txt`); the task's classes are the 59
of `<context_dir>/59_labels.txt`, three of them spelt differently there (diningtable,
bedcloth, clothes for table, bedclothes, cloth). Every other name is background 0, so
labels are 0..59 with no void.
"""

from __future__ import annotations

import numpy as np
from seg_data import SegDataLayer
from seg_dataset import SegDataset
from seg_io import (
    DataError,
    read_mat,
    read_rgb,
)

from core.catalog import (
    DATASETS,
    PASCALCONTEXT_FULL_NAMES,
    PASCALCONTEXT_FULL_SPELLING,
)
from core.images import bgr_minus_mean

NUM_CLASSES = DATASETS["pascalcontext"].num_classes  # background + 59
MEAN = DATASETS["pascalcontext"].mean("data")


def parse_label_names(text: str, where: str) -> dict[int, str]:
    """Lines "<number>: <name>" → {number: name without spaces} (as the release compares)."""
    names = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        number, sep, name = line.partition(":")
        if not sep or not number.strip().isdigit() or not name.strip():
            raise DataError(f"{where} line {n}: expected '<number>: <name>', found {line!r}")
        names[int(number)] = name.strip().replace(" ", "")
    return names


def task_lookup(full: dict[int, str], task: dict[int, str], where: str) -> np.ndarray:
    """A table from raw LabelMap value to task class (0 = background)."""
    by_name = {name: number for number, name in full.items()}
    lookup = np.zeros(max(full) + 1, dtype=np.uint8)
    classes = [task[k] for k in sorted(task) if k > 0]  # a "0: background" line adds nothing
    if len(classes) != NUM_CLASSES - 1:
        raise DataError(f"{where}: expected {NUM_CLASSES - 1} task classes, found "
                        f"{len(classes)}")
    for task_class, name in enumerate(classes, 1):
        full_name = PASCALCONTEXT_FULL_SPELLING.get(name, name)
        if full_name not in by_name:
            raise DataError(f"{where}: class {name!r} is not among the {len(full)} names of "
                            f"{PASCALCONTEXT_FULL_NAMES}")
        lookup[by_name[full_name]] = task_class
    return lookup


class PASCALContextSegData(SegDataset):
    keys = ("voc_dir", "context_dir")
    required = ("voc_dir", "context_dir", "split")
    label_classes = {"label": NUM_CLASSES}
    layout = DATASETS["pascalcontext"].train_layer.layout

    def prepare(self, source) -> None:
        full_ref, task_ref = self.setup_files()
        full = parse_label_names(source.read(full_ref).decode(), source.where(full_ref))
        task = parse_label_names(source.read(task_ref).decode(), source.where(task_ref))
        self.lookup = task_lookup(full, task, source.where(task_ref))

    def input_means(self) -> dict[str, np.ndarray]:
        return {"data": MEAN}

    def load(self, index: str, source) -> dict[str, np.ndarray]:
        files = self.files(index)
        raw = read_mat(source, files["label"], "LabelMap")
        if raw.size and (raw.min() < 0 or raw.max() >= len(self.lookup)):
            raise DataError(f"label {source.where(files['label'])} has values outside "
                            f"0..{len(self.lookup) - 1} (the names of {PASCALCONTEXT_FULL_NAMES})")
        label = self.lookup[raw.astype(np.int64)]
        return {"data": bgr_minus_mean(read_rgb(source, files["data"]), MEAN),
                "label": label[np.newaxis, ...]}


class PASCALContextSegDataLayer(SegDataLayer):
    """e.g. {'context_dir': ..., 'seed': 1337, 'split': 'train', 'voc_dir': ...}."""

    dataset_class = PASCALContextSegData
