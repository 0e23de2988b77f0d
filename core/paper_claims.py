"""The paper's findings as data: each claim a predicate over a run's scores, with the
paper's sentence it tests and a margin fixed before any run was looked at.

Scores are the shape paper.run collects (and the demo builds): per group key a dict with
"rows" (row label → metrics as fractions) or "missing" (why there are none). A claim
whose numbers are not all there is neither yes nor NO: it says what is missing.
The margins below were written down on 2026-12-06, before any miniature run with
pre-trained classifiers existed; a claim that fails stays NO — change a margin only with
a reason that is not the result.

The guard against ties at the background (LEARNED_ABOVE, written down on 2026-12-06
before the first miniature run from pre-trained classifiers, after a run whose nets all sat
at the all-background prediction had 7 claims "hold" as empty ties): every claim names the
row it hangs on (the better row of a comparison, the reference of an "≈" or "no gain"), and
that row must beat the all-background score of its own scoring by more than LEARNED_ABOVE
points, or the claim is NO. A tie between two nets that learned nothing is not a finding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from core import paper_numbers as N
from core.paper_numbers import (
    BACKGROUND_MEAN_IU,
    ITERATIONS,
    MEAN_IU,
    MEAN_IU_NO_BG,
    TEST_MEAN_IU,
    TRAIN_SECONDS,
)

# Margins, in points of the metric (percent), fixed before any run.
SAME_WITHIN = 2.0        # "≈": staged vs at-once, RGB-D vs RGB, two-headed vs separate
NULL_BG_WITHIN = 3.0     # "within a few points": the null background model vs the reference
NO_GAIN_ABOVE = 2.0      # "no significant gain": balancing, augmentation, sampling per image
SMALL_DROP = 10.0        # Reference-FG: a small drop (paper: 3.8 points)
CATASTROPHIC = 0.5       # Reference-BG: at most half the reference (paper: 19.8 of 84.8)
LR_DROP_SHARE = 0.5      # the lr-drop control gains at most half of FCN-16s' gain
# The row a claim hangs on must beat the all-background score by more than this (points):
# the "≈" margin, so that a row we could not tell from the background's is never "learned".
LEARNED_ABOVE = SAME_WITHIN


def learned(value: float, background: float) -> bool:
    """A score (percent) beats its all-background score by more than LEARNED_ABOVE: the
    guard the claims apply, and training.train's test of a first stage that may train on."""
    return value - background > LEARNED_ABOVE


class MissingScore(LookupError):
    """A number a claim needs is not in this run's scores."""


class Scores:
    """A run's scores, read as percentages; a missing one raises MissingScore naming it."""

    def __init__(self, results: dict):
        self.results = results
        self.read: list[tuple[str, str, str]] = []   # (group, row, column) a check read

    def get(self, group: str, row: str, column: str = MEAN_IU, percent: bool = True) -> float:
        entry = self.results.get(group)
        if entry is None:
            raise MissingScore(f"no group {group!r} in this run")
        if "missing" in entry:
            raise MissingScore(f"group {group!r}: {entry['missing']}")
        value = entry.get("rows", {}).get(row, {}).get(column)
        if value is None:
            raise MissingScore(f"group {group!r} has no {column} for row {row!r}")
        self.read.append((group, row, column))
        return (100 if percent else 1) * float(value)

    def at_iteration(self, group: str, row: str, iteration: int) -> float:
        """A row's mean IU (percent) at `iteration` of its training: the final score when
        it stopped there, else the test its training took then."""
        if int(self.get(group, row, ITERATIONS, percent=False)) == iteration:
            return self.get(group, row)
        curve = self.results[group]["rows"][row].get(TEST_MEAN_IU) or {}
        if str(iteration) not in curve:
            raise MissingScore(f"group {group!r}: row {row!r} has no test at iteration "
                               f"{iteration}")
        return 100 * float(curve[str(iteration)])

    def background(self, group: str, row: str, column: str = MEAN_IU) -> float:
        """The all-background prediction's score on the row's own scoring, in percent:
        0 for mean IU without background (every other class's IU is 0), else the recorded
        baseline (paper.chains.constant_baseline: the best one-class prediction, which is
        background wherever background is the commonest class)."""
        if column == MEAN_IU_NO_BG:
            return 0.0
        return self.get(group, row, BACKGROUND_MEAN_IU)


