"""The report's content, assembled from run dicts: every number already formatted, every plot a
pure callable. No file I/O; render.py turns this model into index.html, REPORT.md and plots.

Ordering is stable everywhere (calibration first, then experiments by name, machines by name,
variants in their definition's order) so identical results give an identical report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

import pandas as pd
from matplotlib.figure import Figure

from harness import analysis, fmt
from harness.analysis import Calibration, ExperimentResult
from harness.experiment import ARTICLE_SECTIONS
from harness.jsonparts import json_object
from harness.metrics import CORE_METRICS, exact_value, get, human_value, kind_of, unit_of
from harness.records import BasePin, ClaimResult, ExperimentDef, RunRecord
from harness.report import plots
from harness.report.article import (
    ARTICLE_COMPARISONS,
    ArticleView,
    build_article_view,
    official_size_text,
    published_official,
)
from harness.report.published import SOURCE as PUBLISHED_SOURCE
from harness.report.published import load_published_history
from harness.verdicts import TrialStatus, Verdict

CV_WARN = 0.10  # pyperf warns when the standard deviation is 10 % of the mean
SCENARIO_ORDER = ["cold", "warm", "edit-source", "edit-deps", "base-bump"]


@dataclass
class PlotSpec:
    name: str  # file stem, unique in the report
    caption: str
    make: Callable[[], Figure]


@dataclass(frozen=True)
class Link:
    text: str
    href: str

    def __str__(self) -> str:
        return self.text


@dataclass
class Table:
    headers: list[str]
    rows: Sequence[Sequence[str | Link]]
    align: list[str] = field(default_factory=list)  # "l" | "r" per column


@dataclass
class Section:
    anchor: str
    machine: str
    experiment: str
    title: str
    verdict: str
    claim: str
    summary: str
    article: str
    reason: str | None
    claims: Table
    not_measured: list[str]
    failures: list[str]
    metrics: Table
    plots: list[PlotSpec]
    waterfall: PlotSpec | None
    probe_findings: list[str]
    deciding: str = ""  # the claim that decided the verdict, with its figure
    also_found: list[str] = field(default_factory=list)  # extension claims: beyond the article
    provenance: list[str] = field(default_factory=list)  # the run that produced this section
    calibration: list[str] = field(default_factory=list)  # that run's own calibration
    cannot_show: str = ""  # what the experiment declares it cannot show (its caveats)


class Trust(TypedDict):
    """How far to trust the rest of the report (`_trust`)."""

    lines: list[str]
    findings: list[str]
    recovery: PlotSpec | None
    noisy: Table | None


class Environment(TypedDict):
    """One machine's environment: its fingerprint, bases and base drift (`_environment`)."""

    machine: str
    run_id: str
    fingerprint: Table
    bases: Table | None
    drift: list[str]
    source: str


class BaseRow(TypedDict, total=False):
    """A base as the environment table shows it (`_bases`): the run's pin, or for older files the
    fingerprint's lab base, with the registry digest and the official size the lab recorded."""

    public: str
    lab_tag: str
    image_id: str | None
    bytes: int | None
    provenance: object
    registry_digest: str | None
    official_compressed_bytes: object


@dataclass
class Report:
    title: str
    machines: list[str]
    runs: Table
    notes: list[str]
    trust: Trust
    claims: Table
    forest: PlotSpec | None
    sections: list[Section]
    environment: list[Environment]
    article: ArticleView[Table] | None = None  # the article's figures beside ours
    pooled: bool = False  # rendered with --pool, and runs that differ were judged together
    rules: list[str] = field(default_factory=lambda: list(RULES))


