"""The report: tables, plots and the rendered HTML/Markdown of a results directory.

`render_report(results_dir, out_dir)` is the entry point (harness/report/render.py writes every
file); `plots` holds the pure figure functions, `format` the report's own labels (values as text
are harness.fmt), `published` the published history of python base images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.report.render import Rendered


def render_report(
    results_dir: Path,
    out_dir: Path | None = None,
    *,
    on_skip: Callable[[str], object] | None = None,
    force: bool = False,
    pool: bool = False,
) -> Rendered:
    """See harness.report.render.render_report (imported lazily: matplotlib is slow to import)."""
    from harness.report.render import render_report as _render  # lazy: matplotlib and pandas (~2 s)

    return _render(results_dir, out_dir, on_skip=on_skip, force=force, pool=pool)


__all__ = ["render_report"]
