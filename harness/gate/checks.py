"""The gate's checks of measured values, one per machine x experiment x variant x scenario x metric
measured on both sides: sizes (own layers, the base's part said as drift, known nondeterminism),
layer counts, exact metrics and times (see `harness.gate` for the rules).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from harness import fmt, stats
from harness.gate.attribution import attributed_check, base_check
from harness.gate.inputs import spread
from harness.gate.result import (
    ATTRIBUTED,
    BASE_METRICS,
    KEY,
    LAYER_METRICS,
    Allowance,
    Allowances,
    Cell,
    Check,
    GateResult,
    Groups,
    Key,
    Limits,
    Values,
    Where,
    median,
)
from harness.metrics import human_value, kind_of, unit_of

if TYPE_CHECKING:
    import pandas as pd


def mark_changed_inputs(result: GateResult, changed: dict[str, str]) -> None:
    """A size or layer growth in an experiment whose package inputs changed is said, not failed."""
    for check in result.checks:
        if check.status == "fail" and check.kind in ("size", "layers") and check.experiment in changed:
            check.status = "inputs-changed"
            check.message += (
                f"; inputs changed, not a regression of the same inputs: {changed[check.experiment]}"
            )
    if changed:
        result.notes.append(
            f"inputs changed for {len(changed)} experiment(s) ({', '.join(changed)}): the lab index's "
            "package cutoff differs between the sides; their size growth is reported, not failed"
        )


def groups(df: pd.DataFrame) -> Groups:
    """{(machine, experiment, variant, scenario, metric): values} of a tidy table."""
    if df.empty:
        return {}
    return {_key(k): g["value"].to_numpy() for k, g in df.groupby(KEY, sort=True)}


def _key(k: tuple[Hashable, ...]) -> Key:
    """A group key of `KEY`'s five text columns as the tuple it is."""
    machine, experiment, variant, scenario, metric = (str(x) for x in k)
    return (machine, experiment, variant, scenario, metric)


def metric_check(
    key: Key,
    base_groups: Groups,
    cur_groups: Groups,
    result: GateResult,
    *,
    limits: Limits,
    allowances: Allowances,
    conf: float,
    n_boot: int,
    seed: int,
    whole_image: bool,
    across_machines: bool,
) -> Check | None:
    """The check of one metric cell present on both sides (None when it is not gated here): whole
    sizes attributed to own layers, base metrics as base changes, the rest compared."""
    cell = key[:4]
    if key[4] in ATTRIBUTED and not whole_image:
        own = ATTRIBUTED[key[4]]
        if (*cell, own) in base_groups and (*cell, own) in cur_groups:
            return attributed_check(key, base_groups, cur_groups, result.bases)
    if (
        key[4] == "layers"
        and not whole_image
        and (*cell, "own_layers") in base_groups
        and (*cell, "own_layers") in cur_groups
    ):
        return None  # our layers are gated as own_layers; the base's count is the base's business
    if key[4] in BASE_METRICS.values():
        return base_check(key, base_groups[key], cur_groups[key], result.bases)
    if across_machines and kind_of(key[4]) == "time":
        return None
    return _compare(
        key,
        base_groups[key],
        cur_groups[key],
        **limits,
        declared=_larger(
            allowances.get((key[1], key[2], key[4])), _same_content_allowance(key, base_groups, cur_groups)
        ),
        conf=conf,
        n_boot=n_boot,
        seed=seed,
        notes=result.notes,
    )


#: how far a compressed size may move when the uncompressed bytes are the same to the byte on both
#: sides: equal-sized content that differs only in what builds cannot pin (timestamps, generated file
#: contents) compresses a few bytes differently (observed: 1-17 B on 2.7-186 MB); a real growth of the
#: transfer size at an unchanged uncompressed size (less compressible content) is far larger
SAME_CONTENT_REL = 0.001


