"""argparse types shared by the subcommands: a bad value is refused by argparse with one line, before any work."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TypeVar


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _at_least(_int(text), 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a seed: numpy refuses a negative one with a traceback)."""
    return _at_least(_int(text), 0)


def finite_float(text: str) -> float:
    """A finite number: NaN passes every comparison a later range check makes, and inf never ends a loop."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a scale or a rate)."""
    return _at_least(finite_float(text), 0.0, strict=True)


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a tolerance: a negative one matches nothing, silently)."""
    return _at_least(finite_float(text), 0.0)


def folder(text: str) -> Path:
    """An output folder's path, not empty: '' would mean the current folder, whose earlier results a run clears
    (an unset $OUT in a script)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a folder")
    return Path(text)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


N = TypeVar("N", int, float)


def _at_least(value: N, low: N, *, strict: bool = False) -> N:
    if value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low:g}, got {value:g}")
    return value
