"""Analysis of measured results: summaries, claims, verdicts, consistency findings.

Pure functions: run dicts (as `harness.results.load_runs` returns them) and the tidy DataFrame
(`harness.results.load_table`) in, DataFrames and plain dicts out. No file I/O, no Docker.

Claims are judged here and nowhere else: `analyze` turns runs into one `Analysis` (per machine and
experiment an `ExperimentResult`: the verdict, every claim judged, the deciding claim, the run it rests
on) that the report, its article view and the end-of-run summary only render
(tests/unit/test_one_analysis.py keeps it so). Verdicts are `harness.verdicts.Verdict` members.

Machines are never pooled: every grouping starts with `machine`, because a build time on one
host says nothing about another. Several runs of one machine are pooled by `summary_table`;
the report first keeps only the latest run per machine and experiment (`latest_runs`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias, TypedDict, cast

from harness import stats
from harness.figures import check_figure, delta_figure, network_figure, ratio_figure
from harness.jsonparts import json_list, json_object
from harness.metrics import TIMED_KINDS, human_value, kind_of, unit_of
from harness.records import (
    ClaimDef,
    ClaimKind,
    ClaimResult,
    ExperimentDef,
    ExperimentVerdict,
    RunRecord,
)
from harness.results import load_table
from harness.verdicts import RunStatus, TrialStatus, Verdict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from harness.experiment import Experiment

KEYS = ["machine", "experiment", "variant", "scenario", "metric"]
SUMMARY_COLUMNS = [*KEYS, "unit", "n", "median", "q1", "q3", "iqr", "mad", "min", "max", "cv"]
NOT_MEASURED = Verdict.NOT_MEASURED
BY_CONSTRUCTION = Verdict.BY_CONSTRUCTION
VERDICT_ORDER = (Verdict.SUPPORTED, Verdict.NOT_SUPPORTED, Verdict.INCONCLUSIVE, NOT_MEASURED)
N_BOOT = 2000
SEED = 0

Key: TypeAlias = tuple[str, str]
"""(machine, experiment)."""
Definitions: TypeAlias = dict[str, dict[str, ExperimentDef]]
"""{machine: {experiment: definition}}."""
DefinitionInput: TypeAlias = "ExperimentDef | Experiment"
"""An experiment as `evaluate_claims` accepts it: a definition dict or a `harness.experiment.Experiment`."""


class NetworkProfile(TypedDict, total=False):
    """The lab's network profile a run recorded (`fingerprint.lab.profile`)."""

    name: str
    rate_bps: float
    measured_bps: float | None


class Calibration(TypedDict):
    """A run's own calibration judged on that run alone (`run_calibration`)."""

    run_id: str
    passed: bool | None
    claims: list[ClaimResult]


# --------------------------------------------------------------------------- selection


def latest_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Keep, per machine and experiment, only the rows of the latest run (run ids sort by time)."""
    if df.empty:
        return df.copy()
    latest = df.groupby(["machine", "experiment"])["run_id"].transform("max")
    return df[df["run_id"] == latest].reset_index(drop=True)


def carried(definition: ExperimentDef) -> bool:
    """A short calibration that a timed run carried along (its sleep-0/sleep-1 pair only), as opposed
    to a calibration the run was asked for: it describes its own run, never the catalog's calibration."""
    names = {v.get("name") if isinstance(v, dict) else v for v in definition.get("variants") or []}
    return definition.get("section") == "calibration" and bool(names) and names <= {"sleep-0", "sleep-1"}


def latest_run_ids(runs: Iterable[RunRecord]) -> dict[Key, str]:
    """{(machine, experiment): run_id} of the latest run that has ok trials of the experiment,
    else the latest run that planned it (so a run whose trials all failed is still reported).
    A run the experiment was asked for ranks above a later one that only carried it (a timed
    run's short calibration does not replace the calibration run itself). A complete run ranks
    above any run that is not (interrupted, still running): an interrupted run is reported only
    where nothing else measured the experiment, and then never decides its verdict."""
    with_ok: dict[Key, tuple[bool, bool, str]] = {}
    planned: dict[Key, tuple[bool, bool, str]] = {}
    nothing = (False, False, "")
    for run in runs:
        defs = run.get("experiments", {})
        whole = complete(run)
        rank = {
            name: (whole, not carried(d if isinstance(d, dict) else {}), run["run_id"])
            for name, d in defs.items()
        }
        for name in defs:
            key = (run["machine"], name)
            planned[key] = max(planned.get(key, nothing), rank[name])
        for t in run["trials"]:
            if t.get("status") == TrialStatus.OK.value:
                key = (run["machine"], t["experiment"])
                r = rank.get(t["experiment"], (whole, True, run["run_id"]))
                with_ok[key] = max(with_ok.get(key, nothing), r)
    return {k: with_ok.get(k, v)[2] for k, v in planned.items()}


def complete(run: Mapping[str, object]) -> bool:
    """The run ended normally (not interrupted, not still running)."""
    return run.get("status") == RunStatus.COMPLETE


def select_latest(
    runs: list[RunRecord], df: pd.DataFrame | None = None
) -> tuple[list[RunRecord], pd.DataFrame]:
    """(runs, df) restricted to the latest run per machine and experiment; trials of other
    experiments in those runs are dropped from the df, not from the run dicts."""
    chosen = latest_run_ids(runs)
    if df is None:
        df = load_table(runs=runs)
    if df.empty:
        return runs, df
    keep = [
        chosen.get((m, e)) == r for m, e, r in zip(df["machine"], df["experiment"], df["run_id"], strict=True)
    ]
    return runs, df[keep].reset_index(drop=True)


# --------------------------------------------------------------------------- which runs may be pooled

# The engine a run measured on: the same daemon, storage and builder, or build times do not compare.
ENGINE_KEYS = (
    "docker_host",
    "engine_version",
    "docker_root_dir",
    "builder_driver",
    "storage_driver",
    "image_store",
)


@dataclass(frozen=True)
class RunSelection:
    """The runs one report judges. `left_out`: (run_id, why) runs not pooled with the others;
    `pooled`: (run_id, what differs) runs pooled anyway because the user asked (`--pool`)."""

    runs: list[RunRecord]
    left_out: list[tuple[str, str]] = field(default_factory=list)
    pooled: list[tuple[str, str]] = field(default_factory=list)


