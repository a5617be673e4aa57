"""supervise: kill the worker process; does anything notice and bring it back?

mode "single": one container from the image (app + worker started by its CMD, e.g. a shell
script). mode "split": two containers from the same image, the app (image CMD) and the worker
(`worker_command`). Every container gets the restart policy `restart` (default on-failure).

The probe waits until a process matching `worker_match` runs, SIGKILLs it (host pid: the daemon
must be local), then polls the containers' processes until a new worker process appears
(recovered) or `recovery_cap` seconds pass. recovery_seconds is the time to the new worker, or
the cap when it never came back (recovered = 0). restart_count is the sum of the containers'
RestartCount; running_while_broken = 1 when, at the cap, a container still says "running" but no
worker runs in it. app_restarted = 1 when the app process (matching `app_match`) that ran before
the kill is gone at the end (the engine restarted the app's container, or the app died with
the worker): what one process per container spares the app, observed on the host's pids.

Run options: mode = "single" | "split", worker_match = "worker.py", app_match = "app.py",
worker_command = [...], restart = "on-failure" | "always" | "no", recovery_cap = 10,
ready_timeout = 20.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from harness.probes import ProbeContext, register
from harness.probes._containers import ContainerProbe, TopRow, image_ref, parse_top


def worker_pids(procs: list[TopRow], match: str) -> list[int]:
    return [p["pid"] for p in procs if match in p["cmd"] and "<defunct>" not in p["cmd"]]


def app_restarted(before: list[int], after: list[int]) -> bool:
    """True when none of the app processes seen before the kill is still running at the end (pure)."""
    return bool(before) and not set(before) & set(after)


def zombie_count(procs: list[TopRow]) -> int:
    return sum(1 for p in procs if "<defunct>" in p["cmd"])


def restart_policy(name: str) -> dict[str, str | int] | None:
    if not name or name == "no":
        return None
    if name == "on-failure":
        return {"Name": "on-failure", "MaximumRetryCount": 5}
    return {"Name": name}


@register
class SuperviseProbe(ContainerProbe):
    name = "supervise"

    def _procs(self, containers: list[Any]) -> dict[str, list[TopRow]]:
        out: dict[str, list[TopRow]] = {}
        for c in containers:
            try:
                c.reload()
                out[c.id] = parse_top(c.top()) if c.attrs["State"]["Status"] == "running" else []
            except Exception:  # noqa: BLE001 - a container gone between list and top has no processes
                out[c.id] = []
        return out

    def _wait_workers(self, containers: list[Any], match: str, timeout: float) -> list[int]:
        """Host pids of the worker processes once one has started ([] after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        before: list[int] = []
        while time.monotonic() < deadline:
            before = [pid for procs in self._procs(containers).values() for pid in worker_pids(procs, match)]
            if before:
                break
            time.sleep(0.1)
        return before

    def _wait_recovery(
        self, containers: list[Any], match: str, victim: int, t_kill: float, cap: float
    ) -> float | None:
        """Seconds from the kill until a worker other than `victim` runs (None within `cap`)."""
        while time.monotonic() - t_kill < cap:
            procs = self._procs(containers)
            now = [pid for ps in procs.values() for pid in worker_pids(ps, match)]
            if any(pid != victim for pid in now):
                return time.monotonic() - t_kill
            time.sleep(0.05)
        return None

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, details = self.start(ctx)
        image = image_ref(ctx)
        mode = str(opts.get("mode", "single"))
        match = str(opts.get("worker_match", "worker.py"))
        cap = float(opts.get("recovery_cap", 10))
        policy = restart_policy(str(opts.get("restart", "on-failure")))
        details.update({"mode": mode, "restart": policy, "recovery_cap": cap})
        kw: dict[str, object] = {"restart_policy": policy} if policy else {}
        containers = [owned.create(image, **kw)]
        if mode == "split":
            if not opts.get("worker_command"):
                details["error"] = "mode 'split' needs worker_command"
                return {}
            containers.append(owned.create(image, command=list(opts["worker_command"]), **kw))
        for c in containers:
            c.start()
        before = self._wait_workers(containers, match, float(opts.get("ready_timeout", 20)))
        if not before:
            details["error"] = f"no process matching {match!r} started"
            return {}
        time.sleep(0.3)
        app_match = str(opts.get("app_match", "app.py"))
        procs_before = self._procs(containers)
        apps_before = [pid for ps in procs_before.values() for pid in worker_pids(ps, app_match)]
        if not apps_before:
            details["error"] = f"no process matching {app_match!r} runs beside the worker"
            return {}
        victim = before[0]
        # the worker comes back in its own container (restarted or not): polling only that one keeps
        # the cost of one poll the same in both modes (split has two containers to list)
        home = [
            c for c in containers if victim in worker_pids(procs_before.get(c.id, []), match)
        ] or containers
        details["killed_pid_host"] = victim
        t_kill = time.monotonic()
        try:
            os.kill(victim, signal.SIGKILL)
        except OSError as exc:
            details["error"] = f"cannot kill the worker (pid {victim}): {exc}"
            return {}
        recovered_after = self._wait_recovery(home, match, victim, t_kill, cap)
        if recovered_after is not None:
            time.sleep(float(opts.get("settle", 1.0)))  # let a restarted container start its app too
        procs = self._procs(containers)
        apps_after = [pid for ps in procs.values() for pid in worker_pids(ps, app_match)]
        details["app_pids"] = {"before": apps_before, "after": apps_after}
        restarts = 0
        states = []
        broken = False
        for c in containers:
            c.reload()
            st = c.attrs.get("State", {})
            restarts += int(c.attrs.get("RestartCount") or 0)
            states.append(
                {
                    "status": st.get("Status"),
                    "exit_code": st.get("ExitCode"),
                    "restart_count": c.attrs.get("RestartCount"),
                    "processes": [p["cmd"] for p in procs.get(c.id, [])],
                }
            )
        if recovered_after is None:
            broken = any(s["status"] == "running" for s in states) and not any(
                worker_pids(ps, match) for ps in procs.values()
            )
        details["containers"] = states
        return {
            "recovered": float(recovered_after is not None),
            "recovery_seconds": recovered_after if recovered_after is not None else cap,
            "restart_count": float(restarts),
            "running_while_broken": float(broken),
            "app_restarted": float(app_restarted(apps_before, apps_after)),
            "zombies": float(sum(zombie_count(ps) for ps in procs.values())),
        }
