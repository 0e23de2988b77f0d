"""Images per second of each data layer with prefetching off, in a thread, in a process.

Also how long Caffe waits for each image (the layer's own clock). Two settings: the data
layer alone (decoding speed), and followed by a convolution standing in for the net (what
prefetching can overlap with). Synthetic data at the real datasets' image sizes; a
measurement, not a test.

    python -m bench.data_layers --steps 20 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from core.errors import cli_main
from data.registry import layer_params, top_names
from data.synthetic import make_dataset

# dataset layer → (synthetic writer, split read, image size of the real data)
CASES = {
    "sbdd": ("voc", "train", (375, 500)),
    "voc": ("voc", "seg11valid", (375, 500)),
    "nyud": ("nyud", "trainval", (425, 560)),
    "siftflow": ("siftflow", "trainval", (256, 256)),
    "pascalcontext": ("pascalcontext", "train", (375, 500)),
}
MODES = (False, "thread", "process")


def data_layer_net(prototxt: Path, module: str, layer: str, param_str: str,
                   tops: list[str], *, phase: str = "test", conv_outputs: int = 0):
    """Write and load a net whose only input is the Python data layer `module.layer`.

    `conv_outputs` > 0 adds a 3×3 convolution on the first top, standing in for the work
    Caffe does between two forwards (what prefetching overlaps with).
    """
    import caffe
    from caffe import layers as L

    n = caffe.NetSpec()
    outputs = L.Python(module=module, layer=layer, param_str=param_str, ntop=len(tops))
    for name, blob in zip(tops, outputs if len(tops) > 1 else [outputs]):
        n[name] = blob
    if conv_outputs:
        n.work = L.Convolution(n[tops[0]], num_output=conv_outputs, kernel_size=3, pad=1,
                               weight_filler=dict(type="gaussian", std=0.01))
    Path(prototxt).write_text(str(n.to_proto()))
    return caffe.Net(str(prototxt), caffe.TRAIN if phase == "train" else caffe.TEST)


def measure(name: str, root: Path, split: str, mode, steps: int, work: int,
            folder: Path, repeats: int = 1) -> dict:
    """images_per_s and wait_ms (Caffe's wait per image), the best of `repeats` runs of
    `steps` forwards (the least disturbed by whatever else the machine runs), and the
    shape of the first input top."""
    from data.registry import module_and_class

    module, layer = module_and_class(name)
    params = layer_params(name, root, split, prefetch=mode)
    net = data_layer_net(folder / f"{name}-{mode}-{work}.prototxt", module, layer,
                         repr(params), top_names(name, params), conv_outputs=work)
    data = net.layers[0]
    net.forward()  # warm up: first decode, allocations
    best = (0.0, float("inf"))
    for _ in range(repeats):
        waited = data.waited_s
        start = time.perf_counter()
        for _ in range(steps):
            net.forward()
        rate = steps / (time.perf_counter() - start)
        wait_ms = 1000 * (data.waited_s - waited) / steps
        best = (max(best[0], rate), min(best[1], wait_ms))
    data.prefetch.close()
    shape = list(net.blobs[top_names(name, params)[0]].data.shape)
    return {"images_per_s": best[0], "wait_ms": best[1], "shape": shape}


@cli_main("bench-data-layers")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="report the best of these")
    parser.add_argument("--images", type=int, default=12, help="synthetic images per split")
    parser.add_argument("--work", type=int, default=32,
                        help="outputs of the stand-in convolution (0: data layer alone)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    import caffe

    caffe.set_mode_cpu()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.datasets:
            writer, split, size = CASES[name]
            root = tmp / writer
            if not root.exists():
                make_dataset(writer, root, n_train=args.images, n_val=args.images, size=size,
                             seed=0)
            for work in sorted({0, args.work}):
                for mode in MODES:
                    measured = measure(name, root, split, mode, args.steps, work, tmp,
                                       args.repeats)
                    rate, wait = measured["images_per_s"], measured["wait_ms"]
                    results[f"{name} work={work} prefetch={mode}"] = {
                        "images_per_s": round(rate, 2), "wait_ms": round(wait, 2)}
                    print(f"{name:14s} work={work:<3d} prefetch={str(mode):8s} "
                          f"{rate:8.1f} images/s  waits {wait:6.1f} ms/image", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