Check = Callable[[Scores], tuple[bool, str]]   # (holds, the numbers that decide it)


@dataclass(frozen=True)
class Claim:
    key: str
    group: str          # the report group (paper.plan's key) it is shown under
    sentence: str       # the paper's words it tests
    statement: str      # what is checked, in words (shown when numbers are missing)
    check: Check
    learns: tuple[str, str] | None = None  # (group, row) that must beat the background


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    holds: bool | None  # None: numbers missing
    numbers: str        # the numbers that decide it, or what is missing

    @property
    def word(self) -> str:
        return {True: "yes", False: "NO", None: "missing"}[self.holds]


def _chain(scores: Scores, group: str, rows: tuple[str, ...], column: str = MEAN_IU,
           strict: bool = False) -> tuple[bool, str]:
    """rows[0] ≥ rows[1] ≥ … (> when strict), with each value shown."""
    values = [scores.get(group, r, column) for r in rows]
    holds = all((a > b) if strict else (a >= b) for a, b in zip(values, values[1:]))
    sign = " > " if strict else " ≥ "
    return holds, sign.join(f"{r} {v:.1f}" for r, v in zip(rows, values))


def _within(scores: Scores, group: str, a: str, b: str, margin: float,
            column: str = MEAN_IU) -> tuple[bool, str]:
    x, y = scores.get(group, a, column), scores.get(group, b, column)
    return abs(x - y) <= margin, (f"{a} {x:.1f} vs {b} {y:.1f}: {x - y:+.1f} "
                                  f"(within ±{margin:g}?)")


def _no_gain(scores: Scores, group: str, reference: str, variant: str) -> tuple[bool, str]:
    base, other = scores.get(group, reference), scores.get(group, variant)
    return other - base <= NO_GAIN_ABOVE, (f"{variant} {other:.1f} vs {reference} "
                                           f"{base:.1f}: {other - base:+.1f} mean IU "
                                           f"(gain ≤ {NO_GAIN_ABOVE:g}?)")


def _above(scores: Scores, group: str, high: str, low: str) -> tuple[bool, str]:
    return _chain(scores, group, (high, low), strict=True)


def _above_at_equal_iterations(scores: Scores, group: str, high: str,
                               low: str) -> tuple[bool, str]:
    """high above low, each read at the fewer of their two runs' iterations (a first stage
    still at the background trains on: paper.plan's first_extension)."""
    steps = {r: int(scores.get(group, r, ITERATIONS, percent=False)) for r in (high, low)}
    equal = min(steps.values())
    x, y = (scores.at_iteration(group, r, equal) for r in (high, low))
    later = "".join(f"; {r} trained on to {n}: {scores.get(group, r):.1f}"
                    for r, n in steps.items() if n != equal)
    return x > y, f"{high} {x:.1f} > {low} {y:.1f} at {equal} iterations{later}"


def _eight_over_32(s: Scores) -> tuple[bool, str]:
    eight, base = s.get("3", "FCN-8s staged"), s.get("3", "FCN-32s")
    return eight > base, (f"FCN-8s staged {eight:.1f} above FCN-32s {base:.1f} by "
                          f"{eight - base:+.1f} mean IU")


def _lr_drop(s: Scores) -> tuple[bool, str]:
    base, sixteen = s.get("3", "FCN-32s"), s.get("3", "FCN-16s")
    dropped = s.get("3-control", "FCN-32s, lr dropped, no skip")
    skip, drop = sixteen - base, dropped - base
    return (skip > 0 and drop <= LR_DROP_SHARE * skip,
            f"FCN-32s {base:.1f}; FCN-16s {sixteen:.1f} ({skip:+.1f}); lr dropped, no skip "
            f"{dropped:.1f} ({drop:+.1f}; ≤ {LR_DROP_SHARE:g} × the skip's gain?)")


