"""argparse value types the subcommands share, so that every bad number is refused in the same words."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N", int, float)


def _number(text: str, kind: type[N], what: str) -> N:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 1..65535."""
    n = _number(text, int, "a port")
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} must be within 1..65535")
    return n


def count(text: str) -> int:
    """A whole number of things, at least 1."""
    n = _number(text, int, "a whole number")
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return n


def fraction(text: str) -> float:
    """A share, 0..1."""
    f = _number(text, float, "a fraction")
    if not 0.0 <= f <= 1.0:
        raise argparse.ArgumentTypeError(f"fraction {text!r} must be within 0..1")
    return f


def seconds(*, at_most: float, zero: bool) -> Callable[[str], float]:
    """A duration in seconds up to `at_most`; 0 allowed only if `zero` (a timeout of 0 is no timeout)."""
    low = "0" if zero else "more than 0"

    def parse(text: str) -> float:
        s = _number(text, float, "a number of seconds")
        if s > at_most or s < 0 or (s == 0 and not zero):
            raise argparse.ArgumentTypeError(f"duration {text!r} must be {low} and at most {at_most:g} s")
        return s

    return parse
