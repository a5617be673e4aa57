"""Tables of a run as text: the summary `imagebench run` prints at the end, and the tidy table
`imagebench table --format csv|md|json` writes.

`summary_rows(runs, verdicts)` builds the summary's rows (plain Python on the run dicts),
`summary_table(rows)` draws them as a rich table, `table_text(df, fmt)` renders the tidy table.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from statistics import median
from typing import TYPE_CHECKING, NotRequired, TypedDict

from rich.console import JustifyMethod
from rich.table import Table

from harness import fmt
from harness.metrics import human_value
from harness.results import TIDY_COLUMNS
from harness.verdicts import TrialStatus, Verdict

if TYPE_CHECKING:
    import pandas as pd

    from harness.analysis import ExperimentResult
    from harness.records import RunRecord

SUMMARY_FIELDS = ("experiment", "variant", "scenario", "n", "median_build_seconds", "image_bytes", "verdict")
TABLE_FORMATS = ("csv", "md", "json")


class SummaryRow(TypedDict):
    """One row of the run summary: an experiment, variant and scenario's ok trials and medians."""

    experiment: str
    variant: str
    scenario: str
    n: int  # ok trials
    median_build_seconds: float | None
    image_bytes: float | None
    smoke: NotRequired[str | None]  # smoke checks passed, "k/n"
    verdict: str  # the experiment's Verdict, "" when it was not judged


class _Cell(TypedDict):
    trials: list[int]
    build: list[float]
    size: list[float]
    smoke: list[int]


def summary_table(rows: Iterable[SummaryRow]) -> Table:
    """The rich table `Progress.finish` prints: one row per experiment, variant and scenario."""
    table = Table(title="imagebench run summary", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("experiment", "left"),
        ("variant", "left"),
        ("scenario", "left"),
        ("n", "right"),
        ("median build", "right"),
        ("image (uncompressed)", "right"),
        ("smoke ok", "right"),
        ("verdict", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)
    colours: dict[str, str] = {
        Verdict.SUPPORTED: "green",
        Verdict.NOT_SUPPORTED: "red",
        Verdict.INCONCLUSIVE: "yellow",
    }
    for r in rows:
        verdict = str(r.get("verdict") or "")
        table.add_row(
            str(r.get("experiment", "")),
            str(r.get("variant", "")),
            str(r.get("scenario", "")),
            str(r.get("n", 0)),
            fmt.human_seconds(r.get("median_build_seconds")),
            fmt.human_bytes(r.get("image_bytes")),
            str(r.get("smoke") or "–"),
            f"[{colours[verdict]}]{verdict}[/]" if verdict in colours else verdict,
        )
    return table


def summary_rows(
    runs: Sequence[RunRecord], verdicts: list[ExperimentResult] | None = None
) -> list[SummaryRow]:
    """Rows for `Progress.finish` from run dicts: n ok trials, median build_seconds and image_bytes per
    experiment/variant/scenario, and the experiment's verdict (from `analysis.analyze`, every run
    pooled: `latest=False`).

    Plain Python on the run dicts: the end of every run pays for no pandas import; the analysis
    module is loaded only when some experiment states claims to judge."""
    if verdicts is None:
        if any((d or {}).get("claims") for r in runs for d in r.get("experiments", {}).values()):
            from harness import analysis  # pandas and scipy: loaded only when there are claims to judge

            # verdicts need the intervals only
            verdicts = analysis.analyze(runs, latest=False, with_p=False).experiments
        else:
            verdicts = []
    verdict_of = {v.experiment: v.verdict for v in verdicts}
    cells: dict[tuple[str, str, str], _Cell] = {}
    for r in runs:
        for t in r.get("trials", []):
            if t.get("status") != TrialStatus.OK.value:
                continue
            cell = cells.setdefault(
                (t["experiment"], t["variant"], t["scenario"]),
                {"trials": [], "build": [], "size": [], "smoke": []},
            )
            m = t.get("metrics") or {}
            cell["trials"].append(t["trial"])
            if m.get("build_seconds") is not None:
                cell["build"].append(float(m["build_seconds"]))
            if m.get("image_bytes") is not None:
                cell["size"].append(float(m["image_bytes"]))
            if m.get("smoke_ok") is not None:
                cell["smoke"].append(int(m["smoke_ok"]))
    if not cells:
        return [
            {
                "experiment": v.experiment,
                "variant": "–",
                "scenario": "–",
                "n": 0,
                "median_build_seconds": None,
                "image_bytes": None,
                "verdict": v.verdict,
            }
            for v in verdicts
        ]
    return [
        {
            "experiment": e,
            "variant": v,
            "scenario": sc,
            "n": len(set(c["trials"])),
            "median_build_seconds": median(c["build"]) if c["build"] else None,
            "image_bytes": median(c["size"]) if c["size"] else None,
            "smoke": f"{sum(c['smoke'])}/{len(c['smoke'])}" if c["smoke"] else None,  # smoke checks passed
            "verdict": verdict_of.get(e, ""),
        }
        for (e, v, sc), c in sorted(cells.items())
    ]


def table_text(df: pd.DataFrame, fmt_name: str = "csv") -> str:
    """The tidy table as text: `csv` (RFC 4180, base units), `md` (a Markdown table with values
    in base units and a human column) or `json` (a list of records)."""
    cols = [c for c in TIDY_COLUMNS if c in df.columns]
    df = df[cols].sort_values(
        [
            c
            for c in ("machine", "run_id", "experiment", "variant", "scenario", "trial", "metric")
            if c in cols
        ],
        kind="stable",
    )
    if fmt_name == "csv":
        buf = io.StringIO()
        df.to_csv(buf, index=False, lineterminator="\n")
        return buf.getvalue()
    if fmt_name == "json":
        records = [{k: fmt.plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
        return json.dumps(records, indent=1) + "\n"
    if fmt_name == "md":
        rows = [
            [*(fmt.plain(row[c]) for c in cols), human_value(row["metric"], row["value"])]
            for row in df.to_dict(orient="records")
        ]
        return fmt.md_table(
            [*cols, "human"], rows, ["r" if c in ("trial", "value") else "l" for c in cols] + ["r"]
        )
    raise ValueError(f"unknown format {fmt_name!r} (use one of {', '.join(TABLE_FORMATS)})")