def _late_fusion(s: Scores) -> tuple[bool, str]:
    fused = s.get("5", "FCN-32s RGB-HHA")
    others = {r: s.get("5", r) for r in ("FCN-32s RGB", "FCN-32s RGB-D", "FCN-32s HHA")}
    return all(fused > v for v in others.values()), (
        f"FCN-32s RGB-HHA {fused:.1f} vs " + ", ".join(f"{r} {v:.1f}"
                                                        for r, v in others.items()))


def _two_headed(s: Scores) -> tuple[bool, str]:
    """Each label set by its own measure: semantic mean IU, geometric pixel accuracy."""
    parts, holds = [], True
    for label_set, alone, column in (("semantic", "FCN-8s, semantic only", MEAN_IU),
                                     ("geometric", "FCN-8s, geometric only", N.GEOM_ACC)):
        ok, text = _within(s, "6", "FCN-8s", alone, SAME_WITHIN, column)
        holds &= ok
        parts.append(f"{label_set}: {text}")
    return holds, "; ".join(parts)


def _reference_bg(s: Scores) -> tuple[bool, str]:
    ref, masked = (s.get("8", r, MEAN_IU_NO_BG) for r in ("Reference", "Reference-BG"))
    return masked <= CATASTROPHIC * ref, (f"Reference-BG {masked:.1f} vs Reference {ref:.1f} "
                                          f"(≤ {CATASTROPHIC:g} × the reference?)")


def _reference_fg(s: Scores) -> tuple[bool, str]:
    ref, masked = (s.get("8", r, MEAN_IU_NO_BG) for r in ("Reference", "Reference-FG"))
    return 0 <= ref - masked <= SMALL_DROP, (f"Reference-FG {masked:.1f} vs Reference "
                                             f"{ref:.1f}: a drop of {ref - masked:.1f} "
                                             f"(0 to {SMALL_DROP:g}?)")


def _fg_bg_shape(rows: tuple[str, ...]) -> Check:
    def check(s: Scores) -> tuple[bool, str]:
        values = [s.get("8", r, MEAN_IU_NO_BG) for r in rows]
        holds = all(a > b for a, b in zip(values, values[1:])) and values[-1] > 0
        return holds, " > ".join(f"{r} {v:.1f}" for r, v in zip(rows, values)) + " > 0"
    return check


def _sampling_per_image(s: Scores) -> tuple[bool, str]:
    results = [_no_gain(s, "sampling", "p = 1 (whole image)", p)
               for p in ("p = 0.5", "p = 0.25")]
    return all(ok for ok, _ in results), "; ".join(text for _, text in results)


def _sampling_per_second(s: Scores) -> tuple[bool, str]:
    key = TRAIN_SECONDS
    whole = s.get("sampling", "p = 1 (whole image)", key, percent=False)
    sampled = {p: s.get("sampling", p, key, percent=False) for p in ("p = 0.5", "p = 0.25")}
    return all(t >= whole for t in sampled.values()), (
        f"whole image {whole:.0f} s vs " + ", ".join(f"{p} {t:.0f} s"
                                                     for p, t in sampled.items()))


def _bounds(s: Scores) -> tuple[bool, str]:
    factors = ("4", "8", "16", "32", "64", "128")
    values = [s.get("bounds", f) for f in factors]
    holds = all(a >= b for a, b in zip(values, values[1:])) and values[0] > values[-1]
    return holds, " ≥ ".join(f"×{f} {v:.1f}" for f, v in zip(factors, values))