def select_runs(runs: list[RunRecord], *, pool: bool = False) -> RunSelection:
    """The runs a report may judge together, per machine.

    Per machine, `latest_run_ids` picks a run for each experiment; the newest of the picked runs is
    the anchor. Another picked run is not pooled with it when it ran at the same time as a run already
    kept, comes from another harness commit or another engine, or (for experiments that do not
    require a shaped network) measured under another network profile: it is left out, and the pick is
    made again without it (an older compatible run may then report the experiment). With `pool`, such
    runs are kept and listed in `pooled` with what differs, for a banner. Pure."""
    kept_all: list[RunRecord] = []
    left: list[tuple[str, str]] = []
    pooled: list[tuple[str, str]] = []
    machines = sorted({r["machine"] for r in runs})
    for machine in machines:
        candidates = [r for r in runs if r["machine"] == machine]
        while True:
            chosen = latest_run_ids(candidates)
            by_id = {r["run_id"]: r for r in candidates}
            picked = [by_id[i] for i in sorted(set(chosen.values()), reverse=True) if i in by_id]
            kept: list[RunRecord] = picked[:1]
            drop: tuple[RunRecord, str] | None = None
            for run in picked[1:]:
                why = _conflicts(run, kept, chosen)
                if why and not pool:
                    drop = (run, why)
                    break
                if why:
                    pooled.append((run["run_id"], why))
                kept.append(run)
            if drop is None:
                break
            candidates = [r for r in candidates if r is not drop[0]]
            left.append((drop[0]["run_id"], drop[1]))
        kept_all += candidates
    return RunSelection(kept_all, left, pooled)


def _fingerprint(run: RunRecord, part: str) -> Mapping[str, object]:
    return json_object(json_object(run.get("fingerprint")).get(part))


def _span(run: RunRecord) -> tuple[str, str]:
    return str(run.get("created_at") or ""), str(run.get("updated_at") or run.get("created_at") or "")


def _overlap(a: RunRecord, b: RunRecord) -> bool:
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return bool(a0 and b0) and a0 < b1 and b0 < a1


def _plain_network(run: RunRecord, chosen: dict[Key, str]) -> bool:
    """The run decides an experiment that does not require a shaped network."""
    defs = run.get("experiments") or {}
    return any(
        rid == run["run_id"] and "shaped-network" not in ((defs.get(name) or {}).get("requires") or [])
        for (machine, name), rid in chosen.items()
        if machine == run["machine"]
    )


def _conflicts(run: RunRecord, kept: list[RunRecord], chosen: dict[Key, str]) -> str:
    """Why `run` cannot be judged beside the runs already `kept` (the first is the anchor); "" if it can."""
    anchor = kept[0]
    why = [f"ran at the same time as run {k['run_id']}" for k in kept if _overlap(run, k)][:1]
    mine, theirs = (
        _fingerprint(run, "harness").get("git_commit"),
        _fingerprint(anchor, "harness").get("git_commit"),
    )
    if mine != theirs:
        why.append(f"harness commit {str(mine or 'unknown')[:12]}, not {str(theirs or 'unknown')[:12]}")
    e1, e2 = _fingerprint(run, "engine"), _fingerprint(anchor, "engine")
    differ = [k for k in ENGINE_KEYS if e1.get(k) != e2.get(k)]
    if differ:
        why.append("another engine (" + ", ".join(f"{k} {e1.get(k)} vs {e2.get(k)}" for k in differ) + ")")
    if _plain_network(run, chosen):
        ref = next((k for k in kept if _plain_network(k, chosen)), None)
        p1, p2 = network_profile(run).get("name"), network_profile(ref).get("name") if ref else None
        if ref is not None and p1 != p2:
            why.append(f"network profile {p1 or 'unknown'}, not {p2 or 'unknown'} (run {ref['run_id']})")
    return "; ".join(why)


