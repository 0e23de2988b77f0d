"""The paper's numbers as data, each with the table and row it comes from.

Transcribed from the PAMI paper (Shelhamer, Long & Darrell, 2016). Percentages as printed;
None where the paper prints "-". Rows of other methods (Gupta et al., SDS, …) are kept so
the report can show the paper's whole table; they have no run of their own here.
Nothing else in the project types these numbers in: paper/ (plan, run, report) and
analyses/iu_bounds.py read them from here (in core/, so a tool below paper/ can print the
paper's figures beside its own).
"""

from __future__ import annotations

from dataclasses import dataclass

# Column keys of the standard metrics (Section 5) as evaluation.score names them.
PIXEL_ACC, MEAN_ACC, MEAN_IU, FW_IU = "pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu"
GEOM_ACC = "geo_pixel_accuracy"          # SIFT Flow's geometric head, pixel accuracy
MEAN_IU_NO_BG = "mean_iu_no_bg"          # Table 8: mean IU excluding the background class
BACKGROUND_MEAN_IU = "background_mean_iu"  # the all-background prediction's mean IU
TRAIN_SECONDS = "train_seconds"          # wall-clock of a run's training steps (sampling)
ITERATIONS = "iterations"                # the steps a run took (a first stage may train on)
TEST_MEAN_IU = "test_mean_iu"            # {iteration (text): mean IU} of a run's own tests
STANDARD = (PIXEL_ACC, MEAN_ACC, MEAN_IU, FW_IU)

COLUMN_TITLES = {PIXEL_ACC: "pixel acc.", MEAN_ACC: "mean acc.", MEAN_IU: "mean IU",
                 FW_IU: "f.w. IU", GEOM_ACC: "geom. acc.", MEAN_IU_NO_BG: "mean IU"}


@dataclass(frozen=True)
class PaperRow:
    table: str                              # "1", "2", … "8", "bounds", "nullbg" …
    row: str                                # the row as the paper labels it
    values: tuple[tuple[str, float | None], ...]   # (column key, number) in the paper's order
    note: str = ""

    def value(self, column: str) -> float | None:
        return dict(self.values).get(column)


def _row(table: str, row: str, columns: tuple[str, ...], numbers: tuple, note: str = ""):
    if len(columns) != len(numbers):
        raise ValueError(f"table {table} row {row!r}: {len(numbers)} numbers for "
                         f"{len(columns)} columns")
    return PaperRow(table, row, tuple(zip(columns, numbers)), note)


T6 = (*STANDARD, GEOM_ACC)
T1 = ("mean_iu", "forward_ms", "conv_layers", "parameters_m", "rf_size", "max_stride")

