"""Human formatting of measured values: the one place bytes, seconds and ratios become text.

Everything upstream stores base units (B, s, count); the report, the progress display and
`imagebench table --format md` call these functions. Output is deterministic: fixed rounding,
no locale, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from harness.metrics import kind_of, unit_of

_BYTE_STEPS = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))

# What each size metric measures: the report always says which size it shows.
SIZE_NOTES = {
    "image_bytes": "uncompressed",
    "image_bytes_compressed": "compressed",
}


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def sig(x: float, digits: int = 3) -> str:
    """`x` rounded to `digits` significant digits, without exponent notation for everyday sizes."""
    if not _finite(x):
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


def human_bytes(n: float, digits: int = 3) -> str:
    """Decimal units (the registry and Docker Hub use them): 156 MB, 1.02 GB, 830 B."""
    if not _finite(n):
        return "–"
    n = float(n)
    for name, factor in _BYTE_STEPS:
        if abs(n) >= factor:
            return f"{sig(n / factor, digits)} {name}"
    return f"{sig(n, digits)} B" if n != int(n) else f"{int(n)} B"


def human_seconds(s: float, digits: int = 3) -> str:
    """Seconds with a unit that reads well: 12 ms, 4.21 s, 3 min 05 s."""
    if not _finite(s):
        return "–"
    s = float(s)
    if abs(s) < 1 and s != 0:
        return f"{sig(s * 1000, digits)} ms"
    if abs(s) < 120:
        return f"{sig(s, digits)} s"
    minutes, rest = divmod(round(s), 60)
    return f"{minutes} min {rest:02d} s"


def human_ratio(r: float) -> str:
    return f"×{sig(r, 3)}" if _finite(r) else "–"


def human_pvalue(p: float) -> str:
    if not _finite(p):
        return "–"
    return "< 0.001" if p < 0.001 else sig(p, 2)


def human_percent(x: float) -> str:
    return f"{sig(100 * x, 2)} %" if _finite(x) else "–"


def human_value(metric: str, value: float) -> str:
    """A metric's value with its unit, the way a person reads it."""
    if not _finite(value):
        return "–"
    unit = unit_of(metric)
    if unit == "B":
        return human_bytes(value)
    if unit == "s":
        return human_seconds(value)
    if unit == "flag" or kind_of(metric) == "flag":
        v = float(value)
        return ("yes" if v == 1 else "no") if v in (0.0, 1.0) else sig(v, 2)
    if unit in ("count", "id", "code"):
        v = float(value)
        return str(int(v)) if v == int(v) else sig(v, 3)
    if unit == "ratio":
        return human_ratio(value)
    return f"{sig(value)} {unit}".strip()


def exact_value(metric: str, value: float) -> str:
    """The full value, digits grouped: for differences that rounding would hide (310,004,096 B)."""
    if not _finite(value):
        return "–"
    v = float(value)
    text = f"{int(v):,}" if v == int(v) else f"{v:,.6g}"
    unit = unit_of(metric)
    return f"{text} {unit}" if unit and unit not in ("count", "flag", "id", "code") else text


def human_interval(metric: str, low: float, high: float) -> str:
    return f"{human_value(metric, low)} – {human_value(metric, high)}"


def axis_scale(unit: str, values: Iterable[float]) -> tuple[float, str]:
    """(divisor, unit label) so plotted numbers stay readable: bytes -> MB, seconds -> ms when small."""
    vals = [abs(float(v)) for v in values if _finite(v)]
    top = max(vals) if vals else 0.0
    if unit == "B":
        for name, factor in _BYTE_STEPS:
            if top >= factor:
                return factor, name
        return 1.0, "B"
    if unit == "s":
        if 0 < top < 1:
            return 1e-3, "ms"
        return 1.0, "s"
    return 1.0, unit or "value"


def metric_axis_label(metric: str, unit_label: str) -> str:
    """`image_bytes_compressed (compressed, MB)`: metric name, which size, and unit."""
    note = SIZE_NOTES.get(metric)
    inner = f"{note}, {unit_label}" if note else unit_label
    return f"{metric} ({inner})"


def md_escape(text: object) -> str:
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


def short_digest(digest: str | None, n: int = 12) -> str:
    if not digest:
        return "–"
    algo, _, hexpart = str(digest).partition(":")
    return f"{algo}:{hexpart[:n]}" if hexpart else str(digest)[:n]


def markdown_table(df) -> str:
    """A DataFrame as a Markdown table (values as stored; numbers right-aligned)."""
    align = ["r" if str(t).startswith(("int", "float")) else "l" for t in df.dtypes]
    rows = ([_cell(v) for v in row] for row in df.itertuples(index=False, name=None))
    return md_table([str(c) for c in df.columns], rows, align)


def _cell(v: object) -> object:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v
