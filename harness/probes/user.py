"""user: who PID 1 really runs as, and what that user can write to.

Runs the image, reads the effective uid/gid of PID 1 (`/proc/<State.Pid>/status` on the host, or
`cat /proc/1/status` inside), then tries to create a file in each system path with `docker exec`
as the container's own user (no `--user`: the engine gives the exec the uid, gid and
supplementary groups it gave PID 1; the exec's `id` must match PID 1's uid and gid or nothing is
recorded). The count of writable system paths is the observation (root can write /etc and /usr,
an unprivileged user cannot, unless the image made them writable); uid and gid are what USER set.
The list, the passwd entry (name, home, shell) and the app paths go to probe_data.

Run options: paths = [...] (system paths; shell globs allowed), app_paths = ["/app"],
ready_timeout = 20, command = [...].
"""

from __future__ import annotations

import shlex
import time
from typing import TypedDict

from harness.probes import ProbeContext, register
from harness.probes._containers import ContainerProbe, image_ref, pid1_status, wait_status

SYSTEM_PATHS = (
    "/etc",
    "/usr",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/lib/python3*/site-packages",
    "/bin",
    "/sbin",
    "/lib",
    "/root",
    "/var",
    "/var/lib",
    "/opt",
    "/srv",
)
NO_SHELLS = ("nologin", "false")


def write_test_script(paths: list[str]) -> str:
    """sh script: for each path (globs expanded), print 'W path', 'R path' or '- path' (missing)."""
    words = " ".join(p if any(ch in p for ch in "*?[") else shlex.quote(p) for p in paths)
    return (
        f"for d in {words}; do "
        'if [ ! -d "$d" ]; then echo "- $d"; continue; fi; '
        'f="$d/.imagebench-w.$$"; '
        'if (: > "$f") 2>/dev/null; then rm -f "$f"; echo "W $d"; else echo "R $d"; fi; '
        "done"
    )


def parse_write_test(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"writable": [], "readonly": [], "missing": []}
    for line in text.splitlines():
        flag, _, path = line.partition(" ")
        key = {"W": "writable", "R": "readonly", "-": "missing"}.get(flag)
        if key and path:
            out[key].append(path)
    return out


class PasswdEntry(TypedDict):
    """A line of /etc/passwd: the fields the user probe reports."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str


def parse_passwd_line(line: str) -> PasswdEntry | None:
    parts = line.strip().split(":")
    if len(parts) < 7:
        return None
    return {"name": parts[0], "uid": int(parts[2]), "gid": int(parts[3]), "home": parts[5], "shell": parts[6]}


def has_login_shell(shell: str | None) -> bool:
    return bool(shell and shell.rsplit("/", 1)[-1] not in NO_SHELLS)


@register
class UserProbe(ContainerProbe):
    name = "user"

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, details = self.start(ctx)
        kwargs: dict[str, object] = {}
        if opts.get("command"):
            kwargs["command"] = list(opts["command"])
        c = owned.create(image_ref(ctx), **kwargs)
        details["config_user"] = c.attrs.get("Config", {}).get("User", "")
        c.start()
        status = wait_status(c, ("running",), float(opts.get("ready_timeout", 20)))
        time.sleep(0.2)
        c.reload()
        if c.attrs["State"]["Status"] != "running":
            details["error"] = f"container is {status}, not running"
            details["logs_tail"] = c.logs(tail=10).decode("utf-8", "replace")
            return {}
        st = pid1_status(c)
        if "uid" not in st:
            details["error"] = "could not read PID 1's status"
            return {}
        uid, gid = st["uid"], st["gid"]
        details["pid1"] = {
            "name": st.get("name"),
            "uids": st.get("uids"),
            "gids": st.get("gids"),
            "groups": st.get("groups"),
        }
        ids = c.exec_run(["sh", "-c", "echo $(id -u) $(id -g)"])  # as the container's user, like PID 1
        details["exec_ids"] = ids.output.decode("utf-8", "replace").strip()
        if details["exec_ids"] != f"{uid} {gid}":
            details["error"] = f"docker exec ran as {details['exec_ids']!r}, PID 1 as '{uid} {gid}'"
            return {}
        paths = list(opts.get("paths") or SYSTEM_PATHS)
        res = c.exec_run(["sh", "-c", write_test_script(paths)])
        sysw = parse_write_test(res.output.decode("utf-8", "replace"))
        details["writable"] = sysw["writable"]
        details["missing"] = sysw["missing"]
        app = parse_write_test(
            c.exec_run(
                ["sh", "-c", write_test_script(list(opts.get("app_paths") or ["/app"]))]
            ).output.decode("utf-8", "replace")
        )
        details["app_writable"] = app["writable"]
        pw = c.exec_run(
            ["sh", "-c", f"getent passwd {uid} || grep -E '^[^:]*:[^:]*:{uid}:' /etc/passwd"], user="0"
        )
        entry = (
            parse_passwd_line(pw.output.decode("utf-8", "replace").splitlines()[0])
            if pw.output.strip()
            else None
        )
        values: dict[str, float] = {
            "uid": float(uid),
            "gid": float(gid),
            "writable_system_paths": float(len(sysw["writable"])),
        }
        if entry:
            details["passwd"] = entry
            home = c.exec_run(["sh", "-c", f"test -d {shlex.quote(entry['home'])}"], user="0")
            values["login_shell"] = float(has_login_shell(entry["shell"]))
            values["home_exists"] = float(home.exit_code == 0)
        else:
            details["passwd"] = None  # uid without a passwd entry (USER 12345)
        return values