ROWS: tuple[PaperRow, ...] = (
    # Table 1 (Section 4.1): nets as columns in the paper, one row per net here.
    # Forward time: 500×500 input, NVIDIA Titan X, mean of 20 trials.
    _row("1", "FCN-AlexNet", T1, (39.8, 16, 8, 57, 355, 32)),
    _row("1", "FCN-VGG16", T1, (56.0, 100, 16, 134, 404, 32)),
    _row("1", "FCN-GoogLeNet", T1, (42.5, 20, 22, 6, 907, 32)),
    # Section 4.4 "More training data": VOC 2011 train (1,112) → SBD (8,498), mean IU
    _row("1-data", "FCN-AlexNet, VOC 2011 train (1,112 images)", (MEAN_IU,), (39.8,)),
    _row("1-data", "FCN-AlexNet, SBD train (8,498 images)", (MEAN_IU,), (48.0,)),
    _row("1-data", "FCN-32s, VOC 2011 train (1,112 images)", (MEAN_IU,), (57.7,),
         note="the paper does not give this run's regime; no experiment reproduces it"),
    _row("1-data", "FCN-32s, SBD train (8,498 images)", (MEAN_IU,), (63.6,)),
    # Table 2 (Section 4.2): best during training, seg11valid (736 images)
    _row("2", "FCN-accum", STANDARD, (86.0, 66.5, 51.9, 76.5), note="batch 20, momentum 0.9"),
    _row("2", "FCN-online", STANDARD, (89.3, 76.2, 60.7, 81.8), note="batch 1, momentum 0.9"),
    _row("2", "FCN-heavy", STANDARD, (90.5, 76.5, 63.6, 83.5), note="batch 1, momentum 0.99"),
    # Table 3 (Section 4.3): seg11valid
    _row("3", "FCN-32s", STANDARD, (90.5, 76.5, 63.6, 83.5)),
    _row("3", "FCN-16s", STANDARD, (91.0, 78.1, 65.0, 84.3)),
    _row("3", "FCN-8s at-once", STANDARD, (91.1, 78.5, 65.4, 84.4)),
    _row("3", "FCN-8s staged", STANDARD, (91.2, 77.6, 65.5, 84.5)),
    _row("3", "FCN-32s fixed", STANDARD, (82.9, 64.6, 46.6, 72.3)),
    _row("3", "FCN-pool5", STANDARD, (87.4, 60.5, 50.0, 78.5)),
    _row("3", "FCN-pool4", STANDARD, (78.7, 31.7, 22.4, 67.0)),
    _row("3", "FCN-pool3", STANDARD, (70.9, 13.7, 9.2, 57.6)),
    # Table 4 (Section 5): VOC test sets, mean IU; inference time in the paper's words
    _row("4", "R-CNN", ("voc2011_test", "voc2012_test"), (47.9, None)),
    _row("4", "SDS", ("voc2011_test", "voc2012_test"), (52.6, 51.6), note="~50 s inference"),
    _row("4", "FCN-8s", ("voc2011_test", "voc2012_test"), (67.5, 67.2),
         note="~100 ms inference"),
    # Table 5: NYUDv2 test (654 images)
    _row("5", "Gupta et al.", STANDARD, (60.3, None, 28.6, 47.0)),
    _row("5", "FCN-32s RGB", STANDARD, (61.8, 44.7, 31.6, 46.0)),
    _row("5", "FCN-32s RGB-D", STANDARD, (62.1, 44.8, 31.7, 46.3)),
    _row("5", "FCN-32s HHA", STANDARD, (58.3, 35.7, 25.2, 41.7)),
    _row("5", "FCN-32s RGB-HHA", STANDARD, (65.3, 44.0, 33.3, 48.6)),
    # Table 6: SIFT Flow test (200 images), semantics over the classes present; geometry
    _row("6", "Liu et al.", T6, (76.7, None, None, None, None)),
    _row("6", "Tighe et al. transfer", T6, (None, None, None, None, 90.8)),
    _row("6", "Tighe et al. SVM", T6, (75.6, 41.1, None, None, None)),
    _row("6", "Tighe et al. SVM+MRF", T6, (78.6, 39.2, None, None, None)),
    _row("6", "Farabet et al. natural", T6, (72.3, 50.8, None, None, None)),
    _row("6", "Farabet et al. balanced", T6, (78.5, 29.6, None, None, None)),
    _row("6", "Pinheiro et al.", T6, (77.7, 29.8, None, None, None)),
    _row("6", "FCN-8s", T6, (85.9, 53.9, 41.2, 77.2, 94.6)),
    # Table 7: PASCAL-Context 59-class task, val
    _row("7", "O2P", STANDARD, (None, None, 18.1, None)),
    _row("7", "CFM", STANDARD, (None, None, 34.4, None)),
    _row("7", "FCN-32s", STANDARD, (65.5, 49.1, 36.7, 50.9)),
    _row("7", "FCN-16s", STANDARD, (66.9, 51.3, 38.4, 52.3)),
    _row("7", "FCN-8s", STANDARD, (67.5, 52.3, 39.1, 53.0)),
    # Table 8 (Section 6.1): mean IU excluding background
    _row("8", "Reference", (MEAN_IU_NO_BG,), (84.8,)),
    _row("8", "Reference-FG", (MEAN_IU_NO_BG,), (81.0,)),
    _row("8", "Reference-BG", (MEAN_IU_NO_BG,), (19.8,)),
    _row("8", "FG-only", (MEAN_IU_NO_BG,), (76.1,)),
    _row("8", "BG-only", (MEAN_IU_NO_BG,), (37.8,)),
    _row("8", "Shape", (MEAN_IU_NO_BG,), (29.1,)),
    # Section 6.3: upper bounds on mean IU from ground truth down- and upsampled by a factor
    _row("bounds", "128", (MEAN_IU,), (50.9,)),
    _row("bounds", "64", (MEAN_IU,), (73.3,)),
    _row("bounds", "32", (MEAN_IU,), (86.1,)),
    _row("bounds", "16", (MEAN_IU,), (92.8,)),
    _row("bounds", "8", (MEAN_IU,), (96.4,)),
    _row("bounds", "4", (MEAN_IU,), (98.5,)),
)

