"""health: seconds from a deliberate app hang to the daemon's `health_status: unhealthy` event.

The app must offer a way to hang while its process keeps running: by default an HTTP GET on
`hang_path` (the handler blocks the single-threaded server forever). The probe runs the image,
waits until the app answers (and, with a healthcheck, until the `healthy` event), triggers the
hang, checks that the app really stopped answering, then waits for the `unhealthy` event.

Without a healthcheck nothing will ever be reported: the probe waits `observe` seconds, records
State.Status (still "running") and reports reported_unhealthy = 0 and no detect time.

What is observed, not configured: app_hung (the app really stopped answering after the hang
request, checked from outside; a precondition of everything else), reported_unhealthy (the
engine's own `health_status: unhealthy` event arrived) and running_while_hung (after the event or
the wait, `docker ps` -- the engine's container list -- still lists the container as running; its
status text, e.g. "Up 9 seconds (unhealthy)", goes to probe_data). How fast the event comes is
set by the healthcheck's interval x retries, so unhealthy_detect_seconds measures the settings.

The healthcheck can come from the image (HEALTHCHECK), from `docker run` flags (run option
`healthcheck = {test = [...], interval = "1s", timeout = "1s", retries = 2}`) or from a Compose
file (`compose = true` with the same `healthcheck` table; needs Compose v2).

Run options: port = 8000, health_path = "/health", hang_path = "/hang", ready_timeout = 20,
observe (seconds to wait for the event; default interval x retries + timeout + 4, at least 6),
healthcheck = {...}, compose = false.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from harness.probes import ProbeContext, register
from harness.probes._containers import (
    ComposeService,
    ContainerProbe,
    EventWatch,
    HealthcheckOptions,
    RunOptions,
    compose_command,
    event_time,
    image_ref,
    is_action,
)


class HealthConfig(TypedDict, total=False):
    """An engine HealthConfig (an image's or container's Config.Healthcheck; durations in ns)."""

    Test: list[str]
    Interval: int
    Timeout: int
    StartPeriod: int
    Retries: int


class HealthLogEntry(TypedDict):
    """One health probe the engine ran, times relative to the hang."""

    start: float | None
    end: float | None
    exit: int | None


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def duration_ns(value: Any) -> int:
    """'1s', '500ms', '1m30s', or a number of seconds -> nanoseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1_000_000_000)
    text = str(value).strip()
    parts = _DUR.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    return int(sum(float(n) * _NS[u] for n, u in parts))


def health_window(hc: HealthConfig | None, default: float = 6.0) -> float:
    """Seconds to wait for `unhealthy` given a Healthcheck config (ns values, engine defaults)."""
    if not hc or not hc.get("Test") or hc["Test"][0] == "NONE":
        return default
    interval = (hc.get("Interval") or 30_000_000_000) / 1e9
    timeout = (hc.get("Timeout") or 30_000_000_000) / 1e9
    retries = hc.get("Retries") or 3
    return max(default, (interval + timeout) * retries + 4.0)


def engine_healthcheck(spec: HealthcheckOptions) -> HealthConfig:
    """Our run-option table -> the engine's HealthConfig (ns durations, capitalised keys)."""
    test: Any = spec.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    out: HealthConfig = {"Test": list(test)}
    if "interval" in spec:
        out["Interval"] = duration_ns(spec["interval"])
    if "timeout" in spec:
        out["Timeout"] = duration_ns(spec["timeout"])
    if "start_period" in spec:
        out["StartPeriod"] = duration_ns(spec["start_period"])
    if "retries" in spec:
        out["Retries"] = int(spec["retries"])
    return out


def compose_healthcheck(spec: HealthcheckOptions) -> dict[str, object]:
    test: Any = spec.get("test")
    out: dict[str, object] = {"test": ["CMD-SHELL", test] if isinstance(test, str) else list(test)}
    for key in ("interval", "timeout", "start_period"):
        if key in spec:
            v = spec[key]
            out[key] = f"{v}s" if isinstance(v, int | float) else str(v)
    if "retries" in spec:
        out["retries"] = int(spec["retries"])
    return out


def http_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(200 <= r.status < 300)
    except Exception:  # noqa: BLE001 - any failure to answer is not healthy
        return False


def send_hang(host: str, port: int, path: str) -> None:
    """Fire the hang request and leave it open (the server blocks on it)."""
    s = socket.create_connection((host, port), timeout=2)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: app\r\n\r\n".encode())
    # keep the socket referenced briefly so the request is read; the server hangs on it anyway
    time.sleep(0.05)
    s.close()


def container_ip(container: Any) -> str | None:
    container.reload()
    nets = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    for net in nets.values():
        if net.get("IPAddress"):
            return str(net["IPAddress"])
    ip: str | None = container.attrs.get("NetworkSettings", {}).get("IPAddress") or None
    return ip


