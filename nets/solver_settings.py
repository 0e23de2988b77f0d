"""Solver settings as code: the paper's learning regimes, written out as the release's
hand-commented solver.prototxt files.

Table 2 and Section 4 of the paper: "heavy" learning is batch 1, momentum 0.99 and an
unnormalised (pixel-summed) loss, so the learning rate is tiny and falls 100× per stage
(1e-10 / 1e-12 / 1e-14 for 32s / 16s / 8s); "online" uses momentum 0.9; "accumulated"
sums gradients over 20 images. FCN-AlexNet trains with a normalised loss at lr 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# The fixed learning rate for the unnormalised loss at each output stride (heavy regime).
HEAVY_LR = {32: 1e-10, 16: 1e-12, 8: 1e-14}


@dataclass(frozen=True)
class SolverSettings:
    base_lr: float = 1e-10
    momentum: float = 0.99
    iter_size: int = 1
    normalized_loss: bool = False
    max_iter: int = 100000
    snapshot: int | None = 4000      # None: no snapshot lines (the release's SIFT Flow)
    weight_decay: float = 0.0005
    test_iter: int = 736
    train_net: str = "train.prototxt"
    test_net: str = "val.prototxt"
    snapshot_prefix: str = "snapshot/train"
    display: int = 20
    average_loss: int = 20

    def with_(self, **changes) -> SolverSettings:
        return replace(self, **changes)


def heavy(stride: int = 32, **changes) -> SolverSettings:
    """Batch 1, momentum 0.99, unnormalised loss, lr by stride (the release's default)."""
    return SolverSettings(base_lr=HEAVY_LR[stride], **changes)


def online(stride: int = 32, **changes) -> SolverSettings:
    """Batch 1 with standard momentum 0.9 (Table 2's online row)."""
    return SolverSettings(base_lr=HEAVY_LR[stride], momentum=0.9, **changes)


def accumulated(base_lr: float = 1e-4, **changes) -> SolverSettings:
    """Gradients summed over 20 images, momentum 0.9 (Table 2's accumulated row)."""
    return SolverSettings(base_lr=base_lr, momentum=0.9, iter_size=20, **changes)


def alexnet_normalized(**changes) -> SolverSettings:
    """FCN-AlexNet's setting in the release: normalised loss, lr 1e-4, 20-image batches."""
    return SolverSettings(base_lr=1e-4, momentum=0.9, iter_size=20, normalized_loss=True,
                          **changes)


def _rate(x: float) -> str:
    """Write a learning rate the way the release does: 1e-10, 1e-4, 0.99."""
    if x != 0 and abs(x) < 1e-3:
        mantissa, exponent = f"{x:e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return repr(x)


def solver_prototxt(s: SolverSettings) -> str:
    """The solver file text, comments and field order as in the release."""
    heavy_regime = s.momentum >= 0.99
    lines = [
        f'train_net: "{s.train_net}"',
        f'test_net: "{s.test_net}"',
        f"test_iter: {s.test_iter}",
        "# make test net, but don't invoke it from the solver itself",
        "test_interval: 999999999",
        f"display: {s.display}",
        f"average_loss: {s.average_loss}",
        'lr_policy: "fixed"',
        "# lr for normalized softmax" if s.normalized_loss else "# lr for unnormalized softmax",
        f"base_lr: {_rate(s.base_lr)}",
        "# high momentum" if heavy_regime else "# standard momentum",
        f"momentum: {s.momentum!r}",
        "# no gradient accumulation" if s.iter_size == 1 else "# gradient accumulation",
        f"iter_size: {s.iter_size}",
        f"max_iter: {s.max_iter}",
        f"weight_decay: {s.weight_decay!r}",
    ]
    if s.snapshot is not None:
        lines += [f"snapshot: {s.snapshot}", f'snapshot_prefix: "{s.snapshot_prefix}"']
    lines.append("test_initialization: false")
    return "\n".join(lines) + "\n"
