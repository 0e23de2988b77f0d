"""SIFT Flow: 2,688 256×256 outdoor images, 33 semantic and 3 geometric classes.

Images/spatial_envelope_256x256_static_8outdoorcategories/*.jpg, SemanticLabels/… and
GeoLabels/… (*.mat, key `S`). Tops: data, sem, geo; semantic 0 (unlabelled) and geometric
-1 become void 255, the rest shift to 0-based.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seg_data import SegDataLayer, decode_image, decode_mat, image_top

MEAN = (114.578, 115.294, 108.353)
FOLDER = "spatial_envelope_256x256_static_8outdoorcategories"


def shift_labels(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.int64)
    return np.where(s <= 0, 255, s - 1).astype(np.uint8)[np.newaxis]


class SIFTFlowSegDataLayer(SegDataLayer):
    num_classes = 33
    required = ("siftflow_dir", "split")

    def dataset_dir(self, params):
        return Path(params["siftflow_dir"])

    def split_path(self, params):
        return f"{params['split']}.txt"

    def top_names(self, params):
        return ["data", "sem", "geo"]

    def classes_of(self, label_top):
        return 3 if label_top == "geo" else 33

    def files(self, index):
        return [f"Images/{FOLDER}/{index}.jpg", f"SemanticLabels/{FOLDER}/{index}.mat",
                f"GeoLabels/{FOLDER}/{index}.mat"]

    def load(self, index):
        image, sem, geo = self.files(index)
        return {"data": image_top(decode_image(self.source, image), MEAN),
                "sem": shift_labels(decode_mat(self.source, sem, "S")),
                "geo": shift_labels(decode_mat(self.source, geo, "S"))}
