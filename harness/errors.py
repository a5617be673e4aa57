"""One exception root, translated once into an exit code by the CLI."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Documented exit codes of every `imagebench` command."""

    OK = 0
    FAILURE = 1  # something measured failed (a build, a probe) or a gate/drift finding
    USAGE = 2  # bad command line, unknown experiment, bad input file
    ENVIRONMENT = 3  # engine, buildx, lab or disk not usable
    SCHEMA = 4  # invalid experiment.toml or results file
    LOCKED = 5  # another run holds the daemon lock (--no-wait)
    INTERRUPTED = 130  # SIGINT/SIGTERM


class HarnessError(Exception):
    """Root of every error the user should see as one line (no traceback)."""

    exit_status: ExitStatus = ExitStatus.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(HarnessError):
    exit_status = ExitStatus.USAGE


class EnvironmentProblem(HarnessError):
    """The engine, buildx, the lab or the disk cannot be used as needed."""

    exit_status = ExitStatus.ENVIRONMENT


class EngineUnavailable(EnvironmentProblem):
    pass


class LabError(EnvironmentProblem):
    pass


class SchemaError(HarnessError):
    """An experiment.toml or results file does not match its schema."""

    exit_status = ExitStatus.SCHEMA


class LockBusy(HarnessError):
    exit_status = ExitStatus.LOCKED


class BuildFailed(HarnessError):
    """A docker buildx build exited non-zero; `detail` keeps BuildKit's error text."""

    def __init__(self, message: str, *, detail: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.detail = detail


class ProbeFailed(HarnessError):
    pass


class Interrupted(HarnessError):
    exit_status = ExitStatus.INTERRUPTED
