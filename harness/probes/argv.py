"""argv: the argv PID 1 actually gets for `docker run IMAGE`, `docker run IMAGE ARGS` and
`docker run --entrypoint X IMAGE`.

For each case the probe creates a container the way the CLI would (ARGS replace CMD; an
--entrypoint clears the image's CMD), records the engine's Path+Args (exactly what runc execs),
reads /proc/<pid>/cmdline while PID 1 is alive, whether the container started at all, its exit
code and whether the app ran (its `marker` in the logs). The table goes to probe_data;
argv_overridden = 1 when the ARGS case no longer runs the app.

Run options: args = ["--port", "9000"], entrypoint = "sh", marker = "app argv:", hold = 5 (seconds
to wait for a case to exit).
"""

from __future__ import annotations

import shlex
import time
from typing import TypedDict

from harness.probes import ProbeContext, register
from harness.probes._containers import (
    Case,
    ContainerProbe,
    Owned,
    image_ref,
    parse_cmdline,
    read_host_proc,
    wait_exit,
)


class CaseRow(TypedDict, total=False):
    """What one case did: whether it started, PID 1's argv, the exit code, whether the app ran."""

    case: str
    docker_run: str
    started: bool
    error: str
    pid1_cmdline: list[str]
    exit_code: int | None
    argv: list[str]
    app_ran: bool
    output: list[str]


def cli_line(case: Case) -> str:
    parts = ["docker", "run"]
    if (entrypoint := case.get("entrypoint")) is not None:
        parts += ["--entrypoint", entrypoint]
    parts.append("IMAGE")
    parts += case.get("command") or []
    return " ".join(shlex.quote(p) if p != "IMAGE" else p for p in parts)


def default_cases(args: list[str], entrypoint: str) -> list[Case]:
    return [
        {"case": "run", "command": None, "entrypoint": None},
        {"case": "run-args", "command": list(args), "entrypoint": None},
        {"case": "entrypoint", "command": None, "entrypoint": entrypoint},
    ]


def overridden(plain: CaseRow, with_args: CaseRow, marker: str | None) -> bool:
    """Did ARGS replace the program? (the app's marker missing, else a different executable)."""
    if marker:
        return not with_args.get("app_ran", False)
    a, b = plain.get("argv") or [], with_args.get("argv") or []
    return not a or not b or a[0] != b[0]


@register
class ArgvProbe(ContainerProbe):
    name = "argv"

    def _run_case(
        self, _ctx: ProbeContext, owned: Owned, image: str, case: Case, marker: str | None, hold: float
    ) -> CaseRow:
        kwargs: dict[str, object] = {}
        if (command := case.get("command")) is not None:
            kwargs["command"] = list(command)
        if (entrypoint := case.get("entrypoint")) is not None:
            kwargs["entrypoint"] = [entrypoint]
        row: CaseRow = {"case": case["case"], "docker_run": cli_line(case)}
        c = owned.create(image, **kwargs)
        try:
            c.start()
            row["started"] = True
        except Exception as exc:  # noqa: BLE001 - a case that cannot start is a finding (its error kept)
            row["started"] = False
            row["error"] = str(getattr(exc, "explanation", None) or exc)[:300]
        if row["started"]:
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                c.reload()
                pid = c.attrs.get("State", {}).get("Pid") or 0
                raw = read_host_proc(pid, "cmdline") if pid else None
                # right after start PID 1 can still be runc's own `runc init`, before it execs the
                # container's program: that is not the program's argv yet
                if raw and parse_cmdline(raw)[:2] != ["runc", "init"]:
                    row["pid1_cmdline"] = parse_cmdline(raw)
                    break
                if c.attrs.get("State", {}).get("Status") in ("exited", "dead"):
                    break
                time.sleep(0.02)
            row["exit_code"] = wait_exit(c, hold)
        c.reload()
        row["argv"] = [c.attrs.get("Path", ""), *(c.attrs.get("Args") or [])]
        logs = c.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        row["app_ran"] = bool(marker) and marker in logs
        row["output"] = logs.strip().splitlines()[:3]
        if not row["started"] or row.get("exit_code") is None:
            try:
                c.remove(force=True)
            except Exception:  # noqa: BLE001 - best effort: the owner removes what is left
                pass
        return row

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, _ = self.start(ctx)
        image = image_ref(ctx)
        img = ctx.client.images.get(image)
        cfg = img.attrs.get("Config", {})
        marker = opts.get("marker", "app argv:") or None
        cases = opts.get("cases") or default_cases(
            list(opts.get("args", ["--port", "9000"])), str(opts.get("entrypoint", "sh"))
        )
        table = [
            self._run_case(ctx, owned, image, case, marker, float(opts.get("hold", 5))) for case in cases
        ]
        ctx.details[self.name] = {
            "image_entrypoint": cfg.get("Entrypoint"),
            "image_cmd": cfg.get("Cmd"),
            "table": table,
        }
        by = {r["case"]: r for r in table}
        values: dict[str, float] = {}
        if "run" in by and "run-args" in by:
            values["argv_overridden"] = float(overridden(by["run"], by["run-args"], marker))
        return values
