"""harness.analysis: summaries, claims, verdicts, consistency findings (no Docker, no files written)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import analysis, stats
from harness.results import TIDY_COLUMNS, load_runs, load_table

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results"


@pytest.fixture(scope="module")
def runs() -> list[dict]:
    return load_runs(FIXTURE)


@pytest.fixture(scope="module")
def df(runs):
    return load_table(runs=runs)


def tidy(rows: list[tuple]) -> pd.DataFrame:
    """rows of (machine, experiment, variant, scenario, trial, metric, value)."""
    return pd.DataFrame(
        [("run1", m, e, v, s, t, metric, float(x), "") for m, e, v, s, t, metric, x in rows],
        columns=TIDY_COLUMNS,
    )


def test_summary_table_per_cell():
    """summary_table gives n, median, quartiles, IQR, MAD, unit and CV per cell; an outlier moves CV, not the median."""
    df = tidy(
        [("a", "x", "v", "cold", t, "build_seconds", s) for t, s in enumerate([1.0, 2.0, 3.0, 4.0, 100.0])]
    )
    table = analysis.summary_table(df)
    assert list(table.columns) == analysis.SUMMARY_COLUMNS
    row = table.iloc[0]
    assert (row["n"], row["median"], row["min"], row["max"]) == (5, 3.0, 1.0, 100.0)
    assert row["q1"] == 2.0 and row["q3"] == 4.0 and row["iqr"] == 2.0
    assert row["mad"] == 1.0
    assert row["unit"] == "s"
    assert row["cv"] > 1  # one slow trial makes the mean-based CV large; the median stays put


def test_machines_are_never_pooled():
    """summary_table keeps one row per machine: trials of two machines are never pooled."""
    rows = [
        (m, "x", "v", "cold", t, "build_seconds", base + t)
        for m, base in (("fast", 1.0), ("slow", 10.0))
        for t in range(3)
    ]
    table = analysis.summary_table(tidy(rows))
    assert list(table["machine"]) == ["fast", "slow"]
    assert list(table["median"]) == [2.0, 11.0]
    assert list(table["n"]) == [3, 3]


def test_empty_table_gives_empty_summaries():
    """An empty table gives empty summary, size-consistency and build-CV tables (no error)."""
    empty = tidy([])
    assert analysis.summary_table(empty).empty
    assert analysis.size_consistency(empty).empty
    assert analysis.build_cv(empty).empty


def test_size_consistency_lists_exact_metrics_that_vary(df):
    """size_consistency lists an exact size metric whose value differs between trials, with its values."""
    found = analysis.size_consistency(df)
    assert len(found) == 1
    row = found.iloc[0]
    assert (row["experiment"], row["variant"], row["metric"], row["distinct"]) == (
        "layers",
        "split",
        "image_bytes",
        2,
    )
    assert row["values"] == [310_000_000.0, 310_004_096.0]


def test_times_that_vary_are_not_size_findings():
    """Times that vary between trials are not size-consistency findings."""
    rows = [("a", "x", "v", "cold", t, "build_seconds", 1.0 + t) for t in range(3)]
    assert analysis.size_consistency(tidy(rows)).empty


def test_build_cv_per_variant(df):
    """build_cv gives one CV per machine, experiment, variant and scenario."""
    cv = analysis.build_cv(df)
    assert set(cv.columns) == {"machine", "experiment", "variant", "scenario", "n", "median", "cv"}
    assert ((cv["cv"] > 0) & (cv["cv"] < 1)).all()
    assert len(cv[cv["machine"] == "synthetic-b"]) == 2


def claims_by(claims, experiment, machine="synthetic-a"):
    return [c for c in claims if c["experiment"] == experiment and c["machine"] == machine]


def test_evaluate_claims_ratio_and_check(runs):
    """A ratio claim gets its CI, verdict and figure; a check claim counts trials matching the expectation."""
    claims = analysis.evaluate_claims(runs, latest=True)
    ms = claims_by(claims, "multi-stage")
    ratio, check = ms
    assert ratio["kind"] == "ratio" and ratio["verdict"] == "supported"
    assert ratio["low"] <= ratio["ratio"] <= ratio["high"] < 1
    assert ratio["baseline_median"] == 410_000_000 and ratio["candidate_median"] == 55_000_000
    assert "multi-stage" not in ratio["figure"]
    assert "single 410 MB → multi 55.0 MB" in ratio["figure"]
    # an exact size the same in every trial is stated as exact: no bootstrap interval, no p-value
    assert (
        ratio["interval"] == "exact"
        and ratio["p"] is None
        and "exact: the same in every trial" in ratio["figure"]
    )
    assert "95 % CI" not in ratio["figure"]
    assert ratio["figure"].endswith("expected lower")
    assert check["kind"] == "check" and check["verdict"] == "supported"
    assert check["figure"] == "multi: gcc_present = no in 5 of 5 trials; expected no"
    layers = claims_by(claims, "layers")[0]
    assert layers["verdict"] == "inconclusive" and layers["low"] < 1 < layers["high"]


def test_claims_stay_per_machine(runs):
    """Claims are evaluated per machine, each with its own trial counts."""
    claims = analysis.evaluate_claims(runs)
    b = claims_by(claims, "multi-stage", "synthetic-b")
    assert [c["n_baseline"] for c in b if c["kind"] == "ratio"] == [3]
    assert {c["machine"] for c in claims} == {"synthetic-a", "synthetic-b"}


def test_claim_on_a_variant_not_measured_says_why(runs):
    """A claim on a variant the run did not measure is 'not measured' with the variant's skip reason."""
    run = copy.deepcopy(next(r for r in runs if r["machine"] == "synthetic-a"))
    run["experiments"]["base-image"]["claims"].append(
        {
            "metric": "image_bytes",
            "scenario": "cold",
            "expect": "lower",
            "baseline": "full",
            "candidate": "alpine",
        }
    )
    claims = claims_by(analysis.evaluate_claims([run]), "base-image")
    assert claims[-1]["verdict"] == analysis.NOT_MEASURED
    assert claims[-1]["reason"] == "alpine: needs --bases registry"