CLAIMS: tuple[Claim, ...] = (
    Claim("1-vgg-alexnet", "1",
          "FCN-VGG16 already appears to be better than previous methods (Section 4.1; "
          "Table 1: 56.0 vs FCN-AlexNet 39.8)",
          "FCN-VGG16 above FCN-AlexNet",
          lambda s: _above(s, "1", "FCN-VGG16", "FCN-AlexNet")),
    Claim("1-vgg-googlenet", "1",
          "our FCN-GoogLeNet did not match FCN-VGG16 (Section 4.1)",
          "FCN-VGG16 above FCN-GoogLeNet",
          lambda s: _above(s, "1", "FCN-VGG16", "FCN-GoogLeNet")),
    Claim("1-more-data", "1-data",
          "More training data: FCN-AlexNet 39.8 on VOC 2011 train → 48.0 on SBD "
          "(Section 4.4)",
          "FCN-AlexNet on SBD above on VOC 2011 train",
          lambda s: _above(s, "1-data", "FCN-AlexNet, SBD train (8,498 images)",
                           "FCN-AlexNet, VOC 2011 train (1,112 images)")),
    Claim("2-heavy-online", "2",
          "heavy learning with high momentum: 63.6 vs online 60.7 (Table 2)",
          "FCN-heavy ≥ FCN-online",
          lambda s: _chain(s, "2", ("FCN-heavy", "FCN-online"))),
    Claim("2-online-accum", "2",
          "online 60.7 vs accumulated 51.9 on a fixed sequence of 100,000 images (Table 2)",
          "FCN-online above FCN-accum at equal images",
          lambda s: _above(s, "2", "FCN-online", "FCN-accum")),
    Claim("3-skips", "3",
          "Additional predictions from pool3, at stride 8, provide further precision "
          "(Table 3)",
          "skips refine: mean IU of FCN-8s ≥ FCN-16s ≥ FCN-32s",
          lambda s: _chain(s, "3", ("FCN-8s staged", "FCN-16s", "FCN-32s"))),
    Claim("3-8s-gain", "3",
          "FCN-8s staged 65.5 vs FCN-32s 63.6 (Table 3)",
          "FCN-8s staged above FCN-32s",
          _eight_over_32),
    Claim("3-staged-atonce", "3",
          "Learning all-at-once rather than in stages gives nearly equivalent results "
          "(Section 4.3)",
          f"FCN-8s at-once within ±{SAME_WITHIN:g} of FCN-8s staged",
          lambda s: _within(s, "3", "FCN-8s at-once", "FCN-8s staged", SAME_WITHIN)),
    Claim("3-lr-drop", "3-control", N.CLAIMS["3-control"],
          f"lr-drop control's gain ≤ {LR_DROP_SHARE:g} × FCN-16s' gain",
          _lr_drop),
    Claim("3-fixed", "3",
          "Fine-tuning the output classifier alone yields only 73% of the full fine-tuning "
          "performance (Section 4.3; Table 3: 46.6 vs 63.6)",
          "FCN-32s fixed below FCN-32s",
          lambda s: _above(s, "3", "FCN-32s", "FCN-32s fixed")),
    Claim("3-pools", "3",
          "scoring from the intermediate layers in isolation, which results in poor "
          "performance (Table 3: pool5 50.0, pool4 22.4, pool3 9.2)",
          "FCN-pool5 > FCN-pool4 > FCN-pool3",
          lambda s: _chain(s, "3", ("FCN-pool5", "FCN-pool4", "FCN-pool3"), strict=True)),
    Claim("5-late-fusion", "5",
          "This late fusion RGB-HHA net is the most accurate (Section 5)",
          "FCN-32s RGB-HHA above RGB, RGB-D and HHA",
          _late_fusion),
    Claim("5-rgbd", "5",
          "RGB-D early fusion 31.7 vs RGB 31.6 (Table 5)",
          f"FCN-32s RGB-D within ±{SAME_WITHIN:g} of RGB",
          lambda s: _within(s, "5", "FCN-32s RGB-D", "FCN-32s RGB", SAME_WITHIN)),
    Claim("6-two-headed", "6",
          "This net performs as well on both tasks as two independently trained nets "
          "(Section 5, SIFT Flow)",
          f"two-headed FCN-8s within ±{SAME_WITHIN:g} of separate nets on both label sets",
          _two_headed),
    Claim("7-skips", "7",
          "FCN-8s 39.1 ≥ FCN-16s 38.4 ≥ FCN-32s 36.7 (Table 7)",
          "FCN-8s ≥ FCN-16s ≥ FCN-32s",
          lambda s: _chain(s, "7", ("FCN-8s", "FCN-16s", "FCN-32s"))),
    Claim("8-reference-bg", "8",
          "Masking the foreground at inference time is catastrophic (Section 6.1; "
          "Reference-BG 19.8 vs Reference 84.8)",
          f"Reference-BG ≤ {CATASTROPHIC:g} × Reference",
          _reference_bg),
    Claim("8-reference-fg", "8",
          "Reference-FG, background masked at test: 81.0 vs Reference 84.8 (Table 8)",
          f"Reference-FG drops 0 to {SMALL_DROP:g} points",
          _reference_fg),
    Claim("8-fg-bg", "8",
          "masking the foreground during learning yields a network capable of recognizing "
          "object segments without observing a single pixel of the labeled class "
          "(Section 6.1; FG-only 76.1, BG-only 37.8)",
          "FG-only > BG-only > 0",
          _fg_bg_shape(("FG-only", "BG-only"))),
    Claim("8-shape", "8",
          "a net restricted to the simple input of foreground/background masks "
          "(Section 6.1; Shape 29.1)",
          "Shape > 0",
          _fg_bg_shape(("Shape",))),
    Claim("nullbg", "nullbg", N.CLAIMS["nullbg"],
          f"null background within ±{NULL_BG_WITHIN:g} of the softmax reference",
          lambda s: _within(s, "nullbg", "FCN-32s, null background",
                            "FCN-32s, softmax (reference)", NULL_BG_WITHIN)),
    Claim("sampling-per-image", "sampling", N.CLAIMS["sampling"],
          f"sampled loss gains ≤ {NO_GAIN_ABOVE:g} over whole images at equal images",
          _sampling_per_image),
    Claim("sampling-per-second", "sampling", N.CLAIMS["sampling"],
          "sampled runs take no less wall-clock time",
          _sampling_per_second),
    Claim("balance", "balance", N.CLAIMS["balance"],
          f"class-balanced loss gains ≤ {NO_GAIN_ABOVE:g}",
          lambda s: _no_gain(s, "balance", "FCN-32s", "FCN-32s, class-balanced loss")),
    Claim("augment", "augment", N.CLAIMS["augment"],
          f"mirror + jitter gains ≤ {NO_GAIN_ABOVE:g}",
          lambda s: _no_gain(s, "augment", "FCN-32s", "FCN-32s, mirror + jitter 32 px")),
    Claim("bounds", "bounds",
          "upper bounds on performance with prediction at various resolutions: 98.5 at "
          "factor 4 down to 50.9 at 128 (Section 6.3)",
          "bounds non-increasing from ×4 to ×128",
          _bounds),
    Claim("transfer", "transfer", N.CLAIMS["transfer"],
          "transfer beats no transfer: FCN-32s above FCN-32s from scratch at equal "
          "iterations",
          lambda s: _above_at_equal_iterations(s, "transfer", "FCN-32s",
                                               "FCN-32s from scratch")),
)
# The row each claim hangs on (LEARNED_ABOVE's guard): the better row of a comparison, the
# reference of an "≈" or "no gain". The 6.3 bounds read labels, and wall-clock is no score.
HANGS_ON = {
    "1-vgg-alexnet": ("1", "FCN-VGG16"), "1-vgg-googlenet": ("1", "FCN-VGG16"),
    "1-more-data": ("1-data", "FCN-AlexNet, SBD train (8,498 images)"),
    "2-heavy-online": ("2", "FCN-heavy"), "2-online-accum": ("2", "FCN-online"),
    "3-skips": ("3", "FCN-8s staged"), "3-8s-gain": ("3", "FCN-8s staged"),
    "3-staged-atonce": ("3", "FCN-8s staged"), "3-lr-drop": ("3", "FCN-16s"),
    "3-fixed": ("3", "FCN-32s"), "3-pools": ("3", "FCN-pool5"),
    "5-late-fusion": ("5", "FCN-32s RGB-HHA"), "5-rgbd": ("5", "FCN-32s RGB"),
    "6-two-headed": ("6", "FCN-8s"), "7-skips": ("7", "FCN-8s"),
    "8-reference-bg": ("8", "Reference"), "8-reference-fg": ("8", "Reference"),
    "8-fg-bg": ("8", "FG-only"), "8-shape": ("8", "Shape"),
    "nullbg": ("nullbg", "FCN-32s, softmax (reference)"),
    "sampling-per-image": ("sampling", "p = 1 (whole image)"),
    "balance": ("balance", "FCN-32s"), "augment": ("augment", "FCN-32s"),
    "transfer": ("transfer", "FCN-32s"),
}
CLAIMS = tuple(replace(c, learns=HANGS_ON.get(c.key)) for c in CLAIMS)
BY_KEY = {c.key: c for c in CLAIMS}


