"""Values as text: the one place bytes, seconds, ratios and p-values become words.

A leaf module (it imports nothing from harness): the report and its plots' axes, the claims'
figures, the gate, compare, the tables, drift and the progress display all format through it.
Everything upstream stores base units (B, s, count). The one step it cannot take is knowing a
metric's unit: `harness.metrics.human_value` / `exact_value` / `human_interval` look that up in the
vocabulary and call `human_in_unit` / `exact_in_unit` here. Output is deterministic: fixed rounding,
no locale, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

BYTE_STEPS = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))

# Units whose values are whole numbers without a unit suffix.
_PLAIN_UNITS = ("count", "id", "code")


def finite(x: object) -> bool:
    """True when `x` is a number that is neither None, NaN nor infinite."""
    try:
        # float() takes more than a type can say (numbers, numpy scalars, numeric text): try it
        return x is not None and math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def sig(x: float, digits: int = 3) -> str:
    """`x` rounded to `digits` significant digits, without exponent notation for everyday sizes."""
    if not finite(x):
        return "–"
    x = float(x)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - magnitude)
    rounded = round(x, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > magnitude:  # 9.999 rounds up to 10.0
        decimals = max(0, decimals - 1)
        rounded = round(x, decimals)
    text = f"{rounded:.{decimals}f}"
    if text in ("-0", "-0.0"):
        text = text[1:]
    return text


def human_bytes(n: float | None, digits: int = 3) -> str:
    """Decimal units (the registry and Docker Hub use them): 156 MB, 1.02 GB, 830 B."""
    if n is None or not finite(n):
        return "–"
    n = float(n)
    for name, factor in BYTE_STEPS:
        if abs(n) >= factor:
            return f"{sig(n / factor, digits)} {name}"
    return f"{sig(n, digits)} B" if n != int(n) else f"{int(n)} B"


def human_seconds(s: float | None, digits: int = 3) -> str:
    """Seconds with a unit that reads well: 12 ms, 4.21 s, 3 min 05 s."""
    if s is None or not finite(s):
        return "–"
    s = float(s)
    if abs(s) < 1 and s != 0:
        return f"{sig(s * 1000, digits)} ms"
    if abs(s) < 120:
        return f"{sig(s, digits)} s"
    minutes, rest = divmod(round(s), 60)
    return f"{minutes} min {rest:02d} s"


def fixed(x: float, decimals: int) -> str:
    """`x` at a fixed number of decimals: fixed(1.2345, 2) is `1.23`, fixed(12.6, 0) is `13`."""
    return f"{x:.{decimals}f}"


def fixed_seconds(s: float, decimals: int) -> str:
    """Seconds at a fixed number of decimals (a tolerance's precision): `1.0021 s`."""
    return f"{fixed(s, decimals)} s"


def signed_fixed_percent(p: float, decimals: int = 2) -> str:
    """A change already in percent, always signed, at fixed decimals: `+1.25 %`, `-0.40 %`."""
    return f"{p:+.{decimals}f} %"


def figure(x: float) -> str:
    """A ratio's figure in a table cell: three decimals from 0.01 to 100 (`0.482`), else three
    significant digits (`0.00412`, `1.23e+03`)."""
    return f"{x:.3f}" if 0.01 <= x < 100 else general(x)


def general(x: float, digits: int = 3) -> str:
    """`x` with `digits` significant digits in Python's g style (`0.0123`, `1.2e-05`): a p-value."""
    return f"{x:.{digits}g}"


def human_ratio(r: float) -> str:
    """A ratio as ×1.23 (three significant digits)."""
    return f"×{sig(r, 3)}" if finite(r) else "–"


def human_pvalue(p: float) -> str:
    """A p-value with two significant digits, or `< 0.001`."""
    if not finite(p):
        return "–"
    return "< 0.001" if p < 0.001 else sig(p, 2)


def human_percent(x: float) -> str:
    """A fraction as a percentage with two significant digits: 0.123 -> 12 %."""
    return f"{sig(100 * x, 2)} %" if finite(x) else "–"


def signed_percent(p: float) -> str:
    """A change already in percent, signed when it grew: +12 %, -3.4 %, 0 %."""
    return ("+" if p > 0 else "") + f"{sig(p, 2)} %"


def size_limit(size_bytes: float, size_pct: float | None) -> str:
    """The gate's size threshold: `4,096 B`, or `4,096 B and 1.5 %` with a percentage."""
    return f"{size_bytes:,} B" + (f" and {size_pct:g} %" if size_pct is not None else "")


def signed_bytes(delta: float) -> str:
    """A change in bytes with its sign (± for none), exact from a kilobyte on: +32 B, -4.11 kB (-4,113 B)."""
    sign = "+" if delta > 0 else "-" if delta < 0 else "±"
    return f"{sign}{human_bytes(abs(delta))}" + (f" ({int(delta):+,} B)" if abs(delta) >= 1000 else "")


def human_in_unit(value: float, unit: str, kind: str = "") -> str:
    """A value in `unit` (B, s, flag, count, id, code, ratio, ...), the way a person reads it."""
    if not finite(value):
        return "–"
    if unit == "B":
        return human_bytes(value)
    if unit == "s":
        return human_seconds(value)
    if unit == "flag" or kind == "flag":
        v = float(value)
        return ("yes" if v == 1 else "no") if v in (0.0, 1.0) else sig(v, 2)
    if unit in _PLAIN_UNITS:
        v = float(value)
        return str(int(v)) if v == int(v) else sig(v, 3)
    if unit == "ratio":
        return human_ratio(value)
    return f"{sig(value)} {unit}".strip()


def exact_in_unit(value: float, unit: str) -> str:
    """The full value, digits grouped: for differences that rounding would hide (310,004,096 B)."""
    if not finite(value):
        return "–"
    v = float(value)
    text = f"{int(v):,}" if v == int(v) else f"{v:,.6g}"
    return f"{text} {unit}" if unit and unit not in (*_PLAIN_UNITS, "flag") else text


def axis_scale(unit: str, values: Iterable[float]) -> tuple[float, str]:
    """(divisor, unit label) so plotted numbers stay readable: bytes -> MB, seconds -> ms when small."""
    vals = [abs(float(v)) for v in values if finite(v)]
    top = max(vals) if vals else 0.0
    if unit == "B":
        for name, factor in BYTE_STEPS:
            if top >= factor:
                return factor, name
        return 1.0, "B"
    if unit == "s":
        if 0 < top < 1:
            return 1e-3, "ms"
        return 1.0, "s"
    return 1.0, unit or "value"


def md_escape(text: object) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, newlines folded)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], align: Sequence[str] | None = None
) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency). align: 'l' or 'r' per column."""
    align = list(align or ["l"] * len(headers))
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "| " + " | ".join(sep) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def markdown_table(df: Any) -> str:
    """A DataFrame as a Markdown table (values as stored; numbers right-aligned)."""
    align = ["r" if str(t).startswith(("int", "float")) else "l" for t in df.dtypes]
    rows = ([plain(v) for v in row] for row in df.itertuples(index=False, name=None))
    return md_table([str(c) for c in df.columns], rows, align)


def plain(v: Any) -> Any:
    """A table cell as plain Python: a numpy scalar unwrapped, a whole float as an int (5.0 -> 5)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


# What each size metric measures: the report always says which size it shows.
SIZE_NOTES = {
    "image_bytes": "uncompressed",
    "image_bytes_compressed": "compressed",
}


def metric_axis_label(metric: str, unit_label: str) -> str:
    """`image_bytes_compressed (compressed, MB)`: metric name, which size, and unit (a plot's axis)."""
    note = SIZE_NOTES.get(metric)
    inner = f"{note}, {unit_label}" if note else unit_label
    return f"{metric} ({inner})"


def short_digest(digest: str | None, n: int = 12) -> str:
    """`sha256:0123456789ab` from a full digest; `–` when there is none."""
    if not digest:
        return "–"
    algo, _, hexpart = str(digest).partition(":")
    return f"{algo}:{hexpart[:n]}" if hexpart else str(digest)[:n]
