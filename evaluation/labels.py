"""The ground truth of a split, read by the dataset's own data-layer code (layers/), for
the analyses that need labels without a net: IU bounds (6.3), class frequencies (4.4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.catalog import data_param
from data.registry import from_layers
from evaluation.runtime import bar_interval


def split_labels(dataset: str, data_root: Path, split: str, phase: str = "test", *,
                 progress: bool = True) -> tuple[int, int, Iterator[np.ndarray]]:
    """(image count, class count, iterator over the 2-d label arrays) of `split`, read as
    the `phase` ('train' or 'test') data layer of `dataset` reads it, checks included."""
    parse_param_str = from_layers("seg_data").parse_param_str
    seg_dataset = from_layers("seg_dataset")
    load_example, read_split = seg_dataset.load_example, seg_dataset.read_split

    layer, param_str = data_param(dataset, phase, split, str(Path(data_root).resolve()))
    dataset_class = getattr(from_layers(layer.module), layer.dataset_class)
    data = dataset_class(parse_param_str(param_str, f"{layer.layer} param_str"))
    source = from_layers("seg_io").FileSource(data.roots())
    indices = read_split(data, source)
    label_top, num_classes = next(iter(data.label_classes.items()))

    def labels() -> Iterator[np.ndarray]:
        for index in tqdm(indices, desc=f"{dataset} {split}", unit="img", leave=False,
                          disable=not progress, mininterval=bar_interval()):
            yield load_example(data, source, index)[label_top][0]

    return len(indices), num_classes, labels()
