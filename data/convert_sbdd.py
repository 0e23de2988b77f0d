"""SBD's MATLAB labels as VOC-style palette PNGs, for viewing and for PNG-based tools.

Writes <sbdd>/cls/<id>.png beside each cls/<id>.mat (and inst/ likewise): the class (or
instance) index per pixel with the VOC colour map, the form of VOC's SegmentationClass.
The data layer keeps reading the .mat files, as the release did.

    python -m data.convert_sbdd datasets/sbdd/dataset
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from core.errors import InputError, cli_main
from core.palette import voc_palette

FIELDS = {"cls": "GTcls", "inst": "GTinst"}


class ConvertError(InputError):
    """A .mat file that is not an SBD annotation."""


def segmentation(mat_path: Path, kind: str) -> np.ndarray:
    try:
        struct = scipy.io.loadmat(str(mat_path))[FIELDS[kind]]
        array = np.asarray(struct[0]["Segmentation"][0])
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise ConvertError(f"{mat_path}: not an SBD {kind} annotation ({e})") from None
    if array.ndim != 2 or array.size == 0:
        raise ConvertError(f"{mat_path}: Segmentation has shape {array.shape}, expected H×W")
    if array.min() < 0 or array.max() > 255:
        raise ConvertError(f"{mat_path}: values {array.min()}..{array.max()} do not fit "
                           f"a palette PNG")
    return array.astype(np.uint8)


def to_png(array: np.ndarray) -> bytes:
    image = Image.fromarray(array, mode="L").convert("P")
    image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def convert(sbdd: Path, kinds: tuple[str, ...] = ("cls",), *, progress: bool = True) -> int:
    """Convert every <kind>/*.mat under `sbdd`; return how many PNGs were written."""
    from tqdm import tqdm

    written = 0
    for kind in kinds:
        mats = sorted((Path(sbdd) / kind).glob("*.mat"))
        if not mats:
            raise ConvertError(f"{Path(sbdd) / kind}: no .mat files")
        for mat in tqdm(mats, desc=kind, unit="file", disable=not progress):
            mat.with_suffix(".png").write_bytes(to_png(segmentation(mat, kind)))
            written += 1
    return written


@cli_main("convert-sbdd")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sbdd", type=Path, help="the SBD dataset folder (img/, cls/, inst/)")
    parser.add_argument("--kinds", nargs="+", choices=sorted(FIELDS), default=["cls"])
    args = parser.parse_args(argv)
    print(f"{convert(args.sbdd, tuple(args.kinds))} PNGs written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
