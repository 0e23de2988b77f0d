"""Reading a dataset's files: from its folders or from a packed LMDB, decoded and checked.

A file is named by (root name, relative path), so one dataset can read from several
folders (PASCAL-Context: VOC2010 images, Context labels) and an LMDB can hold them all
under "<root>/<relative path>" keys with the files' bytes untouched: both sources decode to
the same arrays. Every error names the file and says what is wrong.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import scipy.io  # imported here so a forked prefetch worker never imports it itself
from PIL import Image

from core.catalog import VOID  # noqa: F401  (the layers' label checks import it from here)
from core.errors import InputError

FileRef = tuple  # (root name, path relative to that root), e.g. ("voc", "JPEGImages/x.jpg")


class DataError(InputError):
    """Bad input to a data layer; the message names the file and what is wrong."""


# --- where the bytes come from ----------------------------------------------------------
class FileSource:
    """Files under the dataset's named folders, e.g. {"voc": Path("../data/pascal/VOC2011")}."""

    def __init__(self, roots: dict[str, Path]):
        self.roots = {name: Path(path) for name, path in roots.items()}

    def path(self, ref: FileRef) -> Path:
        root, relpath = ref
        return self.roots[root] / relpath

    def read(self, ref: FileRef) -> bytes:
        try:
            return self.path(ref).read_bytes()
        except FileNotFoundError:
            raise DataError(f"{self.path(ref)}: file not found") from None
        except IsADirectoryError:
            raise DataError(f"{self.path(ref)}: is a folder, expected a file") from None
        except OSError as e:
            raise DataError(f"{self.path(ref)}: cannot be read ({e.strerror})") from None

    def where(self, ref: FileRef) -> str:
        return str(self.path(ref))

    def close(self) -> None:
        pass


def lmdb_key(ref: FileRef) -> bytes:
    """The key a file is stored under in a packed LMDB: "<root>/<relative path>"."""
    root, relpath = ref
    return f"{root}/{relpath}".encode()


class LmdbSource:
    """The same files, as packed by data/lmdb_pack.py (value = the file's bytes, untouched).

    The environment is opened per process: LMDB handles must not cross a fork.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise DataError(f"{self.path}: no LMDB here (pack one with `make lmdb`)")
        self._env = None
        self._pid = None

    def _open(self):
        import lmdb

        if self._pid != os.getpid():
            self._env = lmdb.open(str(self.path), readonly=True, lock=False,
                                  readahead=False, max_readers=64)
            self._pid = os.getpid()
        return self._env

    def close(self) -> None:
        """Close the environment (before a fork: each process then opens its own)."""
        if self._env is not None and self._pid == os.getpid():
            self._env.close()
        self._env = self._pid = None

    def read(self, ref: FileRef) -> bytes:
        with self._open().begin(buffers=False) as txn:
            value = txn.get(lmdb_key(ref))
        if value is None:
            raise DataError(f"{self.where(ref)}: not in the LMDB (was it packed for this "
                            f"split?)")
        return value

    def where(self, ref: FileRef) -> str:
        return f"{self.path}[{lmdb_key(ref).decode()}]"


# --- decoding -----------------------------------------------------------------------------
def open_image(source, ref: FileRef, what: str = "image") -> Image.Image:
    try:
        image = Image.open(io.BytesIO(source.read(ref)))
        image.load()
    except DataError:
        raise
    except Exception as e:  # PIL raises several types for truncated / corrupt files
        raise DataError(f"{what} {source.where(ref)} is not a readable image ({e})") from None
    return image


def read_rgb(source, ref: FileRef) -> np.ndarray:
    """An RGB image file as H×W×3 float32, like the release's np.array(im, np.float32)."""
    image = open_image(source, ref)
    if image.mode != "RGB":
        raise DataError(f"image {source.where(ref)} is {image.mode}, expected RGB")
    return np.array(image, dtype=np.float32)


def read_index_png(source, ref: FileRef) -> np.ndarray:
    """A palette or greyscale PNG's raw values (VOC labels: class index, 255 = void)."""
    image = open_image(source, ref, "label")
    if image.mode not in ("P", "L"):
        raise DataError(f"label {source.where(ref)} is {image.mode}, expected a palette "
                        f"(P) or greyscale (L) PNG of class indices")
    return np.array(image, dtype=np.uint8)


def read_mat(source, ref: FileRef, key: str) -> np.ndarray:
    try:
        mat = scipy.io.loadmat(io.BytesIO(source.read(ref)))
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"label {source.where(ref)} is not a readable .mat file ({e})") \
            from None
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"label {source.where(ref)} has no variable {key!r} (found {found})")
    return mat[key]


def check_label_values(values: np.ndarray, allowed: np.ndarray, where: str) -> None:
    """Raise unless every raw label value is one of `allowed` (before any shift)."""
    present = np.unique(values)
    bad = present[~np.isin(present, allowed)]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:8].tolist())
        raise DataError(f"label {where} has values {shown} that are neither a class nor "
                        f"void (allowed: {describe_values(allowed)})")


def describe_values(allowed: np.ndarray) -> str:
    allowed = np.sort(np.asarray(allowed))
    runs, start = [], allowed[0]
    for prev, cur in zip(allowed[:-1], allowed[1:]):
        if cur != prev + 1:
            runs.append((start, prev))
            start = cur
    runs.append((start, allowed[-1]))
    return ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs)
