"""harness.fmt, the metric values of harness.metrics and harness.progress:
human formatting, Markdown tables, the run display."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from harness import fmt, metrics
from harness.clock import utcnow
from harness.metrics import exact_value, human_value
from harness.probes.declared_metrics import BY_PROBE
from harness.progress import Progress
from harness.report.published import flavour, latest_published, load_published_history
from harness.results import load_runs, load_table
from harness.tables import summary_rows, table_text

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (830, "830 B"),
        (1_000, "1.00 kB"),
        (156_000_000, "156 MB"),
        (1_020_000_000, "1.02 GB"),
        (51_800_000, "51.8 MB"),
        (float("nan"), "–"),
        (None, "–"),
    ],
)
def test_human_bytes(value, text):
    """human_bytes prints decimal units with three significant digits."""
    assert fmt.human_bytes(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0099999, "10.0 ms"),
        (0.181, "181 ms"),
        (4.214, "4.21 s"),
        (9.9999, "10.0 s"),
        (119.4, "119 s"),
        (185, "3 min 05 s"),
        (None, "–"),
    ],
)
def test_human_seconds(value, text):
    """human_seconds prints ms, s or minutes at a readable precision."""
    assert fmt.human_seconds(value) == text


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda: fmt.fixed(1.2345, 2), "1.23"),
        (lambda: fmt.fixed(12.6, 0), "13"),
        (lambda: fmt.fixed_seconds(1.00214, 4), "1.0021 s"),
        (lambda: fmt.signed_fixed_percent(1.254), "+1.25 %"),
        (lambda: fmt.signed_fixed_percent(-0.4), "-0.40 %"),
        (lambda: fmt.figure(0.48217), "0.482"),
        (lambda: fmt.figure(0.004123), "0.00412"),
        (lambda: fmt.figure(1234.5), "1.23e+03"),
        (lambda: fmt.general(0.012345), "0.0123"),
        (lambda: fmt.signed_bytes(-4113), "-4.11 kB (-4,113 B)"),
        (lambda: fmt.signed_bytes(32), "+32 B"),
    ],
)
def test_fixed_figures_have_one_home(call, text):
    """Fixed decimals, a ratio's table figure, g-style p-values and signed changes are fmt's, as compare,
    advise, the gate and drift print them."""
    assert call() == text


def test_human_value_by_unit():
    """human_value formats by the metric's unit (bytes, yes/no, count, seconds); exact_value prints every byte."""
    assert human_value("image_bytes", 130e6) == "130 MB"
    assert human_value("gcc_present", 1) == "yes"
    assert human_value("layers", 5.0) == "5"
    assert human_value("stop_seconds", 0.2) == "200 ms"
    assert exact_value("image_bytes", 310_004_096) == "310,004,096 B"


def test_axis_scale_and_label():
    """axis_scale picks a unit for the values shown; axis labels say compressed or uncompressed."""
    assert fmt.axis_scale("B", [1e6, 4.1e8]) == (1e6, "MB")
    assert fmt.axis_scale("s", [0.1, 0.5]) == (1e-3, "ms")
    assert fmt.axis_scale("count", [3]) == (1.0, "count")
    assert fmt.metric_axis_label("image_bytes", "MB") == "image_bytes (uncompressed, MB)"
    assert fmt.metric_axis_label("image_bytes_compressed", "MB") == "image_bytes_compressed (compressed, MB)"


def test_md_table_escapes_pipes():
    """md_table escapes pipes in cells and right-aligns numeric columns."""
    text = fmt.md_table(["a", "b"], [["x|y", 1]], ["l", "r"])
    assert text == "| a | b |\n| --- | ---: |\n| x\\|y | 1 |\n"


def test_published_history():
    """The published history gives ordered sizes per tag; flavour names slim, alpine and full."""
    h = load_published_history()
    assert {"3.12-slim", "3.12-alpine", "3.12"} <= set(h["tag"])
    for _, g in h.groupby("tag"):
        assert g["observed_at"].is_monotonic_increasing
        assert not g["digest_changed"].iloc[0]
    slim = h[h["tag"] == "3.12-slim"]["compressed_bytes"]
    assert slim.min() == 43_188_023 and slim.max() == 46_175_163
    assert (
        flavour("3.12-alpine") == "alpine"
        and flavour("python:3.12-slim") == "slim"
        and flavour("3.12") == "full"
    )
    assert latest_published(h, "python:3.12-slim")["compressed_bytes"] == 46_175_163
    assert latest_published(h, "debian:bookworm") is None