def test_evaluate_claims_from_a_dataframe(df, runs):
    """evaluate_claims accepts a tidy table plus experiment definitions instead of runs."""
    defs = analysis.experiments_by_machine(runs)["synthetic-a"]
    claims = analysis.evaluate_claims(df[df["machine"] == "synthetic-a"], defs)
    assert {c["experiment"] for c in claims} == set(defs)
    assert all(c["machine"] == "synthetic-a" for c in claims)


def test_evaluate_claims_accepts_experiment_objects(df, runs):
    """evaluate_claims accepts experiment objects with to_dict() as definitions."""

    class Fake:
        def __init__(self, d):
            self.d = d

        def to_dict(self):
            return self.d

    defs = analysis.experiments_by_machine(runs)["synthetic-a"]
    claims = analysis.evaluate_claims(df, [Fake(defs["multi-stage"])])
    assert {c["experiment"] for c in claims} == {"multi-stage"}


def test_experiment_verdicts(runs):
    """experiment_verdicts gives one verdict per machine and experiment, calibration first, with reasons and primary claim."""
    verdicts = analysis.experiment_verdicts(runs, analysis.evaluate_claims(runs, latest=True))
    by = {(v["machine"], v["experiment"]): v for v in verdicts}
    assert len(by) == 8
    assert verdicts[0]["experiment"] == "calibration"  # calibration first: how far to trust the rest
    assert by[("synthetic-a", "multi-stage")]["verdict"] == "supported"
    assert by[("synthetic-a", "layers")]["verdict"] == "inconclusive"
    hc = by[("synthetic-a", "healthcheck")]
    assert hc["verdict"] == analysis.NOT_MEASURED and hc["ok_trials"] == 0 and hc["failed_trials"] == 10
    assert "never became healthy" in hc["reason"]
    assert by[("synthetic-a", "multi-stage")]["primary"]["metric"] == "image_bytes_compressed"


