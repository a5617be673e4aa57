"""Figures for the report and the notebooks: pure functions, DataFrame in, matplotlib Figure out.

No file I/O here (harness/report/render.py writes every file) and no pyplot state: figures
are plain `Figure` objects on an Agg canvas, so they work the same in a notebook kernel. Every figure names its metric
and unit on the value axis, and for sizes whether the size is compressed or uncompressed.
Colours are the Okabe-Ito palette (readable with colour-vision deficiencies); cached and
executed steps differ by colour *and* hatch so a greyscale print still tells them apart.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator

from harness import fmt
from harness.metrics import get, kind_of, unit_of
from harness.verdicts import Verdict

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.typing import RcKeyType

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
EXECUTED = {"color": "#D55E00", "hatch": "", "label": "executed"}
CACHED = {"color": "#D9D9D9", "hatch": "///", "label": "cached"}
VERDICT_COLOURS = {
    Verdict.SUPPORTED: "#009E73",
    Verdict.NOT_SUPPORTED: "#D55E00",
    Verdict.INCONCLUSIVE: "#E69F00",
}

RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "imagebench",  # stable ids: identical results give identical SVG
    "svg.fonttype": "none",  # text stays text in the SVG (small, selectable)
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "path.simplify": False,
}


def apply_style() -> None:
    """The deterministic style every report figure uses (idempotent)."""
    matplotlib.rcParams.update(RC)


def _new_figure(width: float, height: float) -> Figure:
    """A Figure on an Agg canvas (pyplot's global backend untouched), constrained layout with a little
    spare room so the PNG (drawn at another dpi with the SVG's layout) never clips a label."""
    fig = Figure(figsize=(width, height), layout="constrained")
    cast("ConstrainedLayoutEngine", fig.get_layout_engine()).set(w_pad=0.08, h_pad=0.06)
    FigureCanvasAgg(fig)
    return fig


def _figure(width: float, height: float, ncols: int = 1, **kw: Any) -> tuple[Figure, list[Axes]]:
    apply_style()
    fig = _new_figure(width, height)
    axes = fig.subplots(1, ncols, squeeze=False, **kw)[0]
    return fig, list(axes)


def _order(values: Iterable[str], order: Sequence[str] | None = None) -> list[str]:
    present = list(dict.fromkeys(values))
    if order:
        first = [v for v in order if v in present]
        return first + sorted(v for v in present if v not in first)
    return sorted(present)


def _meaning(metric: str) -> str:
    m = get(metric)
    return f"{metric}: {m.meaning}" if m else metric


def value_axis(metric: str, values: Iterable[float]) -> tuple[float, str]:
    """(divisor, axis label with unit) for `metric` given the values to plot."""
    divisor, unit_label = fmt.axis_scale(unit_of(metric), values)
    return divisor, fmt.metric_axis_label(metric, unit_label or "value")


# --------------------------------------------------------------------------- per-variant values


def metric_points(
    df: pd.DataFrame, metric: str, *, order: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """One point per trial for each variant (and scenario), the median as a bar, the IQR as
    a line: the spread is visible, nothing is averaged away.

    `df` is tidy (variant, scenario, trial, metric, value); rows of other metrics are ignored.
    """
    sel = df[df["metric"] == metric]
    variants = _order(sel["variant"], order)
    scenarios = _order(sel["scenario"], ["cold", "warm", "edit-source", "edit-deps", "base-bump"])
    divisor, ylabel = value_axis(metric, sel["value"])
    fig, (ax,) = _figure(max(4.8, 1.1 * len(variants) * max(1, len(scenarios)) + 1.8), 3.4)
    width = 0.8 / max(1, len(scenarios))
    labelled: set[str] = set()
    for si, scenario in enumerate(scenarios):
        colour = PALETTE[si % len(PALETTE)]
        for vi, variant in enumerate(variants):
            cell = sel[(sel["variant"] == variant) & (sel["scenario"] == scenario)]
            cell = cell.sort_values([c for c in ("run_id", "trial") if c in cell.columns], kind="stable")
            vals = cell["value"].to_numpy()  # in trial order, so the spread of points shows no fake trend
            if vals.size == 0:
                continue
            x = vi + (si - (len(scenarios) - 1) / 2) * width
            y = vals / divisor
            jitter = np.linspace(-width * 0.25, width * 0.25, y.size) if y.size > 1 else np.zeros(1)
            q1, med, q3 = np.quantile(y, [0.25, 0.5, 0.75])
            ax.plot([x, x], [q1, q3], color=colour, linewidth=3, alpha=0.45, solid_capstyle="butt", zorder=2)
            ax.plot([x - width * 0.38, x + width * 0.38], [med, med], color=colour, linewidth=2, zorder=3)
            ax.scatter(
                x + jitter,
                y,
                s=14,
                color=colour,
                edgecolor="white",
                linewidth=0.5,
                zorder=4,
                label=None if scenario in labelled else f"scenario: {scenario}",
            )
            labelled.add(scenario)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_xlim(-0.6, len(variants) - 0.4)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("variant")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or _wrap(_meaning(metric), 55), loc="left")
    if len(scenarios) > 1:
        ax.legend(frameon=False, fontsize=8)
    return fig


def flag_shares(
    df: pd.DataFrame, metric: str, *, order: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """Share of trials where a 0/1 flag was 1, per variant (and scenario), with n on each bar."""
    sel = df[df["metric"] == metric]
    variants = _order(sel["variant"], order)
    scenarios = _order(sel["scenario"], ["cold", "warm", "edit-source", "edit-deps", "base-bump"])
    fig, (ax,) = _figure(max(4.8, 1.1 * len(variants) * max(1, len(scenarios)) + 1.8), 3.2)
    width = 0.8 / max(1, len(scenarios))
    for si, scenario in enumerate(scenarios):
        for vi, variant in enumerate(variants):
            vals = sel[(sel["variant"] == variant) & (sel["scenario"] == scenario)]["value"].to_numpy()
            if vals.size == 0:
                continue
            share = float((vals == 1).mean())
            x = vi + (si - (len(scenarios) - 1) / 2) * width
            ax.bar(
                x,
                share,
                width * 0.9,
                color=PALETTE[si % len(PALETTE)],
                label=f"scenario: {scenario}" if vi == 0 else None,
            )
            ax.annotate(
                f"{int((vals == 1).sum())}/{vals.size}",
                (x, share),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylim(0, 1.15)
    ax.set_xlabel("variant")
    ax.set_ylabel(f"{metric} (share of trials = 1, fraction)")
    ax.set_title(title or _wrap(_meaning(metric), 55), loc="left")
    if len(scenarios) > 1:
        ax.legend(frameon=False, fontsize=8)
    return fig


def metric_figure(
    df: pd.DataFrame, metric: str, *, order: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """The plot that fits the metric: shares for flags, points with median and IQR otherwise."""
    if kind_of(metric) == "flag" or unit_of(metric) == "flag":
        return flag_shares(df, metric, order=order, title=title)
    return metric_points(df, metric, order=order, title=title)


# --------------------------------------------------------------------------- build waterfall


def _short(text: str, n: int = 44) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _wrap(text: str, width: int, lines: int = 2) -> str:

    return "\n".join(textwrap.wrap(" ".join(str(text).split()), width, max_lines=lines, placeholder="…"))


def waterfall(steps: pd.DataFrame, *, order: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Build waterfalls of paired variants, one panel per variant stacked on a shared time axis
    (stacked rather than beside each other so step names stay readable on a phone and bar
    lengths compare directly).

    `steps`: one row per Dockerfile step of one build per variant, with columns variant,
    index, name, cached, start_offset, end_offset (seconds from the build's first step) and
    optionally scenario and trial (shown in the panel title).
    """
    variants = _order(steps["variant"], order)
    counts = [max(1, int((steps["variant"] == v).sum())) for v in variants] or [1]
    height = 0.9 + sum(0.42 + 0.24 * c for c in counts)
    apply_style()
    fig = _new_figure(7.5, height)
    axes = fig.subplots(len(counts), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": counts})[
        :, 0
    ]
    right = float(np.nanmax(steps["end_offset"].to_numpy())) if len(steps) else 1.0
    right = right if right > 0 else 1.0
    min_width = right * 0.006
    for ax, variant in zip(axes, variants, strict=False):
        rows = steps[steps["variant"] == variant].sort_values(["start_offset", "index"], kind="stable")
        _waterfall_panel(ax, variant, rows, min_width)
    axes[-1].set_xlim(0, right * 1.12)
    axes[-1].set_xlabel("time since the build's first step (s)")
    handles = [
        Patch(facecolor=s["color"], hatch=s["hatch"], edgecolor="#555555", label=s["label"])
        for s in (EXECUTED, CACHED)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _waterfall_panel(ax: Axes, variant: str, rows: pd.DataFrame, min_width: float) -> None:
    """One variant's build steps as bars from start to end (cached steps hatched, executed ones
    labelled with their duration), titled with scenario, trial and how many steps executed."""
    y = np.arange(len(rows))
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        cached = bool(r["cached"])
        style = CACHED if cached else EXECUTED
        start, end = float(r["start_offset"]), float(r["end_offset"])
        ax.barh(
            yi,
            max(end - start, min_width),
            left=start,
            height=0.72,
            color=style["color"],
            hatch=style["hatch"],
            edgecolor="#555555",
            linewidth=0.5,
        )
        note = "cached" if cached else fmt.human_seconds(end - start)
        ax.annotate(
            note,
            (max(end, start + min_width), yi),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
            color="#555555",
        )
    ax.set_yticks(y, [_short(n, 52) for n in rows["name"]], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    bits = [variant]
    if "scenario" in rows and len(rows):
        bits.append(str(rows["scenario"].iloc[0]))
    if "trial" in rows and len(rows):
        bits.append(f"trial {int(rows['trial'].iloc[0])}")
    executed = int((~rows["cached"].astype(bool)).sum())
    bits.append(f"{executed} of {len(rows)} steps executed")
    ax.set_title(" · ".join(bits), fontsize=9, loc="left")


# --------------------------------------------------------------------------- claims at a glance


def claims_forest(claims: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Ratio candidate / baseline with its 95 % interval per ratio claim, on a log axis.

    `claims`: DataFrame (or list of dicts) with label, ratio, low, high, verdict (and optionally
    reason). Every row is drawn: a ratio of 0 (the candidate measured nothing) sits at the left edge
    as a "0" marker, an interval reaching 0 is cut there with an arrow, and an undefined ratio (a
    baseline of 0, a variant not measured) is written out with its reason instead of left empty.
    """

    rows = pd.DataFrame(list(claims) if not hasattr(claims, "columns") else claims).reset_index(drop=True)
    positive = [
        float(x)
        for col in ("ratio", "low", "high")
        if col in rows
        for x in rows[col]
        if pd.notna(x) and float(x) > 0 and math.isfinite(float(x))
    ]
    lo_edge = min([*positive, 1.0]) / 3
    hi_edge = max([*positive, 1.0]) * 3
    fig, (ax,) = _figure(10.0, 1.4 + 0.42 * max(1, len(rows)))
    for i, (_, r) in enumerate(rows.iterrows()):  # the index is 0..n-1 (reset above)
        colour = VERDICT_COLOURS.get(r["verdict"], "#777777")
        ratio = r.get("ratio")
        if ratio is None or pd.isna(ratio):
            why = str(r.get("reason") or "not measured")
            ax.text(
                1.0, i, f"  undefined: {_wrap(why, 70)}", va="center", ha="left", fontsize=7.5, color=colour
            )
            ax.plot([1.0], [i], marker="x", color=colour, markersize=6)
            continue
        low = r["low"] if pd.notna(r.get("low")) else ratio
        high = r["high"] if pd.notna(r.get("high")) else ratio
        low_c, high_c = max(float(low), lo_edge), max(float(high), lo_edge)
        ax.plot([low_c, high_c], [i, i], color=colour, linewidth=2.5, solid_capstyle="butt")
        if float(low) <= 0 < float(high):
            ax.plot([lo_edge], [i], marker="<", color=colour, markersize=6)
        if float(ratio) <= 0:
            ax.plot([lo_edge], [i], marker="o", color=colour, markersize=6, markerfacecolor="white")
            ax.text(lo_edge, i - 0.3, " ratio 0", fontsize=7, color=colour, va="bottom")
        else:
            ax.plot([ratio], [i], marker="o", color=colour, markersize=5)
    ax.axvline(1.0, color="#333333", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlim(lo_edge / 1.2, hi_edge)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"×{x:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda _x, _pos: ""))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_yticks(range(len(rows)), [_wrap(x, 60) for x in rows.get("label", [])], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("ratio of medians, candidate / baseline (×, log scale; 1 = no change; left edge = 0)")
    handles = [Patch(color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=8)
    ax.set_title(title or "Effect of each practice with its 95 % interval", loc="left")
    return fig


def recovery(rows: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Calibration: measured effect / injected effect per delta claim, with interval and tolerance band.

    `rows`: DataFrame with label, measured, low, high (ratios to the injected value), tolerance
    (relative half-width of the accepted band) and verdict.
    """

    fig, (ax,) = _figure(8.0, 1.3 + 0.4 * max(1, len(rows)))
    for i, (_, r) in enumerate(rows.reset_index(drop=True).iterrows()):
        colour = VERDICT_COLOURS.get(r["verdict"], "#777777")
        tol = float(r["tolerance"] or 0.0)
        ax.fill_betweenx([i - 0.35, i + 0.35], 1 - tol, 1 + tol, color="#d9d9d9", linewidth=0)
        low = r["low"] if pd.notna(r["low"]) else r["measured"]
        high = r["high"] if pd.notna(r["high"]) else r["measured"]
        ax.plot([low, high], [i, i], color=colour, linewidth=2.5, solid_capstyle="butt")
        ax.plot([r["measured"]], [i], marker="o", color=colour, markersize=5)
    ax.axvline(1.0, color="#333333", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), [_wrap(x, 42) for x in rows["label"]], fontsize=7.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("measured effect / injected effect (×; 1 = recovered exactly)")
    handles = [Patch(color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    handles.append(Patch(color="#d9d9d9", label="tolerance"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    ax.set_title(title or "Calibration: known effects recovered", loc="left")
    return fig


# --------------------------------------------------------------------------- published base images


def published_history(
    history: pd.DataFrame, tags: Sequence[str] | None = None, *, log: bool = True, title: str | None = None
) -> Figure:
    """Compressed size over time per python tag (docker-library/repo-info), digest changes ringed.

    `history`: `harness.report.published.load_published_history()` (or `harness.drift.history()`
    frames concatenated): columns tag, flavour, observed_at, compressed_bytes, digest_changed.
    `log=False` for one tag, so that small changes show.
    """
    tags = _order(history["tag"], tags) if tags is None else [t for t in tags if t in set(history["tag"])]
    sel = history[history["tag"].isin(tags)]
    divisor, unit_label = fmt.axis_scale("B", sel["compressed_bytes"])
    fig, (ax,) = _figure(7.5, 3.6)
    markers = {"full": "s", "slim": "o", "alpine": "^"}
    for i, tag in enumerate(tags):
        rows = sel[sel["tag"] == tag].sort_values("observed_at", kind="stable")
        colour = PALETTE[i % len(PALETTE)]
        x = rows["observed_at"].dt.tz_localize(None).to_numpy()
        y = rows["compressed_bytes"].to_numpy() / divisor
        ax.plot(
            x,
            y,
            color=colour,
            linewidth=1.2,
            drawstyle="steps-post",
            marker=markers.get(rows["flavour"].iloc[0], "o"),
            markersize=4,
            label=f"python:{tag}",
        )
        changed = rows["digest_changed"].to_numpy()
        if changed.any():
            ax.scatter(
                x[changed], y[changed], s=70, facecolor="none", edgecolor=colour, linewidth=1.2, zorder=5
            )
    if log:
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _pos: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel("published (UTC date of the newest layer)")
    ax.set_ylabel(f"compressed size ({unit_label}{', log scale' if log else ''})")
    ax.grid(color="#e6e6e6", linewidth=0.6)
    ax.legend(frameon=False, fontsize=8, loc="best", title="ring = new digest", title_fontsize=8)
    fig.autofmt_xdate()
    ax.set_title(title or "Published python images: compressed size over time (linux/amd64)")
    return fig