RULES: list[str] = [
    "Each practice's verdict is decided by the claims the article makes (source *article*); what we check "
    "beyond the article (source *extension*) is listed under *also found* and never changes the verdict. "
    "The *deciding claim* is the first that failed, else the first inconclusive one, else the primary claim.",
    "Ratio claims (*lower*/*higher*): candidate / baseline of medians with a 95 % bootstrap interval; "
    "supported when the whole interval is on the claimed side of 1, not supported when it is on the other "
    "side (or at 1), inconclusive when it contains 1. A time ratio needs at least 5 trials per variant.",
    "Delta claims (calibration): the difference of medians with its 95 % bootstrap interval (interleaved "
    "rounds resampled as pairs), supported when the whole interval lies within the expected value ± tolerance; "
    "bounds are printed at the tolerance's precision.",
    "Flags, sizes and counts (absolute checks) hold only when every trial holds (k = n): a flag true in 4 of "
    "5 trials fails `== yes`, one leaking trial is a leak.",
    "Time thresholds are judged on the 95 % interval of the median (the range of the trials below 6 trials) "
    "and need at least 2 trials.",
    "Preconditions state what must be true for a test to mean anything (a stall that really happens, a "
    "shaped network); when one fails the verdict is *inconclusive: precondition not met*, never *not supported*.",
    "p-values are exact Mann-Whitney (an exact permutation test when values tie), for times only. Sizes, counts "
    "and flags are exact: a comparison of them is stated as exact (every trial gave one value) or as the range "
    "every trial allows (when a known nondeterminism, such as timestamps in compressed layers, made them "
    "differ), never with a p-value. The smallest detectable change is the shift a comparison could have "
    "detected (two-sided 5 %, power 80 %) at its n and noise.",
    "A value the experiment's own settings decide (a stop time equal to the stop timeout it sets, the uid its "
    "USER names) is shown *by construction*: its value, no interval, no p-value, and it never decides a verdict.",
    "Time claims are judged only where the run that measured them passed its own calibration (the injected "
    "+1.0 s recovered within ±50 ms); otherwise they are *inconclusive: this run's calibration failed*. An "
    "interrupted run never decides a verdict. Runs that overlap in time or come from another harness commit, "
    "engine or network profile are not judged together unless `imagebench report --pool` asks for it, and "
    "then a banner at the top says what was pooled.",
    "A candidate whose smoke check failed cannot win a size or time claim: *smaller but broken*.",
]


def slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(p.lower() for p in parts)).strip("-")


# --------------------------------------------------------------------------- building


def build_report(
    runs: list[RunRecord], *, n_boot: int = analysis.N_BOOT, seed: int = analysis.SEED, pool: bool = False
) -> Report:
    """The whole report from run dicts (`harness.results.load_runs`), rendering what `analysis.analyze`
    decides. Runs that may not be judged together (`analysis.select_runs`: overlapping in time, another
    harness commit, engine or network profile) are left out and named at the top, unless `pool`, which
    keeps them under a banner."""
    result = analysis.analyze(runs, n_boot=n_boot, seed=seed, pool=pool, comparisons=ARTICLE_COMPARISONS)
    runs, df, experiments = result.runs, result.table, result.experiments
    machines = sorted(result.definitions)
    multi = len(machines) > 1
    steps = analysis.steps_table(runs)
    anchors = {
        (e.machine, e.experiment): slug("exp", e.experiment, *([e.machine] if multi else []))
        for e in experiments
    }
    sections = [_section(e, df, steps, runs, anchors) for e in _ordered(experiments)]
    reported = set(result.chosen.values())
    return Report(
        title="imagebench report",
        machines=machines,
        runs=_runs_table(runs),
        notes=_pooling_notes(result.selection)
        + sorted({str(w) for r in runs if r["run_id"] in reported for w in r.get("warnings") or []}),
        trust=_trust(experiments, df, anchors, multi, result.claims),
        claims=_claims_table(experiments, anchors, multi),
        forest=_forest(result.claims, multi),
        sections=sections,
        environment=[_environment(m, [r for r in runs if r["machine"] == m]) for m in machines],
        article=build_article_view(result, Table),
        pooled=bool(result.selection.pooled),
    )


def _ordered(experiments: list[ExperimentResult]) -> list[ExperimentResult]:
    return sorted(experiments, key=lambda e: (e.section != "calibration", e.experiment, e.machine))


def _variant_order(definition: ExperimentDef) -> list[str]:
    return [v["name"] for v in definition.get("variants", [])]


def _runs_table(runs: list[RunRecord]) -> Table:
    rows: list[list[str | Link]] = []
    for r in runs:
        states: list[str | None] = [t.get("status") for t in r["trials"]]
        rows.append(
            [
                r["machine"],
                r["run_id"],
                str(r.get("status", "")),
                str(r.get("created_at", ""))[:19] + "Z",
                str(states.count(TrialStatus.OK)),
                str(len(states) - states.count(TrialStatus.OK)),
                " ".join(r.get("command") or []),
            ]
        )
    return Table(
        ["machine", "run", "status", "started (UTC)", "ok trials", "other trials", "command"],
        rows,
        ["l", "l", "l", "l", "r", "r", "l"],
    )


# --------------------------------------------------------------------------- top of the report


def verdict_text(v: ExperimentResult) -> str:
    """The verdict with the reason a reader needs next to it (precondition not met ...)."""
    reason = v.reason or ""
    if v.verdict == Verdict.INCONCLUSIVE and reason.startswith("precondition not met"):
        return f"inconclusive: {reason}"
    return v.verdict