# --------------------------------------------------------------------------- summaries


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per machine x experiment x variant x scenario x metric: n, median, q1, q3, iqr, mad, min,
    max, cv (sample stdev / mean, None when undefined). Sorted by the key columns."""
    import pandas as pd  # lazy: pandas costs ~0.5 s to import; verdicts from run dicts need none

    rows: list[list[object]] = []
    if not df.empty:
        for key, group in df.groupby(KEYS, sort=True):
            s = stats.summarize(group["value"].to_numpy())
            rows.append(
                [
                    *key,
                    unit_of(str(key[-1])) or group["unit"].iloc[0],
                    s["n"],
                    s["median"],
                    s["q1"],
                    s["q3"],
                    s["iqr"],
                    s["mad"],
                    s["min"],
                    s["max"],
                    s["cv"],
                ]
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def build_cv(df: pd.DataFrame, metric: str = "build_seconds") -> pd.DataFrame:
    """Coefficient of variation of `metric` per machine x experiment x variant x scenario:
    how noisy build times were (pyperf warns above 10 %)."""
    table = summary_table(df[df["metric"] == metric]) if not df.empty else summary_table(df)
    return table[["machine", "experiment", "variant", "scenario", "n", "median", "cv"]].reset_index(drop=True)


def size_consistency(df: pd.DataFrame) -> pd.DataFrame:
    """Exact metrics (sizes, layer counts ...) that differ between trials of one variant.

    Sizes should be identical across trials; one that varies is a finding to report, not
    noise to average. Returns machine, experiment, variant, scenario, metric, n, distinct,
    min, max, values (sorted distinct values), one row per inconsistent cell.
    """
    import pandas as pd  # lazy: pandas costs ~0.5 s to import; verdicts from run dicts need none

    cols = [*KEYS, "n", "distinct", "min", "max", "values"]
    if df.empty:
        return pd.DataFrame([], columns=cols)
    exact = df[df["metric"].map(kind_of) == "exact"]
    rows: list[list[object]] = []
    for key, group in exact.groupby(KEYS, sort=True):
        values = sorted(set(group["value"].tolist()))
        if len(values) > 1:
            rows.append([*key, len(group), len(values), values[0], values[-1], values])
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- experiments


def experiments_by_machine(runs: Iterable[RunRecord]) -> Definitions:
    """{machine: {experiment: definition}} from the run files (the definition of the run that
    `latest_run_ids` picks wins: the latest, a run asked for the experiment above one that only
    carried it; `not_measured` merged over all runs of the machine), each with `stand_in_gaps`
    ({variant: what its lab stand-in bases leave out}) where there are any."""
    runs = list(runs)
    out: Definitions = {}
    rank: dict[Key, tuple[bool, bool, str]] = {}
    nothing = (False, False, "")
    for run in sorted(runs, key=lambda r: r["run_id"]):
        for name, definition in run.get("experiments", {}).items():
            key = (run["machine"], name)
            previous: ExperimentDef = out.setdefault(run["machine"], {}).get(name, {})
            mine = (complete(run), not carried(definition), run["run_id"])
            merged = definition.copy() if mine >= rank.get(key, nothing) else previous.copy()
            rank[key] = max(mine, rank.get(key, nothing))
            merged["not_measured"] = {
                **previous.get("not_measured", {}),
                **definition.get("not_measured", {}),
            }
            out[run["machine"]][name] = merged
    return _with_stand_in_gaps(out, runs)


def _as_definitions(
    experiments: Mapping[str, DefinitionInput] | Iterable[DefinitionInput] | None,
) -> dict[str, ExperimentDef]:
    """Accept {name: dict}, a list of dicts or a list of harness.experiment.Experiment."""
    if experiments is None:
        return {}
    if isinstance(experiments, Mapping):
        return {k: _definition(v) for k, v in experiments.items()}
    out = {}
    for e in experiments:
        d = _definition(e)
        out[d["name"]] = d
    return out


def _definition(e: DefinitionInput) -> ExperimentDef:
    if isinstance(e, dict):
        return e.copy()
    return e.to_dict()


def _cell(
    df: pd.DataFrame, machine: str, experiment: str, variant: str | None, scenario: str, metric: str
) -> pd.DataFrame:
    return df[
        (df["machine"] == machine)
        & (df["experiment"] == experiment)
        & (df["variant"] == variant)
        & (df["scenario"] == scenario)
        & (df["metric"] == metric)
    ].sort_values(["run_id", "trial"])


def _values(
    df: pd.DataFrame, machine: str, experiment: str, variant: str | None, scenario: str, metric: str
) -> np.ndarray:
    """The values of one cell sorted by run and trial."""
    values: np.ndarray = _cell(df, machine, experiment, variant, scenario, metric)["value"].to_numpy()
    return values


def _keyed_values(
    df: pd.DataFrame, machine: str, experiment: str, variant: str | None, scenario: str, metric: str
) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """`_values` and the [(run_id, trial)] they came from."""
    sel = _cell(df, machine, experiment, variant, scenario, metric)
    values: np.ndarray = sel["value"].to_numpy()
    return values, list(zip(sel["run_id"], sel["trial"], strict=True))


def _missing_reason(definition: ExperimentDef, variants: Sequence[str | None]) -> str:
    notes = definition.get("not_measured") or {}
    reasons = [f"{v}: {notes[v]}" for v in variants if v in notes]
    return "; ".join(reasons) or "no successful trials of " + ", ".join(str(v) for v in variants)


def evaluate_claims(
    runs_or_df: list[RunRecord] | pd.DataFrame,
    experiments: Mapping[str, DefinitionInput] | Iterable[DefinitionInput] | None = None,
    *,
    latest: bool = False,
    with_p: bool = True,
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> list[ClaimResult]:
    """Every claim of every experiment, judged per machine.

    `runs_or_df` is a list of run dicts (experiments then come from the runs) or the tidy
    DataFrame (then pass `experiments`: {name: definition} or Experiment objects; the machines
    are those in the DataFrame). With runs and `latest`, only the latest run per machine and
    experiment counts (what the report shows); otherwise every run of a machine is pooled. Each result dict has machine, experiment, index, kind
    (ratio|check), metric, unit, scenario, label, primary, baseline, candidate, variant, op,
    value, expect, n_baseline, n_candidate, baseline_median, candidate_median, median, ratio,
    low, high, p, verdict, reason and `figure`, the measured figure as text.
    """
    df, defs_by_machine = _inputs(runs_or_df, experiments, latest)
    out = _judge_every_claim(df, defs_by_machine, with_p=with_p, n_boot=n_boot, seed=seed)
    if latest and isinstance(runs_or_df, list):
        calibrate(out, runs_or_df, n_boot=n_boot, seed=seed)
    return out


def _judge_every_claim(
    df: pd.DataFrame, defs: Definitions, *, with_p: bool, n_boot: int, seed: int
) -> list[ClaimResult]:
    """Every claim of every experiment of every machine in `defs`, judged on `df`, in a stable order."""
    return [
        evaluate_claim(
            df, machine, defs[machine][name], index, claim, n_boot=n_boot, seed=seed, with_p=with_p
        )
        for machine in sorted(defs)
        for name in sorted(defs[machine])
        for index, claim in claims_of(defs[machine][name])
    ]


def claims_of(definition: ExperimentDef) -> list[tuple[int, ClaimDef]]:
    """(index, claim) for every claim of a definition, then its preconditions (role "precondition",
    indices after the claims)."""
    claims = list(definition.get("claims") or [])
    pre: list[ClaimDef] = []
    for c in definition.get("preconditions") or []:
        p = c.copy()
        p["role"] = "precondition"
        pre.append(p)
    return list(enumerate(claims + pre))


def _inputs(
    runs_or_df: list[RunRecord] | pd.DataFrame,
    experiments: Mapping[str, DefinitionInput] | Iterable[DefinitionInput] | None,
    latest: bool = False,
) -> tuple[pd.DataFrame, Definitions]:
    if isinstance(runs_or_df, list):
        runs = runs_or_df
        df = select_latest(runs)[1] if latest else load_table(runs=runs)
        defs = experiments_by_machine(runs)
        if experiments is not None:
            given = _as_definitions(experiments)
            defs = {m: {n: given.get(n, d) for n, d in ds.items()} for m, ds in defs.items()}
        return df, defs
    df = runs_or_df
    given = _as_definitions(experiments)
    per_machine: Definitions = {}
    for machine in sorted(set(df["machine"])) if not df.empty else []:
        per_machine[machine] = dict(given)
    return df, per_machine


def stand_in_gaps(runs: Iterable[RunRecord]) -> dict[tuple[str, str, str], list[str]]:
    """{(machine, experiment, variant): what the variant's lab stand-in bases leave out} from the
    provenance each run recorded for its pinned bases (empty for faithful bases)."""
    gaps: dict[tuple[str, str, str], list[str]] = {}
    for run in runs:
        bases = run.get("bases") or {}
        for t in run.get("trials") or []:
            left: list[str] = []
            for name in t.get("bases") or {}:
                pin = bases.get(name)
                prov = json_object(pin.get("provenance") if pin else None)
                left += [str(x) for x in json_list(prov.get("left_out")) if str(x) not in left]
            if left:
                gaps[(run["machine"], t["experiment"], t["variant"])] = left
    return gaps


def _with_stand_in_gaps(defs: Definitions, runs: list[RunRecord]) -> Definitions:
    gaps = stand_in_gaps(runs)
    out: Definitions = {}
    for machine, ds in defs.items():
        out[machine] = {}
        for name, d in ds.items():
            mine = {v: g for (m, e, v), g in gaps.items() if m == machine and e == name}
            if mine:
                d = d.copy()
                d["stand_in_gaps"] = mine
            out[machine][name] = d
    return out


def evaluate_claim(
    df: pd.DataFrame,
    machine: str,
    definition: ExperimentDef,
    index: int,
    claim: ClaimDef,
    *,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    with_p: bool = True,
) -> ClaimResult:
    """One claim of `definition` judged on `machine`'s rows of the tidy DataFrame (see evaluate_claims).

    A claim the experiment's own settings decide (`by_construction`, e.g. a stop time equal to the stop
    timeout it sets) keeps its measured value but gets no interval, no p-value and the verdict
    "by construction": it shows what the setting produced and never decides a practice's verdict."""
    res = _judge(df, machine, definition, index, claim, n_boot=n_boot, seed=seed, with_p=with_p)
    if claim.get("by_construction"):
        return _by_construction(res)
    return res


