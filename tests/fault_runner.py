"""Run `python -m training.train` and SIGKILL it at a named point of a file write (tests only).

    python tests/fault_runner.py POINT ITERATION -- <training.train arguments>

A kill -9 cannot be aimed from outside at "after the caffemodel was renamed, before the
solverstate": this runner wraps the write steps of training.snapshots in the child itself
and kills the process (SIGKILL: no handler, no cleanup) when the snapshot of ITERATION
reaches POINT:

  staged         Caffe wrote its staging files, the caffemodel only half
  model          the caffemodel is renamed into snapshots/, no solverstate yet
  state-part     half of the new solverstate is in its .part file
  state          the solverstate is in place, no manifest yet
  manifest-part  half of the manifest is in its .part file
  final-part     final.caffemodel's .part is written, not yet renamed

and one point that kills nothing: `slow-snapshot` makes every snapshot wait 3 s before it
starts (a slow disk), so a signal can be aimed at a run while it snapshots.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from training import snapshots, train  # the venv's .pth puts the repository on the path

POINTS = ("staged", "model", "state-part", "state", "manifest-part", "final-part",
          "slow-snapshot")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, iteration: int) -> None:
    real_take, real_replace = snapshots.take, os.replace
    real_atomic, real_save = snapshots._replace_atomically, snapshots.save_weights
    state = {"armed": False}

    def replace(src, dst):
        real_replace(src, dst)
        if state["armed"]:
            name = Path(dst).name
            if point == "model" and name.endswith(".caffemodel"):
                die()
            if point == "state" and name.endswith(".solverstate"):
                die()

    def atomic(data: bytes, path: Path) -> None:
        if state["armed"] and (
                (point == "state-part" and path.suffix == ".solverstate")
                or (point == "manifest-part" and path.name.endswith(".manifest.json"))):
            Path(f"{path}.x.part").write_bytes(data[: len(data) // 2])
            die()
        real_atomic(data, path)

    def take(solver, snapshot_dir):
        if point == "slow-snapshot":
            time.sleep(3)
        state["armed"] = solver.iter == iteration
        if state["armed"] and point == "staged":
            staging = snapshots.staging_prefix(snapshot_dir).parent
            solver.snapshot()
            for path in staging.glob("*.caffemodel"):
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            die()
        try:
            return real_take(solver, snapshot_dir)
        finally:
            state["armed"] = False

    def save_weights(net, path):
        if point == "final-part":
            tmp = Path(path).with_name(Path(path).name + ".killed.part")
            net.save(str(tmp))
            die()
        return real_save(net, path)

    os.replace = replace
    snapshots.take = take
    snapshots._replace_atomically = atomic
    snapshots.save_weights = save_weights


def main() -> int:
    point, iteration, separator, *args = sys.argv[1:]
    assert point in POINTS and separator == "--", sys.argv
    arm(point, int(iteration))
    return train.main(args)


if __name__ == "__main__":
    sys.exit(main())
