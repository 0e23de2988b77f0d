"""PASCAL VOC 2011 (evaluation: seg11valid) and SBD (training) segmentation layers.

VOC: VOCdevkit/VOC2011/{JPEGImages/*.jpg, SegmentationClass/*.png (palette indices,
255 = void), ImageSets/Segmentation/<split>.txt}. SBD: dataset/{img/*.jpg, cls/*.mat
(struct GTcls, field Segmentation), <split>.txt}. Both give `data` (BGR minus the mean,
3×H×W) and `label` (1×H×W, classes 0–20, 255 void).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seg_data import DataError, SegDataLayer, decode_image, decode_mat, decode_png, image_top

MEAN = (104.00699, 116.66877, 122.67892)


class VOCSegDataLayer(SegDataLayer):
    num_classes = 21
    required = ("voc_dir", "split")

    def dataset_dir(self, params):
        return Path(params["voc_dir"])

    def split_path(self, params):
        return f"ImageSets/Segmentation/{params['split']}.txt"

    def files(self, index):
        return [f"JPEGImages/{index}.jpg", f"SegmentationClass/{index}.png"]

    def load(self, index):
        image_file, label_file = self.files(index)
        return {"data": image_top(decode_image(self.source, image_file), self.mean or MEAN),
                "label": decode_png(self.source, label_file)[np.newaxis].astype(np.uint8)}


class SBDDSegDataLayer(SegDataLayer):
    num_classes = 21
    required = ("sbdd_dir", "split")

    def dataset_dir(self, params):
        return Path(params["sbdd_dir"])

    def split_path(self, params):
        return f"{params['split']}.txt"

    def files(self, index):
        return [f"img/{index}.jpg", f"cls/{index}.mat"]

    def load(self, index):
        image_file, label_file = self.files(index)
        gt = decode_mat(self.source, label_file, "GTcls")
        try:
            label = np.asarray(gt[0]["Segmentation"][0], dtype=np.uint8)
        except (IndexError, ValueError, KeyError) as e:
            raise DataError(f"{self.source.where(label_file)}: GTcls has no Segmentation "
                            f"field ({e})") from None
        return {"data": image_top(decode_image(self.source, image_file), self.mean or MEAN),
                "label": label[np.newaxis]}
