"""Whole-image sizes split into the base's part and ours: a base rebuilt under us is drift, reported
with the base image ids before and after, never failed; our own layers are gated (`checks`).
"""

from __future__ import annotations

from harness import fmt
from harness.gate.result import ATTRIBUTED, Bases, Cell, Check, Groups, Key, Values, median


def _ids_text(ids: list[str]) -> str:
    return ", ".join(fmt.short_digest(i) for i in ids) or "unknown"


def _base_move(cell: Cell, bases: Bases) -> str:
    def ids(side: str) -> list[str]:
        table = bases.get(side) or {}
        if cell in table:
            return table[cell]
        return sorted({i for k, v in table.items() if k[1:] == cell[1:] for i in v})

    b, c = ids("baseline"), ids("current")
    if not b and not c:
        return "base ids not recorded"
    if b == c:
        return f"same base {_ids_text(b)}"
    return f"base {_ids_text(b)} -> {_ids_text(c)}"


def attributed_check(key: Key, base_groups: Groups, cur_groups: Groups, bases: Bases) -> Check:
    """A whole-image size split into the base's change (drift) and our layers' change (gated separately)."""
    machine, experiment, variant, scenario, metric = key
    cell = key[:4]
    own = ATTRIBUTED[metric]
    mb, mc = median(base_groups[key]), median(cur_groups[key])
    ob, oc = median(base_groups[(*cell, own)]), median(cur_groups[(*cell, own)])
    own_delta = oc - ob
    base_delta = (mc - mb) - own_delta
    kind = "compressed " if metric.endswith("compressed") else ""
    if base_delta:
        base_text = (
            f"the base grew by {fmt.signed_bytes(base_delta)[1:]}"
            if base_delta > 0
            else (f"the base shrank by {fmt.signed_bytes(base_delta)[1:]}")
        )
    else:
        base_text = "the base did not change size"
    own_text = (
        f"our layers grew by {fmt.signed_bytes(own_delta)[1:]}"
        if own_delta > 0
        else f"our layers shrank by {fmt.signed_bytes(own_delta)[1:]}"
        if own_delta < 0
        else "our layers did not change size"
    )
    msg = (
        f"{variant} ({experiment}, {scenario}): {kind}image {fmt.signed_bytes(mc - mb)}: {base_text} "
        f"({_base_move(cell, bases)}); {own_text} (gated as {own})"
    )
    return Check(
        kind="attributed",
        machine=machine,
        experiment=experiment,
        variant=variant,
        scenario=scenario,
        metric=metric,
        status="changed" if base_delta else "pass",
        baseline=mb,
        current=mc,
        delta=mc - mb,
        pct=(100.0 * (mc - mb) / mb) if mb else None,
        n_baseline=len(base_groups[key]),
        n_current=len(cur_groups[key]),
        message=msg,
    )


def base_check(key: Key, b: Values, c: Values, bases: Bases) -> Check:
    """The base's bytes: a change is drift, reported with the base digests, never a failure."""
    machine, experiment, variant, scenario, metric = key
    mb, mc = median(b), median(c)
    delta = mc - mb
    what = "compressed bytes" if metric.endswith("compressed") else "bytes"
    msg = f"{variant} ({experiment}, {scenario}): base {what} {fmt.signed_bytes(delta)} ({_base_move(key[:4], bases)})"
    return Check(
        kind="base",
        machine=machine,
        experiment=experiment,
        variant=variant,
        scenario=scenario,
        metric=metric,
        status="changed" if delta else "pass",
        baseline=mb,
        current=mc,
        delta=delta,
        pct=(100.0 * delta / mb) if mb else None,
        n_baseline=len(b),
        n_current=len(c),
        message=msg + (": drift, not a regression" if delta else ""),
    )
