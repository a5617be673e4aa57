"""The runner: experiments x variants x scenarios x trials under established cache states.

Public API (the CLI, compare and advise use exactly these; the modules are cut by concept):
`RunOptions`, `RunOutcome`, `Reporter`, `run_experiments`, and the planning helpers.
"""

from harness.runner.core import (
    SHORT_CALIBRATION,
    SHORT_CALIBRATION_ROUNDS,
    Reporter,
    Runner,
    RunOptions,
    RunOutcome,
    capability_missing,
    make_plan,
    run_experiments,
    shard_experiments,
    with_calibration,
)

__all__ = [
    "SHORT_CALIBRATION",
    "SHORT_CALIBRATION_ROUNDS",
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