def column_of(group: str) -> str:
    """The metric a group's claims compare: Table 8's mean IU without background."""
    return MEAN_IU_NO_BG if group == "8" else MEAN_IU


def unlearned_rows(scores: Scores, skip: tuple[str, str] | None = None) -> list[str]:
    """The rows a check read (by a mean IU) that do not beat their all-background score by
    more than LEARNED_ABOVE, each with both numbers, in the order read; `skip` left out."""
    found: list[str] = []
    for group, row, column in dict.fromkeys(scores.read):
        if column not in (MEAN_IU, MEAN_IU_NO_BG) or (group, row) == skip:
            continue
        try:
            value, background = (scores.get(group, row, column),
                                 scores.background(group, row, column))
        except MissingScore:   # no baseline recorded (the 6.3 bounds are no trained net)
            continue
        if not learned(value, background):
            found.append(f"{row} {value:.1f} (all-background {background:.1f})")
    return found


def _why_not(scores: Scores, numbers: str, skip: tuple[str, str] | None = None) -> str:
    """A NO's numbers, and the reason understood where a row it compares learned nothing:
    that row did not leave the all-background score in its training."""
    idle = unlearned_rows(scores, skip)
    if not idle:
        return numbers
    return (f"{numbers}; {', '.join(idle)} did not leave the all-background score in "
            f"{'its' if len(idle) == 1 else 'their'} training")