# Table 8's train/test masking conditions (FG, BG) as the paper lays them out.
MASKING = {"Reference": ("keep", "keep", "keep", "keep"),
           "Reference-FG": ("keep", "keep", "keep", "mask"),
           "Reference-BG": ("keep", "keep", "mask", "keep"),
           "FG-only": ("keep", "mask", "keep", "mask"),
           "BG-only": ("mask", "keep", "mask", "keep"),
           "Shape": ("mask", "mask", "mask", "mask")}

# The paper's findings stated in words (no number printed), by table key.
CLAIMS = {
    "3-control": "dropping the learning rate without adding skips gives negligible "
                 "improvement in score (Section 4.3)",
    "nullbg": "the null background net scores 1 point lower than the reference FCN-32s and "
              "a control FCN-32s trained on all classes with the sigmoid cross-entropy loss "
              "(Section 6.1)",
    "sampling": "sampling does not have a significant effect on convergence rate compared "
                "to whole image training, but takes significantly more time (Section 4.4, "
                "Figure 5)",
    "balance": "although the labels are mildly unbalanced (about 3/4 background), class "
               "balancing is unnecessary (Section 4.4)",
    "augment": "mirroring and jittering up to 32 pixels yielded no noticeable improvement "
               "(Section 4.4)",
    "transfer": "Training from scratch gives substantially lower accuracy (Section 4.3)",
}

# The paper's own figures for time (Section 4.4, Table 1), the basis of plan.py's estimates.
STAGED_FCN8S_GPU_HOURS = 36.0       # "Fine-tuning in stages takes 36 hours on a single GPU"
ATONCE_FRACTION = 0.5               # "all-at-once takes half the time"
FIXED_FINE_TUNING_FRACTION = 0.73   # "only 73% of the full fine-tuning performance"
GPU = "NVIDIA Titan X"


def rows(table: str) -> list[PaperRow]:
    """The paper's rows of one table, in its order."""
    found = [r for r in ROWS if r.table == table]
    if not found:
        raise KeyError(f"no paper rows for table {table!r}; tables: "
                       f"{sorted({r.table for r in ROWS})}")
    return found


def number(table: str, row: str, column: str) -> float | None:
    """One printed number; KeyError naming the table and row when it is not there."""
    for r in rows(table):
        if r.row == row:
            if column not in dict(r.values):
                raise KeyError(f"table {table} row {row!r} has no column {column!r}")
            return r.value(column)
    raise KeyError(f"table {table} has no row {row!r}")


# Table 1's forward times (Titan X) by backbone, read from its rows above.
FORWARD_MS = {backbone: float(number("1", row, "forward_ms")) for backbone, row in
              (("alexnet", "FCN-AlexNet"), ("vgg16", "FCN-VGG16"),
               ("googlenet", "FCN-GoogLeNet"))}