def deciding_text(v: ExperimentResult) -> tuple[str, str]:
    """(the deciding claim's label, its figure) for a summary row."""
    d = v.deciding
    if v.verdict == Verdict.NOT_MEASURED:
        return "–", f"not measured: {v.reason}"
    if d is None:
        return "–", v.reason or "no claim stated"
    label = (d.get("label") or d.get("metric") or "") + (
        " (precondition)" if d.get("role") == "precondition" else ""
    )
    if d["verdict"] == Verdict.NOT_MEASURED:
        return label, f"not measured ({d['reason']})"
    reason = d.get("reason") or ""
    shown = reason and d.get("role") != "precondition" and not reason.startswith("interval = range")
    figure = d["figure"] + (f" ({reason})" if shown and reason not in d["figure"] else "")
    return label, figure


def _claims_table(
    experiments: list[ExperimentResult], anchors: Mapping[tuple[str, str], str], multi: bool
) -> Table:
    headers = [
        "practice",
        "verdict",
        "deciding claim",
        "measured (the deciding claim)",
        "the article's figure",
        "also found (our extensions, not in the article)",
        "what it cannot show",
        "all claims (section)",
    ]
    if multi:
        headers.insert(0, "machine")
    rows: list[list[str | Link]] = []
    for v in _ordered(experiments):
        label, figure = deciding_text(v)
        row: list[str | Link] = [
            v.practice,
            verdict_text(v),
            label,
            figure,
            v.article or "–",
            "; ".join(v.also_found) or "–",
            v.cannot_show or "–",
            Link(v.experiment, "#" + anchors[(v.machine, v.experiment)]),
        ]
        rows.append([v.machine, *row] if multi else row)
    return Table(headers, rows)


def _forest(claims: list[ClaimResult], multi: bool) -> PlotSpec | None:
    rows = [c for c in claims if c["kind"] == "ratio"]  # every ratio claim, undefined ones drawn as such
    if not rows:
        return None
    frame = pd.DataFrame(
        [
            {
                "label": (f"[{c['machine']}] " if multi else "")
                + f"{c['experiment']}: {c['candidate']} vs {c['baseline']}, {c['metric']}"
                + (" [ext]" if c.get("source") == "extension" else ""),
                "ratio": c["ratio"],
                "reason": c.get("reason"),
                "low": c["low"],
                "high": c["high"],
                "verdict": c["verdict"],
                "expect": c["expect"],
            }
            for c in sorted(
                rows,
                key=lambda c: (c["experiment"] != "calibration", c["experiment"], c["machine"], c["index"]),
            )
        ]
    )
    return PlotSpec(
        "claims-forest",
        "Every ratio claim: candidate / baseline of medians with its 95 % bootstrap "
        "interval (log scale). Left of 1 = lower, right = higher; colour = verdict; a ratio of 0 sits "
        "at the left edge, an undefined one is written out with its reason; [ext] = our extension.",
        lambda: plots.claims_forest(frame),
    )


def _recovery(claims: list[ClaimResult], multi: bool) -> PlotSpec | None:
    """Calibration: every delta claim's measured effect relative to the injected one, with its tolerance."""
    rows = [c for c in claims if c["kind"] == "delta" and c["delta"] is not None and c["value"]]
    if not rows:
        return None
    frame = pd.DataFrame(
        [
            _recovery_row(c, multi)
            for c in sorted(rows, key=lambda c: (c["experiment"], c["machine"], c["index"]))
        ]
    )
    return PlotSpec(
        "calibration-recovery",
        "Calibration: each injected effect as measured, relative to what was "
        "injected (1 = recovered exactly), with its 95 % bootstrap interval; the grey band is the "
        "claim's tolerance.",
        lambda: plots.recovery(frame),
    )


def _recovery_row(c: ClaimResult, multi: bool) -> dict[str, object]:
    """One delta claim's row of the recovery plot (`_recovery` keeps only those with a delta and a value)."""
    delta, value, low, high = c["delta"] or 0.0, c["value"] or 0.0, c["low"], c["high"]
    return {
        "label": (f"[{c['machine']}] " if multi else "") + (c["label"] or f"{c['metric']} {c['candidate']}"),
        "measured": delta / value,
        "low": (low / value) if low is not None else None,
        "high": (high / value) if high is not None else None,
        "tolerance": (c.get("tolerance_abs") or 0.0) / abs(value),
        "verdict": c["verdict"],
    }


