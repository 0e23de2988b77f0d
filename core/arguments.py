"""Numbers checked where the user types them: argparse types that refuse a value outside
its range, naming the argument (the make variable and the option) and the allowed range,
so ITERS=0 or WIDTH=0 is one usage error instead of a run that means nothing."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, text: str, name: str, allowed: str) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be {allowed}, found {text!r}") from None
    return value


def checked(kind: type, name: str, allowed: str,
            accept: Callable[[float], bool]) -> Callable[[str], float | int]:
    """An argparse `type=`: `kind(text)` when `accept` holds, else a usage error saying
    "`name` must be `allowed`, found …" (NaN and infinities are refused for floats)."""
    def parse(text: str) -> float | int:
        value = _number(kind, text, name, allowed)
        if (isinstance(value, float) and not math.isfinite(value)) or not accept(value):
            raise argparse.ArgumentTypeError(f"{name} must be {allowed}, found {text}")
        return value
    parse.__name__ = name  # argparse names the type in its own messages
    return parse


def iterations(name: str = "ITERS=/--iters") -> Callable[[str], int]:
    return checked(int, name, "an integer ≥ 1", lambda v: v >= 1)


def width(name: str = "WIDTH=/--width") -> Callable[[str], float]:
    return checked(float, name, "a number in (0, 1]", lambda v: 0 < v <= 1)


def rate(name: str) -> Callable[[str], float]:
    return checked(float, name, "a finite number > 0", lambda v: v > 0)


def momentum(name: str = "MOMENTUM=/--momentum") -> Callable[[str], float]:
    return checked(float, name, "a number in [0, 1)", lambda v: 0 <= v < 1)


def interval(name: str) -> Callable[[str], int]:
    return checked(int, name, "an integer ≥ 0", lambda v: v >= 0)
