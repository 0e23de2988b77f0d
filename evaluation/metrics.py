"""Segmentation metrics from a confusion histogram, as Section 5 of the paper defines them.

With n_ij the number of pixels of class i predicted as class j and t_i = sum_j n_ij:
  pixel accuracy      sum_i n_ii / sum_i t_i
  mean accuracy       (1/n_cl) sum_i n_ii / t_i
  mean IU             (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)
  frequency weighted  (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)
A class whose ratio is 0/0 (absent from the ground truth, and for IU also never
predicted) is left out of the means instead of counting as zero.

Pure numpy: no Caffe, so these are checked against hand-computed matrices directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def fast_hist(label: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """The num_classes × num_classes confusion histogram of one image: rows are the ground
    truth, columns the prediction. Labels outside [0, num_classes) (void 255, SIFT Flow's
    unlabelled) are ignored; predictions must lie inside it."""
    label = np.asarray(label).ravel()
    prediction = np.asarray(prediction).ravel()
    if label.shape != prediction.shape:
        raise ValueError(f"label has {label.size} pixels but the prediction has "
                         f"{prediction.size}")
    keep = (label >= 0) & (label < num_classes)
    truth = label[keep].astype(np.int64)
    guess = prediction[keep].astype(np.int64)
    if guess.size and (guess.min() < 0 or guess.max() >= num_classes):
        raise ValueError(f"prediction has classes outside 0..{num_classes - 1}: "
                         f"{np.unique(guess[(guess < 0) | (guess >= num_classes)])[:5]}")
    counts = np.bincount(num_classes * truth + guess, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with NaN where both are zero (a class with no pixels)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def class_accuracy(hist: np.ndarray) -> np.ndarray:
    """Per-class accuracy n_ii / t_i; NaN for classes absent from the ground truth."""
    return _ratio(np.diag(hist).astype(np.float64), hist.sum(1))


def class_iu(hist: np.ndarray) -> np.ndarray:
    """Per-class intersection over union; NaN for classes in neither truth nor prediction."""
    diagonal = np.diag(hist).astype(np.float64)
    return _ratio(diagonal, hist.sum(1) + hist.sum(0) - diagonal)


@dataclass(frozen=True)
class Scores:
    pixel_accuracy: float
    mean_accuracy: float
    mean_iu: float
    fw_iu: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return (f"pixel acc {100 * self.pixel_accuracy:.2f}  mean acc "
                f"{100 * self.mean_accuracy:.2f}  mean IU {100 * self.mean_iu:.2f}  "
                f"f.w. IU {100 * self.fw_iu:.2f}")


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def scores(hist: np.ndarray, classes: np.ndarray | None = None) -> Scores:
    """The paper's four metrics. `classes` (indices or a boolean mask) restricts the mean
    accuracy and mean IU to those classes (SIFT Flow: the classes present in the test set)."""
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2 or hist.shape[0] != hist.shape[1]:
        raise ValueError(f"a confusion histogram is square, found shape {hist.shape}")
    total = hist.sum()
    accuracy, iu = class_accuracy(hist), class_iu(hist)
    frequency = hist.sum(1) / total if total else np.zeros(len(hist))
    if classes is not None:
        accuracy, iu = accuracy[classes], iu[classes]
    seen = frequency > 0
    return Scores(
        pixel_accuracy=float(np.diag(hist).sum() / total) if total else float("nan"),
        mean_accuracy=_nanmean(accuracy),
        mean_iu=_nanmean(iu),
        fw_iu=float((frequency[seen] * class_iu(hist)[seen]).sum()) if total else float("nan"))


def mean_iu_no_bg(hist: np.ndarray, background: int = 0) -> float:
    """Table 8's metric: mean IU over every class except `background` (classes with 0/0
    left out, as in mean IU). It stands beside the four standard metrics, which it does
    not change."""
    iu = class_iu(np.asarray(hist, dtype=np.float64))
    if not 0 <= background < len(iu):
        raise ValueError(f"background class {background} is outside 0..{len(iu) - 1}")
    return _nanmean(np.delete(iu, background))


def present_classes(hist: np.ndarray) -> np.ndarray:
    """Indices of the classes with ground-truth pixels in the accumulated histogram."""
    return np.flatnonzero(np.asarray(hist).sum(1) > 0)


def background_baseline(hist: np.ndarray, background: int = 0) -> Scores:
    """The scores of predicting `background` everywhere on the same ground truth: the
    number a trained net has to beat to have learned anything."""
    hist = np.asarray(hist)
    constant = np.zeros_like(hist)
    constant[:, background] = hist.sum(1)
    return scores(constant)


def class_table(hist: np.ndarray, names: list[str] | None = None) -> str:
    """Per-class IU and accuracy with pixel counts, one line per class, '-' for NaN."""
    names = names or [str(i) for i in range(len(hist))]
    if len(names) != len(hist):
        raise ValueError(f"{len(names)} class names for a {len(hist)}-class histogram")
    width = max(len("class"), *(len(n) for n in names))
    lines = [f"{'#':>3} {'class':<{width}} {'IU':>6} {'acc':>6} {'pixels':>10}"]
    for i, (name, iu, acc, pixels) in enumerate(
            zip(names, class_iu(hist), class_accuracy(hist), np.asarray(hist).sum(1))):
        def cell(x):
            return f"{100 * x:6.2f}" if not np.isnan(x) else f"{'-':>6}"
        lines.append(f"{i:>3} {name:<{width}} {cell(iu)} {cell(acc)} {int(pixels):>10}")
    return "\n".join(lines)
