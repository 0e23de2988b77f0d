"""What every FCN data layer shares: whole images, one at a time, checked, prefetched.

A dataset layer says only where its split list is, which files an example reads and how
to turn them into tops. This base parses `param_str` (a Python literal, never eval'd),
orders the examples the way the release did (sequential for evaluation; for training
`random.seed(seed)` then `randint` once at setup and after every forward, so a seeded run
visits the release's images), reshapes the tops to each whole image (batch 1, any size),
validates before Caffe sees anything, and decodes the next example in a background thread.

Files are read through a source: the dataset folder, or an LMDB packed by `make lmdb`
holding the same files' bytes, so both give identical tops.
"""

from __future__ import annotations

import ast
import io
import random
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import caffe
import numpy as np
from PIL import Image

VOID = 255


class DataError(ValueError):
    """Bad input to a data layer; the message names the file and what is wrong."""


class FileSource:
    def __init__(self, root: Path):
        self.root = Path(root)

    def read(self, relpath: str) -> bytes:
        path = self.root / relpath
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None

    def where(self, relpath: str) -> str:
        return str(self.root / relpath)


class LmdbSource:
    """The dataset's files as stored by data/lmdb_pack.py: key = path relative to the root."""

    def __init__(self, path: Path):
        import lmdb

        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"{self.path}: LMDB not found (make it with `make lmdb`)")
        self.env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False)

    def read(self, relpath: str) -> bytes:
        with self.env.begin() as txn:
            value = txn.get(relpath.encode())
        if value is None:
            raise DataError(f"{self.path}: no entry {relpath!r} in the LMDB")
        return value

    def where(self, relpath: str) -> str:
        return f"{self.path}[{relpath}]"


def decode_image(source, relpath: str) -> np.ndarray:
    """An RGB image file as an H×W×3 uint8 array (greyscale is expanded)."""
    try:
        image = Image.open(io.BytesIO(source.read(relpath)))
        image.load()
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{source.where(relpath)}: not a readable image ({e})") from None
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def decode_png(source, relpath: str) -> np.ndarray:
    """A single-channel PNG (palette indices or greyscale) as its raw 2-D values."""
    try:
        image = Image.open(io.BytesIO(source.read(relpath)))
        image.load()
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{source.where(relpath)}: not a readable PNG ({e})") from None
    array = np.asarray(image)
    if array.ndim != 2:
        raise DataError(f"{source.where(relpath)}: expected a single-channel (palette or "
                        f"greyscale) PNG, found mode {image.mode}")
    return array


def decode_mat(source, relpath: str, key: str):
    from scipy.io import loadmat

    try:
        mat = loadmat(io.BytesIO(source.read(relpath)))
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{source.where(relpath)}: not a readable .mat file ({e})") from None
    if key not in mat:
        raise DataError(f"{source.where(relpath)}: no variable {key!r} (has "
                        f"{sorted(k for k in mat if not k.startswith('__'))})")
    return mat[key]


def image_top(rgb: np.ndarray, mean) -> np.ndarray:
    """RGB H×W×3 → BGR, mean-subtracted, C×H×W float32 (the release's preprocessing)."""
    bgr = rgb[:, :, ::-1].astype(np.float32)
    bgr -= np.asarray(mean, dtype=np.float32)
    return bgr.transpose(2, 0, 1)