def test_combine_verdicts():
    """combine: any 'not supported' wins, then inconclusive/not measured; all supported is supported; none is 'measured'."""
    assert analysis.combine(["supported", "supported"]) == "supported"
    assert analysis.combine(["supported", "not supported", "inconclusive"]) == "not supported"
    assert analysis.combine(["supported", "inconclusive"]) == "inconclusive"
    assert analysis.combine(["supported", analysis.NOT_MEASURED]) == "inconclusive"
    assert analysis.combine([]) == "measured"


def test_latest_run_per_machine_and_experiment(runs):
    """select_latest keeps the newest run per machine and experiment; latest_runs agrees."""
    old = copy.deepcopy(next(r for r in runs if r["machine"] == "synthetic-b"))
    old["run_id"] = "20200101T000000Z-aaaaaa"
    for t in old["trials"]:
        t["metrics"] = {k: v * 2 for k, v in t["metrics"].items()}
    both = [*runs, old]
    _, latest = analysis.select_latest(both)
    assert "20200101T000000Z-aaaaaa" not in set(latest["run_id"])
    assert set(analysis.latest_runs(load_table(runs=both))["run_id"]) == set(latest["run_id"])


def test_steps_table_and_representative_trial(runs, df):
    """steps_table has the step columns; representative_trial picks the median build trial, None for no cell."""
    steps = analysis.steps_table(runs)
    assert list(steps.columns) == analysis.STEP_COLUMNS
    assert steps["cached"].dtype == bool
    rep = analysis.representative_trial(df, "synthetic-a", "multi-stage", "multi", "cold")
    cell = df[
        (df["machine"] == "synthetic-a")
        & (df["experiment"] == "multi-stage")
        & (df["variant"] == "multi")
        & (df["metric"] == "build_seconds")
    ]
    chosen = cell[cell["trial"] == rep[1]]["value"].iloc[0]
    assert chosen == cell["value"].median()  # odd n: the median trial itself
    assert analysis.representative_trial(df, "synthetic-a", "nope", "multi", "cold") is None


def test_delta_claims_recover_known_effects(runs):
    """Delta claims recover the calibration's known effects (+9,437,184 B exactly, +1 s within tolerance)."""
    calib = claims_by(analysis.evaluate_claims(runs), "calibration")
    exact, timed = [c for c in calib if c["kind"] == "delta"]
    assert exact["verdict"] == "supported" and exact["delta"] == 9_437_184
    assert exact["figure"] == (
        "file-10mib − file-1mib, image_bytes: +9,437,184 B (the same in every trial; expected +9,437,184 B exactly)"
    )
    assert timed["verdict"] == "supported"
    assert timed["low"] <= timed["delta"] <= timed["high"]
    assert "expected +1.000 s ± 0.200 s" in timed["figure"]  # printed at the tolerance's precision


def test_delta_ci_and_verdict():
    """delta_ci gives the difference with a bootstrap CI (None when too few); delta_verdict judges it against the tolerance."""
    d = stats.delta_ci([1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.1, 1.9, 2.0, 2.05])
    assert d["delta"] == pytest.approx(1.0)
    assert d["low"] <= 1.0 <= d["high"]
    same = stats.delta_ci([5, 5], [7, 7])
    assert (same["delta"], same["low"], same["high"]) == (2.0, 2.0, 2.0)
    assert stats.delta_ci([], [1.0])["delta"] is None
    assert stats.delta_ci([1.0], [2.0])["low"] is None
    assert stats.delta_verdict(0.98, 1.02, 1.0, 0.05) == "supported"
    assert stats.delta_verdict(0.5, 1.2, 1.0, 0.05) == "inconclusive"
    assert stats.delta_verdict(1.5, 1.7, 1.0, 0.05) == "not supported"
    assert stats.delta_verdict(2.0, 2.0, 2.0, 0.0) == "supported"
    assert stats.delta_verdict(None, None, 1.0, 0.1) == "inconclusive"


