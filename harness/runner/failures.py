"""Why a trial's build failed: a failed trial (recorded, the run goes on) or a broken environment (stop)."""

from __future__ import annotations

from typing import Any

from harness.engine.buildx import BuildResult
from harness.errors import EngineUnavailable, HarnessError, LabError
from harness.records import LabHandle


class TrialFailed(HarnessError):
    """A build of the trial failed: the trial is recorded as failed with the build's error text."""

    def __init__(self, message: str, result: BuildResult) -> None:
        super().__init__(message)
        self.result = result


def diagnose_failure(client: Any, lab: LabHandle | None, result: BuildResult) -> None:
    """Turn a failed build caused by the environment into an error that stops the run clearly."""
    try:
        client.ping()
    except Exception:  # noqa: BLE001 - docker raises several unrelated types for a daemon that is gone
        raise EngineUnavailable("the Docker daemon stopped answering") from None
    if lab is not None:
        try:
            lab.check_alive()
        except LabError as exc:
            raise TrialFailed(f"build failed because the lab is down: {exc}", result) from None
