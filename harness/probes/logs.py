"""logs: where an app's log lines end up.

Runs the image until it exits (bounded; the app writes its lines and stops), then counts the
lines `docker logs` shows (stdout + stderr), the bytes written to the container's writable layer
(SizeRw from `inspect --size`), the changed paths (`docker diff`), and the size of the engine's
own log file for the container (json-file driver, on the host).

Run options: lines = 1000 (passed to the app as $LOG_LINES), timeout = 60, command = [...].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from harness.probes import ProbeContext, register
from harness.probes._containers import ContainerProbe, image_ref, wait_exit

_DIFF_KIND = {0: "C", 1: "A", 2: "D"}


def count_lines(raw: bytes) -> int:
    text = raw.decode("utf-8", "replace")
    return len([ln for ln in text.splitlines() if ln.strip()])


class LogConfig(TypedDict, total=False):
    Type: str


class LoggingHostConfig(TypedDict, total=False):
    LogConfig: LogConfig


class SizedInspect(TypedDict, total=False):
    """The keys of a container's inspect data with its size (`?size=1`) the logs probe reads."""

    HostConfig: LoggingHostConfig
    SizeRw: int
    LogPath: str


def inspect_with_size(client: Any, cid: str) -> SizedInspect:
    """GET /containers/{id}/json?size=1 (docker-py 7.1's inspect_container has no `size`)."""
    api = client.api
    info: SizedInspect = api._result(
        api._get(api._url("/containers/{0}/json", cid), params={"size": 1}), True
    )
    return info


@register
class LogsProbe(ContainerProbe):
    name = "logs"

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, details = self.start(ctx)
        kwargs: dict[str, object] = {"environment": {"LOG_LINES": str(int(opts.get("lines", 1000)))}}
        if opts.get("command"):
            kwargs["command"] = list(opts["command"])
        c = owned.create(image_ref(ctx), **kwargs)
        c.start()
        code = wait_exit(c, float(opts.get("timeout", 60)))
        if code is None:
            details["timed_out"] = True
            c.stop(timeout=1)
        details["exit_code"] = code
        logs = c.logs(stdout=True, stderr=True)
        info = inspect_with_size(ctx.client, c.id)
        changes = ctx.client.api.diff(c.id) or []
        details["diff"] = [f"{_DIFF_KIND.get(ch.get('Kind'), '?')} {ch.get('Path')}" for ch in changes][:30]
        details["log_driver"] = (info.get("HostConfig", {}).get("LogConfig") or {}).get("Type")
        values: dict[str, float] = {
            "log_lines_visible": float(count_lines(logs)),
            "log_bytes_in_layer": float(info.get("SizeRw") or 0),
        }
        log_path = info.get("LogPath")
        if log_path:
            try:
                values["engine_log_bytes"] = float(Path(log_path).stat().st_size)
            except OSError:
                pass
        return values