def _trust(
    experiments: list[ExperimentResult],
    df: pd.DataFrame,
    _anchors: Mapping[tuple[str, str], str],
    multi: bool,
    claims: list[ClaimResult],
) -> Trust:
    """How far to trust the rest: the calibration verdicts, build-time noise, exact sizes and the
    recovery of known effects."""
    lines = _calibration_lines(experiments, multi)
    cv = analysis.build_cv(df)
    cv = cv[cv["cv"].notna()]
    noisy = cv[cv["cv"] > CV_WARN]
    if len(cv):
        lines.append(_noise_line(cv, noisy, multi))
    findings = _size_findings(df, multi)
    if len(df):
        lines.append(
            "Sizes are exact: "
            + (
                "every size and count that should be identical across trials was."
                if not findings
                else f"{len(findings)} exact metric(s) varied between trials (a finding, "
                "not noise; listed below)."
            )
        )
    return {
        "lines": lines,
        "findings": findings,
        "recovery": _recovery(claims, multi),
        "noisy": _noisy_table(noisy, multi),
    }


def _calibration_lines(experiments: list[ExperimentResult], multi: bool) -> list[str]:
    """One line per calibration verdict (its tally of injected effects), or a warning that none ran."""
    lines: list[str] = []
    for v in [v for v in _ordered(experiments) if v.section == "calibration"]:
        where = f" on {v.machine}" if multi else ""
        counts: dict[str, int] = {}
        for c in v.claims:
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
        tally = ", ".join(
            f"{n} {verdict}"
            for verdict, n in sorted(
                counts.items(),
                key=lambda kv: (
                    analysis.VERDICT_ORDER.index(kv[0]) if kv[0] in analysis.VERDICT_ORDER else 9,
                    kv[0],
                ),
            )
        )
        lines.append(
            f"Calibration `{v.experiment}`{where}: **{v.verdict}**"
            + (f": of {len(v.claims)} known effects injected, {tally}" if v.claims else "")
            + (
                " (plot below"
                if any(c["kind"] == "delta" and c["delta"] is not None for c in v.claims)
                else " ("
            )
            + ("; " if v.claims else "")
            + "details in its section)."
            + (f" {v.reason}" if v.reason else "")
        )
    if not lines:
        lines.append(
            "No calibration experiment in these results: nothing checks that the harness recovers a "
            "known effect, so read every figure below with that in mind."
        )
    return lines


def _noise_line(cv: pd.DataFrame, noisy: pd.DataFrame, multi: bool) -> str:
    """Build-time noise: the median coefficient of variation, the noisiest cell, how many exceed CV_WARN."""
    worst = cv.sort_values(
        ["cv", "machine", "experiment", "variant", "scenario"],
        ascending=[False] + [True] * 4,
        kind="stable",
    ).iloc[0]
    return (
        f"Build-time noise: the coefficient of variation of `build_seconds` has a median of "
        f"{fmt.human_percent(cv['cv'].median())} over {len(cv)} variant/scenario cells; the noisiest "
        f"is {worst['experiment']} / {worst['variant']} / {worst['scenario']}"
        + (f" on {worst['machine']}" if multi else "")
        + f" at {fmt.human_percent(worst['cv'])}. "
        + (
            f"{len(noisy)} cell(s) exceed {fmt.human_percent(CV_WARN)}: treat small time differences "
            "there as noise."
            if len(noisy)
            else f"No cell exceeds {fmt.human_percent(CV_WARN)}."
        )
    )


def _size_findings(df: pd.DataFrame, multi: bool) -> list[str]:
    """One line per exact metric that took more than one value across the trials of a cell."""
    return [
        f"{r['experiment']} / {r['variant']} / {r['scenario']}"
        + (f" on {r['machine']}" if multi else "")
        + f": `{r['metric']}` took {r['distinct']} different values over {r['n']} trials "
        f"({exact_value(r['metric'], r['min'])} to {exact_value(r['metric'], r['max'])})"
        for _, r in analysis.size_consistency(df).iterrows()
    ]


def _noisy_table(noisy: pd.DataFrame, multi: bool) -> Table | None:
    """The cells whose build-time CV exceeds CV_WARN (None when there are none)."""
    rows: list[list[str | Link]] = [
        [
            *([r["machine"]] if multi else []),
            r["experiment"],
            r["variant"],
            r["scenario"],
            str(r["n"]),
            fmt.human_seconds(r["median"]),
            fmt.human_percent(r["cv"]),
        ]
        for _, r in noisy.sort_values(["machine", "experiment", "variant", "scenario"]).iterrows()
    ]
    headers = [
        *(["machine"] if multi else []),
        "experiment",
        "variant",
        "scenario",
        "n",
        "median build",
        "CV",
    ]
    return Table(headers, rows, ["l"] * (len(headers) - 3) + ["r", "r", "r"]) if rows else None


# --------------------------------------------------------------------------- one experiment


