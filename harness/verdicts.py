"""The words a judgement ends in and the statuses a run file records, as enums.

Members are `str` (`enum.StrEnum`): each compares equal to, hashes as, formats as and serialises to
its text ("supported", "ok" ...), so run files, reports and JSON read exactly as before. No imports:
any module may name a verdict or a status without loading numpy or pandas.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """A claim's or an experiment's verdict. `harness.stats` returns the first three; the analysis adds
    a variant without values, a value the experiment's own settings decide, and an experiment that
    states no claim."""

    SUPPORTED = "supported"
    NOT_SUPPORTED = "not supported"
    INCONCLUSIVE = "inconclusive"
    NOT_MEASURED = "not measured here"
    BY_CONSTRUCTION = "by construction"
    MEASURED = "measured"


class TrialStatus(StrEnum):
    """A trial's `status` in the run file."""

    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


class RunStatus(StrEnum):
    """A run's `status` in the run file."""

    RUNNING = "running"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