def ps_row(client: Any, cid: str) -> dict[str, object]:
    """The container's row in the engine's container list (what `docker ps -a` prints): State
    ("running", "exited", ...) and Status ("Up 9 seconds (unhealthy)"); {} when it is not listed."""
    for row in client.api.containers(all=True, filters={"id": cid}):
        if str(row.get("Id", "")).startswith(cid) or cid.startswith(str(row.get("Id", ""))):
            return dict(row)
    return {}


def _ts(text: str) -> float | None:
    """RFC 3339 with nanoseconds -> Unix seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text or "")
    if not m:
        return None
    base = datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    return base.timestamp() + float("0." + (m.group(2) or "0"))


def health_log(state: Mapping[str, Any], t0: float) -> list[HealthLogEntry]:
    """The engine's last health probes, times relative to t0 (the hang); `state` is a container's State."""
    out: list[HealthLogEntry] = []
    for entry in (state.get("Health") or {}).get("Log") or []:
        start, end = _ts(entry.get("Start", "")), _ts(entry.get("End", ""))
        out.append(
            {
                "start": round(start - t0, 3) if start else None,
                "end": round(end - t0, 3) if end else None,
                "exit": entry.get("ExitCode"),
            }
        )
    return out


@register
class HealthProbe(ContainerProbe):
    name = "health"

    def _create(self, ctx: ProbeContext, opts: RunOptions, owned: Any, details: dict[str, object]) -> Any:
        """The (not yet started) app container: through compose or `docker run` flags when the
        experiment gives a healthcheck, else with the image's own HEALTHCHECK; None without compose."""
        image = image_ref(ctx)
        hc_spec = opts.get("healthcheck")
        if opts.get("compose"):
            if compose_command() is None:
                details["not_measured"] = "docker compose (v2) is not available"
                return None
            svc: ComposeService = {"image": image}
            if hc_spec:
                svc["healthcheck"] = compose_healthcheck(hc_spec)
            details["how"] = "compose"
            ids = owned.compose_up({"app": svc}, start=False)  # started below, under the event watch
            return ctx.client.containers.get(ids["app"])
        kwargs: dict[str, object] = {}
        if hc_spec:
            kwargs["healthcheck"] = engine_healthcheck(hc_spec)
            details["how"] = "docker run flags"
        return owned.create(image, **kwargs)

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, details = self.start(ctx)
        c = self._create(ctx, opts, owned, details)
        if c is None:
            return {}
        c.reload()
        hc = c.attrs.get("Config", {}).get("Healthcheck")
        details.setdefault("how", "HEALTHCHECK" if hc else "none")
        details["healthcheck"] = hc
        has_hc = bool(hc and hc.get("Test") and hc["Test"][0] != "NONE")
        window = float(opts.get("observe") or health_window(hc))
        details["observe_seconds"] = window
        port = int(opts.get("port", 8000))
        with EventWatch(ctx.client, c.id) as watch:
            c.start()
            t_start = time.time()
            ip = container_ip(c)
            if not ip:
                details["error"] = "container has no IP address"
                return {}
            health_url = f"http://{ip}:{port}{opts.get('health_path', '/health')}"
            deadline = time.monotonic() + float(opts.get("ready_timeout", 20))
            while not http_ok(health_url, 0.5):
                if time.monotonic() > deadline:
                    details["error"] = "the app never answered"
                    details["logs_tail"] = c.logs(tail=10).decode("utf-8", "replace")
                    return {}
                time.sleep(0.05)
            if has_hc:
                ev = watch.wait_for(lambda e: is_action(e, "health_status: healthy"), window)
                if ev is None:
                    details["error"] = "never reported healthy"
                    return {}
                details["healthy_after_start_seconds"] = round(event_time(ev) - t_start, 3)
            mark = len(watch.snapshot())
            t_hang = time.time()
            send_hang(ip, port, str(opts.get("hang_path", "/hang")))
            app_hung = not http_ok(health_url, 1.0)
            details["app_hung"] = app_hung
            ev = watch.wait_for(lambda e: is_action(e, "health_status: unhealthy"), window, start=mark)
            if ev is None:
                time.sleep(max(0.0, t_hang + window - time.time()))
            ps = ps_row(ctx.client, c.id)
            details["ps_state"], details["ps_status"] = ps.get("State"), ps.get("Status")
            c.reload()
            state = c.attrs.get("State", {})
            details["state_after"] = state.get("Status")
            details["health_after"] = (state.get("Health") or {}).get("Status")
            details["health_log"] = health_log(state, t_hang)
            details["events"] = [e.get("Action") for e in watch.snapshot()[mark:]]
        values: dict[str, float] = {
            "app_hung": float(app_hung),
            "reported_unhealthy": float(ev is not None),
            "running_while_hung": float(ps.get("State") == "running"),
        }
        if ev is not None:
            values["unhealthy_detect_seconds"] = event_time(ev) - t_hang
        return values
