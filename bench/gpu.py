"""FCN-8s on a GPU, when the venv's Caffe is a CUDA build and a GPU is present.

Run in its own process (`python -m bench.gpu --data-root R`), so a CUDA failure cannot
take the CPU benchmark down with it; prints one JSON line of forward and
forward+backward milliseconds (medians, after a warm-up, synchronised by Caffe's blocking
reads of the output).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from core.errors import cli_main


def unavailable_reason(caffe_root: Path) -> str | None:
    """Why the GPU cannot be measured here, or None when it can."""
    library = caffe_root / "build/lib/libcaffe.so"
    linked = subprocess.run(["ldd", str(library)], capture_output=True, text=True,
                            check=False).stdout
    if "libcudart" not in linked:
        return f"{library} is a CPU-only build (make caffe CUDA=1 for a GPU one)"
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA driver (nvidia-smi) on this machine"
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return "nvidia-smi lists no GPU"
    return None


def measure(experiment: str, data_root: Path, size: tuple[int, int], repeats: int) -> dict:
    import caffe

    from bench.data_rate import iterations
    from bench.models import deploy_net, fill_weights, random_image, train_net
    from bench.timing import timed

    caffe.set_device(0)
    caffe.set_mode_gpu()
    with tempfile.TemporaryDirectory() as workdir:
        net, _ = deploy_net(experiment, size, Path(workdir))
        fill_weights(net)
        net.blobs["data"].data[...] = random_image(size)
        forward = timed(lambda net=net: net.forward()[net.outputs[0]].sum(), repeats,
                        warmup=2)
        del net
        train, _ = train_net(experiment, data_root, Path(workdir))
        fill_weights(train)
        step = iterations(train, repeats, warmup=2)
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True, check=False).stdout.strip()
    return {"device": gpu, "forward_ms": forward["median_s"] * 1e3,
            "forward_backward_ms": step["median_s"] * 1e3, "forward": forward, "train": step}


@cli_main("bench-gpu")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FCN GPU timings (one JSON line on stdout).")
    parser.add_argument("--experiment", default="voc-fcn8s")
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--size", type=int, nargs=2, default=(500, 500), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.experiment, args.data_root, tuple(args.size), args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
