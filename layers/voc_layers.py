"""PASCAL VOC and SBD (the release's `voc_layers`): RGB images with 21-class labels.

VOC: `<voc_dir>/JPEGImages/<id>.jpg`, `SegmentationClass/<id>.png` (palette indices,
255 = void), split lists `ImageSets/Segmentation/<split>.txt` (e.g. seg11valid).
SBD: `<sbdd_dir>/img/<id>.jpg`, `cls/<id>.mat` (struct GTcls, field Segmentation; no void),
split lists `<split>.txt` (train, val).
Input: RGB → BGR, minus the param_str mean, C×H×W float32. Label: 1×H×W uint8.
"""

from __future__ import annotations

import numpy as np
from seg_data import SegDataLayer
from seg_dataset import SegDataset
from seg_io import (
    VOID,
    DataError,
    check_label_values,
    read_index_png,
    read_mat,
    read_rgb,
)

from core.catalog import DATASETS
from core.images import bgr_minus_mean

NUM_CLASSES = DATASETS["voc"].num_classes  # background + 20 object classes
VOC_LABELS = np.array([*range(NUM_CLASSES), VOID])
SBDD_LABELS = np.arange(NUM_CLASSES)


def parse_mean(params: dict, where: str) -> np.ndarray:
    mean = np.array(params["mean"])  # float64, as the release: the subtraction rounds once
    if mean.shape != (3,):
        raise DataError(f"{where}: mean must be three numbers (B, G, R), found "
                        f"{params['mean']!r}")
    return mean


class VOCSegData(SegDataset):
    keys = ("voc_dir", "mean")
    required = ("voc_dir", "split", "mean")
    label_classes = {"label": NUM_CLASSES}
    background_is_zero = DATASETS["voc"].background_is_zero
    layout = DATASETS["voc"].test_layer.layout

    def __init__(self, params: dict, where: str = "param_str"):
        super().__init__(params, where)
        self.mean = parse_mean(params, where)

    def input_means(self) -> dict[str, np.ndarray]:
        return {"data": self.mean}

    def load(self, index: str, source) -> dict[str, np.ndarray]:
        files = self.files(index)
        label = read_index_png(source, files["label"])
        check_label_values(label, VOC_LABELS, source.where(files["label"]))
        return {"data": bgr_minus_mean(read_rgb(source, files["data"]), self.mean),
                "label": label[np.newaxis, ...]}


class SBDDSegData(VOCSegData):
    keys = ("sbdd_dir", "mean")
    required = ("sbdd_dir", "split", "mean")
    layout = DATASETS["voc"].train_layer.layout

    def load(self, index: str, source) -> dict[str, np.ndarray]:
        files = self.files(index)
        where = source.where(files["label"])
        gt = read_mat(source, files["label"], "GTcls")
        try:
            segmentation = gt[0]["Segmentation"][0]
        except (IndexError, ValueError, KeyError):
            raise DataError(f"label {where}: GTcls has no field Segmentation") from None
        check_label_values(segmentation, SBDD_LABELS, where)
        label = segmentation.astype(np.uint8)
        return {"data": bgr_minus_mean(read_rgb(source, files["data"]), self.mean),
                "label": label[np.newaxis, ...]}


class VOCSegDataLayer(SegDataLayer):
    """PASCAL VOC segmentation, e.g. {'voc_dir': ..., 'split': 'seg11valid', 'mean': ...}."""

    dataset_class = VOCSegData


class SBDDSegDataLayer(SegDataLayer):
    """SBD segmentation, e.g. {'sbdd_dir': ..., 'seed': 1337, 'split': 'train', 'mean': ...}."""

    dataset_class = SBDDSegData
