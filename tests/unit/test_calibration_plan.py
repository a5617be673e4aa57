"""Calibration's power in the plan (issue 11): its n is a floor, sizes run few trials, and runs that judge
build time carry a short calibration of their own."""

from __future__ import annotations

from collections import Counter

from harness.experiment import load_experiment, select
from harness.paths import experiments_dir
from harness.runner import SHORT_CALIBRATION_ROUNDS, RunOptions, make_plan, with_calibration


def _calibration():
    return load_experiment(experiments_dir() / "calibration")


def test_trials_and_quick_cannot_lower_calibrations_n():
    """--trials 2 and --quick still plan calibration's min_trials rounds of the sleep variants."""
    cal = _calibration()
    assert cal.min_trials >= 20
    for opts in (RunOptions(trials=2), RunOptions(quick=True), RunOptions()):
        counts = Counter(e["variant"] for e in make_plan([cal], opts, seed=1))
        assert counts["sleep-0"] == counts["sleep-1"] == counts["sleep-0-25"] == cal.min_trials
        assert counts["file-0"] == counts["file-10m"] == 3  # exact sizes: a variant's trials cap


def test_every_calibration_claim_states_its_source_and_both_time_metrics_are_claimed():
    """Calibration claims the sleeps on build_seconds and build_span_seconds; it is the harness's
    self-check, not the article's, so every claim is an extension."""
    cal = _calibration()
    timed = {(c.metric, c.candidate) for c in cal.claims if c.metric.endswith("seconds")}
    assert timed == {
        (m, v) for m in ("build_seconds", "build_span_seconds") for v in ("sleep-0-25", "sleep-1")
    }
    assert {c.source for c in cal.claims} == {"extension"}


def test_a_run_judging_build_time_gets_a_short_calibration():
    """instruction-order claims a build time: the run gains sleep-0/sleep-1 with their two +1.0 s claims."""
    (short, exp) = with_calibration(select(["instruction-order"]))
    assert (short.name, exp.name) == ("calibration", "instruction-order")
    assert [v.name for v in short.variants] == ["sleep-0", "sleep-1"]
    assert {c.metric for c in short.claims} == {"build_seconds", "build_span_seconds"}
    assert all(c.candidate == "sleep-1" for c in short.claims)
    assert short.trials == short.min_trials == SHORT_CALIBRATION_ROUNDS < 50


def test_no_calibration_added_without_time_claims_or_when_selected():
    """A run without time claims, or one that already runs calibration, is left as it is."""
    assert [e.name for e in with_calibration(select(["secrets"]))] == ["secrets"]
    both = select(["calibration", "instruction-order"])
    assert with_calibration(both) == both