def test_exact_metric_from_one_trial_is_judged_on_its_value():
    """One trial per variant: a size ratio gets a degenerate interval (a verdict); a time does not."""
    import pandas as pd

    from harness.analysis import evaluate_claim

    rows = [
        ("r", "m", "e", "a", "cold", 0, "image_bytes", 1000.0, "B"),
        ("r", "m", "e", "b", "cold", 0, "image_bytes", 400.0, "B"),
        ("r", "m", "e", "a", "cold", 0, "build_seconds", 2.0, "s"),
        ("r", "m", "e", "b", "cold", 0, "build_seconds", 1.0, "s"),
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "run_id",
            "machine",
            "experiment",
            "variant",
            "scenario",
            "trial",
            "metric",
            "value",
            "unit",
        ],
    )
    definition = {"name": "e", "variants": [{"name": "a"}, {"name": "b"}], "not_measured": {}}
    size = evaluate_claim(
        df,
        "m",
        definition,
        0,
        {"metric": "image_bytes", "expect": "lower", "baseline": "a", "candidate": "b"},
    )
    assert size["verdict"] == "supported" and size["low"] == size["high"] == 0.4
    time_ = evaluate_claim(
        df,
        "m",
        definition,
        1,
        {"metric": "build_seconds", "expect": "lower", "baseline": "a", "candidate": "b"},
    )
    assert time_["verdict"] == "inconclusive"


# ---- issue 11: sources, preconditions, deciding claims, all-trial rules ----------


def _synthetic(rows, definition_claims, preconditions=()):
    import pandas as pd

    df = pd.DataFrame(
        rows,
        columns=[
            "run_id",
            "machine",
            "experiment",
            "variant",
            "scenario",
            "trial",
            "metric",
            "value",
            "unit",
        ],
    )
    definition = {
        "name": "e",
        "variants": [{"name": "a"}, {"name": "b"}],
        "not_measured": {},
        "claims": list(definition_claims),
        "preconditions": list(preconditions),
    }
    return df, definition


def test_a_precondition_miss_makes_the_verdict_inconclusive(runs):
    """A precondition that does not hold turns the verdict into inconclusive: precondition not met."""
    run = copy.deepcopy(next(r for r in runs if r["machine"] == "synthetic-a"))
    run["experiments"]["multi-stage"]["preconditions"] = [
        {
            "label": "the builder stage has gcc",
            "metric": "gcc_present",
            "variant": "multi",
            "op": "==",
            "value": 1,
        }
    ]
    claims = analysis.evaluate_claims([run])
    (row,) = [v for v in analysis.experiment_verdicts([run], claims) if v["experiment"] == "multi-stage"]
    assert row["verdict"] == "inconclusive"
    assert row["reason"].startswith(
        "precondition not met (the builder stage has gcc: multi: gcc_present = no"
    )
    assert row["deciding"]["role"] == "precondition"
    assert all(c["verdict"] == "supported" for c in row["claims"])  # the claims alone would have passed


def test_extension_claims_never_decide_the_practice_verdict(runs):
    """A failing extension claim is listed under also_found; the article's claims decide."""
    run = copy.deepcopy(next(r for r in runs if r["machine"] == "synthetic-a"))
    run["experiments"]["multi-stage"]["claims"].append(
        {
            "label": "multi has gcc",
            "metric": "gcc_present",
            "variant": "multi",
            "op": "==",
            "value": 1,
            "source": "extension",
        }
    )
    claims = analysis.evaluate_claims([run])
    (row,) = [v for v in analysis.experiment_verdicts([run], claims) if v["experiment"] == "multi-stage"]
    assert row["verdict"] == "supported"
    assert row["also_found"] == [
        "multi has gcc: multi: gcc_present = no in 5 of 5 trials; expected yes (not supported)"
    ]
    assert row["deciding"]["source"] == "article"


