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
    assert priors.seconds, "the fixture's prior run gives per-cell times"
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


REPO = Path(__file__).resolve().parents[2]
TOUR = REPO / "tests" / "fixtures" / "eta_tour"


def _late_errors() -> tuple[float, float]:
    """scripts/eta_replay.py on the tour fixture: the worst relative error from the first tenth on with a
    minute or more left, and the worst error in seconds in the last minute (one replay for every test)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("eta_replay", REPO / "scripts" / "eta_replay.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    points = mod.replay(TOUR / "run.json", [TOUR / "reference"])
    late = [p for p in points if p["done"] >= p["of"] / 10 and p["left"] > 0]
    long = max(abs(p["eta"] - p["left"]) / p["left"] for p in late if p["left"] >= 60)
    short = max(abs(p["eta"] - p["left"]) for p in late if p["left"] < 60)
    return long, short


def test_tour_eta_from_the_committed_reference_is_within_25_percent() -> None:
    """`make run`'s tour (69 trials, 20261130T013422Z-a5b77d) replayed with the reference run files of that
    commit as priors: from the first tenth on, every ETA with a minute or more left is within 25 % of the
    wall time actually left, and in the last minute within 20 s."""
    long, short = _late_errors()
    assert long <= 0.25
    assert short <= 20


def test_a_run_file_without_trials_does_not_push_priors_out(tmp_path: Path) -> None:
    """The run being measured (its file has no finished trial yet) and empty files are passed over:
    the priors are the same as without them (the tour's ETA was 45 % short when they counted)."""
    ref = TOUR / "reference"
    before = trial_priors([ref])
    machine = tmp_path / "vm-0"
    machine.mkdir()
    for i in range(5):
        (machine / f"20991231T00000{i}Z-empty{i}.json").write_text(json.dumps({"trials": []}))
    after = trial_priors([tmp_path, ref])
    assert after.seconds == before.seconds and after.source == before.source


def test_a_cell_prior_comes_from_the_newest_run_that_measured_it(tmp_path: Path) -> None:
    """Priors are not averaged across runs: the newest run with a cell decides it, older ones fill gaps."""

    def trial(exp: str, variant: str, seconds: int) -> dict:
        return {
            "experiment": exp,
            "variant": variant,
            "scenario": "cold",
            "trial": 0,
            "status": "ok",
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": f"2026-01-01T00:00:{seconds:02d}Z",
        }

    machine = tmp_path / "vm-0"
    machine.mkdir()
    old = {"trials": [trial("a", "x", 30), trial("b", "y", 8)]}
    new = {"trials": [trial("a", "x", 10)]}
    (machine / "20260101T000000Z-old.json").write_text(json.dumps(old))
    (machine / "20260102T000000Z-new.json").write_text(json.dumps(new))
    priors = trial_priors([tmp_path])
    assert priors.seconds[("a", "x", "cold")] == 10.0
    assert priors.source[("a", "x", "cold")] == "20260102T000000Z-new"
    assert priors.seconds[("b", "y", "cold")] == 8.0
    assert priors.source[("b", "y", "cold")] == "20260101T000000Z-old"


def test_each_prior_source_gets_its_own_speed() -> None:
    """Cells whose priors came from a run measured 2x slower are halved once one of them is measured,
    while cells from a run measured at this run's speed keep their prior."""
    from harness.progress import TrialPriors

    plan = [
        {"experiment": e, "variant": "v", "scenario": "cold"} for e in ("slow1", "same1", "slow2", "same2")
    ]
    priors = TrialPriors(
        seconds={
            ("slow1", "v", "cold"): 20.0,
            ("slow2", "v", "cold"): 40.0,
            ("same1", "v", "cold"): 10.0,
            ("same2", "v", "cold"): 30.0,
        },
        source={
            ("slow1", "v", "cold"): "old",
            ("slow2", "v", "cold"): "old",
            ("same1", "v", "cold"): "new",
            ("same2", "v", "cold"): "new",
        },
    )
    progress = Progress(plain=True, stream=open("/dev/null", "w"))  # noqa: SIM115
    progress.set_plan(plan, priors)
    progress.start(4)
    for exp, seconds in (("slow1", 10.0), ("same1", 10.0)):
        progress.trial_started(exp, "v", "cold", 0)
        progress.trial_finished("ok", seconds)
    assert progress.eta_seconds() == 40.0 * 0.5 + 30.0 * 1.0


def test_readme_eta_figures_are_the_replays() -> None:
    """The README's ETA accuracy figures are what scripts/eta_replay.py prints for the tour fixture."""
    long, short = _late_errors()
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"within {100 * long:.0f} % of the time actually left" in readme
    assert f"within {short:.0f} s in the last minute" in readme
