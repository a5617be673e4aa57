"""Where a trial's time goes, by phase: for the harness-overhead breakdown (scripts/overhead.py).

Not part of the run file: with IMAGEBENCH_PHASE_LOG=PATH set, each trial appends one JSON line
{"experiment", "variant", "scenario", "trial", "status", "phases": {name: seconds}, "seconds"} to PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator

from harness.records import PlanEntry

PHASE_LOG_ENV = "IMAGEBENCH_PHASE_LOG"


class Phases:
    """Seconds per named phase (perf_counter), summed when a phase repeats."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def log_phases(entry: PlanEntry, status: str, phases: Phases, total: float) -> None:
    """Append the trial's phases to $IMAGEBENCH_PHASE_LOG (nothing when it is not set)."""
    path = os.environ.get(PHASE_LOG_ENV)
    if not path:
        return
    line = {k: entry.get(k) for k in ("experiment", "variant", "scenario", "trial")}
    line.update(
        status=status, phases={k: round(v, 6) for k, v in phases.seconds.items()}, seconds=round(total, 6)
    )
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
