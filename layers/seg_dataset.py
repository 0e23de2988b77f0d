"""The interface a dataset fills in, and the checks every example passes through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seg_io import VOID, DataError, FileRef

from core.catalog import FileLayout

# keys every layer accepts on top of its dataset's own (all optional, off by default)
COMMON_KEYS = ("split", "seed", "randomize", "prefetch", "lmdb", "mask", "mirror", "jitter")


class SegDataset:
    """How one dataset turns an example id into tops; subclasses fill in the facts.

    `keys` are the param_str keys the dataset reads (besides COMMON_KEYS), `required` the
    ones it cannot do without, `label_classes` the class count of each label top,
    `background_is_zero` whether class 0 is background (what masking needs), `layout` the
    catalog's file layout (folders, split list, files per top) the defaults below read.
    """

    layout: FileLayout
    keys: tuple[str, ...] = ()
    required: tuple[str, ...] = ("split",)
    label_classes: dict[str, int] = {}
    background_is_zero = True

    def __init__(self, params: dict, where: str = "param_str"):
        unknown = sorted(set(params) - set(self.keys) - set(COMMON_KEYS))
        if unknown:
            raise DataError(f"{where}: unknown key(s) {unknown}; "
                            f"known: {sorted(set(self.keys) | set(COMMON_KEYS))}")
        missing = [k for k in self.required if k not in params]
        if missing:
            raise DataError(f"{where}: missing key(s) {missing}")
        self.params = params
        self.split = params["split"]

    def roots(self) -> dict[str, Path]:
        """The named folders files are read from."""
        return self.layout.roots(self.params)

    def split_file(self) -> FileRef:
        return self.layout.split_file(self.split)

    def top_names(self) -> list[str]:
        return ["data", "label"]

    def setup_files(self) -> list[FileRef]:
        """Files read once at setup besides the split list (e.g. class lists)."""
        return list(self.layout.setup_files)

    def prepare(self, source) -> None:
        """Read the setup files."""

    def files(self, index: str) -> dict[str, FileRef]:
        """The file each top of example `index` comes from."""
        return self.layout.example_files(index, self.top_names())

    def load(self, index: str, source) -> dict[str, np.ndarray]:
        """Decode example `index` into C×H×W arrays keyed by top name."""
        raise NotImplementedError

    def input_means(self) -> dict[str, np.ndarray]:
        """Mean subtracted from each colour input top (used by the shape-only mask)."""
        return {}


def read_split(dataset: SegDataset, source) -> list[str]:
    """The split's example ids, one per line (surrounding spaces and final blank lines
    ignored; a blank line inside the list is an error, as it names no example)."""
    ref = dataset.split_file()
    try:
        text = source.read(ref).decode("utf-8-sig")  # a byte-order mark is not part of a name
    except DataError:
        raise DataError(f"split list {source.where(ref)} not found") from None
    except UnicodeDecodeError as e:
        raise DataError(f"split list {source.where(ref)} is not text ({e})") from None
    indices = [line.strip() for line in text.splitlines()]
    while indices and not indices[-1]:
        indices.pop()
    if not indices:
        raise DataError(f"split list {source.where(ref)} is empty")
    blank = [n + 1 for n, i in enumerate(indices) if not i]
    if blank:
        raise DataError(f"split list {source.where(ref)} has blank line(s) {blank[:5]}")
    return indices


def load_example(dataset: SegDataset, source, index: str) -> dict[str, np.ndarray]:
    """Decode one example and check it: every top the same size, labels in range."""
    files = dataset.files(index)
    tops = dataset.load(index, source)
    names = dataset.top_names()
    first = names[0]
    height, width = tops[first].shape[-2:]
    for name in names[1:]:
        h, w = tops[name].shape[-2:]
        if (h, w) != (height, width):
            raise DataError(f"{name} {source.where(files[name])} is {h}×{w} but {first} "
                            f"{source.where(files[first])} is {height}×{width}")
    for name, classes in dataset.label_classes.items():
        if name in tops:
            values = np.unique(tops[name])
            bad = values[(values >= classes) & (values != VOID)]
            if bad.size:
                raise DataError(f"label {source.where(files[name])} has values "
                                f"{bad.tolist()[:8]} that are neither a class "
                                f"(0..{classes - 1}) nor {VOID} (void)")
    return tops