def _by_construction(res: ClaimResult) -> ClaimResult:
    """A judged claim turned into a statement of what the experiment's settings fixed."""
    value = res["candidate_median"] if res["candidate_median"] is not None else res["median"]
    who = res["variant"] or res["candidate"] or ""
    res["low"] = res["high"] = res["p"] = res["mde"] = None
    res["interval"] = None
    res["by_construction"] = True
    if res["verdict"] == NOT_MEASURED:
        return res
    res["verdict"] = BY_CONSTRUCTION
    m = res["metric"]
    if res["kind"] in ("ratio", "delta") and res["baseline_median"] is not None and value is not None:
        shown = (
            f"{m}: {res['baseline']} {human_value(m, res['baseline_median'])} → "
            f"{res['candidate']} {human_value(m, value)}"
        )
    else:
        shown = f"{who + ': ' if who else ''}{m} = {human_value(m, value) if value is not None else '–'}"
    res["figure"] = f"{shown} (set by the experiment, not measured)"
    res["reason"] = "the experiment's own settings decide this value"
    return res


def _judge(
    df: pd.DataFrame,
    machine: str,
    definition: ExperimentDef,
    index: int,
    claim: ClaimDef,
    *,
    n_boot: int,
    seed: int,
    with_p: bool,
) -> ClaimResult:
    metric, scenario = claim["metric"], claim.get("scenario", "cold")
    expect = claim.get("expect") or ""
    kind: ClaimKind = "delta" if expect == "delta" else "ratio" if expect else "check"
    res = _blank_result(machine, definition, index, claim, kind)
    name = definition["name"]
    if kind == "check":
        return _evaluate_check(res, _values(df, machine, name, res["variant"], scenario, metric), definition)
    b, b_keys = _keyed_values(df, machine, name, res["baseline"], scenario, metric)
    c, c_keys = _keyed_values(df, machine, name, res["candidate"], scenario, metric)
    # interleaved trials (the same run and trial round for both variants) are resampled as pairs
    res["paired"] = bool(len(b) >= 2 and b_keys == c_keys and len(set(b_keys)) == len(b_keys))
    res["n_baseline"], res["n_candidate"] = len(b), len(c)
    if len(b) == 0 or len(c) == 0:
        missing = [v for v, x in ((res["baseline"], b), (res["candidate"], c)) if len(x) == 0]
        res["reason"] = _missing_reason(definition, missing)
        return res
    res["baseline_median"] = stats.summarize(b)["median"]
    res["candidate_median"] = stats.summarize(c)["median"]
    timed = kind_of(metric) in TIMED_KINDS
    if timed:
        res["mde"] = stats.min_detectable(b, c)
    if kind == "delta":
        res = _evaluate_delta(res, b, c, n_boot, seed, with_p)  # uses res["paired"]
        return _smoke_rule(res, df, machine, definition)
    if kind_of(metric) in EXACT_KINDS:
        rr = stats.range_ratio(b, c)
        ratio, low, high, p = rr["ratio"], rr["low"], rr["high"], None
        reason = _exact_reason(metric, b, c) if ratio is not None else "the baseline is 0: no ratio"
        res["interval"] = _exact_interval(b, c)
    else:
        rc = stats.ratio_ci(b, c, n_boot=n_boot, seed=seed, with_p=with_p)
        ratio, low, high, p, reason = rc["ratio"], rc["low"], rc["high"], rc["p_value"], rc["reason"]
        res["interval"] = "ci" if low is not None else None
    res["ratio"], res["low"], res["high"], res["p"], res["reason"] = ratio, low, high, p, reason
    res["verdict"] = stats.verdict(low, high, expect) if ratio is not None else Verdict.INCONCLUSIVE
    if timed and min(len(b), len(c)) < MIN_TIME_RATIO_N:
        res["verdict"] = Verdict.INCONCLUSIVE
        res["reason"] = f"a time ratio needs n >= {MIN_TIME_RATIO_N} per variant (n = {len(b)} and {len(c)})"
    res["figure"] = ratio_figure(res)
    return _smoke_rule(res, df, machine, definition)


def _blank_result(
    machine: str, definition: ExperimentDef, index: int, claim: ClaimDef, kind: ClaimKind
) -> ClaimResult:
    """A claim's result before judging: what the claim says, every measured field empty, not measured."""
    metric, scenario = claim["metric"], claim.get("scenario", "cold")
    expect = claim.get("expect")
    return {
        "machine": machine,
        "experiment": definition["name"],
        "index": index,
        "kind": kind,
        "metric": metric,
        "unit": unit_of(metric),
        "scenario": scenario,
        "label": claim.get("label", ""),
        "primary": bool(claim.get("primary", False)),
        "source": claim.get("source") or "article",
        "article_section": claim.get("article_section"),  # None when the claim names none
        "article_figure": claim.get("article_figure"),
        "role": claim.get("role") or "claim",  # claim | precondition
        "baseline": claim.get("baseline"),
        "candidate": claim.get("candidate"),
        "variant": claim.get("variant"),
        "op": claim.get("op"),
        "value": claim.get("value"),
        "expect": expect,
        "tolerance": claim.get("tolerance"),
        "tolerance_rel": claim.get("tolerance_rel"),
        "n_baseline": 0,
        "n_candidate": 0,
        "baseline_median": None,
        "candidate_median": None,
        "median": None,
        "ratio": None,
        "delta": None,
        "low": None,
        "high": None,
        "p": None,
        "yes": None,
        "k": None,
        "mde": None,
        "paired": False,
        "interval": None,  # ci (bootstrap) | exact (every trial the same) | range (exact, varied) | single (n = 1)
        "by_construction": bool(claim.get("by_construction", False)),
        "verdict": NOT_MEASURED,
        "reason": None,
        "figure": "–",
    }


MIN_TIME_RATIO_N = 5
MIN_TIME_CHECK_N = 2  # a time threshold is judged on the interval of the median: one trial has none


def min_trials(claim: ClaimDef) -> int:
    """The fewest trials per variant a claim needs before the report can judge it (its own rules):
    a time ratio MIN_TIME_RATIO_N, any other time claim MIN_TIME_CHECK_N, an exact metric (size, count,
    flag) one, a value set by the experiment (`by_construction`) one."""
    if claim.get("by_construction") or kind_of(claim.get("metric", "")) not in TIMED_KINDS:
        return 1
    return MIN_TIME_RATIO_N if claim.get("expect") in ("lower", "higher") else MIN_TIME_CHECK_N