def _section(
    v: ExperimentResult,
    df: pd.DataFrame,
    steps: pd.DataFrame,
    runs: list[RunRecord],
    anchors: Mapping[tuple[str, str], str],
) -> Section:
    machine, name, definition = v.machine, v.experiment, v.definition
    edf = df[(df["machine"] == machine) & (df["experiment"] == name)]
    order = _variant_order(definition)
    run_defs = v.run.get("experiments") if v.run else None
    own = (run_defs or {}).get(name) or definition  # the reported run's own notes
    not_measured = [f"{k}: {r}" for k, r in sorted((own.get("not_measured") or {}).items())]
    measured_variants = set(edf["variant"])
    for variant in order:
        if variant not in measured_variants and variant not in (own.get("not_measured") or {}):
            not_measured.append(f"{variant}: no successful trial")
    failures: list[str] = []
    if v.failed_trials:
        failures.append(f"{v.failed_trials} trial(s) failed: {v.reason}")
    stem = slug(machine, name)
    plot_specs = [_metric_plot(edf, metric, order, stem) for metric in _metrics_to_plot(definition, v, edf)]
    return Section(
        anchor=anchors[(machine, name)],
        machine=machine,
        experiment=name,
        title=f"{definition.get('practice', name)} ({name})",
        verdict=v.verdict,
        claim=definition.get("claim", ""),
        summary=definition.get("summary", ""),
        article=definition.get("article", ""),
        reason=v.reason,
        claims=_section_claims(v.claims + v.preconditions),
        not_measured=not_measured,
        failures=failures,
        metrics=_metrics_table(edf, order),
        plots=plot_specs,
        waterfall=_waterfall(v, definition, edf, steps, stem),
        probe_findings=_probe_findings(runs, machine, name, order),
        deciding=": ".join(x for x in deciding_text(v) if x and x != "–"),
        also_found=list(v.also_found),
        provenance=_provenance(v),
        calibration=_calibration_text(v.calibration) if v.calibration is not None else [],
        cannot_show=str(definition.get("cannot_show") or ""),
    )


def _section_claims(claims: list[ClaimResult]) -> Table:
    rows: list[list[str | Link]] = []
    for c in claims:
        role = "precondition" if c.get("role") == "precondition" else c.get("source") or "article"
        if c.get("article_section") and role != "precondition":
            title = ARTICLE_SECTIONS.get(str(c["article_section"]))
            role += f" ({c['article_section']}{': ' + title if title else ''})"
            if c.get("article_figure"):
                role += f"; the article's figure: {c['article_figure']}"
        if "baseline" not in c:  # a run-level precondition (the network profile)
            rows.append([c["label"], c["metric"], "–", c["figure"], "–", "–", role, c["verdict"]])
            continue
        if c["kind"] == "ratio":
            what = f"{c['candidate']} vs {c['baseline']}: expect {c['expect']}"
        elif c["kind"] == "delta":
            what = f"{c['candidate']} − {c['baseline']}: expect a difference"
        else:
            what = f"{c['variant']}: {c['op']} {human_value(c['metric'], c['value'] or 0.0)}"
        measured = c["figure"] if c["verdict"] != Verdict.NOT_MEASURED else f"not measured ({c['reason']})"
        reason = c.get("reason")
        if (
            reason
            and c["verdict"] != Verdict.NOT_MEASURED
            and reason not in measured
            and not reason.startswith("interval = range")
        ):
            measured += f" ({reason})"
        mde = "–"
        c_mde = c.get("mde")
        if c_mde is not None:
            base = abs(c.get("baseline_median") or 0)
            mde = human_value(c["metric"], c_mde) + (
                f" ({fmt.human_percent(c_mde / base)})" if c["kind"] == "ratio" and base else ""
            )
        p = c.get("p")
        rows.append(
            [
                c["label"] or "–",
                f"{c['metric']} ({c['scenario']})",
                what,
                measured,
                fmt.human_pvalue(p) if c["kind"] != "check" and p is not None else "–",
                mde,
                role,
                c["verdict"],
            ]
        )
    return Table(
        [
            "claim",
            "metric (scenario)",
            "comparison",
            "measured (95 % interval)",
            "p (Mann-Whitney, exact)",
            "smallest detectable change",
            "source",
            "verdict",
        ],
        rows,
    )


def _calibration_text(cal: Calibration) -> list[str]:
    """The calibration of the run behind a section (`analysis.run_calibration`) as lines."""
    rid = cal["run_id"]
    if cal["passed"] is None:
        return [
            f"Run {rid} carried no calibration: its times are not checked against a known effect, "
            "so its time claims are inconclusive."
        ]
    verdict = "passed" if cal["passed"] else "failed: this section's time claims are inconclusive"
    head = f"Calibration of run {rid} (the run that produced this section) {verdict}:"
    return [head, *(f"{c['figure']}: {c['verdict']}" for c in cal["claims"])]


