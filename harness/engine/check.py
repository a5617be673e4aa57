"""Is there a usable Docker engine?  What is it?  (docker CLI, with timeouts; respects DOCKER_HOST.)

`engine_info()` describes the engine for fingerprints and `lab status`;
`require_engine()` raises `EngineUnavailable` with one actionable line when it cannot be used.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from typing import TypedDict, cast

from harness.errors import EngineUnavailable


class ServerInfo(TypedDict, total=False):
    """The keys of `docker info --format '{{json .}}'` imagebench reads."""

    ServerVersion: str
    ServerErrors: list[str]
    Driver: str
    DriverStatus: list[list[str]]
    DockerRootDir: str
    CgroupVersion: str
    KernelVersion: str
    OperatingSystem: str
    NCPU: int
    MemTotal: int
    Architecture: str


class ServerVersion(TypedDict, total=False):
    """The keys of `docker version --format '{{json .Server}}'` imagebench reads."""

    ApiVersion: str


class BuildxBuilder(TypedDict):
    """The fields of `docker buildx inspect` text output imagebench reads (`parse_buildx_inspect`)."""

    name: str | None
    driver: str | None
    buildkit_version: str | None
    status: str | None


class EngineInfo(TypedDict, total=False):
    """The engine as a fingerprint and `lab status` describe it (`engine_info`); `error` when it is down."""

    docker_host: str
    engine_version: str | None
    api_version: str | None
    buildx_version: str | None
    buildkit_version: str | None
    buildkit_version_source: str
    builder_name: str | None
    builder_driver: str | None
    storage_driver: str | None
    image_store: str
    docker_root_dir: str | None
    cgroup_version: str | None
    kernel: str
    os: str | None
    cpus: int | None
    mem_bytes: int | None
    architecture: str | None
    error: str


MIN_ENGINE = (20, 0)
MIN_BUILDX = (0, 12)  # `--progress=rawjson` appeared in buildx 0.12
TIMEOUT = 15.0

# BuildKit embedded in Moby releases, for engines whose builder reports "v0.0.0+unknown"
# (distribution builds).  Only series verified from Moby's vendoring are listed.
EMBEDDED_BUILDKIT: dict[tuple[int, ...], str] = {
    (25, 0): "v0.12",
    (26, 0): "v0.13",
    (26, 1): "v0.13",
    (27, 0): "v0.14",
}


def parse_version(text: str | None) -> tuple[int, ...]:
    """'26.1.5+dfsg1' -> (26, 1, 5); 'v0.13.1' -> (0, 13, 1); unparsable -> ()."""
    if not text:
        return ()
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return ()
    return tuple(int(g) for g in m.groups() if g is not None)


def _docker(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker") is None:
        raise EngineUnavailable(
            "the docker CLI is not on PATH", hint="run scripts/install-engine.sh as root, or install Docker"
        )
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise EngineUnavailable(
            f"`docker {' '.join(args)}` did not answer within {timeout:.0f} s",
            hint=f"check the daemon at {docker_host()}",
        )


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def server_info() -> ServerInfo:
    """`docker info` as a dict; EngineUnavailable when the daemon does not answer."""
    cp = _docker("info", "--format", "{{json .}}")
    data: ServerInfo = {}
    if cp.stdout.strip():
        try:
            data = cast(ServerInfo, json.loads(cp.stdout))
        except json.JSONDecodeError:
            data = {}
    if cp.returncode != 0 or not data.get("ServerVersion"):
        errs = data.get("ServerErrors") or [_first_line(cp.stderr)]
        raise EngineUnavailable(
            f"the Docker daemon at {docker_host()} is not answering: {errs[0]}",
            hint="start dockerd (scripts/install-engine.sh) or fix DOCKER_HOST",
        )
    return data


def buildx_version() -> str | None:
    cp = _docker("buildx", "version")
    if cp.returncode != 0:
        return None
    # "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3" or "github.com/docker/buildx v0.17.1 abc"
    parts = cp.stdout.split()
    return parts[1].lstrip("v") if len(parts) >= 2 else None


def parse_buildx_inspect(text: str) -> BuildxBuilder:
    """Pure: the interesting fields of `docker buildx inspect` text output."""
    out: BuildxBuilder = {"name": None, "driver": None, "buildkit_version": None, "status": None}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Name" and out["name"] is None:
            out["name"] = value
        elif key == "Driver" and out["driver"] is None:
            out["driver"] = value
        elif (key == "BuildKit version" and out["buildkit_version"] is None) or (
            key == "BuildKit" and out["buildkit_version"] is None
        ):
            out["buildkit_version"] = value
        elif key == "Status" and out["status"] is None:
            out["status"] = value
    return out


def image_store(info: ServerInfo) -> str:
    """'containerd' when the daemon uses the containerd snapshotter image store, else 'classic'."""
    for pair in info.get("DriverStatus") or []:
        if len(pair) == 2 and pair[0] == "driver-type" and "containerd" in pair[1]:
            return "containerd"
    if str(info.get("Driver", "")).startswith(("overlayfs", "stargz", "native")) and info.get("DriverStatus"):
        return "containerd"
    return "classic"


def engine_info() -> EngineInfo:
    """Everything a fingerprint needs about the engine. Raises EngineUnavailable if it does not answer."""
    info = server_info()
    ver = _docker("version", "--format", "{{json .Server}}")
    server: ServerVersion = {}
    if ver.returncode == 0 and ver.stdout.strip():
        try:
            server = cast(ServerVersion, json.loads(ver.stdout)) or {}
        except json.JSONDecodeError:
            server = {}
    bx = buildx_version()
    builder: BuildxBuilder = {"name": None, "driver": None, "buildkit_version": None, "status": None}
    if bx:
        cp = _docker("buildx", "inspect")
        if cp.returncode == 0:
            builder = parse_buildx_inspect(cp.stdout)
    engine_version = info.get("ServerVersion")
    bk = builder.get("buildkit_version")
    bk_source = "builder"
    if not bk or "unknown" in bk:
        series = EMBEDDED_BUILDKIT.get(parse_version(engine_version)[:2])
        bk, bk_source = (f"{series}.x", "inferred from engine version") if series else (None, "unknown")
    return {
        "docker_host": docker_host(),
        "engine_version": engine_version,
        "api_version": server.get("ApiVersion"),
        "buildx_version": bx,
        "buildkit_version": bk,
        "buildkit_version_source": bk_source,
        "builder_name": builder.get("name"),
        "builder_driver": builder.get("driver"),
        "storage_driver": info.get("Driver"),
        "image_store": image_store(info),
        "docker_root_dir": info.get("DockerRootDir"),
        "cgroup_version": info.get("CgroupVersion"),
        "kernel": info.get("KernelVersion") or platform.release(),
        "os": info.get("OperatingSystem"),
        "cpus": info.get("NCPU"),
        "mem_bytes": info.get("MemTotal"),
        "architecture": info.get("Architecture"),
    }


def check_versions(engine_version: str | None, buildx: str | None) -> None:
    """Pure: raise EngineUnavailable when the versions cannot run imagebench."""
    ev = parse_version(engine_version)
    if not ev or ev[:2] < MIN_ENGINE:
        raise EngineUnavailable(
            f"Docker Engine {engine_version or '?'} is too old (need >= {MIN_ENGINE[0]})",
            hint="upgrade the engine (scripts/install-engine.sh installs 26.x on Debian)",
        )
    if buildx is None:
        raise EngineUnavailable(
            "docker buildx is missing", hint="install the docker-buildx package (>= 0.12)"
        )
    if parse_version(buildx)[:2] < MIN_BUILDX:
        raise EngineUnavailable(
            f"docker buildx {buildx} is older than 0.12 (no rawjson progress)",
            hint="upgrade docker-buildx to >= 0.12",
        )


def require_engine() -> EngineInfo:
    """Return engine_info() or raise EngineUnavailable with one line saying what to do."""
    info = engine_info()
    check_versions(info.get("engine_version"), info.get("buildx_version"))
    return info