def _smoke_rule(res: ClaimResult, df: pd.DataFrame, machine: str, definition: ExperimentDef) -> ClaimResult:
    """A candidate whose smoke check failed in any trial cannot win a size or time claim: "smaller
    but broken" (with the failing output's last line), whatever its numbers say."""
    if res["kind"] not in ("ratio", "delta") or res["verdict"] != Verdict.SUPPORTED:
        return res
    if kind_of(res["metric"]) not in ("time", "rate", "exact") or df.empty:
        return res
    smoke = _values(df, machine, definition["name"], res["candidate"], res["scenario"], "smoke_ok")
    if len(smoke) == 0 or (smoke == 1).all():
        return res
    candidate = res["candidate"] or ""
    last = (definition.get("smoke_failures") or {}).get(candidate) or "output kept in the trial record"
    gaps = (definition.get("stand_in_gaps") or {}).get(candidate)
    if gaps:  # the lab's stand-in is incomplete: its failure says nothing about the real image
        res["verdict"] = Verdict.INCONCLUSIVE
        res["reason"] = (
            f"{res['candidate']} failed its smoke check ({last}) on a lab stand-in base that leaves out "
            f"{'; '.join(re.split(r'[(:]', g)[0].strip() for g in gaps)}: it cannot show whether the real image works"
        )
        res["figure"] += f"; smoke check failed on the stand-in ({last})"
        return res
    res["verdict"] = Verdict.NOT_SUPPORTED
    res["reason"] = (
        f"smaller but broken: {res['candidate']} failed its smoke check in "
        f"{int((smoke != 1).sum())} of {len(smoke)} trials ({last})"
    )
    res["figure"] += f"; smaller but broken ({last})"
    return res


EXACT_KINDS = ("exact", "flag", "count")  # no sampling noise: judged on the range of the trials, no p-value


def _exact_interval(b: np.ndarray, c: np.ndarray) -> Literal["exact", "range", "single"]:
    """exact (every trial of both groups gave one value), range (they varied) or single (one trial in a
    group: no way to know whether the value repeats)."""
    if min(len(b), len(c)) < 2:
        return "single"
    return "exact" if float(max(b)) == float(min(b)) and float(max(c)) == float(min(c)) else "range"


def _exact_reason(metric: str, b: np.ndarray, c: np.ndarray) -> str | None:
    """How an exact metric's comparison was judged: on one value, or on the range of the trials (None
    when every trial gave the same value: the figure says so)."""
    spread = max(float(max(b)) - float(min(b)), float(max(c)) - float(min(c)))
    if min(len(b), len(c)) < 2:
        return (
            "exact metric with a single trial in a group: judged on its value, whether it repeats is unknown"
        )
    if spread == 0:
        return None
    return (
        f"exact metric that varied between trials by up to {human_value(metric, spread)}: "
        "judged on the range every trial allows"
    )


def _evaluate_check(res: ClaimResult, v: np.ndarray, definition: ExperimentDef) -> ClaimResult:
    """Exact metrics (flags, sizes, counts) hold only when every trial holds (k = n); times and rates
    are judged on the interval of their median and need n >= 2 (`stats.check_detail`)."""
    res["n_candidate"] = len(v)
    if len(v) == 0:
        res["reason"] = _missing_reason(definition, [res["variant"]])
        return res
    res["median"] = res["candidate_median"] = stats.summarize(v)["median"]
    res["yes"] = int((v == 1).sum())
    timed = kind_of(res["metric"]) in TIMED_KINDS
    d = stats.check_detail(v, str(res["op"]), float(res["value"] or 0.0), use_ci=timed)
    res["verdict"], res["k"], res["low"], res["high"] = d["verdict"], d["k"], d["low"], d["high"]
    if timed and d["reason"]:
        res["reason"] = d["reason"]
    distinct = sorted({float(x) for x in v})
    res["values"] = distinct if len(distinct) == 1 else [distinct[0], distinct[-1]]
    res["figure"] = check_figure(res)
    return res


def _evaluate_delta(
    res: ClaimResult, b: np.ndarray, c: np.ndarray, n_boot: int, seed: int, with_p: bool = True
) -> ClaimResult:
    d: dict[str, float | None]
    if kind_of(res["metric"]) in EXACT_KINDS:
        d = {**stats.range_delta(b, c), "p_value": None}
        res["reason"] = _exact_reason(res["metric"], b, c)
        res["interval"] = _exact_interval(b, c)
    else:
        d = stats.delta_ci(b, c, n_boot=n_boot, seed=seed, with_p=with_p, paired=bool(res.get("paired")))
    value = float(res["value"] or 0.0)
    tol = (
        res["tolerance"] if res["tolerance"] is not None else abs(value) * float(res["tolerance_rel"] or 0.0)
    )
    res["tolerance_abs"] = float(tol)
    res["delta"], res["low"], res["high"], res["p"] = d["delta"], d["low"], d["high"], d["p_value"]
    if d["low"] is None and res.get("interval") != "single":
        res["reason"] = "fewer than 2 values in a group: no interval"
    elif res.get("interval") is None:
        res["interval"] = "ci"
    res["verdict"] = stats.delta_verdict(d["low"], d["high"], value, float(tol))
    res["figure"] = delta_figure(res)
    return res


def run_calibration(run: RunRecord, *, n_boot: int = N_BOOT, seed: int = SEED) -> Calibration:
    """The calibration `run` carried, judged on that run alone: {"run_id", "passed" (True when every
    time claim it measured is supported, False when one is not, None when it measured none), "claims"
    (the judged time claims)}. The calibration experiment of a run is the short one a timed run
    carries, or the full one when the run was asked for it."""
    definition = (run.get("experiments") or {}).get("calibration")
    out: Calibration = {"run_id": run["run_id"], "passed": None, "claims": []}
    if not isinstance(definition, dict):
        return out
    df = load_table(runs=[run])
    for index, claim in enumerate(definition.get("claims") or []):
        if kind_of(claim.get("metric", "")) not in TIMED_KINDS:
            continue
        c = evaluate_claim(df, run["machine"], definition, index, claim, n_boot=n_boot, seed=seed)
        if c["verdict"] != NOT_MEASURED:
            out["claims"].append(c)
    if out["claims"]:
        out["passed"] = all(c["verdict"] == Verdict.SUPPORTED for c in out["claims"])
    return out