def _pooling_notes(selection: analysis.RunSelection) -> list[str]:
    """What the report left out, or pooled because it was asked to, as notes at its top."""
    notes = [
        f"Run {rid} left out: {why}. It is not pooled with the newer runs; "
        "`imagebench report --pool` judges them together under a banner."
        for rid, why in selection.left_out
    ]
    if selection.pooled:
        notes.insert(
            0,
            "POOLED (--pool): this report judges together runs that differ: "
            + "; ".join(f"run {rid}: {why}" for rid, why in selection.pooled)
            + ". Read its verdicts with that in mind.",
        )
    return notes


def _provenance(v: ExperimentResult) -> list[str]:
    """Run id, harness commit and dirty flag, network profile and bases of the run behind a section."""
    run, name, prof = v.run, v.experiment, v.network
    if run is None:
        return []
    h = json_object(json_object(run.get("fingerprint")).get("harness"))
    dirty = h.get("git_dirty")
    net = prof.get("name") or "unknown"
    measured_bps = prof.get("measured_bps")
    if measured_bps:
        net += f" (measured {fmt.sig(measured_bps / 1e6, 3)} Mbit/s)"
    bases: dict[str, set[str]] = {}
    for t in run.get("trials") or []:
        if t.get("experiment") == name:
            for public, image_id in (t.get("bases") or {}).items():
                bases.setdefault(public, set()).add(str(image_id))
    base_text = ", ".join(
        f"{k} = {', '.join(fmt.short_digest(i, 16) for i in sorted(v))}" for k, v in sorted(bases.items())
    )
    return [
        f"Run {run['run_id']} · harness {str(h.get('git_commit') or 'unknown')[:12]}"
        + (" (dirty tree: uncommitted changes)" if dirty else " (clean tree)" if dirty is False else "")
        + f" · network profile {net}"
        + (f" · bases {base_text}" if base_text else "")
        + f" · command `{' '.join(run.get('command') or [])}`"
    ]


def _metrics_to_plot(definition: ExperimentDef, v: ExperimentResult, edf: pd.DataFrame) -> list[str]:
    present = set(edf["metric"])
    wanted = [c["metric"] for c in v.claims] + list(definition.get("metrics") or [])
    if not definition.get("metrics"):
        wanted += ["build_seconds", "image_bytes_compressed", "image_bytes"]
    wanted += sorted(m for m in present if m not in CORE_METRICS)  # probe metrics, where present
    return [m for m in dict.fromkeys(wanted) if m in present]


def _metric_plot(edf: pd.DataFrame, metric: str, order: list[str], stem: str) -> PlotSpec:
    data = edf[edf["metric"] == metric].reset_index(drop=True)
    meaning = m.meaning if (m := get(metric)) else metric
    unit = unit_of(metric) or "value"
    if kind_of(metric) == "flag":
        caption = f"`{metric}`: {meaning}; share of trials where it was 1 (n on each bar)."
    else:
        caption = (
            f"`{metric}` ({unit}): {meaning}. One dot per trial, bar = median, band = interquartile range."
        )
    return PlotSpec(
        f"{stem}--{slug(metric)}", caption, lambda: plots.metric_figure(data, metric, order=order)
    )


def _metrics_table(edf: pd.DataFrame, order: list[str]) -> Table:
    table = analysis.summary_table(edf)
    rank = {v: i for i, v in enumerate(order)}
    table = table.assign(
        _v=table["variant"].map(lambda x: rank.get(x, len(rank))),
        _s=table["scenario"].map(lambda s: SCENARIO_ORDER.index(s) if s in SCENARIO_ORDER else 99),
    )
    table = table.sort_values(["metric", "_s", "_v", "variant"], kind="stable")
    rows: list[list[str | Link]] = []
    for _, r in table.iterrows():
        m = r["metric"]
        spread = (
            "0"
            if r["iqr"] == 0
            else human_value(m, r["iqr"])
            if unit_of(m) in ("B", "s")
            else fmt.sig(r["iqr"])
        )
        rows.append(
            [
                m,
                r["scenario"],
                r["variant"],
                str(int(r["n"])),
                human_value(m, r["median"]),
                spread,
                f"{human_value(m, r['min'])} – {human_value(m, r['max'])}",
                fmt.human_percent(r["cv"]) if r["cv"] is not None and r["cv"] == r["cv"] else "–",
            ]
        )
    return Table(
        ["metric", "scenario", "variant", "n", "median", "IQR", "min – max", "CV"],
        rows,
        ["l", "l", "l", "r", "r", "r", "r", "r"],
    )


