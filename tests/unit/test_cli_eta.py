"""The run's ETA comes from measured trial times and is right within 25 % after the first tenth."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from harness.progress import Progress, trial_priors

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "eta"


def _seconds(t: dict) -> float:
    if not t.get("started_at") or not t.get("ended_at"):
        return 0.0
    a, b = (datetime.fromisoformat(t[k].replace("Z", "+00:00")) for k in ("started_at", "ended_at"))
    return (b - a).total_seconds()


def _replay(trials: list[dict], priors: dict, scale: float = 1.0) -> list[tuple[int, float, float]]:
    """Feed the trials to Progress in order; (index, eta, actual remaining) after each one."""
    progress = Progress(plain=True, stream=open("/dev/null", "w"))  # noqa: SIM115
    progress.set_plan(trials, priors)
    progress.start(len(trials))
    durations = [_seconds(t) * scale for t in trials]
    out = []
    for i, t in enumerate(trials):
        progress.trial_started(t["experiment"], t["variant"], t["scenario"], t["trial"])
        progress.trial_finished(t["status"], durations[i])
        out.append((i, progress.eta_seconds() or 0.0, sum(durations[i + 1 :])))
    return out


def _worst_error_after_first_tenth(points: list[tuple[int, float, float]], n: int) -> float:
    return max(abs(eta - actual) / actual for i, eta, actual in points if i + 1 >= n / 10 and actual >= 30)


def test_eta_within_25_percent_with_priors_from_another_run() -> None:
    """Priors from the reference run's timings, replaying another run: every ETA after 10 % is within 25 %."""
    trials = json.loads((FIX / "run.json").read_text())["trials"]
    priors = trial_priors([FIX])
    assert priors, "the fixture's prior run gives per-cell times"
    points = _replay(trials, priors)
    assert _worst_error_after_first_tenth(points, len(trials)) <= 0.25


def test_eta_scales_to_a_slower_machine() -> None:
    """On a machine 1.6x slower than the priors, the measured speed ratio keeps the ETA within 25 %."""
    trials = json.loads((FIX / "run.json").read_text())["trials"]
    points = _replay(trials, trial_priors([FIX]), scale=1.6)
    assert _worst_error_after_first_tenth(points, len(trials)) <= 0.25


def test_eta_without_plan_uses_mean_trial() -> None:
    """Without a plan the ETA is the remaining count times the mean measured trial."""
    progress = Progress(plain=True, stream=open("/dev/null", "w"))  # noqa: SIM115
    progress.start(4)
    assert progress.eta_seconds() is None
    for s in (2.0, 4.0):
        progress.trial_started("e", "v", "cold", 0)
        progress.trial_finished("ok", s)
    assert progress.eta_seconds() == 2 * 3.0


def test_skipped_cells_cost_nothing_in_the_eta() -> None:
    """A cell that was skipped (not measurable here) is estimated at its own ~0 s, not the mean trial."""
    plan = [{"experiment": "e", "variant": v, "scenario": "cold"} for v in ("a", "skip", "a", "skip")]
    progress = Progress(plain=True, stream=open("/dev/null", "w"))  # noqa: SIM115
    progress.set_plan(plan)
    progress.start(4)
    for v, status, s in (("a", "ok", 10.0), ("skip", "skipped", 0.0)):
        progress.trial_started("e", v, "cold", 0)
        progress.trial_finished(status, s)
    assert progress.eta_seconds() == 10.0