def calibrate(
    claims: list[ClaimResult], runs: list[RunRecord], *, n_boot: int = N_BOOT, seed: int = SEED
) -> dict[str, Calibration]:
    """Time claims are judged only where the run that measured them passed its own calibration.

    For each time claim (kind "time"; not the calibration's own, not one decided by construction) whose verdict was
    reached, the calibration of the run `latest_run_ids` picked for its experiment is judged
    (`run_calibration`); when it failed, or the run carried none, the claim becomes "inconclusive"
    with that reason. Changes `claims` in place; returns {run_id: calibration} for the runs looked at."""
    chosen = latest_run_ids(runs)
    by_id = {r["run_id"]: r for r in runs}
    cals: dict[str, Calibration] = {}
    for c in claims:
        if c["experiment"] == "calibration" or c.get("by_construction") or c.get("role") == "precondition":
            continue
        # times only, as the runner carries a calibration only for them (runner.plan.with_calibration):
        # a rate (a CPU loop's throughput ratio) is not what a build-time calibration checks
        if kind_of(c["metric"]) != "time" or c["verdict"] == NOT_MEASURED:
            continue
        rid = chosen.get((c["machine"], c["experiment"]))
        if rid is None or rid not in by_id:
            continue
        if rid not in cals:
            cals[rid] = run_calibration(by_id[rid], n_boot=n_boot, seed=seed)
        cal = cals[rid]
        if cal["passed"]:
            continue
        failed = [x for x in cal["claims"] if x["verdict"] != Verdict.SUPPORTED]
        c["measured_verdict"] = c["verdict"]
        c["verdict"] = Verdict.INCONCLUSIVE
        c["reason"] = (
            f"this run's calibration failed ({failed[0]['figure']}: {failed[0]['verdict']})"
            if failed
            else f"run {rid} carried no calibration: its times are not checked against a known effect"
        )
    return cals


def experiment_verdicts(
    runs: list[RunRecord], claims: list[ClaimResult] | None = None, *, with_p: bool = True
) -> list[ExperimentVerdict]:
    """One verdict per machine x experiment in the runs.

    "not measured here" when the experiment has no ok trial on that machine (reason: the
    not_measured notes and the distinct errors of failed trials); otherwise "supported" when
    every claim is, "not supported" when any claim is not, else "inconclusive"; "measured"
    when the experiment states no claim. Each dict: machine, experiment, practice, section,
    verdict, reason, ok_trials, failed_trials, claims (the claim dicts), primary (the primary
    or first claim, or None).
    """
    if claims is None:
        claims = evaluate_claims(runs, with_p=with_p)
    defs = experiments_by_machine(runs)
    chosen = latest_run_ids(runs)
    ok, failed, skipped = _trial_tallies(runs, chosen)
    out: list[ExperimentVerdict] = []
    run_by_id = {r["run_id"]: r for r in runs}
    for machine in sorted(defs):
        for name in _catalog_order(defs[machine]):
            d = defs[machine][name]
            key = (machine, name)
            mine, pre, article, extension = _claim_roles(claims, machine, name)
            errors = sorted(set(failed.get(key, [])))
            row: ExperimentVerdict = {
                "machine": machine,
                "experiment": name,
                "practice": d.get("practice", name),
                "section": d.get("section", ""),
                "claim": d.get("claim", ""),
                "article": d.get("article", ""),
                "cannot_show": str(d.get("cannot_show") or ""),
                "ok_trials": ok.get(key, 0),
                "failed_trials": len(failed.get(key, [])),
                "claims": mine,
                "preconditions": pre,
                "extension_claims": extension,
                "primary": next((c for c in mine if c["primary"]), mine[0] if mine else None),
                "deciding": None,
                "also_found": [],
                "reason": None,
            }
            if row["ok_trials"] == 0:
                row["verdict"] = NOT_MEASURED
                notes = {f"{v}: {r}" for v, r in (d.get("not_measured") or {}).items()} | skipped.get(
                    key, set()
                )
                row["reason"] = "; ".join(sorted(notes) + errors) or "no trials recorded"
            elif not complete(run_by_id.get(chosen.get(key, "")) or {"status": RunStatus.COMPLETE}):
                run = run_by_id[chosen[key]]
                row["verdict"] = Verdict.INCONCLUSIVE
                row["reason"] = (
                    f"run {run['run_id']} is {run.get('status') or 'not complete'} "
                    f"({row['ok_trials']} ok trials): an interrupted run never decides a verdict"
                )
            else:
                network = _network_precondition(d, run_by_id.get(chosen.get(key, "")))
                judged = article or [c for c in mine if not c.get("by_construction")]
                decide(row, judged, pre + ([network] if network else []))
                if errors:
                    failed_note = f"{row['failed_trials']} failed trial(s): " + "; ".join(errors)
                    row["reason"] = f"{row['reason']}; {failed_note}" if row["reason"] else failed_note
            shown = extension if article else [c for c in extension if c.get("by_construction")]
            row["also_found"] = [also_found(c) for c in shown if c["verdict"] != NOT_MEASURED]
            out.append(row)
    return out


def _claim_roles(
    claims: list[ClaimResult], machine: str, name: str
) -> tuple[list[ClaimResult], list[ClaimResult], list[ClaimResult], list[ClaimResult]]:
    """(claims, preconditions, the article's claims, our extensions) of experiment `name` on `machine`."""
    everything = [c for c in claims if c["machine"] == machine and c["experiment"] == name]
    mine = [c for c in everything if c.get("role", "claim") == "claim"]
    pre = [c for c in everything if c.get("role") == "precondition"]
    judged = [c for c in mine if not c.get("by_construction")]
    article = [c for c in judged if c.get("source", "article") == "article"]
    extension = [c for c in mine if c.get("source") == "extension" or c.get("by_construction")]
    return mine, pre, article, extension


def _trial_tallies(
    runs: list[RunRecord], chosen: dict[Key, str]
) -> tuple[dict[Key, int], dict[Key, list[str]], dict[Key, set[str]]]:
    """Per (machine, experiment), over the trials of its chosen run: the ok count, the failed trials'
    errors and the skipped variants with their reasons."""
    ok: dict[Key, int] = {}
    failed: dict[Key, list[str]] = {}
    skipped: dict[Key, set[str]] = {}
    for run in runs:
        for t in run["trials"]:
            key = (run["machine"], t["experiment"])
            if chosen.get(key) != run["run_id"]:
                continue
            if t.get("status") == TrialStatus.OK.value:
                ok[key] = ok.get(key, 0) + 1
            elif t.get("status") == TrialStatus.FAILED.value:
                failed.setdefault(key, []).append(str(t.get("error") or "failed without an error message"))
            elif t.get("status") == TrialStatus.SKIPPED.value:
                skipped.setdefault(key, set()).add(f"{t['variant']}: {t.get('error') or 'skipped'}")
    return ok, failed, skipped


def network_profile(run: RunRecord | None) -> NetworkProfile:
    """The lab's network profile a run recorded: {name, rate_bps, measured_bps} (empty when unknown)."""
    lab = json_object(json_object(run.get("fingerprint") if run else None).get("lab"))
    prof = lab.get("profile")
    # the run file's fingerprint is open JSON (validated by harness.results, not typed per field)
    return cast(NetworkProfile, dict(prof)) if isinstance(prof, dict) else {}


