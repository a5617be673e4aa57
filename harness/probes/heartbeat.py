"""heartbeat: latency of gunicorn's worker heartbeat (fchmod/utime of an unlinked temp file) with
the file on the container layer (/tmp) or on /dev/shm, while a disk writer (dd with O_DSYNC,
bounded in time and size) runs in the same container.

The measuring program is the experiment's (`command`, default `python /app/heartbeat.py {dir}
--seconds {seconds} --interval-ms {interval_ms} --op {op} --writer-mib {writer_mib}`); it prints one
JSON line with n, p50, p99, max (seconds) and writer_bytes.

Run options: dir = "/tmp", seconds = 5, interval_ms = 10, op = "fchmod" | "utime",
writer_mib = 64, writer = true, timeout = seconds + 60, command = [...].
"""

from __future__ import annotations

import json

from harness.probes import ProbeContext, register
from harness.probes._containers import ContainerProbe, image_ref, wait_exit

COMMAND = [
    "python",
    "/app/heartbeat.py",
    "{dir}",
    "--seconds",
    "{seconds}",
    "--interval-ms",
    "{interval_ms}",
    "--op",
    "{op}",
    "--writer-mib",
    "{writer_mib}",
]


def parse_result(text: str) -> dict[str, float] | None:
    """The last JSON object line of the program's output."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result: dict[str, float] = json.loads(line)  # the program prints numbers only
                return result
            except json.JSONDecodeError:
                continue
    return None


@register
class HeartbeatProbe(ContainerProbe):
    name = "heartbeat"

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, _ = self.start(ctx)
        seconds = float(opts.get("seconds", 5))
        fmt: dict[str, object] = {
            "dir": str(opts.get("dir", "/tmp")),
            "seconds": seconds,
            "interval_ms": float(opts.get("interval_ms", 10)),
            "op": str(opts.get("op", "fchmod")),
            "writer_mib": int(opts.get("writer_mib", 64)),
        }
        cmd = [str(p).format(**fmt) for p in (opts.get("command") or COMMAND)]
        if opts.get("writer") is False:
            cmd.append("--no-writer")
        details: dict[str, object] = {"command": cmd}
        ctx.details[self.name] = details
        c = owned.create(image_ref(ctx), command=cmd)
        c.start()
        code = wait_exit(c, float(opts.get("timeout", seconds + 60)))
        out = c.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        details["exit_code"] = code
        res = parse_result(out)
        if code != 0 or res is None:
            details["error"] = "the heartbeat program failed" if code is not None else "timed out"
            details["logs_tail"] = out[-600:]
            return {}
        details["result"] = res
        return {
            "heartbeat_p50_seconds": float(res["p50"]),
            "heartbeat_p99_seconds": float(res["p99"]),
            "heartbeat_max_seconds": float(res["max"]),
            "heartbeat_samples": float(res["n"]),
            "writer_bytes": float(res.get("writer_bytes", 0)),
        }
