"""A reduced-width FCN-8s forward in a fresh process, for runs under different BLAS settings
(a BLAS reads its environment when it loads, so each setting needs its own process).

    python tests/testkit/numerics_probe.py [--width 0.125] [--size 96]

prints one JSON line: the digest of the score map's bytes and the process's fingerprint.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

from bench.models import deploy_net, fill_weights, random_image  # noqa: E402
from core.fingerprint import digest_bytes, fingerprint, set_blas_threads  # noqa: E402

# Recorded on an Intel Xeon (family 6 model 167, AVX-512) with the pinned, thread-count
# invariant build: voc-fcn8s at width 1/8 on a 96×96 input (bench.models' seeded weights and
# picture), any thread count. The same digest as the unpatched library's one-thread forward
# on an AMD EPYC (Zen 3), recorded before the patch (caffe-recipe/NUMERICS.md). Any AVX2+FMA
# CPU must agree (tests/test_numerics_other_cpus.py checks two emulated Intel ones).
PINNED = {"numerics": "pinned", "blas_version": "OpenBLAS 0.3.21", "blas_kernel": "HASWELL",
          "blas_probe": "sha256:20de20ef7dc12a80", "blas_thread_invariant": True}
PINNED_SCORE = "sha256:817f6165a2095bdf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--experiment", default="voc-fcn8s")
    parser.add_argument("--workdir", default="/tmp")
    parser.add_argument("--threads", type=int, help="run the pinned BLAS on this many threads "
                        "(default: as the library starts, every CPU or OPENBLAS_NUM_THREADS)")
    args = parser.parse_args()
    if args.threads:
        set_blas_threads(args.threads)
    fp = fingerprint()   # the self-check runs before the net is trusted
    net, _ = deploy_net(args.experiment, (args.size, args.size), Path(args.workdir),
                        width=args.width)
    fill_weights(net, seed=0)
    net.blobs["data"].data[...] = random_image((args.size, args.size), seed=0)
    score = net.forward()["score"]
    print(json.dumps({"score": digest_bytes(score.tobytes()), "fingerprint": fp}))


if __name__ == "__main__":
    main()