def _network_precondition(definition: ExperimentDef, run: RunRecord | None) -> ClaimResult | None:
    """An experiment that requires a shaped network is inconclusive unless its run was shaped: the
    profile is not "unlimited" and the measured rate is within 2x of the configured one."""
    if "shaped-network" not in (definition.get("requires") or []):
        return None
    prof = network_profile(run)
    name, rate, measured = prof.get("name"), prof.get("rate_bps") or 0, prof.get("measured_bps")
    shaped = bool(name) and name != "unlimited" and rate > 0 and (measured is None or measured <= 2 * rate)
    figure = network_figure(name, measured)
    return {
        "role": "precondition",
        "label": "the network is shaped",
        "metric": "network profile",
        "verdict": Verdict.SUPPORTED if shaped else Verdict.NOT_SUPPORTED,
        "figure": figure,
        "reason": None,
        "source": "article",
        "primary": False,
        "kind": "check",
    }


def decide(row: ExperimentVerdict, claims: list[ClaimResult], preconditions: list[ClaimResult]) -> None:
    """Set row verdict, deciding claim and reason from the article's claims (extensions never decide).

    A precondition that does not hold makes the verdict "inconclusive" with "precondition not met
    (what was measured)": the test could not mean anything, so it neither supports nor refutes. Else
    the verdict is `combine` of the claims and the deciding claim is the first that failed (not
    supported), else the first inconclusive one, else the primary (or first) claim."""
    unmet = [c for c in preconditions if c["verdict"] != Verdict.SUPPORTED]
    if unmet:
        c = unmet[0]
        row["verdict"] = Verdict.INCONCLUSIVE
        row["deciding"] = c
        what = c["figure"] if c["verdict"] != NOT_MEASURED else f"not measured: {c['reason']}"
        row["reason"] = f"precondition not met ({c['label'] or c['metric']}: {what})"
        return
    row["verdict"] = combine([c["verdict"] for c in claims])
    for wanted in (Verdict.NOT_SUPPORTED, Verdict.INCONCLUSIVE, NOT_MEASURED):
        hit = next((c for c in claims if c["verdict"] == wanted), None)
        if hit is not None and row["verdict"] != Verdict.SUPPORTED:
            row["deciding"] = hit
            return
    row["deciding"] = next((c for c in claims if c["primary"]), claims[0] if claims else None)


def also_found(c: ClaimResult) -> str:
    """One line for an extension claim: what we checked beyond the article, and what came out (a value
    the experiment's settings decide is shown as such, without a verdict)."""
    if c.get("verdict") == BY_CONSTRUCTION:
        return f"{c['label'] or c['metric']}: {c['figure']}"
    return f"{c['label'] or c['metric']}: {c['figure']} ({c['verdict']})"


def combine(verdicts: Sequence[str]) -> Verdict:
    if not verdicts:
        return Verdict.MEASURED
    if all(v == Verdict.SUPPORTED for v in verdicts):
        return Verdict.SUPPORTED
    if any(v == Verdict.NOT_SUPPORTED for v in verdicts):
        return Verdict.NOT_SUPPORTED
    return Verdict.INCONCLUSIVE


def _catalog_order(defs: dict[str, ExperimentDef]) -> list[str]:
    """Calibration first (how far to trust the rest), then by name, as the catalog lists them."""
    return sorted(defs, key=lambda n: (defs[n].get("section") != "calibration", n))


# --------------------------------------------------------------------------- the analysis


@dataclass(frozen=True)
class Comparison:
    """A pair judged beside the experiments' own claims, as a claim is but without a p-value:
    `candidate` against `baseline` of `experiment` on `metric` (scenario cold), expecting `expect`.
    The article's figures are such pairs (`harness.report.article.FIGURES`)."""

    experiment: str
    baseline: str
    candidate: str
    metric: str = "image_bytes"
    expect: str = "lower"


@dataclass(frozen=True)
class ExperimentResult:
    """One experiment on one machine, judged: its verdict and why, every claim judged, the claim that
    decided, and its provenance (the run the verdict rests on, with that run's own calibration)."""

    machine: str
    experiment: str
    verdict: Verdict
    reason: str | None
    practice: str
    section: str
    claim: str  # what the experiment states, in words
    article: str  # the article's figure for it, in words
    cannot_show: str
    claims: list[ClaimResult]  # every claim of the experiment (article and extension), judged
    preconditions: list[ClaimResult]
    extension_claims: list[ClaimResult]
    primary: ClaimResult | None
    deciding: ClaimResult | None  # the claim (or precondition) that decided the verdict
    also_found: list[str]  # the extension claims, one line each: they never decide
    ok_trials: int
    failed_trials: int
    definition: ExperimentDef  # the experiment as the chosen run defined it
    run: RunRecord | None  # provenance: the run that decides this experiment
    network: NetworkProfile  # provenance: that run's network profile (`network_profile`)
    calibration: Calibration | None  # that run's own calibration (`run_calibration`), for time claims


@dataclass(frozen=True)
class Analysis:
    """Everything `analyze` decides about a set of runs; the report, its article view and the summary
    only render it."""

    selection: RunSelection  # which runs were judged together, which were left out or pooled
    runs: list[RunRecord]  # the runs judged
    table: pd.DataFrame  # the tidy DataFrame the verdicts rest on (the chosen run per machine and experiment)
    definitions: Definitions  # {machine: {experiment: definition}}
    chosen: dict[Key, str]  # {(machine, experiment): the run id that decides it}
    claims: list[ClaimResult]  # every claim and precondition judged, per machine
    experiments: list[ExperimentResult]  # per machine (sorted), in catalog order
    calibrations: dict[str, Calibration]  # {run id: its calibration} for every run looked at
    comparisons: dict[tuple[str, Comparison], ClaimResult]  # {(machine, comparison): judged}

    def run(self, machine: str, experiment: str) -> RunRecord | None:
        """The run that decides `experiment` on `machine` (None when no run planned it)."""
        rid = self.chosen.get((machine, experiment))
        return next((r for r in self.runs if r["run_id"] == rid), None)


