"""PASCAL-Context's 59-class task on VOC2010 images.

voc_dir/VOC2010/{JPEGImages/*.jpg, ImageSets/Main/<split>.txt}; context_dir/{trainval/*.mat
(key `LabelMap`, 1-based indices into labels.txt's 459 names), labels.txt, 59_labels.txt}.
Three names differ between the two lists (diningtable/table, bedcloth/bedclothes,
clothes/cloth); everything outside the 59 is background 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seg_data import DataError, SegDataLayer, decode_image, decode_mat, image_top

MEAN = (104.007, 116.669, 122.679)
# 59_labels.txt name -> labels.txt name
RENAMED = {"diningtable": "table", "bedcloth": "bedclothes", "clothes": "cloth"}


def read_names(source, relpath: str) -> list[str]:
    """'1: accordion' lines → names in index order."""
    names = []
    for number, line in enumerate(source.read(relpath).decode().splitlines(), start=1):
        if not line.strip():
            continue
        index, _, name = line.partition(":")
        if not index.strip().isdigit() or int(index) != number:
            raise DataError(f"{source.where(relpath)}: line {number} is not '{number}: name'")
        names.append(name.strip().replace(" ", ""))
    return names


class PASCALContextSegDataLayer(SegDataLayer):
    num_classes = 60
    required = ("voc_dir", "context_dir", "split")

    def dataset_dir(self, params):
        return Path(params["voc_dir"])

    def setup(self, bottom, top):
        super().setup(bottom, top)
        from seg_data import FileSource, LmdbSource

        params = self.params
        self.context = (LmdbSource(Path(params["lmdb"])) if params.get("lmdb")
                        else FileSource(Path(params["context_dir"])))
        all_names = read_names(self.context, "labels.txt")
        task = [RENAMED.get(n, n) for n in read_names(self.context, "59_labels.txt")]
        missing = [n for n in task if n not in all_names]
        if missing:
            raise DataError(f"{self.context.where('59_labels.txt')}: {missing} not in labels.txt")
        self.lookup = np.zeros(len(all_names) + 1, dtype=np.uint8)  # 0 and the rest: background
        for class_index, name in enumerate(task, start=1):
            self.lookup[all_names.index(name) + 1] = class_index

    def split_path(self, params):
        return f"VOC2010/ImageSets/Main/{params['split']}.txt"

    def files(self, index):
        return [f"VOC2010/JPEGImages/{index}.jpg", f"trainval/{index}.mat"]

    def load(self, index):
        image_file, label_file = self.files(index)
        label_map = decode_mat(self.context, label_file, "LabelMap").astype(np.int64)
        if label_map.min() < 0 or label_map.max() >= len(self.lookup):
            raise DataError(f"{self.context.where(label_file)}: LabelMap values outside "
                            f"0..{len(self.lookup) - 1}")
        return {"data": image_top(decode_image(self.source, image_file), MEAN),
                "label": self.lookup[label_map][np.newaxis]}
