"""What a run measures on: the machine's fingerprint, the lab, what this host can run, signals."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypedDict, cast

from harness import __version__
from harness.engine import repro
from harness.engine.check import EngineInfo, engine_info
from harness.engine.repro import ReproSupport
from harness.errors import UsageError
from harness.lab import load_lab
from harness.lab.engine2 import BuilderInfo, describe_builder
from harness.paths import REPO_ROOT
from harness.records import JSONObject, LabHandle
from harness.runner.plan import RunOptions


class FingerprintEngine(EngineInfo, total=False):
    """The engine in a run's fingerprint: `engine_info()`, and the buildx builder a run asked for."""

    builder_requested: str
    builder: BuilderInfo


class GitInfo(TypedDict):
    git_commit: str | None
    git_dirty: bool | None


class HarnessInfo(GitInfo):
    version: str
    python: str


class HostInfo(TypedDict):
    cpus: int | None
    loadavg: list[float]


class Fingerprint(TypedDict):
    """A run's `fingerprint` (results/README.md): the engine, the harness, the host, the lab, reproducibility."""

    engine: FingerprintEngine
    harness: HarnessInfo
    host: HostInfo
    lab: JSONObject | None
    reproducibility: ReproSupport


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so one code path cleans up after either signal."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def git_info() -> GitInfo:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    # results/ is data the runs write, not harness code: a reference run rewriting it is not "dirty"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"git_commit": commit, "git_dirty": bool(dirty) if dirty is not None else None}


def fingerprint(lab: LabHandle | None, builder: str | None) -> Fingerprint:
    info = cast(FingerprintEngine, engine_info())  # the same dict, with the builder's keys added below
    if builder:
        info["builder_requested"] = builder
        info["builder"] = describe_builder(builder)  # its driver, endpoint and the engine it builds on
    fp: Fingerprint = {
        "engine": info,
        "harness": {"version": __version__, **git_info(), "python": sys.version.split()[0]},
        "host": {"cpus": os.cpu_count(), "loadavg": list(os.getloadavg())},
        "lab": lab.fingerprint() if lab is not None else None,
        "reproducibility": repro.support(info.get("builder_driver"), info.get("buildkit_version")),
    }
    return fp


def load_lab_or_none(bases: str) -> LabHandle:
    lab = load_lab()
    if bases == "registry" and getattr(lab, "bases_mode", "lab") != "registry":
        raise UsageError("--bases registry needs a lab started with `imagebench lab up --bases registry`")
    return lab


def capability_missing(need: str, opts: RunOptions, lab: LabHandle | None) -> str | None:
    """Why a requirement is not met here (None when it is)."""
    if need == "registry-bases":
        return (
            None
            if opts.bases == "registry"
            else "needs public base images (--bases registry); no registry is reachable in lab mode"
        )
    if need == "shaped-network":
        prof = getattr(lab, "profile", None)
        name = prof.get("profile") if isinstance(prof, dict) else getattr(prof, "name", None)
        return (
            None
            if name and name != "unlimited"
            else "needs a shaped network profile (imagebench lab up --profile 100mbit)"
        )
    if need == "musl-base":
        failed = ((getattr(lab, "state", None) or {}).get("bases_failed") or {}) if lab is not None else {}
        why = next((f"{k}: {v}" for k, v in failed.items() if "musl" in k), None)
        return (
            f"the lab's musl stand-in for python:*-alpine did not build in `lab up` ({why})" if why else None
        )
    if need.startswith("tool:"):
        tool = need.split(":", 1)[1]
        return None if shutil.which(tool) else f"needs the {tool!r} tool on PATH"
    if need in ("cosign", "hadolint", "docker-compose", "openssl", "dockerd"):
        return None if shutil.which(need) else f"needs the {need!r} tool on PATH"
    if need == "compose":
        return (
            None if (shutil.which("docker-compose") or _has_compose_plugin()) else "needs Docker Compose v2"
        )
    return None


def _has_compose_plugin() -> bool:
    try:
        return (
            subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=10).returncode == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


class Background:
    """Run a function in a thread; `result()` waits and returns its value (or raises its error)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of result(), who raises it
                self._error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