def _waterfall(
    v: ExperimentResult, definition: ExperimentDef, edf: pd.DataFrame, steps: pd.DataFrame, stem: str
) -> PlotSpec | None:
    machine, name = v.machine, v.experiment
    mine = steps[(steps["machine"] == machine) & (steps["experiment"] == name)]
    if mine.empty:
        return None
    p = v.primary
    scenarios = _ordered_scenarios(set(mine["scenario"]))
    scenario = p["scenario"] if p and p["scenario"] in scenarios else scenarios[0]
    with_steps = set(mine.loc[mine["scenario"] == scenario, "variant"])
    variants = [p["baseline"] or "", p["candidate"] or ""] if p and p["kind"] in ("ratio", "delta") else []
    if not with_steps & set(variants):  # the claimed pair was not measured: show what was
        variants = [v for v in _variant_order(definition) if v in with_steps][:4]
    time_metric = "build_span_seconds" if "build_span_seconds" in set(edf["metric"]) else "build_seconds"
    chosen: list[pd.DataFrame] = []
    for variant in variants:
        rep = analysis.representative_trial(edf, machine, name, variant, scenario, time_metric)
        if rep is None:
            continue
        run_id, trial = rep
        rows = mine[
            (mine["run_id"] == run_id)
            & (mine["variant"] == variant)
            & (mine["scenario"] == scenario)
            & (mine["trial"] == trial)
        ]
        if len(rows):
            chosen.append(rows)
    if not chosen:
        return None
    data = pd.concat(chosen, ignore_index=True)
    order = [x for x in variants if x in set(data["variant"])]
    caption = (
        f"Build waterfall, scenario `{scenario}`: each bar is a Dockerfile step from its start to its end "
        f"(s since the build's first step), for the trial with the median `{time_metric}` of each variant. "
        "Solid orange = executed, grey hatched = cached."
    )
    return PlotSpec(
        f"{stem}--waterfall-{slug(scenario)}", caption, lambda: plots.waterfall(data, order=order)
    )


def _ordered_scenarios(present: set[str]) -> list[str]:
    return [s for s in SCENARIO_ORDER if s in present] + sorted(present - set(SCENARIO_ORDER))


def _probe_findings(runs: list[RunRecord], machine: str, name: str, order: list[str]) -> list[str]:
    """Non-numeric probe findings, one line per variant and probe (first ok trial of the latest run)."""
    seen: dict[tuple[str, str], str] = {}
    for run in sorted((r for r in runs if r["machine"] == machine), key=lambda r: r["run_id"], reverse=True):
        for t in sorted(run["trials"], key=lambda t: (t["variant"], t["scenario"], int(t["trial"]))):
            if t["experiment"] != name or t.get("status") != TrialStatus.OK.value:
                continue
            for probe, data in sorted((t.get("probe_data") or {}).items()):
                key = (t["variant"], probe)
                if key not in seen and data:
                    text = json.dumps(data, sort_keys=True, default=str)
                    seen[key] = text if len(text) <= 300 else text[:299] + "…"
        if seen:
            break
    rank = {v: i for i, v in enumerate(order)}
    return [
        f"{v} · {p}: {txt}"
        for (v, p), txt in sorted(seen.items(), key=lambda kv: (rank.get(kv[0][0], 99), kv[0]))
    ]


# --------------------------------------------------------------------------- environment


_SKIP_KEYS = {"packages", "requested_packages"}  # long lists: in the run file, not in the report


