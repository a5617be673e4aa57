"""Machine identity that two hosts cannot share by accident.

The run folder and the report's machine label are `<host>-<hash8>`: the host name plus the
first 8 hex digits of SHA-256 over
  - /etc/machine-id (systemd's per-install id; cloned VM images can share it, hence also)
  - a random id generated once and kept in the state dir (`<state>/machine-id`)
  - the hardware: CPU model, logical CPUs, memory in GiB
Two machines both called `vm` (the usual case for cloud images) get different names. The engine
version is not part of the identity (an engine upgrade does not make another machine); it is in
the run's fingerprint, and comparisons across engines are flagged there.

`$IMAGEBENCH_MACHINE` overrides the whole name (tests, CI runners that want a fixed label).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from functools import lru_cache
from pathlib import Path
from typing import TypedDict

from harness.paths import state_dir
from harness.records import RunRecord

ID_FILE = "machine-id"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "machine"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class Hardware(TypedDict):
    """What makes timings comparable: the CPU model, logical CPUs, memory in GiB."""

    cpu_model: str
    cpus: int
    memory_gib: int


class MachineIdentity(TypedDict):
    """A run file's `machine_identity` (results/README.md); `override` and `role` as the caller sets them."""

    name: str
    host: str
    hash: str
    sources: list[str]
    hardware: Hardware
    override: bool


def hardware() -> Hardware:
    """CPU model, logical CPUs and memory (GiB, rounded): what makes timings comparable."""
    model = ""
    for line in _read(Path("/proc/cpuinfo")).splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
            break
    return {"cpu_model": model, "cpus": os.cpu_count() or 0, "memory_gib": round(mem_kb / 2**20)}


def persisted_id(state: Path | None = None) -> str:
    """The random id kept in the state dir, created on first use."""
    if state is None:
        state = state_dir()
    path = Path(state) / ID_FILE
    text = _read(path)
    if re.fullmatch(r"[0-9a-f]{32}", text):
        return text
    text = secrets.token_hex(16)
    tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)
    return text


@lru_cache(maxsize=1)
def _measured() -> MachineIdentity:
    host = _safe(socket.gethostname() or "machine")
    hw = hardware()
    system_id = _read(Path("/etc/machine-id"))
    local_id = persisted_id()
    material = "\n".join([system_id, local_id, hw["cpu_model"], str(hw["cpus"]), str(hw["memory_gib"])])
    digest = hashlib.sha256(material.encode()).hexdigest()[:8]
    sources = (["/etc/machine-id"] if system_id else []) + ["state-dir machine-id", "hardware"]
    return {
        "name": f"{host}-{digest}",
        "host": host,
        "hash": digest,
        "sources": sources,
        "hardware": hw,
        "override": False,
    }


def identity() -> MachineIdentity:
    """{"name", "host", "hash", "sources", "hardware", "override"}: the run file's `machine_identity`."""
    ident = _measured().copy()
    override = os.environ.get("IMAGEBENCH_MACHINE")
    ident["override"] = bool(override)
    if override:
        ident["name"] = _safe(override)
    return ident


def machine_name() -> str:
    """The folder and label of this machine's runs."""
    return identity()["name"]


REFERENCE_PREFIX = "reference-"


def as_reference(runs: list[RunRecord]) -> list[RunRecord]:
    """The committed reference runs, labelled as another machine so they never pool with this one's."""
    out = []
    for run in runs:
        run = run.copy()
        run["machine"] = REFERENCE_PREFIX + str(run.get("machine", "machine"))
        ident = dict(run.get("machine_identity") or {})
        ident["role"] = "reference run committed in results/ (another machine)"
        run["machine_identity"] = ident
        out.append(run)
    return out
