"""NYUDv2 in the release's prepared layout (the release's `nyud_layers`), 40 classes.

`<nyud_dir>/data/images/img_<id>.png` (RGB), `data/depth/img_<id>.png` (16-bit depth),
`data/hha/img_<id>.png` (HHA, 3 channels), `segmentation/img_<id>.mat` (key
`segmentation`: 0 = void, 1..40 = classes), split lists `<nyud_dir>/<split>.txt`.
Tops are chosen by name with the `tops` key, from color, depth, hha and label:
color is BGR minus its mean, hha minus its mean (channels kept as stored), depth is
log(depth) minus the mean log depth, label is shifted to 0..39 with void 255.
"""

from __future__ import annotations

import numpy as np
from seg_data import SegDataLayer
from seg_dataset import SegDataset
from seg_io import (
    DataError,
    check_label_values,
    open_image,
    read_mat,
    read_rgb,
)

from core.catalog import DATASETS
from core.images import bgr_minus_mean

NYUD = DATASETS["nyud"]
NUM_CLASSES = NYUD.num_classes
MEAN_BGR, MEAN_HHA, MEAN_LOG_DEPTH = NYUD.mean("color"), NYUD.mean("hha"), NYUD.mean("depth")
TOPS = ("color", "depth", "hha", "label")
RAW_LABELS = np.arange(NUM_CLASSES + 1)  # 0 = void, then the classes


class NYUDSegData(SegDataset):
    keys = ("nyud_dir", "tops")
    required = ("nyud_dir", "split", "tops")
    label_classes = {"label": NUM_CLASSES}
    background_is_zero = NYUD.background_is_zero  # class 0 is a real class (wall)
    layout = NYUD.train_layer.layout

    def __init__(self, params: dict, where: str = "param_str"):
        super().__init__(params, where)
        tops = params["tops"]
        if not isinstance(tops, (list, tuple)) or not tops:
            raise DataError(f"{where}: tops must be a list of names from {TOPS}, "
                            f"found {tops!r}")
        unknown = [t for t in tops if t not in TOPS]
        if unknown or len(set(tops)) != len(tops):
            raise DataError(f"{where}: tops {list(tops)} must be distinct names from {TOPS}")
        self.tops = list(tops)

    def top_names(self) -> list[str]:
        return self.tops

    def input_means(self) -> dict[str, np.ndarray]:
        return {"color": MEAN_BGR}

    def load(self, index: str, source) -> dict[str, np.ndarray]:
        files = self.files(index)
        loaders = {"color": self.load_color, "depth": self.load_depth,
                   "hha": self.load_hha, "label": self.load_label}
        return {t: loaders[t](source, files[t]) for t in self.tops}

    @staticmethod
    def load_color(source, ref) -> np.ndarray:
        return bgr_minus_mean(read_rgb(source, ref), MEAN_BGR)

    @staticmethod
    def load_label(source, ref) -> np.ndarray:
        raw = read_mat(source, ref, "segmentation")
        check_label_values(raw, RAW_LABELS, source.where(ref))
        label = raw.astype(np.uint8)
        label -= 1  # classes 1..40 → 0..39, void 0 → 255
        return label[np.newaxis, ...]

    @staticmethod
    def load_depth(source, ref) -> np.ndarray:
        image = open_image(source, ref, "depth")
        depth = np.array(image, dtype=np.float32)
        if depth.ndim != 2:
            raise DataError(f"depth {source.where(ref)} is {image.mode}, expected one channel")
        if (depth <= 0).any():
            raise DataError(f"depth {source.where(ref)} has {int((depth <= 0).sum())} pixels "
                            f"<= 0, where log depth is undefined")
        depth = np.log(depth)
        depth -= MEAN_LOG_DEPTH
        return depth[np.newaxis, ...]

    @staticmethod
    def load_hha(source, ref) -> np.ndarray:
        image = open_image(source, ref, "hha")
        if image.mode != "RGB":
            raise DataError(f"hha {source.where(ref)} is {image.mode}, expected 3 channels")
        hha = np.array(image, dtype=np.float32)
        hha -= MEAN_HHA
        return hha.transpose((2, 0, 1))


class NYUDSegDataLayer(SegDataLayer):
    """e.g. {'tops': ['color', 'hha', 'label'], 'seed': 1337, 'nyud_dir': ..., 'split': ...}."""

    dataset_class = NYUDSegData
