"""stop: how long `docker stop` takes, measured from the daemon's own events.

Runs the image, waits until the app says it is ready (run option `ready`, a log line), records
PID 1's command line, then stops it with a short timeout (`stop_timeout`, default 3 s).
stop_seconds = die.timeNano - kill(stop signal).timeNano; stop_forced = 1 when a kill(9)
event followed (the app did not exit within the timeout); exit_code from the die event.
pid1_is_shell is read from the running container (PID 1's /proc/<pid>/cmdline), never assumed
from the Dockerfile. sigterm_received = 1 when the app's own SIGTERM handler ran: the container's
log gained `term_marker` (a line the handler prints) between the stop and the die event, so a
signal that never reached the program (a shell as PID 1 that does not forward it) reads 0.

Run options (variant `run = {...}` or `run = {stop = {...}}`):
  stop_timeout = 3      seconds the daemon waits before SIGKILL
  ready = "ready"       log line that marks the app as ready (empty: wait `settle` seconds)
  ready_timeout = 20
  settle = 0.5          extra pause after ready (lets a shell-form child start)
  init = false          run with --init (tini as PID 1)
  command = [...]       override CMD
  term_marker = "SIGTERM received"   the line the app's SIGTERM handler prints (empty: not recorded)
"""

from __future__ import annotations

import time
from typing import TypedDict

from harness.probes import ProbeContext, register
from harness.probes._containers import (
    ContainerProbe,
    DaemonEvent,
    EventWatch,
    event_seconds,
    image_ref,
    is_action,
    pid1_cmdline,
    wait_log,
)


class StopMeasurement(TypedDict, total=False):
    """What `docker stop` did (`stop_measurement`): signals sent, forced, seconds to exit, exit code."""

    signals: list[str]
    forced: bool
    seconds: float
    exit_code: int | None


SHELLS = {"sh", "bash", "dash", "ash", "busybox", "zsh"}


def stop_measurement(events: list[DaemonEvent]) -> StopMeasurement:
    """From a container's events after `docker stop`: seconds, forced, exit code, signals (pure)."""
    kills = [e for e in events if is_action(e, "kill")]
    signals = [str((e.get("Actor") or {}).get("Attributes", {}).get("signal", "")) for e in kills]
    first = next(
        (e for e in kills if (e.get("Actor") or {}).get("Attributes", {}).get("signal") != "9"), None
    )
    die = next(
        (e for e in events if is_action(e, "die") and (first is None or e["timeNano"] >= first["timeNano"])),
        None,
    )
    out: StopMeasurement = {"signals": signals, "forced": "9" in signals}
    if first is not None and die is not None:
        out["seconds"] = event_seconds(first, die)
    if die is not None:
        code = (die.get("Actor") or {}).get("Attributes", {}).get("exitCode")
        out["exit_code"] = int(code) if code not in (None, "") else None
    return out


def marker_after_stop(before: str, after: str, marker: str) -> bool:
    """True when the log after the stop has `marker` more often than the log before it (pure)."""
    return bool(marker) and after.count(marker) > before.count(marker)


def is_shell(argv: list[str] | None) -> bool:
    if not argv:
        return False
    return argv[0].rsplit("/", 1)[-1] in SHELLS


@register
class StopProbe(ContainerProbe):
    name = "stop"

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, _ = self.start(ctx)
        timeout = int(opts.get("stop_timeout", 3))
        kwargs: dict[str, object] = {}
        if opts.get("init"):
            kwargs["init"] = True
        if opts.get("command"):
            kwargs["command"] = list(opts["command"])
        c = owned.create(image_ref(ctx), **kwargs)
        details: dict[str, object] = {"stop_timeout": timeout, "init": bool(opts.get("init"))}
        ctx.details[self.name] = details
        with EventWatch(ctx.client, c.id) as watch:
            c.start()
            ready = opts.get("ready", "ready")
            if ready:
                details["ready"] = wait_log(c, str(ready), float(opts.get("ready_timeout", 20)))
            time.sleep(float(opts.get("settle", 0.5)))
            c.reload()
            if c.attrs["State"]["Status"] != "running":
                details["error"] = f"container is {c.attrs['State']['Status']} before stop"
                details["logs_tail"] = c.logs(tail=10).decode("utf-8", "replace")
                return {}
            argv = pid1_cmdline(c)
            details["pid1_cmdline"] = argv
            try:
                details["processes"] = [p[-1] for p in (c.top().get("Processes") or [])]
            except Exception:  # noqa: BLE001 - an extra detail: the measurement goes on without it
                pass
            marker = str(opts.get("term_marker", "SIGTERM received"))
            log_before = c.logs().decode("utf-8", "replace")
            mark = len(watch.snapshot())
            t0 = time.perf_counter()
            c.stop(timeout=timeout)
            details["client_stop_seconds"] = round(time.perf_counter() - t0, 4)
            watch.wait_for(lambda e: is_action(e, "die"), timeout + 10, start=mark)
            time.sleep(0.05)  # a late 'stop' event is harmless; die is what we need
            m = stop_measurement(watch.snapshot()[mark:])
            log_after = c.logs().decode("utf-8", "replace")
        details["signals"] = m["signals"]
        details["log_tail"] = log_after[-300:]
        values: dict[str, float] = {"stop_forced": float(m["forced"]), "pid1_is_shell": float(is_shell(argv))}
        if marker:
            details["term_marker"] = marker
            values["sigterm_received"] = float(marker_after_stop(log_before, log_after, marker))
        if "seconds" in m:
            values["stop_seconds"] = m["seconds"]
        if (exit_code := m.get("exit_code")) is not None:
            values["exit_code"] = float(exit_code)
        return values
