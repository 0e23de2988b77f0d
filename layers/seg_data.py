"""What every FCN data layer shares: whole images, one at a time, checked, prefetched.

A dataset says which files an example reads and how to turn them into tops (a plain
`SegDataset`, no Caffe in it, so packers and tests can use it too). The layer parses
`param_str` (a Python literal, never eval'd), orders the examples the way the release did
(sequential for evaluation; for training `random.seed(seed)`, then `randint` once at setup
and once after every forward, drawn as Python 2 drew it, so a seeded run visits the
release's images), reshapes the
tops to each whole image (batch 1, any size), validates before Caffe sees anything, and
decodes the next example ahead of time (seg_prefetch: in a thread by default, or in a
worker process).

param_str keys: the release's for each dataset, plus, all optional: randomize (default
True; only splits named *train* are shuffled), prefetch (True/'thread', 'process',
False), lmdb (read a packed LMDB instead of the folders), mask ('fg', 'bg', 'both'),
mirror (bool), jitter (pixels).
"""

from __future__ import annotations

import ast
import random
import time
import weakref
from pathlib import Path

import caffe
import numpy as np
from seg_augment import Augment
from seg_dataset import SegDataset, read_split
from seg_io import DataError, FileSource, LmdbSource
from seg_prefetch import PREFETCH_MODES, PREFETCHERS


def parse_param_str(param_str: str, where: str) -> dict:
    try:
        params = ast.literal_eval(param_str)
    except (ValueError, SyntaxError) as e:
        raise DataError(f"{where} is not a Python literal: {param_str!r} ({e})") from None
    if not isinstance(params, dict):
        raise DataError(f"{where} must be a dict, found {type(params).__name__}: "
                        f"{param_str!r}")
    return params


def release_randint(order: random.Random, count: int) -> int:
    """The release's `random.randint(0, count - 1)` as Python 2 computed it, int(random() *
    count). The release ran on Python 2; Python 3's randint draws differently from the same
    seed (getrandbits), so it would visit other images than the release's seeded run."""
    return int(order.random() * count)


def open_source(params: dict, dataset: SegDataset):
    if params.get("lmdb"):
        return LmdbSource(Path(params["lmdb"]))
    return FileSource(dataset.roots())


class SegDataLayer(caffe.Layer):
    """A whole-image data layer over `dataset_class` (set by each dataset's layer)."""

    dataset_class: type[SegDataset] = SegDataset

    def setup(self, bottom, top):
        where = f"{type(self).__name__} param_str"
        params = parse_param_str(self.param_str, where)
        self.dataset = self.dataset_class(params, where)
        self.names = self.dataset.top_names()
        if len(top) != len(self.names):
            raise DataError(f"{type(self).__name__} gives {len(self.names)} tops "
                            f"{self.names}, but the net declares {len(top)}")
        if len(bottom) != 0:
            raise DataError(f"{type(self).__name__} takes no bottoms, the net gives "
                            f"{len(bottom)}")
        mode = params.get("prefetch", True)
        if mode not in PREFETCH_MODES:
            raise DataError(f"{where}: prefetch must be True, False, 'thread' or "
                            f"'process', found {mode!r}")
        self.augment = Augment(params, self.dataset, where)
        self.source = open_source(params, self.dataset)
        self.dataset.prepare(self.source)
        self.indices = read_split(self.dataset, self.source)
        # evaluation is sequential; training follows the release's seeded sequence
        self.random = bool(params.get("randomize", True)) and "train" in self.dataset.split
        self.order = random.Random(params.get("seed"))
        self.idx = release_randint(self.order, len(self.indices)) if self.random else 0
        self.prefetch = PREFETCHERS[PREFETCH_MODES[mode]](self.dataset, self.source)
        weakref.finalize(self, self.prefetch.close)
        self.current: dict[str, np.ndarray] | None = None
        self.served = 0  # examples handed to Caffe so far
        self.waited_s = 0.0  # time Caffe spent waiting for examples (decoding or handover)

    def _load(self) -> None:
        """The next example, read once (reshape and upcoming share it)."""
        if self.current is None:
            start = time.perf_counter()
            tops = self.prefetch.take(self.indices[self.idx])
            self.current = self.augment(tops, self.served) if self.augment.active else tops
            self.waited_s += time.perf_counter() - start

    def upcoming(self) -> tuple[str, dict[str, tuple[int, ...]]]:
        """Where the next forward's first top comes from and every top's shape, read now
        (once): a caller can size that forward before Caffe allocates for it."""
        self._load()
        index = self.indices[self.idx]
        files = self.dataset.files(index)
        ref = files.get(self.names[0]) or next(iter(files.values()), None)
        return (self.source.where(ref) if ref is not None else index,
                {n: tuple(self.current[n].shape) for n in self.names})

    def reshape(self, bottom, top):
        self._load()
        for i, name in enumerate(self.names):  # RawBlobVec is indexed, not iterated
            top[i].reshape(1, *self.current[name].shape)

    def forward(self, bottom, top):
        for i, name in enumerate(self.names):
            top[i].data[...] = self.current[name]
        self._advance(1)
        self.prefetch.submit(self.indices[self.idx])

    @property
    def next_index(self) -> str:
        """The id of the example the next forward emits (scoring names its images so)."""
        return self.indices[self.idx]

    def skip(self, n: int) -> None:
        """Move on by `n` examples without decoding them, as if `n` forwards had run (a
        resumed run then reads what the uninterrupted one would have read next)."""
        self._advance(n)

    def _advance(self, n: int) -> None:
        for _ in range(n):
            if self.random:
                self.idx = release_randint(self.order, len(self.indices))
            else:
                self.idx = (self.idx + 1) % len(self.indices)
        self.served += n
        self.current = None

    def backward(self, top, propagate_down, bottom):
        pass