def judge(claim: Claim, results: dict) -> Verdict:
    """Whether this run's scores hold the claim, or what it lacks to say. A claim whose
    row does not beat the all-background score by more than LEARNED_ABOVE is NO (a tie at
    the background is no finding), with both numbers. A NO names the other rows it
    compares that sit at the all-background score (the reason, where it is that)."""
    scores = Scores(results)
    left_background = True
    try:
        holds, numbers = claim.check(scores)
        if claim.learns is not None:
            group, row = claim.learns
            column = column_of(group)
            value = scores.get(group, row, column)
            background = scores.background(group, row, column)
            left_background = learned(value, background)
    except MissingScore as e:
        return Verdict(claim, None, str(e))
    if holds and left_background:
        return Verdict(claim, True, numbers)
    numbers = _why_not(scores, numbers, claim.learns)
    if left_background:
        return Verdict(claim, False, numbers)
    return Verdict(claim, False, f"{numbers}; but {row} {value:.1f} is not above the "
                   f"all-background {background:.1f} by more than {LEARNED_ABOVE:g}: "
                   f"nothing learned to compare")


def judge_group(group: str, results: dict) -> list[Verdict]:
    """The verdicts of every claim shown under one report group, in CLAIMS order."""
    return [judge(c, results) for c in CLAIMS if c.group == group]


def render(verdicts: list[Verdict], sentences: bool = True) -> str:
    """One line a claim: '- yes: what is checked — the numbers', '- NO: …', or
    '- missing: what is checked — what it lacks'; with the paper's words when asked."""
    return "\n".join(f"- {v.word}: {v.claim.statement} — {v.numbers}"
                     + (f" (the paper: “{v.claim.sentence}”)" if sentences else "")
                     for v in verdicts)
