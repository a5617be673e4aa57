"""A `GateResult` as text: a short summary for the terminal and Markdown for a CI job summary."""

from __future__ import annotations

from harness import fmt
from harness.gate.result import Check, GateResult, Thresholds
from harness.metrics import human_value, unit_of


def _threshold_text(t: Thresholds) -> str:
    size = fmt.size_limit(t["size_bytes"], t.get("size_pct"))
    which = "whole images and own layers" if t.get("whole_image") else "own layers"
    times = (
        "absolute times are not compared (across machines)"
        if t.get("across_machines")
        else f"a time fails when the lower bound of its {round(t['conf'] * 100):d} % interval of "
        f"current/baseline is above ×{fmt.fixed(t['time_ratio'], 2)}"
    )
    return (
        f"sizes of {which} may grow by at most {size} (base changes are drift); layers by at most "
        f"{t['layers']}; {times}; a supported claim must stay supported"
    )


def render_text(result: GateResult) -> str:
    """A short plain-text summary for the terminal."""
    n_fail = len(result.failures)
    head = "PASS" if result.passed else f"FAIL: {n_fail} regression{'s' if n_fail != 1 else ''}"
    if result.claims_lost:
        head += f" ({len(result.claims_lost)} supported claim(s) lost)"
    lines = [
        f"gate: {head} ({len(result.checks)} checks; baseline {result.baseline_dir}, "
        f"current {result.current_dir}; exit {result.exit_code})",
        f"thresholds: {_threshold_text(result.thresholds)}",
    ]
    for c in result.failures:
        lines.append(f"  FAIL  [{c.kind}] {c.message}")
    for c in result.nondeterministic:
        lines.append(f"  known [{c.kind}] {c.message}")
    for c in result.inputs_changed:
        lines.append(f"  input [{c.kind}] {c.message}")
    for c in result.improvements:
        lines.append(f"  better [{c.kind}] {c.message}")
    for c in result.base_changes:
        lines.append(f"  base  [{c.kind}] {c.message}")
    skipped = [c for c in result.checks if c.status == "skipped"]
    if skipped:
        lines.append(f"  {len(skipped)} time check(s) not judged (fewer than 2 trials on a side)")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _md_value(c: Check, v: float | str | None) -> str:
    """A check's baseline or current value: a verdict as it reads, a value in the metric's unit."""
    if isinstance(v, str):
        return v
    return human_value(c.metric, v) if v is not None else "–"


def _md_change(c: Check) -> str:
    """The change column: a time's ratio with its interval, a size's or count's signed delta, a verdict's move."""
    if c.kind == "time" and c.ratio is not None:
        text = fmt.human_ratio(c.ratio)
        if c.low is not None and c.high is not None:
            text += f" ({fmt.human_ratio(c.low)}–{fmt.human_ratio(c.high)})"
        return text
    if c.kind in ("size", "layers", "exact") and c.delta is not None:
        text = f"{int(c.delta):+,}" + (" B" if unit_of(c.metric) == "B" else "")
        return text + (f" ({fmt.signed_percent(c.pct)})" if c.pct is not None and c.delta else "")
    return f"{c.baseline} → {c.current}" if c.kind == "verdict" else ""


_MD_COLUMNS = [
    "status",
    "kind",
    "experiment",
    "variant",
    "scenario",
    "metric",
    "baseline",
    "current",
    "change",
    "machine",
]


def _md_checks_table(checks: list[Check]) -> str:
    """Every check as one row of a Markdown table."""
    rows = [
        [
            c.status,
            c.kind,
            c.experiment,
            c.variant,
            c.scenario,
            c.metric,
            _md_value(c, c.baseline),
            _md_value(c, c.current),
            _md_change(c),
            c.machine,
        ]
        for c in checks
    ]
    return fmt.md_table(_MD_COLUMNS, rows, ["l", "l", "l", "l", "l", "l", "r", "r", "r", "l"])


def _md_lists(result: GateResult) -> list[str]:
    """The regressions, base changes and improvements as Markdown bullet lists (each when present)."""
    out: list[str] = []
    if result.failures:
        out += ["### Regressions", ""]
        out += [
            f"- **{fmt.md_escape(c.experiment)} / {fmt.md_escape(c.variant)}** ({c.kind}): {fmt.md_escape(c.message)}"
            for c in result.failures
        ]
        out.append("")
    for title, checks in (
        ("Known nondeterminism (not gated)", result.nondeterministic),
        ("Inputs changed (not gated)", result.inputs_changed),
        ("Base changes (drift, not gated)", result.base_changes),
        ("Improvements", result.improvements),
    ):
        if checks:
            out += [f"### {title}", "", *(f"- {fmt.md_escape(c.message)}" for c in checks), ""]
    return out


def render_markdown(result: GateResult) -> str:
    """A Markdown summary for a CI job summary ($GITHUB_STEP_SUMMARY): verdict, regressions,
    improvements, every check in a collapsed table, notes."""
    n_fail = len(result.failures)
    title = "passed" if result.passed else f"failed: {n_fail} regression{'s' if n_fail != 1 else ''}"
    out = [
        f"## imagebench gate: {title}",
        "",
        f"Baseline `{fmt.md_escape(result.baseline_dir)}` vs current `{fmt.md_escape(result.current_dir)}`, "
        f"machines compared: {', '.join(result.machines.get('compared', [])) or 'none'}. "
        f"Exit code {result.exit_code}.",
        "",
        f"Thresholds: {_threshold_text(result.thresholds)}.",
        "",
    ]
    out += _md_lists(result)
    counts: dict[str, int] = {}
    for c in result.checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    if result.checks:
        out += [
            f"<details><summary>All {len(result.checks)} checks ({summary})</summary>",
            "",
            _md_checks_table(result.checks),
            "</details>",
            "",
        ]
    if result.notes:
        out += ["### Notes", ""] + [f"- {fmt.md_escape(n)}" for n in result.notes] + [""]
    return "\n".join(out)