class SegDataLayer(caffe.Layer):
    """Base of the dataset layers. Subclasses define `dataset_dir`, `split_path`,
    `top_names`, `files(index)` and `load(index)`; `num_classes` bounds the labels."""

    num_classes = 21
    required = ("split",)

    # --- what a dataset layer provides -------------------------------------------------
    def dataset_dir(self, params: dict) -> Path:
        raise NotImplementedError

    def split_path(self, params: dict) -> str:
        """The split list, relative to dataset_dir."""
        raise NotImplementedError

    def top_names(self, params: dict) -> list[str]:
        return ["data", "label"]

    def load(self, index: str) -> dict[str, np.ndarray]:
        """Decode one example into its tops (C×H×W arrays), keyed by top name."""
        raise NotImplementedError

    # --- shared machinery ----------------------------------------------------------------
    def setup(self, bottom, top):
        where = f"{type(self).__name__} param_str"
        try:
            params = ast.literal_eval(self.param_str)
        except (ValueError, SyntaxError) as e:
            raise DataError(f"{where} is not a Python literal: {self.param_str!r} ({e})") \
                from None
        if not isinstance(params, dict):
            raise DataError(f"{where} must be a dict, found {type(params).__name__}")
        missing = [k for k in self.required if k not in params]
        if missing:
            raise DataError(f"{where} lacks {missing}: {self.param_str}")
        self.params = params
        self.split = params["split"]
        self.seed = params.get("seed")
        self.mean = params.get("mean")
        # evaluation splits are read in order; training splits in the release's random order
        self.random = params.get("randomize", True) and "train" in self.split
        self.mask = params.get("mask")  # Section 6.1: 'foreground', 'background' or 'both'
        self.mirror = bool(params.get("mirror", False))
        self.root = self.dataset_dir(params)
        self.source = (LmdbSource(Path(params["lmdb"])) if params.get("lmdb")
                       else FileSource(self.root))
        self.names = self.top_names(params)
        if len(top) != len(self.names):
            raise DataError(f"{type(self).__name__} produces {len(self.names)} tops "
                            f"{self.names}, but the net declares {len(top)}")
        if bottom:
            raise DataError(f"{type(self).__name__} takes no bottoms, found {len(bottom)}")
        split_file = self.split_path(params)
        text = self.source.read(split_file).decode()
        self.indices = [line.strip() for line in text.splitlines() if line.strip()]
        if not self.indices:
            raise DataError(f"{self.source.where(split_file)}: the split list is empty")
        self.rng = random.Random(self.seed)  # same sequence as random.seed(seed); randint
        self.augment_rng = np.random.RandomState(self.seed)
        self.position = self._next_position(first=True)
        self.pool = ThreadPoolExecutor(1) if params.get("prefetch", True) else None
        self.pending: Future | None = None
        self.current: dict[str, np.ndarray] | None = None

    def _next_position(self, first: bool = False) -> int:
        if self.random:
            return self.rng.randint(0, len(self.indices) - 1)
        return 0 if first else (self.position + 1) % len(self.indices)

    def _load_checked(self, index: str) -> dict[str, np.ndarray]:
        tops = self.load(index)
        shapes = {name: tops[name].shape[-2:] for name in self.names}
        first = self.names[0]
        for name, shape in shapes.items():
            if shape != shapes[first]:
                raise DataError(
                    f"{self.root}: example {index}: {name} is {shape[0]}×{shape[1]} but "
                    f"{first} is {shapes[first][0]}×{shapes[first][1]}")
        for name in self.label_names():
            values = np.unique(tops[name])
            classes = self.classes_of(name)
            bad = values[(values >= classes) & (values != VOID)]
            if bad.size:
                raise DataError(f"{self.root}: example {index}: {name} has values "
                                f"{bad.tolist()[:5]} outside 0..{classes - 1} and "
                                f"{VOID} (void)")
        return self.augment(tops)

    def classes_of(self, label_top: str) -> int:
        return self.num_classes

    def label_names(self) -> list[str]:
        return [n for n in self.names if n in ("label", "sem", "geo")]

    def augment(self, tops: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Optional analyses: masking (Section 6.1) and mirroring (Section 4.4)."""
        labels = self.label_names()
        if self.mask and labels:
            label = tops[labels[0]][0]
            region = {"foreground": (label > 0) & (label != VOID),
                      "background": label == 0, "both": np.ones_like(label, bool)}[self.mask]
            for name in self.names:
                if name not in labels:
                    tops[name][:, region] = 0  # the mean, after mean subtraction
        if self.mirror and self.augment_rng.rand() < 0.5:
            tops = {k: np.ascontiguousarray(v[..., ::-1]) for k, v in tops.items()}
        return tops

    def _take(self) -> dict[str, np.ndarray]:
        index = self.indices[self.position]
        if self.pending is not None:
            pending, self.pending = self.pending, None
            return pending.result()
        return self._load_checked(index)

    def reshape(self, bottom, top):
        if self.current is None:
            self.current = self._take()
        for i, name in enumerate(self.names):  # (Caffe's blob vectors index, not iterate)
            top[i].reshape(1, *self.current[name].shape)

    def forward(self, bottom, top):
        for i, name in enumerate(self.names):
            top[i].data[...] = self.current[name]
        self.current = None
        self.position = self._next_position()
        if self.pool is not None:
            self.pending = self.pool.submit(self._load_checked, self.indices[self.position])

    def backward(self, top, propagate_down, bottom):
        pass

    # used by data/lmdb_pack.py
    def files(self, index: str) -> list[str]:
        """The files (relative to dataset_dir) example `index` reads."""
        raise NotImplementedError