def test_progress_plain_lines_when_not_a_terminal():
    """Without a terminal progress prints one plain line per trial with its ETA and a run summary."""
    buf = io.StringIO()
    p = Progress(Console(file=buf, width=200))
    assert p.plain
    p.start(2)
    p.trial_started("multi-stage", "single", "cold", 1)
    p.trial_finished("ok", 12.3)
    p.trial_started("multi-stage", "multi", "cold", 1)
    p.trial_finished("failed", 2.0)
    p.finish(
        [
            {
                "experiment": "multi-stage",
                "variant": "multi",
                "scenario": "cold",
                "n": 1,
                "median_build_seconds": 2.0,
                "image_bytes": 160e6,
                "verdict": "supported",
            }
        ]
    )
    lines = buf.getvalue().splitlines()
    assert lines[0] == "run: 2 trial(s) planned"
    assert lines[1] == "[1/2] multi-stage · single · cold · trial 1 ..."
    assert lines[2] == "[1/2] multi-stage · single · cold · trial 1: ok in 12.3 s (ETA 12.3 s)"
    assert lines[4] == "[2/2] multi-stage · multi · cold · trial 1: failed in 2.00 s"
    assert lines[5].startswith("run finished: 2/2 trial(s) (1 failed, 1 ok)")
    out = buf.getvalue()
    assert "imagebench run summary" in out and "160 MB" in out and "supported" in out


def test_progress_bar_on_a_terminal():
    """On a terminal progress draws a bar and ends with the run-finished line."""
    buf = io.StringIO()
    p = Progress(Console(file=buf, force_terminal=True, width=120))
    assert not p.plain
    p.start(1)
    p.trial_started("x", "v", "cold", 1)
    p.trial_finished("ok", 1.0)
    p.finish()
    assert "run finished: 1/1" in buf.getvalue()


def test_summary_rows_from_runs():
    """summary_rows gives one row per experiment and variant with n, sizes and verdict."""
    runs = [r for r in load_runs(FIXTURE) if r["machine"] == "synthetic-a"]
    rows = summary_rows(runs)
    ms = [r for r in rows if r["experiment"] == "multi-stage"]
    assert [r["variant"] for r in ms] == ["multi", "single"]
    assert ms[0]["n"] == 5 and ms[0]["image_bytes"] == 160e6 and ms[0]["verdict"] == "supported"


def test_table_text_formats():
    """table_text renders the tidy table as CSV, JSON and Markdown in a stable order; unknown format fails."""
    df = load_table(FIXTURE)
    csv = table_text(df, "csv")
    assert csv.splitlines()[0] == "run_id,machine,experiment,variant,scenario,trial,metric,value,unit"
    assert len(csv.splitlines()) == len(df) + 1
    records = json.loads(table_text(df, "json"))
    assert len(records) == len(df) and isinstance(records[0]["trial"], int)
    md = table_text(df.head(3), "md")
    assert md.splitlines()[0].endswith("| human |") and len(md.splitlines()) == 5
    assert table_text(df, "csv") == csv  # stable order
    with pytest.raises(ValueError, match="unknown format"):
        table_text(df, "xml")


def test_markdown_table_of_a_dataframe():
    """markdown_table renders a DataFrame with numeric columns right-aligned and integers without decimals."""
    import pandas as pd

    text = fmt.markdown_table(pd.DataFrame({"metric": ["layers"], "value": [5.0], "trial": [1]}))
    assert text == "| metric | value | trial |\n| --- | ---: | ---: |\n| layers | 5 | 1 |\n"


def test_progress_message_goes_through_the_console():
    """Progress.message prints through the console as one line."""
    buf = io.StringIO()
    p = Progress(Console(file=buf, width=200))
    p.message("warm-up (not counted): x/v")
    assert buf.getvalue() == "warm-up (not counted): x/v\n"


def test_the_clock_stamps_utc_with_or_without_microseconds():
    """harness.clock.utcnow: ISO 8601 UTC with Z, microseconds for run records, whole seconds for drift."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", utcnow())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utcnow(micro=False))


def test_every_probe_metric_is_in_the_vocabulary():
    """Metrics declared for probes have their unit and kind; the vocabulary loads no probe module."""
    for declared in BY_PROBE.values():
        for name, unit, kind, _meaning in declared:
            assert (metrics.unit_of(name), metrics.kind_of(name)) == (unit, kind)
    assert human_value("add_change_detected", 1.0) == "yes"
    code = (
        "import sys, harness.metrics; print(sorted(m for m in sys.modules if m.startswith('harness.probes')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['harness.probes', 'harness.probes.declared_metrics']"
