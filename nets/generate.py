"""Write every experiment's nets and solver: `make nets` / `python -m nets.generate`.

Each experiment gets a folder like the release's: its two phase nets (train/val or
trainval/test), deploy.prototxt (an Input layer, no loss) and solver.prototxt. The files in
nets/<experiment>/ are committed, and a test regenerates them to catch drift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nets.experiments import EXPERIMENTS, build
from nets.prototxt import to_prototxt
from solvers.settings import solver_prototxt

NETS_DIR = Path(__file__).resolve().parent


def write_experiment(name: str, out_dir: Path | str, *, width: float = 1.0,
                     data_root: str | None = None, seed: int | None = None,
                     splits: tuple[str, str] | None = None,
                     solver_overrides: dict | None = None) -> dict[str, Path]:
    """Write one experiment's files into out_dir; returns their paths by role:
    'train' (train/trainval net), 'test' (val/test net), 'deploy', 'solver'.

    data_root replaces the release's '../data' in the data layers' paths; the solver
    names the nets by bare file name (train from out_dir, as the release does).
    """
    exp = EXPERIMENTS[name]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = dict(width=width, data_root=data_root)
    if seed is not None:
        options["seed"] = seed
    paths = {}
    for role, phase in zip(("train", "test"), exp.phases):
        split = splits[0 if role == "train" else 1] if splits else None
        paths[role] = out / f"{phase}.prototxt"
        paths[role].write_text(to_prototxt(build(exp, phase, split=split, **options)))
    paths["deploy"] = out / "deploy.prototxt"
    paths["deploy"].write_text(to_prototxt(build(exp, "deploy", width=width)))
    settings = exp.solver.with_(**(solver_overrides or {}))
    paths["solver"] = out / "solver.prototxt"
    paths["solver"].write_text(solver_prototxt(settings))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the FCN experiments' prototxt.")
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help=f"default: all ({', '.join(EXPERIMENTS)})")
    parser.add_argument("--out", type=Path, default=NETS_DIR,
                        help="folder to write <experiment>/ into (default: nets/)")
    parser.add_argument("--data-root", help="dataset root replacing the release's ../data")
    parser.add_argument("--width", type=float, default=1.0,
                        help="channel width multiplier (1.0 = the paper's nets)")
    args = parser.parse_args(argv)
    unknown = [e for e in args.experiments if e not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    for name in args.experiments or EXPERIMENTS:
        paths = write_experiment(name, args.out / name, width=args.width,
                                 data_root=args.data_root)
        print(f"{name}: {', '.join(p.name for p in paths.values())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
