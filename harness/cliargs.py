"""Validators for command-line values (argparse `type=`): finite, in range, one-line usage errors.

Every flag value is checked where it is parsed, so a bad value is a usage error (exit 2, one line
on stderr) before any work starts: `--time-ratio nan` would silently drop regressions, `--size-pct
inf` would pass anything, `--max-trials -1` would never stop.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

MAX_INT = 2**31 - 1  # no count, size step or cap this tool takes needs more
_REF_RE = re.compile(
    r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?"  # optional registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # :tag
    r"(?:@sha256:[0-9a-f]{64})?$"  # @digest
)


def _fail(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def _shown(text: str) -> str:
    out = repr(text)
    return out if len(out) <= 60 else out[:57] + "..."


def integer(lo: int = 0, hi: int = MAX_INT) -> Callable[[str], int]:
    """A whole number in [lo, hi] (no fractions, no NaN, no 1e9 spelling)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except (ValueError, AttributeError):
            raise _fail(f"must be a whole number, got {_shown(text)}") from None
        if not lo <= value <= hi:
            raise _fail(f"must be between {lo} and {hi}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(lo: float = 0.0, hi: float = 1e12, *, lo_open: bool = False) -> Callable[[str], float]:
    """A finite number in [lo, hi] (or (lo, hi] with lo_open): never NaN or infinite."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (ValueError, TypeError):
            raise _fail(f"must be a number, got {_shown(text)}") from None
        if not math.isfinite(value):
            raise _fail(f"must be a finite number, got {_shown(text)}")
        if value < lo or (lo_open and value == lo) or value > hi:
            low = f"> {lo:g}" if lo_open else f">= {lo:g}"
            raise _fail(f"must be {low} and <= {hi:g}, got {_shown(text)}")
        return value

    parse.__name__ = "number"
    return parse


def text(max_len: int = 4096, *, empty: bool = False) -> Callable[[str], str]:
    """A string without NUL bytes or line breaks, not longer than `max_len` (and not empty unless allowed)."""

    def parse(value: str) -> str:
        if not empty and not value.strip():
            raise _fail("must not be empty")
        if "\0" in value or "\n" in value or "\r" in value:
            raise _fail(f"must not hold NUL bytes or line breaks, got {_shown(value)}")
        if len(value) > max_len:
            raise _fail(f"is longer than {max_len} characters")
        return value

    parse.__name__ = "text"
    return parse


path = text(4096)
path.__name__ = "path"


def image_ref(value: str) -> str:
    """A Docker image reference ([host[:port]/]name[:tag][@sha256:digest]); usage error otherwise."""
    if len(value) > 512 or not _REF_RE.match(value):
        raise _fail(f"not an image reference: {_shown(value)}")
    return value


image_ref.__name__ = "image reference"