def _same_content_allowance(key: Key, base_groups: Groups, cur_groups: Groups) -> Allowance | None:
    """(bytes, why) a `*_compressed` size may move when its uncompressed size is one value in every
    baseline and current trial; None otherwise."""
    metric = key[4]
    if not metric.endswith("_compressed"):
        return None
    plain = (*key[:4], metric.removesuffix("_compressed"))
    if plain not in base_groups or plain not in cur_groups:
        return None
    values = {float(v) for v in base_groups[plain]} | {float(v) for v in cur_groups[plain]}
    if len(values) != 1 or not len(base_groups[key]):
        return None
    allowed = SAME_CONTENT_REL * median(base_groups[key])
    why = (
        f"the uncompressed {plain[4]} is {int(values.pop()):,} B in every trial on both sides, so only the "
        f"compression of equal-sized content moved (allowed {SAME_CONTENT_REL:.1%} of the compressed size)"
    )
    return allowed, why


def _larger(a: Allowance | None, b: Allowance | None) -> Allowance | None:
    """The larger of two (bytes, why) allowances (either may be None)."""
    if a is None or b is None:
        return a or b
    return a if a[0] >= b[0] else b


def _compare(
    key: Key,
    b: Values,
    c: Values,
    *,
    size_bytes: int,
    size_pct: float | None,
    layers: int,
    time_ratio: float,
    conf: float,
    n_boot: int,
    seed: int,
    notes: list[str],
    declared: Allowance | None = None,
) -> Check | None:
    """One metric cell, baseline values `b` against current `c`: exact metrics (sizes, layer counts,
    other exact values) and times are judged; counts, flags and rates are left to the report."""
    machine, experiment, variant, scenario, metric = key
    base: Where = {
        "machine": machine,
        "experiment": experiment,
        "variant": variant,
        "scenario": scenario,
        "metric": metric,
        "n_baseline": len(b),
        "n_current": len(c),
    }
    kind = kind_of(metric)
    if kind == "exact":
        _note_spread(b, c, f"{experiment}/{variant}/{scenario}", metric, notes)
        if unit_of(metric) == "B":
            known = _known_nondeterminism(b, c, declared)
            return _size_check(base, median(b), median(c), known, size_bytes, size_pct)
        if metric in LAYER_METRICS:
            return _layers_check(base, median(b), median(c), layers)
        return _exact_check(base, median(b), median(c))
    if kind == "time":
        return _time_check(base, b, c, time_ratio=time_ratio, conf=conf, n_boot=n_boot, seed=seed)
    return None  # counts, flags, rates: described by the report, not gated


def _head(base: Where) -> str:
    return f"{base['variant']} ({base['experiment']}, {base['scenario']})"


def _note_spread(b: Values, c: Values, where: str, metric: str, notes: list[str]) -> None:
    """An exact metric that differs between one side's trials is noted (and compared by the median)."""
    for side, values in (("baseline", b), ("current", c)):
        if len(set(values.tolist())) > 1:
            notes.append(
                f"{where}: {metric} differs between {side} trials "
                f"({human_value(metric, min(values))} – {human_value(metric, max(values))}); "
                "compared by the median"
            )


def _known_nondeterminism(b: Values, c: Values, declared: Allowance | None) -> Allowance:
    """(bytes, why) a size may move without it being a regression: the larger of the experiment's
    declared allowance and the spread between one side's own trials (harness/gate/inputs.py)."""
    sb, sc = spread(b), spread(c)
    known: Allowance = (0.0, "")
    if sb or sc:
        which = "baseline" if sb >= sc else "current"
        known = (max(sb, sc), f"the {which} trials' own spread ({int(max(sb, sc)):,} B)")
    if declared and declared[0] > known[0]:
        known = declared
    return known


def _size_check(
    base: Where,
    mb: float,
    mc: float,
    known: Allowance,
    size_bytes: int,
    size_pct: float | None,
) -> Check:
    """An exact size: fails when it grew by more than the allowance plus its known nondeterminism
    (`known`: bytes and why). Growth past the allowance but within the known nondeterminism is
    "nondeterministic": said, not failed."""
    metric = base["metric"]
    noise, why = known
    delta = mc - mb
    pct = (100.0 * delta / mb) if mb else None
    over_pct = size_pct is None or pct is None or pct > size_pct
    if delta > size_bytes + noise and over_pct:
        status = "fail"
    elif delta > size_bytes and over_pct:
        status = "nondeterministic"
    else:
        status = "improved" if delta < -noise else "pass"
    limit = fmt.size_limit(size_bytes, size_pct)
    msg = (
        f"{_head(base)}: {metric} {human_value(metric, mb)} → "
        f"{human_value(metric, mc)} ({int(delta):+,} B"
        + (f", {fmt.signed_percent(pct)}" if pct is not None else "")
        + ")"
    )
    if status == "fail":
        msg += f": grew by more than {limit}" + (f" plus its known nondeterminism, {why}" if noise else "")
    elif status == "nondeterministic":
        msg += f": known nondeterminism, not a regression: {why}"
    elif noise and delta > 0:
        msg += f": within {why}"
    return Check(
        kind="size", status=status, baseline=mb, current=mc, delta=delta, pct=pct, message=msg, **base
    )


