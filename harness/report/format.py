"""The report's own labels: which size a metric shows and the plots' value-axis labels.

Values as text (bytes, seconds, ratios, Markdown tables) are harness.fmt, a leaf module; a
metric's value with its unit is harness.metrics.human_value / exact_value / human_interval.
"""

from __future__ import annotations

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