def _flatten(d: object, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(d, dict):
        for k in sorted(d, key=str):
            if k in _SKIP_KEYS:
                continue
            out += _flatten(d[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        for i, x in enumerate(d):
            out += _flatten(x, f"{prefix}[{i}]")
    else:
        text = d if isinstance(d, str) else json.dumps(d, sort_keys=True, default=str)
        out.append((prefix, text if len(text) <= 160 else text[:159] + "…"))
    return out


def _provenance_text(p: object) -> str:
    """One line from a base's provenance (a dict as the lab records it, or already a string)."""
    if not p:
        return "–"
    if isinstance(p, str):
        return p
    if not isinstance(p, dict):
        return str(p)
    if p.get("stands_in_for"):
        bits = [f"lab stand-in for {p['stands_in_for']}"]
        if p.get("built_with"):
            bits.append(str(p["built_with"]))
        if p.get("debian_suite"):
            bits.append(f"Debian {p['debian_suite']}" + (f" ({p['variant']})" if p.get("variant") else ""))
        if p.get("package_count"):
            bits.append(f"{p['package_count']} packages")
        return ", ".join(bits)
    return ": ".join(str(p[k]) for k in ("source", "note") if p.get(k)) or json.dumps(p, sort_keys=True)


def _bases(run: RunRecord) -> list[BaseRow]:
    """The run's bases as {public, lab_tag, image_id, bytes, provenance, registry_digest, official_compressed_bytes}:
    from the pinned `bases` (public name -> pin) or, for older files, the fingerprint's lab bases."""
    lab = json_object(json_object(run.get("fingerprint")).get("lab"))
    lab_bases: Any = lab.get("bases") or {}  # a list or an object in older files: read as found
    by_tag = lab_bases if isinstance(lab_bases, dict) else {b.get("lab_tag"): b for b in lab_bases if b}
    pins: Mapping[str, BasePin] = run.get("bases") or {}
    items: list[Mapping[str, Any]]
    if isinstance(pins, dict) and pins:
        items = [{"public": k, **v} for k, v in pins.items() if isinstance(v, dict)]
    elif isinstance(lab_bases, list):
        items = [dict(b) for b in lab_bases if isinstance(b, dict)]
    else:
        items = [
            {"public": v.get("stands_in_for") or k, "lab_tag": k, **v}
            for k, v in lab_bases.items()
            if isinstance(v, dict)
        ]
    out: list[BaseRow] = []
    for b in items:
        extra = by_tag.get(b.get("lab_tag")) or {}
        prov = b.get("provenance")
        row = {
            **b,
            "registry_digest": b.get("registry_digest") or extra.get("registry_digest"),
            "official_compressed_bytes": (prov or {}).get("official_compressed_bytes")
            if isinstance(prov, dict)
            else None,
        }
        out.append(cast(BaseRow, row))  # the run file's JSON as harness.results validated it
    return sorted(out, key=lambda b: str(b.get("public", "")))


def _environment(machine: str, runs: list[RunRecord]) -> Environment:
    run = max(runs, key=lambda r: r["run_id"])
    fp = dict(json_object(run.get("fingerprint")))
    lab = dict(json_object(fp.get("lab")))
    lab.pop("bases", None)
    fp["lab"] = lab
    rows: list[list[str | Link]] = [[k, v] for k, v in _flatten(fp) if k]
    ident: Mapping[str, Any] = run.get("machine_identity") or {}
    if ident:  # host name and the hash that keeps two hosts of the same name apart
        rows[:0] = [
            [f"machine.{k}", ", ".join(ident[k]) if isinstance(ident[k], list) else ident[k]]
            for k in ("role", "host", "hash", "sources")
            if ident.get(k)
        ]
    bases = _bases(run)
    history = load_published_history()
    base_rows: list[list[str | Link]] = []
    for b in bases:
        # one source for an official size in every table of the report: the published data
        pub = published_official(str(b.get("public", "")), history)
        base_rows.append(
            [
                str(b.get("public", "–")),
                str(b.get("lab_tag") or "–"),
                _provenance_text(b.get("provenance")),
                fmt.short_digest(b.get("image_id"), 16),
                fmt.short_digest(b.get("registry_digest"), 16),
                fmt.human_bytes(b["bytes"]) if b.get("bytes") else "–",
                official_size_text(pub),
                fmt.short_digest(pub["manifest_digest"], 16) if pub else "–",
            ]
        )
    return {
        "machine": machine,
        "run_id": run["run_id"],
        "fingerprint": Table(["key", "value"], rows),
        "bases": Table(
            [
                "public image",
                "lab tag",
                "provenance",
                "image id (lab)",
                "lab registry digest",
                "lab size (uncompressed)",
                "official size (compressed, published)",
                "official amd64 digest",
            ],
            base_rows,
        )
        if base_rows
        else None,
        "drift": _base_drift(runs, bases),
        "source": PUBLISHED_SOURCE,
    }


def _base_drift(runs: list[RunRecord], bases: list[BaseRow]) -> list[str]:
    """Base image ids that trials recorded but the run's fingerprint did not pin (a moving base)."""
    pinned = {str(b.get("public")): b.get("image_id") for b in bases}
    seen: dict[str, set[str]] = {}
    for run in runs:
        for t in run["trials"]:
            for public, image_id in (t.get("bases") or {}).items():
                seen.setdefault(public, set()).add(str(image_id))
    out: list[str] = []
    for public in sorted(seen):
        ids = seen[public]
        if len(ids) > 1 or (public in pinned and pinned[public] and ids != {pinned[public]}):
            out.append(
                f"{public}: trials used {len(ids)} image id(s) "
                f"({', '.join(fmt.short_digest(i, 12) for i in sorted(ids))}); pinned "
                f"{fmt.short_digest(pinned.get(public), 12)}"
            )
    return out