def test_the_deciding_claim_is_the_one_that_failed(runs):
    """A not-supported verdict names the failing claim, not the primary one."""
    run = copy.deepcopy(next(r for r in runs if r["machine"] == "synthetic-a"))
    run["experiments"]["multi-stage"]["claims"].append(
        {"label": "multi has gcc", "metric": "gcc_present", "variant": "multi", "op": "==", "value": 1}
    )
    claims = analysis.evaluate_claims([run])
    (row,) = [v for v in analysis.experiment_verdicts([run], claims) if v["experiment"] == "multi-stage"]
    assert row["verdict"] == "not supported" and row["deciding"]["label"] == "multi has gcc"


def test_flag_in_four_of_five_trials_fails_and_says_so():
    """gcc_present 1 in 4 of 5 trials: `== yes` is not supported and the figure gives both counts."""
    rows = [("r", "m", "e", "a", "cold", t, "gcc_present", float(t != 2), "") for t in range(5)]
    df, d = _synthetic(rows, [])
    c = analysis.evaluate_claim(
        df, "m", d, 0, {"metric": "gcc_present", "variant": "a", "op": "==", "value": 1}
    )
    assert c["verdict"] == "not supported" and c["k"] == 4
    assert c["figure"] == "a: gcc_present = yes in 4 of 5 trials and no in 1 of 5 trials; expected yes"


def test_time_ratio_needs_five_trials_and_reports_detectable_change():
    """A time ratio from 3 trials per variant is inconclusive however clear; from 5 it gets an MDE."""
    rows = []
    for t in range(5):
        rows += [("r", "m", "e", "a", "cold", t, "build_seconds", 2.0 + 0.01 * t, "s")]
        rows += [("r", "m", "e", "b", "cold", t, "build_seconds", 1.0 + 0.01 * t, "s")]
    df, d = _synthetic(rows, [])
    claim = {"metric": "build_seconds", "expect": "lower", "baseline": "a", "candidate": "b"}
    few = analysis.evaluate_claim(df[df["trial"] < 3], "m", d, 0, claim)
    assert few["verdict"] == "inconclusive" and "n >= 5" in few["reason"]
    enough = analysis.evaluate_claim(df, "m", d, 0, claim)
    assert enough["verdict"] == "supported" and enough["mde"] > 0
    assert "detectable change" in enough["figure"]


def test_time_threshold_needs_two_trials():
    """An absolute time check on one trial is inconclusive; on several it is judged on an interval."""
    rows = [("r", "m", "e", "a", "cold", t, "build_seconds", 0.5 + 0.01 * t, "s") for t in range(3)]
    df, d = _synthetic(rows, [])
    claim = {"metric": "build_seconds", "variant": "a", "op": "<", "value": 1.0}
    assert analysis.evaluate_claim(df[df["trial"] == 0], "m", d, 0, claim)["verdict"] == "inconclusive"
    assert analysis.evaluate_claim(df, "m", d, 0, claim)["verdict"] == "supported"


def test_smaller_but_broken_candidate_cannot_win():
    """A smaller candidate whose smoke check failed in one trial: not supported, smaller but broken."""
    rows = []
    for t in range(3):
        rows += [("r", "m", "e", "a", "cold", t, "image_bytes", 1000.0, "B")]
        rows += [("r", "m", "e", "b", "cold", t, "image_bytes", 400.0, "B")]
        rows += [("r", "m", "e", "b", "cold", t, "smoke_ok", float(t != 1), "")]
    df, d = _synthetic(rows, [])
    d["smoke_failures"] = {"b": "exec /app: no such file or directory"}
    c = analysis.evaluate_claim(
        df, "m", d, 0, {"metric": "image_bytes", "expect": "lower", "baseline": "a", "candidate": "b"}
    )
    assert c["verdict"] == "not supported"
    assert "smaller but broken" in c["reason"] and "exec /app: no such file" in c["figure"]


