"""SIFT Flow (the release's `siftflow_layers`): semantic (33) and geometric (3) labels.

`<siftflow_dir>/Images/<CAT>/<id>.jpg`, `SemanticLabels/<CAT>/<id>.mat` and
`GeoLabels/<CAT>/<id>.mat` (key `S`), CAT = spatial_envelope_256x256_static_8outdoorcategories;
split lists `<siftflow_dir>/<split>.txt`. Semantic: 0 = void, 1..33 classes. Geometric:
-1 (and 0) = void, 1..3 = sky, horizontal, vertical. Both are shifted to 0-based with
void 255. Three tops: data, sem, geo.
"""

from __future__ import annotations

import numpy as np
from seg_data import SegDataLayer
from seg_dataset import SegDataset
from seg_io import (
    check_label_values,
    read_mat,
    read_rgb,
)

from core.catalog import DATASETS
from core.images import bgr_minus_mean

SIFTFLOW = DATASETS["siftflow"]
SEMANTIC_CLASSES = SIFTFLOW.head("sem").num_classes
GEOMETRIC_CLASSES = SIFTFLOW.head("geo").num_classes
MEAN = SIFTFLOW.mean("data")
RAW_SEMANTIC = np.arange(SEMANTIC_CLASSES + 1)
RAW_GEOMETRIC = np.array([-1, *range(GEOMETRIC_CLASSES + 1)])


class SIFTFlowSegData(SegDataset):
    keys = ("siftflow_dir",)
    required = ("siftflow_dir", "split")
    label_classes = {"sem": SEMANTIC_CLASSES, "geo": GEOMETRIC_CLASSES}
    background_is_zero = SIFTFLOW.background_is_zero  # class 0 is a real class (awning)
    layout = SIFTFLOW.train_layer.layout

    def top_names(self) -> list[str]:
        return ["data", "sem", "geo"]

    def input_means(self) -> dict[str, np.ndarray]:
        return {"data": MEAN}

    def load(self, index: str, source) -> dict[str, np.ndarray]:
        files = self.files(index)
        sem = read_mat(source, files["sem"], "S")
        check_label_values(sem, RAW_SEMANTIC, source.where(files["sem"]))
        geo = read_mat(source, files["geo"], "S")
        check_label_values(geo, RAW_GEOMETRIC, source.where(files["geo"]))
        geo = np.where(geo == -1, 0, geo)
        return {"data": bgr_minus_mean(read_rgb(source, files["data"]), MEAN),
                "sem": shift_down(sem), "geo": shift_down(geo)}


def shift_down(raw: np.ndarray) -> np.ndarray:
    """Classes 1..K → 0..K-1, void 0 → 255, as a 1×H×W uint8 label."""
    label = raw.astype(np.uint8)
    label -= 1
    return label[np.newaxis, ...].copy()


class SIFTFlowSegDataLayer(SegDataLayer):
    """e.g. {'siftflow_dir': '../data/sift-flow', 'seed': 1337, 'split': 'trainval'}."""

    dataset_class = SIFTFlowSegData
