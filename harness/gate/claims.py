"""The gate's checks of claims: every claim judged on each side by `harness.analysis.analyze` (on the
side's compared rows, without the report's calibration rule); a supported claim that is lost fails.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from harness.analysis import NOT_MEASURED, analyze
from harness.gate.result import Check, Side
from harness.records import ClaimResult

ClaimId: TypeAlias = tuple[
    str, str, str, str, str | None, str | None, str | None, str | None, float | None, str | None
]
"""A claim as both sides know it: machine, experiment, metric, scenario, baseline, candidate, variant,
op, value, expect."""


def _claim_id(c: ClaimResult) -> ClaimId:
    return (
        c["machine"],
        c["experiment"],
        c["metric"],
        c["scenario"],
        c.get("baseline"),
        c.get("candidate"),
        c.get("variant"),
        c.get("op"),
        c.get("value"),
        c.get("expect"),
    )


def _claim_name(c: ClaimResult) -> str:
    label = c.get("label")
    if label:
        return label
    if c.get("expect"):
        return f"{c['metric']}: {c['candidate']} {c['expect']} than {c['baseline']} ({c['scenario']})"
    return f"{c['metric']} of {c.get('variant')} {c.get('op')} {c.get('value')} ({c['scenario']})"


def verdict_checks(baseline: Side, current: Side, *, n_boot: int, seed: int, notes: list[str]) -> list[Check]:
    """Every claim judged on both sides (the analysis of each side's compared rows, without the
    report's calibration rule): a supported claim that is no longer supported (or no longer measured
    although its experiment ran) fails; other moves are improvements or changes."""
    if not any(d.get("claims") for d in list(baseline[2].values()) + list(current[2].values())):
        return []
    judged = [
        analyze(runs, table=df, definitions=defs, n_boot=n_boot, seed=seed).claims
        for runs, df, defs in (baseline, current)
    ]
    before = {_claim_id(c): c for c in judged[0]}
    after = {_claim_id(c): c for c in judged[1]}
    out = []
    for cid in sorted(before, key=str):
        b = before[cid]
        a = after.get(cid)
        if b["verdict"] == NOT_MEASURED:
            continue
        if a is None or a["verdict"] == NOT_MEASURED:
            missing = _missing_claim(b, a, b["experiment"] in set(current[1]["experiment"]), notes)
            out += [missing] if missing else []
            continue
        out.append(_verdict_check(b, a))
    return out


def _claim_check(c: ClaimResult, **fields: Any) -> Check:
    """A verdict check on claim `c` (its machine, experiment, candidate, scenario and metric)."""
    return Check(
        kind="verdict",
        machine=c["machine"],
        experiment=c["experiment"],
        variant=c.get("candidate") or c.get("variant") or "",
        scenario=c["scenario"],
        metric=c["metric"],
        **fields,
    )


def _missing_claim(
    b: ClaimResult, a: ClaimResult | None, measured_now: bool, notes: list[str]
) -> Check | None:
    """A claim the current results do not measure: a failure when it was supported and its experiment
    ran, else a note (nothing when the experiment did not run at all)."""
    if measured_now and b["verdict"] == "supported":
        return _claim_check(
            b,
            status="fail",
            baseline=b["verdict"],
            current=NOT_MEASURED,
            message=f"{b['experiment']}: {_claim_name(b)}: supported → missing from the "
            "current results (the experiment ran, this claim's cells did not)",
        )
    if measured_now or a is not None:
        notes.append(f"claim not measured in the current results: {b['experiment']}: {_claim_name(b)}")
    return None


def _verdict_check(b: ClaimResult, a: ClaimResult) -> Check:
    """A claim measured on both sides: pass when its verdict held, fail when it lost "supported"."""
    if a["verdict"] == b["verdict"]:
        status = "pass"
    elif b["verdict"] == "supported":
        status = "fail"
    elif a["verdict"] == "supported":
        status = "improved"
    else:
        status = "changed"
    return _claim_check(
        a,
        status=status,
        baseline=b["verdict"],
        current=a["verdict"],
        ratio=a.get("ratio"),
        low=a.get("low"),
        high=a.get("high"),
        p_value=a.get("p"),
        n_baseline=int(a.get("n_baseline") or 0),
        n_current=int(a.get("n_candidate") or 0),
        message=f"{a['experiment']}: {_claim_name(a)}: {b['verdict']} → {a['verdict']} ({a.get('figure', '')})",
    )
