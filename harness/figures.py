"""A claim result's measured figure as text: what the report, the gate and `compare` show.

`harness.analysis` judges claims (numbers, intervals, verdicts) and calls these to fill each
result's `figure`; they only read the result dict, so the words live here and analysis depends on
no report code. Values become text through harness.fmt and the vocabulary's units
(harness.metrics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from harness import fmt
from harness.metrics import TIMED_KINDS, exact_value, human_interval, human_value, kind_of, unit_of


def delta_figure(res: Mapping[str, Any]) -> str:
    """`+1.0021 s (95 % CI +0.9712 s – +1.0330 s; expected +1.0000 s ± 0.0500 s)`: a time is printed
    at the tolerance's precision (two digits finer than the tolerance), so a bound missed by a
    fraction of a millisecond shows as missed."""
    m = res["metric"]

    tol_abs = res.get("tolerance_abs") or 0.0
    exact = not tol_abs
    show: Callable[[str, float], str]
    if exact:
        show = exact_value  # an exact claim shows every digit
    elif unit_of(m) == "s":
        decimals = max(0, 2 - math.floor(math.log10(tol_abs)))

        def show(_m: str, x: float) -> str:
            return fmt.fixed_seconds(x, decimals)
    else:
        show = human_value

    def signed(x: float) -> str:
        return ("+" if x >= 0 else "−") + show(m, abs(x))

    parts = []
    if res.get("low") is not None and res.get("high") is not None and res["low"] != res["high"]:
        what = "range over trials" if res.get("interval") == "range" else "95 % CI"
        parts.append(f"{what} {signed(res['low'])} – {signed(res['high'])}")
    elif res.get("interval") == "single":
        parts.append("one trial: whether it repeats is unknown")
    elif res.get("low") is not None:
        parts.append("the same in every trial")
    tol = res.get("tolerance_abs") or 0.0
    parts.append(
        f"expected {signed(float(res['value'] or 0.0))}" + (f" ± {show(m, tol)}" if tol else " exactly")
    )
    if res.get("paired") and res.get("low") != res.get("high"):
        parts.append("rounds paired")
    if res.get("mde") is not None:
        parts.append(f"detectable shift ≥ {show(m, res['mde'])}")
    head = signed(res["delta"]) if res.get("delta") is not None else "–"
    who = f"{res['candidate']} − {res['baseline']}, {m}"
    return f"{who}: {head} ({'; '.join(parts)})"


def ratio_figure(res: Mapping[str, Any]) -> str:
    """`image_bytes: single 410 MB → multi 55 MB (×0.134, 95 % CI ×0.133–×0.135, n = 5 and 5); expected lower`."""
    m = res["metric"]
    text = (
        f"{m}: {res['baseline']} {human_value(m, res['baseline_median'])} → "
        f"{res['candidate']} {human_value(m, res['candidate_median'])}"
    )
    if res.get("ratio") is not None:
        text += f" ({fmt.human_ratio(res['ratio'])}"
        if res.get("interval") == "exact":
            text += ", exact: the same in every trial"
        elif res.get("interval") == "single":
            text += ", one trial: whether it repeats is unknown"
        elif res.get("low") is not None and res.get("high") is not None:
            what = "range over trials" if res.get("interval") == "range" else "95 % CI"
            text += f", {what} {fmt.human_ratio(res['low'])}–{fmt.human_ratio(res['high'])}"
        text += f", n = {res['n_baseline']} and {res['n_candidate']})"
    text += f"; expected {res['expect']}"
    if res.get("mde") is not None and res.get("baseline_median"):
        text += f"; detectable change ≥ {fmt.human_percent(res['mde'] / abs(res['baseline_median']))}"
    return text


def _expected(res: Mapping[str, Any]) -> str:
    m, op, value = res["metric"], res["op"], res["value"]
    if kind_of(m) == "flag" and op in ("==", "!=") and value in (0, 1):
        said = "yes" if value == 1 else "no"
        return said if op == "==" else f"not {said}"
    return f"{op} {human_value(m, value)}"


def check_figure(res: Mapping[str, Any]) -> str:
    """Written from the data: `client_admitted = no in 5 of 5 trials; expected no` (flags),
    `uid = 0 in 5 of 5 trials; expected != 0` (exact), `stop_seconds: median 181 ms (95 % CI ...),
    n = 5; expected < 1.00 s` (times)."""
    m, n = res["metric"], res["n_candidate"]
    where = f"{res['variant']}: " if res.get("variant") else ""
    expected = f"expected {_expected(res)}"
    if kind_of(m) == "flag":
        yes = int(res.get("yes") or 0)
        parts = [f"yes in {yes}", f"no in {n - yes}"] if 0 < yes < n else [f"{'yes' if yes else 'no'} in {n}"]
        return f"{where}{m} = " + " and ".join(f"{p} of {n} trials" for p in parts) + f"; {expected}"
    if kind_of(m) in TIMED_KINDS:
        text = f"{where}{m}: median {human_value(m, res['median'])}"
        if res.get("low") is not None and res.get("high") is not None:
            what = "95 % CI" if not (res.get("reason") or "").startswith("interval = range") else "range"
            text += f" ({what} {human_interval(m, res['low'], res['high'])})"
        return f"{text}, n = {n}; {expected}"
    values = res.get("values") or []
    if len(values) == 1:
        return f"{where}{m} = {human_value(m, values[0])} in {n} of {n} trials; {expected}"
    return (
        f"{where}{m} meets it in {res.get('k', 0)} of {n} trials "
        f"(values {human_value(m, min(values))} – {human_value(m, max(values))}); {expected}"
    )


def network_figure(name: str | None, measured_bps: float | None) -> str:
    """`network profile 100mbit, measured 12.4 MB/s`: the shaped-network precondition's figure."""
    return f"network profile {name or 'unknown'}" + (
        f", measured {human_value('download_bytes', measured_bps / 8)}/s" if measured_bps else ""
    )
