"""The report's own formatting: which size a metric shows, plot axis labels, intervals.

General value formatting (bytes, seconds, ratios, Markdown tables) lives in harness.fmt, a
leaf module; a metric's value with its unit is harness.metrics.human_value / exact_value.
Output is deterministic: fixed rounding, no locale, no clock.
"""

from __future__ import annotations

from harness.fmt import (  # noqa: F401  re-exported until drift/progress import harness.fmt (issue 17)
    axis_scale,
    human_bytes,
    human_percent,
    human_pvalue,
    human_ratio,
    human_seconds,
    markdown_table,
    md_escape,
    md_table,
    short_digest,
    sig,
)
from harness.metrics import exact_value, human_interval, human_value  # noqa: F401  re-exported (issue 17)

# What each size metric measures: the report always says which size it shows.
SIZE_NOTES = {
    "image_bytes": "uncompressed",
    "image_bytes_compressed": "compressed",
}


def metric_axis_label(metric: str, unit_label: str) -> str:
    """`image_bytes_compressed (compressed, MB)`: metric name, which size, and unit."""
    note = SIZE_NOTES.get(metric)
    inner = f"{note}, {unit_label}" if note else unit_label
    return f"{metric} ({inner})"
