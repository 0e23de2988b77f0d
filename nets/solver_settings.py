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


def accumulated(base_lr: float, **changes) -> SolverSettings:
    """Gradients summed over 20 images, momentum 0.9 (Table 2's accumulated row). No default
    rate: the loss is unnormalised, so it follows from the heavy one (summed_lr)."""
    return SolverSettings(base_lr=base_lr, momentum=0.9, iter_size=20, **changes)


def alexnet_normalized(**changes) -> SolverSettings:
    """FCN-AlexNet's setting in the release: normalised loss, lr 1e-4, 20-image batches."""
    return SolverSettings(base_lr=1e-4, momentum=0.9, iter_size=20, normalized_loss=True,
                          **changes)


def summed_lr(lr: float, iter_size: int) -> float:
    """The base_lr that makes Caffe's accumulated step the paper's sum over the batch.

    Section 6.2 writes an accumulated step as -lr × (the sum of the batch's gradients); Caffe
    divides the accumulated gradient by iter_size. So a regime meant to take the paper's
    step with rate `lr` runs at lr × iter_size.
    """
    return lr * iter_size


def table1(base_lr: float, **changes) -> SolverSettings:
    """Table 1's classifier-style training: 20 images accumulated, momentum 0.9, fixed lr
    chosen per net (1e-3 AlexNet, 1e-4 VGG16, 5e-5 GoogLeNet), normalised loss (those rates
    are a classifier's, for a per-pixel mean), weight decay 5e-4 unless changed; 10,000
    iterations = 180 epochs of VOC2011 train's 1,112 images ("at least 175 epochs")."""
    return SolverSettings(base_lr=base_lr, momentum=0.9, iter_size=20, normalized_loss=True,
                          max_iter=10000, **changes)


def sampled(p: float, stride: int = 32, **changes) -> SolverSettings:
    """Section 4.4's loss sampling: keep a loss cell with probability p and take 1/p images
    per batch (iter_size) so the expected number of loss terms per step stays one image's;
    the rate is summed_lr's so each step sums those terms as the unsampled net's does."""
    images = round(1 / p)
    if abs(images * p - 1) > 1e-9:
        raise ValueError(f"loss sampling needs 1/p to be a whole number of images, p = {p}")
    return heavy(stride, iter_size=images, **changes).with_(
        base_lr=summed_lr(HEAVY_LR[stride], images))


def equivalent_momentum(momentum: float, batch: int, new_batch: int) -> float:
    """Section 6.2: momentum p with batch k weighs an example seen j examples ago by about
    p^(j/k), so batch k' with momentum p^(k'/k) weighs the past alike (0.9 at 20 images ≈
    0.99 at one). An approximation: the smaller batch also updates more often."""
    if not 0 <= momentum < 1 or batch < 1 or new_batch < 1:
        raise ValueError(f"need 0 <= momentum < 1 and batches >= 1, found {momentum}, "
                         f"{batch}, {new_batch}")
    return momentum ** (new_batch / batch)


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