def analyze(
    runs: Iterable[RunRecord],
    *,
    latest: bool = True,
    pool: bool = False,
    with_p: bool = True,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    comparisons: Iterable[Comparison] = (),
    table: pd.DataFrame | None = None,
    definitions: Mapping[str, ExperimentDef] | None = None,
) -> Analysis:
    """The analysis: runs in, every verdict out. The one place claims are judged.

    With `latest` (what the report shows): the runs that may be judged together (`select_runs`, or all
    of them with `pool`), the latest run per machine and experiment (`latest_run_ids`), time claims only
    where that run passed its own calibration (`calibrate`). Without it, every run of a machine is pooled
    and no calibration is applied (the summary at the end of one run). Then per machine and experiment:
    every claim and precondition (`evaluate_claim`), the verdict and the deciding claim
    (`experiment_verdicts`), the run it rests on and that run's calibration; and each `comparison` per
    machine whose runs define its experiment.

    With `table` (a tidy DataFrame its caller selected, as the gate does per side: the latest rows, its
    machines paired or pooled), only the claims are judged: on those rows, every machine of the table
    against `definitions` ({experiment: definition}); no selection, no calibration, no experiment
    verdicts (`experiments` is empty: the table's machines need not be the runs')."""
    runs = list(runs)
    if table is not None:
        return _claims_of_table(runs, table, definitions or {}, with_p=with_p, n_boot=n_boot, seed=seed)
    if latest:
        selection = select_runs(sorted(runs, key=lambda r: (r["machine"], r["run_id"])), pool=pool)
        runs = selection.runs
        df = select_latest(runs)[1]
    else:
        selection = RunSelection(runs)
        df = load_table(runs=runs)
    defs = experiments_by_machine(runs)
    claims = _judge_every_claim(df, defs, with_p=with_p, n_boot=n_boot, seed=seed)
    chosen = latest_run_ids(runs)
    calibrations = calibrate(claims, runs, n_boot=n_boot, seed=seed) if latest else {}
    by_id: dict[str, RunRecord] = {}
    for r in runs:
        by_id.setdefault(r["run_id"], r)
    experiments = []
    for row in experiment_verdicts(runs, claims):
        machine, name = row["machine"], row["experiment"]
        definition = defs[machine][name]
        run = by_id.get(chosen.get((machine, name), ""))
        calibration = None
        if latest and run is not None and name != "calibration" and measures_time(definition):
            if run["run_id"] not in calibrations:
                calibrations[run["run_id"]] = run_calibration(run, n_boot=n_boot, seed=seed)
            calibration = calibrations[run["run_id"]]
        experiments.append(_experiment_result(row, definition, run, calibration))
    judged = {
        (machine, c): _judge_comparison(df, machine, defs[machine][c.experiment], c, n_boot=n_boot, seed=seed)
        for machine in sorted(defs)
        for c in dict.fromkeys(comparisons)
        if c.experiment in defs[machine]
    }
    return Analysis(selection, runs, df, defs, chosen, claims, experiments, calibrations, judged)


def _claims_of_table(
    runs: list[RunRecord],
    table: pd.DataFrame,
    definitions: Mapping[str, ExperimentDef],
    *,
    with_p: bool,
    n_boot: int,
    seed: int,
) -> Analysis:
    """`analyze` with a table: every claim of `definitions` judged per machine of `table`."""
    df, defs = _inputs(table, definitions)
    claims = _judge_every_claim(df, defs, with_p=with_p, n_boot=n_boot, seed=seed)
    return Analysis(RunSelection(runs), runs, df, defs, latest_run_ids(runs), claims, [], {}, {})


def _experiment_result(
    row: ExperimentVerdict, definition: ExperimentDef, run: RunRecord | None, calibration: Calibration | None
) -> ExperimentResult:
    return ExperimentResult(
        machine=row["machine"],
        experiment=row["experiment"],
        verdict=Verdict(row["verdict"]),
        reason=row["reason"],
        practice=row["practice"],
        section=row["section"],
        claim=row["claim"],
        article=row["article"],
        cannot_show=row["cannot_show"],
        claims=row["claims"],
        preconditions=row["preconditions"],
        extension_claims=row["extension_claims"],
        primary=row["primary"],
        deciding=row["deciding"],
        also_found=row["also_found"],
        ok_trials=row["ok_trials"],
        failed_trials=row["failed_trials"],
        definition=definition,
        run=run,
        network=network_profile(run),
        calibration=calibration,
    )


def _judge_comparison(
    df: pd.DataFrame, machine: str, definition: ExperimentDef, c: Comparison, *, n_boot: int, seed: int
) -> ClaimResult:
    """A `Comparison` judged as a claim of its experiment (index -1, no p-value); not measured, with the
    reason, when the experiment has no such variant."""
    known = {v.get("name") for v in definition.get("variants", [])}
    missing = [v for v in (c.baseline, c.candidate) if v not in known]
    if missing:
        return {
            "verdict": NOT_MEASURED,
            "reason": f"experiment {c.experiment} has no variant {', '.join(missing)} in this run",
        }
    claim: ClaimDef = {
        "metric": c.metric,
        "expect": c.expect,
        "baseline": c.baseline,
        "candidate": c.candidate,
    }
    return evaluate_claim(df, machine, definition, -1, claim, n_boot=n_boot, seed=seed, with_p=False)


def measures_time(definition: ExperimentDef) -> bool:
    """The experiment states a claim about a time (the claims a run's calibration vouches for)."""
    return any(kind_of(c.get("metric", "")) == "time" for c in definition.get("claims") or [])


# --------------------------------------------------------------------------- steps


STEP_COLUMNS = [
    "machine",
    "run_id",
    "experiment",
    "variant",
    "scenario",
    "trial",
    "index",
    "name",
    "stage",
    "instruction",
    "cached",
    "seconds",
    "start_offset",
    "end_offset",
]


def steps_table(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """Step timings of every ok trial: one row per Dockerfile step (offsets in s from the
    build's first step start)."""
    import pandas as pd  # lazy: pandas costs ~0.5 s to import; verdicts from run dicts need none

    rows: list[list[object]] = []
    for run in runs:
        for t in run["trials"]:
            if t.get("status") != TrialStatus.OK.value:
                continue
            for s in t.get("steps") or []:
                rows.append(
                    [
                        run["machine"],
                        run["run_id"],
                        t["experiment"],
                        t["variant"],
                        t["scenario"],
                        int(t["trial"]),
                        int(s.get("index") or 0),
                        str(s.get("name", "")),
                        str(s.get("stage") or ""),
                        str(s.get("instruction") or ""),
                        bool(s.get("cached")),
                        _num(s.get("seconds")),
                        _num(s.get("start_offset")),
                        _num(s.get("end_offset")),
                    ]
                )
    df = pd.DataFrame(rows, columns=STEP_COLUMNS)
    return df.sort_values(
        ["machine", "run_id", "experiment", "variant", "scenario", "trial", "index"], kind="stable"
    ).reset_index(drop=True)


def _num(x: object) -> float:
    if not isinstance(x, (int, float, str)):  # None, a list ...: what float() refuses with a TypeError
        return math.nan
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def representative_trial(
    df: pd.DataFrame,
    machine: str,
    experiment: str,
    variant: str,
    scenario: str,
    metric: str = "build_seconds",
) -> tuple[str, int] | None:
    """(run_id, trial) whose `metric` is the median of its cell (the lower middle one when n is
    even; ties broken by run and trial): the build a waterfall shows."""
    sel = df[
        (df["machine"] == machine)
        & (df["experiment"] == experiment)
        & (df["variant"] == variant)
        & (df["scenario"] == scenario)
        & (df["metric"] == metric)
    ]
    if sel.empty:
        return None
    ordered = sel.sort_values(["value", "run_id", "trial"], kind="stable")
    row = ordered.iloc[(len(ordered) - 1) // 2]
    return str(row["run_id"]), int(row["trial"])
