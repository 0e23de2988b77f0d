"""JPEG and PNG decoding gives the same bytes whichever SIMD path Pillow's libjpeg-turbo takes.

libjpeg-turbo picks AVX2, SSE2 or plain C code by CPU; its JSIMD_FORCESSE2 / JSIMD_FORCENONE
variables make it take the older paths on this machine, which is how a CPU without AVX2 (or
without SIMD at all) decodes. Each setting runs in its own process (the choice is made once,
at the first decode). caffe-recipe/NUMERICS.md records what was measured.
"""

import hashlib
import io
import subprocess
import sys

import numpy as np
from PIL import Image

DECODE = """
import hashlib, sys
import numpy as np
from PIL import Image
for path in sys.argv[1:]:
    image = Image.open(path)
    image.load()
    print(path, image.mode, hashlib.sha256(np.array(image).tobytes()).hexdigest())
"""


def pictures(folder) -> list[str]:
    """JPEGs at odd sizes in every chroma subsampling and two qualities, and a palette PNG."""
    rng = np.random.default_rng(0)
    paths = []
    for h, w in ((375, 500), (333, 517), (61, 83)):
        y, x = np.mgrid[0:h, 0:w]
        rgb = np.stack([x * 255 // w, y * 255 // h, (x + y) * 3 % 256], -1)
        rgb = np.clip(rgb + rng.integers(-40, 40, rgb.shape), 0, 255).astype(np.uint8)
        for subsampling in (0, 1, 2):      # 4:4:4, 4:2:2, 4:2:0
            for quality in (75, 95):
                path = folder / f"{h}x{w}-{subsampling}-{quality}.jpg"
                Image.fromarray(rgb).save(path, "JPEG", quality=quality, subsampling=subsampling)
                paths.append(str(path))
        label = Image.fromarray((rgb[..., 0] // 12).astype(np.uint8), "P")
        label.putpalette(list(rng.integers(0, 256, 768)))
        label.save(folder / f"{h}x{w}.png")
        paths.append(str(folder / f"{h}x{w}.png"))
    return paths


def decode(paths: list[str], **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", DECODE, *paths], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", **env}, check=True)
    return done.stdout


def test_jpeg_and_png_decode_to_the_same_bytes_on_every_simd_path(tmp_path):
    paths = pictures(tmp_path)
    default = decode(paths)
    assert len(default.splitlines()) == len(paths) == 21
    assert decode(paths, JSIMD_FORCESSE2="1") == default     # no AVX2
    assert decode(paths, JSIMD_FORCENONE="1") == default     # no SIMD at all


def test_the_decoded_bytes_are_the_pictures_not_an_empty_result(tmp_path):
    # the PNG round trip is lossless, so its digest must be the array's own
    paths = pictures(tmp_path)
    png = next(p for p in paths if p.endswith(".png"))
    line = next(x for x in decode(paths).splitlines() if x.startswith(png))
    digest = hashlib.sha256(np.array(Image.open(io.BytesIO(open(png, "rb").read())))
                            .tobytes()).hexdigest()
    assert line.split()[-1] == digest and line.split()[1] == "P"
