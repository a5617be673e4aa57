"""Planning: which trials a run measures, in which order (pure: no daemon, no files written).

A plan is trial-major: for each trial round, the variants of an experiment in a seeded shuffled
order, so slow drifts of the machine spread over every variant instead of biasing one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from harness.experiment import Experiment, Variant, load_experiment
from harness.metrics import kind_of
from harness.paths import results_dir as default_results_dir
from harness.records import JSONObject, PlanEntry, Precision, TrialRecord
from harness.stats import precise_enough


@dataclass
class RunOptions:
    trials: int | None = None  # None: each experiment's own default
    auto: bool = False  # --trials auto: sample until the median's CI is within +/-3 %
    auto_cap: int = 15
    auto_min: int = 5
    quick: bool = False  # one trial each, cold scenario only where the claim allows
    seed: int | None = None
    warmup: bool = False
    keep_images: bool = False
    builder: str | None = None
    results_dir: Path = field(default_factory=default_results_dir)
    wait_for_lock: bool = True
    shard: tuple[int, int] | None = None
    bases: str = "lab"
    command: list[str] = field(default_factory=list)
    python_substitute: str = "compatible"  # harness/pyversions.py: compatible | nearest | older | refuse


def options_record(o: RunOptions) -> JSONObject:
    """The options a run file records (`options`)."""
    return {
        "trials": "auto" if o.auto else o.trials,
        "quick": o.quick,
        "warmup": o.warmup,
        "builder": o.builder,
        "shard": list(o.shard) if o.shard else None,
        "bases": o.bases,
        "keep_images": o.keep_images,
    }


def shard_experiments(experiments: list[Experiment], shard: tuple[int, int] | None) -> list[Experiment]:
    """Deterministic split: experiments sorted by name, dealt round-robin to n shards (i is 1-based)."""
    if not shard:
        return experiments
    i, n = shard
    ordered = sorted(experiments, key=lambda e: e.name)
    mine = {e.name for k, e in enumerate(ordered) if k % n == i - 1}
    return [e for e in experiments if e.name in mine]


def scenarios_for(exp: Experiment, variant: Variant, quick: bool) -> tuple[str, ...]:
    if not quick:
        return variant.scenarios
    claimed = {c.scenario for c in exp.claims}
    keep = tuple(s for s in variant.scenarios if s in claimed) or variant.scenarios[:1]
    return keep


def plan_entry(exp: Experiment, v: Variant, scenario: str, trial: int, order: int) -> PlanEntry:
    return {"experiment": exp.name, "variant": v.name, "scenario": scenario, "trial": trial, "order": order}


def make_plan(
    experiments: list[Experiment],
    opts: RunOptions,
    seed: int,
    *,
    start_trial: int = 0,
    rounds: int | None = None,
) -> list[PlanEntry]:
    """Trial-major plan: for each trial round, the variants in a shuffled (seeded) order."""
    rng = random.Random(seed)
    plan: list[PlanEntry] = []
    for exp in experiments:
        n = rounds if rounds is not None else (1 if opts.quick else (opts.trials or exp.trials))
        n = max(n, exp.min_trials)  # calibration's power: never lowered by --trials or --quick
        for t in range(start_trial, start_trial + n):
            variants = [v for v in exp.variants if v.trials is None or t < v.trials]
            rng.shuffle(variants)
            for order, v in enumerate(variants):
                for scen in scenarios_for(exp, v, opts.quick):
                    plan.append(plan_entry(exp, v, scen, t, order))
    return plan


def auto_round(
    exp: Experiment, trials: list[TrialRecord], opts: RunOptions, seed: int, t: int
) -> tuple[dict[str, Precision], list[PlanEntry]]:
    """--trials auto, round `t`: each (variant, scenario)'s precision so far and the shuffled plan
    entries of the pairs whose median build time is not yet within +/-3 % (none at the cap)."""
    precision: dict[str, Precision] = {}
    pending: list[tuple[Variant, str]] = []
    for v in exp.variants:
        for scen in scenarios_for(exp, v, opts.quick):
            found = [
                tr["metrics"].get("build_seconds")
                for tr in trials
                if (tr["experiment"], tr["variant"], tr["scenario"], tr["status"])
                == (exp.name, v.name, scen, "ok")
            ]
            vals = [x for x in found if x is not None]
            ok = len(vals) >= 2 and precise_enough(vals, 0.03)
            stopped: Literal["precision", "cap", "running"] = (
                "precision" if ok else ("cap" if t >= opts.auto_cap else "running")
            )
            precision[f"{exp.name}/{v.name}/{scen}"] = {
                "n": len(vals),
                "within_3pct": bool(ok),
                "stopped_by": stopped,
            }
            if not ok and vals and t < opts.auto_cap:
                pending.append((v, scen))
    random.Random(seed + t).shuffle(pending)
    return precision, [plan_entry(exp, v, scen, t, order) for order, (v, scen) in enumerate(pending)]


SHORT_CALIBRATION = ("sleep-0", "sleep-1")  # the +1.0 s effect on both time metrics
# Rounds of the short calibration a timed run carries: enough to show this run's noise and bias
# (its interval is printed beside each section), not the full power of `imagebench run calibration`
# (50 rounds, about 4 minutes idle), which would add minutes to every run.
SHORT_CALIBRATION_ROUNDS = 10


def with_calibration(experiments: list[Experiment]) -> list[Experiment]:
    """Every run that judges build time carries its own calibration: when an experiment claims something
    about a time metric and no calibration is selected, prepend a short one (the sleep-0 and sleep-1
    variants of the catalog's `calibration` next to the selected experiments, with their claims, at
    SHORT_CALIBRATION_ROUNDS), so each section can show the calibration of the run that produced it."""
    if any(e.section == "calibration" for e in experiments):
        return experiments
    if not any(kind_of(c.metric) == "time" for e in experiments for c in e.claims):
        return experiments
    folder = experiments[0].path.parent / "calibration"
    if not (folder / "experiment.toml").is_file():
        return experiments
    cal = load_experiment(folder)
    keep = set(SHORT_CALIBRATION)
    short = replace(
        cal,
        variants=tuple(v for v in cal.variants if v.name in keep),
        claims=tuple(c for c in cal.claims if {c.baseline, c.candidate} <= keep),
        trials=SHORT_CALIBRATION_ROUNDS,
        min_trials=SHORT_CALIBRATION_ROUNDS,
    )
    return [short, *experiments]
