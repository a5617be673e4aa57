"""Background processes of the lab: ports, spawning detached servers, health, stopping by pid.

Every server the lab starts is recorded in lab.json with its pid and the command line it
was started with, so `lab down` stops exactly those processes and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LabError
from harness.lab.state import ProcRecord

# (env var, default) for each public port; internal (backend) ports are public + 10000.
PORTS = {
    "index": ("IMAGEBENCH_INDEX_PORT", 3141),
    "apt_proxy": ("IMAGEBENCH_APT_PORT", 3142),
    "registry": ("IMAGEBENCH_REGISTRY_PORT", 5000),
}
HOST = "127.0.0.1"


def port(service: str) -> int:
    var, default = PORTS[service]
    raw = os.environ.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LabError(f"{var}={raw!r} is not a port number", hint="set it to an integer 1024-65535")
    if not 1 <= value <= 65535:
        raise LabError(f"{var}={value} is out of range", hint="set it to an integer 1024-65535")
    return value


def backend_port(service: str) -> int:
    """Where the real server listens behind the shaper (public port + 10000, wrapped)."""
    p = port(service) + 10000
    return p if p <= 65535 else p - 40000


def port_open(p: int, host: str = HOST, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, p)) == 0


def port_bindable(p: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, p))
        except OSError:
            return False
        return True


def require_free(p: int, what: str, env_var: str | None = None) -> None:
    """LabError when a port we must bind is taken by something that is not ours."""
    if not port_bindable(p):
        owner = who_listens(p)
        how = f"set {env_var} to another port" if env_var else "free the port"
        raise LabError(
            f"port {HOST}:{p} for the lab {what} is in use by {owner or 'another process'}",
            hint=f"stop it or {how}",
        )


def who_listens(p: int) -> str | None:
    """Best effort 'pid 123 (name)' for a TCP listener on port p (reads /proc)."""
    target = f":{p:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[1].endswith(target) and cols[3] == "0A":
                    inodes.add(cols[9])
    if not inodes:
        return None
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (pid_dir / "fd").iterdir():
                link = str(fd.readlink())
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    name = (pid_dir / "comm").read_text().strip()
                    return f"pid {pid_dir.name} ({name})"
    return None


@dataclass
class Proc:
    name: str
    pid: int
    argv: list[str]
    port: int | None
    log: str
    started_at: float

    def to_dict(self) -> ProcRecord:
        return ProcRecord(
            name=self.name,
            pid=self.pid,
            argv=list(self.argv),
            port=self.port,
            log=self.log,
            started_at=self.started_at,
        )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_ours(proc: ProcRecord) -> bool:
    """The recorded pid still runs the recorded command (pids get reused)."""
    pid = proc.get("pid")
    if not pid or not alive(pid):
        return False
    argv = cmdline(pid)
    return not argv or argv[: len(proc["argv"])] == proc["argv"][: len(argv)] or argv == proc["argv"]


def spawn(
    name: str,
    argv: list[str],
    log: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    wait_s: float = 20.0,
) -> Proc:
    """Start a detached server (own session, survives the CLI), wait until its port answers."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        fh.flush()
        p = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            close_fds=True,
        )
    proc = Proc(name=name, pid=p.pid, argv=argv, port=port, log=str(log), started_at=time.time())
    if port is not None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise LabError(
                    f"the lab {name} exited at start (code {p.returncode})",
                    hint=f"see {log}: {tail(log)}",
                )
            if port_open(port):
                return proc
            time.sleep(0.1)
        stop(proc.to_dict())
        raise LabError(
            f"the lab {name} did not listen on {HOST}:{port} within {wait_s:.0f} s", hint=f"see {log}"
        )
    return proc


def tail(path: Path, n: int = 1) -> str:
    with contextlib.suppress(OSError):
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
        return " | ".join(lines[-n:])
    return ""


def stop(proc: ProcRecord, timeout: float = 5.0) -> bool:
    """SIGTERM the recorded process (only if it is still ours), SIGKILL after timeout."""
    pid = proc.get("pid")
    if not pid or not is_ours(proc):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return True


def tail_text(text: str) -> str:
    """The last non-empty line of a command's output (for one-line errors)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