def test_paired_rounds_narrow_a_delta_interval():
    """Round-shared noise cancels when interleaved rounds are resampled as pairs."""
    rng = np.random.default_rng(0)
    load = rng.normal(0, 0.1, 20)  # each round's shared slowdown
    b = 0.2 + load + rng.normal(0, 0.01, 20)
    c = 1.2 + load + rng.normal(0, 0.01, 20)
    paired = stats.delta_ci(b, c, paired=True)
    independent = stats.delta_ci(b, c)
    assert paired["high"] - paired["low"] < (independent["high"] - independent["low"]) / 2
    assert paired["low"] <= 1.0 <= paired["high"]


def test_shaped_network_precondition_reads_the_run_profile(runs):
    """An experiment requiring a shaped network is inconclusive when its run recorded an unlimited profile."""
    run = copy.deepcopy(next(r for r in runs if r["machine"] == "synthetic-a"))
    run["experiments"]["multi-stage"]["requires"] = ["shaped-network"]
    run.setdefault("fingerprint", {}).setdefault("lab", {})["profile"] = {
        "name": "unlimited",
        "rate_bps": 0.0,
        "measured_bps": 8e9,
    }
    (row,) = [v for v in analysis.experiment_verdicts([run]) if v["experiment"] == "multi-stage"]
    assert row["verdict"] == "inconclusive"
    assert row["reason"].startswith("precondition not met (the network is shaped: network profile unlimited")
    run["fingerprint"]["lab"]["profile"] = {"name": "100mbit", "rate_bps": 1e8, "measured_bps": 1.001e8}
    (row,) = [v for v in analysis.experiment_verdicts([run]) if v["experiment"] == "multi-stage"]
    assert row["verdict"] == "supported"


def test_a_carried_short_calibration_does_not_replace_the_calibration_run():
    """The latest run's short calibration (sleep-0/sleep-1 only) describes that run; the calibration row
    still comes from the run that was asked for calibration, even though it is older."""
    full = {"section": "calibration", "variants": [{"name": n} for n in ("sleep-0", "sleep-0-25", "sleep-1")]}
    short = {"section": "calibration", "variants": [{"name": "sleep-0"}, {"name": "sleep-1"}]}
    ok = [{"experiment": "calibration", "status": "ok"}]
    runs = [
        {
            "machine": "m",
            "run_id": "20260101T000000Z-aaaaaa",
            "experiments": {"calibration": full},
            "trials": ok,
        },
        {
            "machine": "m",
            "run_id": "20260102T000000Z-bbbbbb",
            "experiments": {"calibration": short},
            "trials": ok,
        },
    ]
    assert analysis.carried(short) and not analysis.carried(full)
    assert analysis.latest_run_ids(runs)[("m", "calibration")] == "20260101T000000Z-aaaaaa"
    assert analysis.latest_run_ids(runs[1:])[("m", "calibration")] == "20260102T000000Z-bbbbbb"


def test_a_smoke_failure_on_an_incomplete_stand_in_is_inconclusive():
    """A smaller image that fails its smoke check is 'not supported' (smaller but broken), unless its
    base is a lab stand-in that declares what it leaves out: then the claim is inconclusive."""
    rows = [
        ("r", "m", "e", v, "cold", t, metric, value, "")
        for t in range(3)
        for v, size, ok in (("big", 200.0, 1.0), ("small", 50.0, 0.0))
        for metric, value in (("image_bytes", size), ("smoke_ok", ok))
    ]
    df = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    base = {"kind": "ratio", "verdict": "supported", "metric": "image_bytes", "candidate": "small"}
    base |= {"scenario": "cold", "figure": "x"}
    plain = {"name": "e", "smoke_failures": {"small": "No module named '_ssl'"}}
    res = analysis._smoke_rule(dict(base), df, "m", plain)
    assert res["verdict"] == "not supported" and "smaller but broken" in res["reason"]
    gaps = {**plain, "stand_in_gaps": {"small": ["OpenSSL: no ssl module"]}}
    res = analysis._smoke_rule(dict(base), df, "m", gaps)
    assert res["verdict"] == "inconclusive" and "OpenSSL" in res["reason"] and "stand-in" in res["reason"]