def _layers_check(base: Where, mb: float, mc: float, layers: int) -> Check:
    """A layer count: fails with more than `layers` extra layers."""
    delta = mc - mb
    pct = (100.0 * delta / mb) if mb else None
    status = "fail" if delta > layers else "improved" if delta < 0 else "pass"
    msg = f"{_head(base)}: layers {int(mb)} → {int(mc)}"
    if status == "fail":
        msg += f": more than {layers} extra layer(s)"
    return Check(
        kind="layers", status=status, baseline=mb, current=mc, delta=delta, pct=pct, message=msg, **base
    )


def _exact_check(base: Where, mb: float, mc: float) -> Check:
    """Any other exact value: a change is reported, not gated."""
    metric = base["metric"]
    delta = mc - mb
    return Check(
        kind="exact",
        status="changed" if mb != mc else "pass",
        baseline=mb,
        current=mc,
        delta=delta,
        pct=(100.0 * delta / mb) if mb else None,
        message=f"{_head(base)}: {metric} {human_value(metric, mb)} → "
        f"{human_value(metric, mc)} (reported, not gated)",
        **base,
    )


def _time_check(
    base: Where, b: Values, c: Values, *, time_ratio: float, conf: float, n_boot: int, seed: int
) -> Check:
    """A time: fails when the lower bound of the current/baseline ratio's interval exceeds
    `time_ratio`, improves when the upper bound is below 1."""
    metric = base["metric"]
    r = stats.ratio_ci(b, c, n_boot=n_boot, seed=seed, conf=conf)
    mb, mc = median(b), median(c)
    check = Check(
        kind="time",
        status="pass",
        baseline=mb,
        current=mc,
        delta=mc - mb,
        pct=(100.0 * (mc - mb) / mb) if mb else None,
        ratio=r["ratio"],
        low=r["low"],
        high=r["high"],
        p_value=r["p_value"],
        **base,
    )
    head = f"{_head(base)}: {metric} {human_value(metric, mb)} → {human_value(metric, mc)}"
    if r["ratio"] is None or r["low"] is None or r["high"] is None:  # low and high are None together
        check.status = "skipped"
        check.message = f"{head}: not judged ({r['reason']})"
        return check
    ci = (
        f"{fmt.human_ratio(r['ratio'])}, {round(conf * 100):d} % CI {fmt.human_ratio(r['low'])}–"
        f"{fmt.human_ratio(r['high'])}"
    )
    if r["low"] > time_ratio:
        check.status = "fail"
        check.message = f"{head} ({ci}): slower, the interval is above {fmt.human_ratio(time_ratio)}"
    elif r["high"] < 1:
        check.status = "improved"
        check.message = f"{head} ({ci}): faster"
    else:
        check.message = f"{head} ({ci})"
    return check


def note_one_sided(base_groups: Groups, cur_groups: Groups, notes: list[str]) -> None:
    """Cells measured on one side only are noted (a CI shard measures part of the catalog), not failed."""

    def cells(keys: Groups) -> set[Cell]:
        return {(m, e, v, s) for m, e, v, s, _ in keys}

    only_base = sorted(cells(base_groups) - cells(cur_groups))
    only_cur = sorted(cells(cur_groups) - cells(base_groups))
    for label, items in (
        ("in the baseline only (not measured now)", only_base),
        ("new in the current results (no baseline)", only_cur),
    ):
        if items:
            by_exp: dict[str, list[str]] = {}
            for _m, e, v, s in items:
                by_exp.setdefault(e, []).append(f"{v}/{s}")
            notes.append(
                f"{label}: "
                + "; ".join(f"{e} ({', '.join(sorted(set(vs)))})" for e, vs in sorted(by_exp.items()))
            )
