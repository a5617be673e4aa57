"""apt-cacher-ng as the lab's apt proxy: own config and cache under the state dir, run in the foreground.

Builds get it as the predefined `http_proxy` build argument (it never lands in the image
history), with `no_proxy` for the loopback index.  Base images are built through it too
(unshaped backend port), so rebuilding a base is fast and repeatable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.errors import LabError
from harness.lab import procs

BINARY = "apt-cacher-ng"
SUPPORT_DIR = "/usr/lib/apt-cacher-ng"


def config_text(port: int, cache_dir: Path, log_dir: Path, run_dir: Path, upstream_proxy: str | None) -> str:
    """Pure: a minimal acng.conf, a plain caching proxy (no mirror remapping)."""
    lines = [
        "# written by imagebench lab up; a plain caching proxy for deb.debian.org and friends",
        f"CacheDir: {cache_dir}",
        f"LogDir: {log_dir}",
        f"SupportDir: {SUPPORT_DIR}",
        f"Port: {port}",
        f"BindAddress: {procs.HOST}",
        f"SocketPath: {run_dir / 'acng.socket'}",
        f"PidFile: {run_dir / 'acng.pid'}",
        "ForeGround: 1",
        "ExThreshold: 30",
        "ReportPage: acng-report.html",
        "FollowIndexFileRemoval: 1",
        "DlMaxRetries: 3",
        "NetworkTimeout: 60",
        # serve trixie/bookworm indexes the way apt asks for them (by-hash etc.)
        "PassThroughPattern: ^(.*):443$",
    ]
    if upstream_proxy:
        lines.append(f"Proxy: {upstream_proxy}")
    return "\n".join(lines) + "\n"


def prepare(root: Path, port: int) -> Path:
    """Write the config dir; return it."""
    conf = root / "conf"
    for d in (conf, root / "cache", root / "log", root / "run"):
        d.mkdir(parents=True, exist_ok=True)
    upstream = os.environ.get("IMAGEBENCH_APT_UPSTREAM_PROXY")
    (conf / "acng.conf").write_text(config_text(port, root / "cache", root / "log", root / "run", upstream))
    return conf


def binary() -> str:
    path = shutil.which(BINARY) or (f"/usr/sbin/{BINARY}" if Path(f"/usr/sbin/{BINARY}").exists() else None)
    if not path:
        raise LabError("apt-cacher-ng is not installed", hint="run `imagebench lab up` as root to install it")
    return path


def start(root: Path, port: int) -> procs.Proc:
    procs.require_free(port, "apt proxy backend")
    conf = prepare(root, port)
    argv = [binary(), "-c", str(conf), "ForeGround=1"]
    return procs.spawn("apt_proxy", argv, root / "log" / "stdout.log", port=port)


def cache_bytes(root: Path) -> int:
    total = 0
    for p in (root / "cache").rglob("*"):
        if p.is_file():
            total += p.stat().st_size
    return total
