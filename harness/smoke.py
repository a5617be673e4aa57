"""Smoke check: does the image a trial built actually run its app?

A variant declares `smoke = "CMD"` (run with `/bin/sh -c`, the image's ENTRYPOINT replaced) or
`smoke = ["prog", "arg", ...]` (exec form, for images without a shell). The runner runs it once
per built image, after the timed build and outside every timing, in a container with no network
(loopback works, so a command can start the app and request it), and records:

    metrics["smoke_ok"]   1 when the command exited 0 within the timeout, else 0
    trial["smoke"]        {"command", "exit_code", "seconds", "ok"} and, on failure, the
                          output's tail ("output_tail") and its last non-empty line ("last_line")

A variant whose smoke check failed cannot win a size or time claim (harness.analysis): a
smaller image that cannot run its app is "smaller but broken".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.records import JSONObject

DEFAULT_TIMEOUT = 120.0
TAIL_CHARS = 2000
SMOKE_LABEL = "imagebench.smoke"


@dataclass(frozen=True)
class SmokeResult:
    command: str | tuple[str, ...] | list[str]
    ok: bool
    exit_code: int | None  # None: timed out or could not start
    seconds: float
    output: str

    def record(self) -> JSONObject:
        """What the trial record keeps: always the outcome, the output only when it failed."""
        rec: JSONObject = {
            "command": self.command if isinstance(self.command, str) else list(self.command),
            "ok": self.ok,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
        }
        if not self.ok:
            rec["output_tail"] = self.output[-TAIL_CHARS:]
            rec["last_line"] = last_line(self.output)
        return rec


def smoke_argv(command: str | tuple[str, ...] | list[str]) -> list[str]:
    """Pure: the argv the container runs (entrypoint = argv[0]). A string goes through /bin/sh -c."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return [str(x) for x in command]


def command_text(command: str | tuple[str, ...] | list[str]) -> str:
    """Pure: the command as one line for people (a list joined with spaces)."""
    return command if isinstance(command, str) else " ".join(command)


def last_line(output: str) -> str:
    """Pure: the last non-empty line of an output (what a report row quotes), at most 200 characters."""
    for line in reversed(output.splitlines()):
        if line.strip():
            line = line.strip()
            return line if len(line) <= 200 else line[:199] + "…"
    return "(no output)"


def run_smoke(
    client: Any,
    image: str,
    command: str | tuple[str, ...] | list[str],
    *,
    labels: dict[str, str],
    track: Callable[[str, str], None] = lambda _kind, _ident: None,
    timeout: float = DEFAULT_TIMEOUT,
) -> SmokeResult:
    """Run `command` in a fresh container of `image` (no network, entrypoint replaced); always removed."""
    import docker.errors  # lazy: the docker SDK costs ~0.8 s to import; parsing smoke commands needs none

    argv = smoke_argv(command)
    t0 = time.perf_counter()
    container = None
    try:
        container = client.containers.create(
            image,
            entrypoint=argv[:1],
            command=argv[1:],
            labels={**labels, SMOKE_LABEL: "1"},
            network_mode="none",
        )
        track("container", container.id)
        container.start()
        try:
            status = container.wait(timeout=timeout)
            code: int | None = int(status.get("StatusCode", -1))
        except Exception:  # noqa: BLE001 - requests' ReadTimeout / ConnectionError: the command did not finish
            code = None
        seconds = time.perf_counter() - t0
        output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        if code is None:
            output += f"\nimagebench: smoke command timed out after {timeout:g} s"
        return SmokeResult(command, code == 0, code, seconds, output)
    except docker.errors.APIError as exc:  # e.g. the entrypoint does not exist in the image
        msg = getattr(exc, "explanation", None) or str(exc)
        return SmokeResult(command, False, None, time.perf_counter() - t0, f"imagebench: {msg}")
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
