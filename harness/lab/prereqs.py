"""Host prerequisites of the lab: Debian tools (installed with apt when missing, as root), free disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.errors import LabError

# command -> Debian package providing it
TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "apt-cacher-ng": "apt-cacher-ng",
    "docker-registry": "docker-registry",
}
MIN_FREE_GIB = 5.0
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def _have(cmd: str) -> bool:
    return shutil.which(cmd) is not None or Path(f"/usr/sbin/{cmd}").exists()


def missing_tools() -> list[str]:
    return [cmd for cmd in TOOLS if not _have(cmd)]


def ensure_tools(progress: Callable[[str], None] = print) -> list[str]:
    """Install missing Debian tools with apt-get (root only); LabError naming what is missing otherwise."""
    missing = missing_tools()
    if not missing:
        return []
    pkgs = [TOOLS[c] for c in missing]
    if os.geteuid() != 0:
        raise LabError(
            f"{', '.join(missing)} missing and installing needs root",
            hint=f"run as root, or: apt-get install {' '.join(pkgs)}",
        )
    if not shutil.which("apt-get"):
        raise LabError(
            f"{', '.join(missing)} missing and there is no apt-get",
            hint="the lab's bases need Debian tools: run on Debian bookworm or newer",
        )
    progress(f"lab: installing {' '.join(pkgs)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # keep apt-cacher-ng's init script from starting a system-wide daemon on 3142 (no systemd here)
    own_policy = not POLICY_RC_D.exists()
    try:
        if own_policy:
            POLICY_RC_D.write_text(
                "#!/bin/sh\n# imagebench lab up: no service starts during install\nexit 101\n"
            )
            POLICY_RC_D.chmod(0o755)
        up = subprocess.run(
            ["apt-get", "update", "-qq"], capture_output=True, text=True, env=env, timeout=600
        )
        if up.returncode != 0:
            raise LabError(
                f"apt-get update failed while installing {' '.join(pkgs)}",
                hint="check the Debian mirror, or install them yourself",
            )
        cp = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
            capture_output=True,
            text=True,
            env=env,
            timeout=1200,
        )
        if cp.returncode != 0:
            last = [ln for ln in cp.stderr.splitlines() if ln.strip()]
            raise LabError(
                f"cannot install {' '.join(pkgs)}: {last[-1] if last else 'apt-get failed'}",
                hint=f"install them yourself: apt-get install {' '.join(pkgs)}",
            )
    finally:
        if own_policy:
            with contextlib.suppress(OSError):
                POLICY_RC_D.unlink()
    still = missing_tools()
    if still:
        raise LabError(
            f"{', '.join(still)} still missing after apt-get install",
            hint=f"install them yourself: apt-get install {' '.join(TOOLS[c] for c in still)}",
        )
    return pkgs


def min_free_bytes() -> int:
    return int(float(os.environ.get("IMAGEBENCH_MIN_FREE_GIB", MIN_FREE_GIB)) * 1024**3)


def check_disk(paths: dict[str, str | Path | None]) -> dict[str, int]:
    """LabError when any existing path has less than the minimum free; returns free bytes per name."""
    need = min_free_bytes()
    free = {}
    for name, path in paths.items():
        if not path or not Path(path).exists():
            continue
        free[name] = shutil.disk_usage(path).free
        if free[name] < need:
            raise LabError(
                f"disk nearly full: {free[name] / 1024**3:.1f} GiB free in {path} ({name}), "
                f"need {need / 1024**3:.0f} GiB",
                hint="free space (remove unused images you own) or set IMAGEBENCH_STATE elsewhere",
            )
    return free
