"""NYUDv2 in the release's prepared layout: data/images, data/depth, data/hha (img_NNNN.png)
and segmentation/img_NNNN.mat (key `segmentation`, 0 void, 40 classes).

Tops are chosen by name (`tops` in param_str) from color, depth, hha and label: colour is
BGR minus its mean, depth is log(depth) minus the mean log-depth, HHA minus its mean; the
labels are shifted to 0–39 with void 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seg_data import DataError, SegDataLayer, decode_image, decode_mat, decode_png, image_top

MEAN_BGR = (116.190, 97.203, 92.318)
MEAN_HHA = (132.431, 94.076, 118.477)
MEAN_LOG_DEPTH = 7.844
KINDS = ("color", "depth", "hha", "label")


class NYUDSegDataLayer(SegDataLayer):
    num_classes = 40
    required = ("nyud_dir", "split", "tops")

    def dataset_dir(self, params):
        return Path(params["nyud_dir"])

    def split_path(self, params):
        return f"{params['split']}.txt"

    def top_names(self, params):
        unknown = [t for t in params["tops"] if t not in KINDS]
        if unknown:
            raise DataError(f"NYUDSegDataLayer tops {unknown} unknown; choose from {KINDS}")
        return list(params["tops"])

    def label_names(self):
        return ["label"] if "label" in self.names else []

    def files(self, index):
        where = {"color": f"data/images/img_{index}.png", "depth": f"data/depth/img_{index}.png",
                 "hha": f"data/hha/img_{index}.png", "label": f"segmentation/img_{index}.mat"}
        return [where[t] for t in self.names]

    def load(self, index):
        tops = {}
        for name, path in zip(self.names, self.files(index)):
            if name == "color":
                tops[name] = image_top(decode_image(self.source, path), MEAN_BGR)
            elif name == "hha":
                tops[name] = image_top(decode_image(self.source, path), MEAN_HHA)
            elif name == "depth":
                depth = decode_png(self.source, path).astype(np.float32)
                if (depth <= 0).any():
                    raise DataError(f"{self.source.where(path)}: depth has non-positive "
                                    f"values; log-depth needs depth > 0")
                tops[name] = (np.log(depth) - MEAN_LOG_DEPTH)[np.newaxis]
            else:
                label = decode_mat(self.source, path, "segmentation").astype(np.int64)
                shifted = np.where(label == 0, 255, label - 1).astype(np.uint8)
                tops[name] = shifted[np.newaxis]
        return tops
