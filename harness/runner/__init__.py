"""The runner: experiments x variants x scenarios x trials under established cache states.

Cut by concept: plan.py (which trials, in which order; pure), cache_state.py (the state a scenario
names, established before the timed build), trial.py (one trial's build and record), measure.py
(what is measured about an image, cached per image id), bases.py (pinned base images), cleanup.py,
environment.py (fingerprint, lab, capabilities), core.py (the Runner: the run file and the loop).

Public API (the CLI, compare and advise use exactly these): `RunOptions`, `RunOutcome`,
`Reporter` (a protocol; `QuietReporter` says nothing), `run_experiments`, and the planning helpers.
"""

from harness.runner.core import QuietReporter, Reporter, Runner, RunOutcome, run_experiments
from harness.runner.environment import capability_missing
from harness.runner.plan import (
    SHORT_CALIBRATION,
    SHORT_CALIBRATION_ROUNDS,
    RunOptions,
    make_plan,
    shard_experiments,
    with_calibration,
)

__all__ = [
    "SHORT_CALIBRATION",
    "SHORT_CALIBRATION_ROUNDS",
    "QuietReporter",
    "Reporter",
    "RunOptions",
    "RunOutcome",
    "Runner",
    "capability_missing",
    "make_plan",
    "run_experiments",
    "shard_experiments",
    "with_calibration",
]
