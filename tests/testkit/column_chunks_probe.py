"""An FCN-8s forward, or a training iteration, in a fresh process, for comparing Caffe's
column chunking (caffe-recipe/patches/0007, CAFFE_COLUMN_LIMIT, read once per process) with
the whole im2col GEMMs.

    CAFFE_COLUMN_LIMIT=1 python tests/testkit/column_chunks_probe.py --mode train --size 64

prints one JSON line: a digest of every output and gradient, and the process's own peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

from bench.models import deploy_net, fill_weights, random_image, train_net  # noqa: E402
from core.fingerprint import digest_bytes, set_blas_threads  # noqa: E402
from core.memory import peak_rss_bytes  # noqa: E402
from data.synthetic import make_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("forward", "train"), default="forward")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--threads", type=int, help="the pinned BLAS's thread count")
    args = parser.parse_args()
    if args.threads:
        set_blas_threads(args.threads)
    import caffe

    caffe.set_random_seed(0)   # the training net's dropout masks: the same in every process
    size = (args.size, args.size)
    digests = {}
    with tempfile.TemporaryDirectory() as workdir:
        if args.mode == "forward":
            net, _ = deploy_net("voc-fcn8s", size, Path(workdir), width=args.width)
            fill_weights(net, seed=0)
            net.blobs["data"].data[...] = random_image(size, seed=0)
            net.forward()
        else:
            root = make_dataset("voc", Path(workdir) / "data", n_train=2, n_val=1, size=size,
                                seed=0)
            net, _ = train_net("voc-fcn8s", root, Path(workdir), width=args.width,
                               prefetch=False)
            fill_weights(net, seed=0)
            net.forward()
            net.backward()
            digests.update((f"{name}.diff", digest_bytes(b''.join(p.diff.tobytes()
                                                                 for p in params)))
                           for name, params in net.params.items())
        digests.update((f"{name}.data", digest_bytes(blob.data.tobytes()))
                       for name, blob in net.blobs.items())
    # VmHWM, not ru_maxrss: that would be at least the test process's size (core.memory)
    print(json.dumps({"digests": digests, "peak_rss_mib": peak_rss_bytes() / 2**20}))


if __name__ == "__main__":
    main()
