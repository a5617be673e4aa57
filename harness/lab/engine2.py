"""A second, throw-away Docker engine next to the lab's: the lab registry as its registry mirror.

It proves the paths a machine with internet uses without the internet: `--bases registry`
(public names pulled through the mirror, which serves the lab's bases under those names) and
`--builder NAME` (a docker context pointing at this engine is a buildx builder).  Own data root,
exec root, pidfile, socket and bridge (harness.probes.tls.SecondDaemon); `stop()` removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypedDict, cast

from harness.errors import EnvironmentProblem, LabError
from harness.lab import registry
from harness.lab.basedefs import Bases, normalize_name
from harness.lab.state import PushRecord
from harness.probes.tls import START_TIMEOUT, SecondDaemon, dockerd_command, own_bridge
from harness.records import JSONObject


class PublishedName(PushRecord, total=False):
    """A lab base pushed to the lab registry under its public name (`publish_public_names`)."""

    lab_tag: str


class BuilderInfo(TypedDict, total=False):
    """A buildx builder and the engine it builds on (`describe_builder`; `error` when inspect failed)."""

    name: str | None
    driver: str | None
    endpoint: str | None
    error: str
    engine_host: str | None
    engine_id: str | None
    engine_name: str | None
    engine_version: str | None
    engine_root: str | None


def daemon_config(mirror: str) -> JSONObject:
    """Pure: the second engine's daemon.json (the lab registry as docker.io's mirror)."""
    return {"registry-mirrors": [f"http://{mirror}"]}


def namespaced_command(cmd: list[str], exe: str, ns: str) -> list[str]:
    """Pure: a second daemon's command line run by `exe`, in containerd namespaces `ns` and `ns`-plugins."""
    out = [exe, *cmd[1:]]
    for flag in ("--containerd-namespace", "--containerd-plugins-namespace"):
        i = out.index(flag)
        del out[i : i + 2]
    return [*out, "--containerd-namespace", ns, "--containerd-plugins-namespace", ns + "-plugins"]


class MirrorEngine(SecondDaemon):
    def __init__(self, mirror: str, root: Path | None = None, port: int = 0) -> None:
        root = root or Path(tempfile.mkdtemp(prefix="ib-engine2-", dir="/tmp"))
        if not port:
            with socket.socket() as sk:  # a free loopback port for its tcp listener
                sk.bind(("127.0.0.1", 0))
                port = sk.getsockname()[1]
        super().__init__(root, port, None)
        self.mirror = mirror

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    #: what its errors call it, and the prefix of its containerd namespaces
    label = "second dockerd"
    ns_prefix = "imagebench-e2-"

    def config(self) -> JSONObject:
        """Its daemon.json."""
        return daemon_config(self.mirror)

    def command(self, exe: str, ns: str, bridge: str) -> list[str]:
        """Its dockerd command line, in containerd namespaces of its own."""
        return namespaced_command(dockerd_command(self.root, self.port, None, bridge), exe, ns)

    def check_started(self) -> None:
        """What must hold once it answers (a subclass checks its features)."""

    def start(self) -> None:
        exe = shutil.which("dockerd")
        if exe is None:
            raise EnvironmentProblem("dockerd is not on PATH")
        (self.root / "daemon.json").write_text(json.dumps(self.config()) + "\n")
        self.bridge = bridge = own_bridge()
        cmd = self.command(exe, self.ns_prefix + os.urandom(4).hex(), bridge)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvironmentProblem(f"{self.label} exited: {self.log_tail()}")
            if (self.root / "docker.sock").exists() and self._unix_ping():
                return self.check_started()
            time.sleep(0.2)
        raise EnvironmentProblem(f"{self.label} did not answer: {self.log_tail()}")

    def docker(self, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, text=True, timeout=timeout, check=False
        )


def public_repo(public: str) -> str:
    """Pure: where a public Docker Hub name lives in a mirror ('python:3.13-slim' -> 'library/python:3.13-slim')."""
    name = normalize_name(public)
    return name if "/" in name.split(":", 1)[0] else f"library/{name}"


def publish_public_names(
    catalog: Bases, reg: str, keys: list[str] | None = None, via: str | None = None
) -> dict[str, PublishedName]:
    """Push lab bases into the lab registry under their public names (what the mirror serves).

    `via` (a DOCKER_HOST) is the engine that pushes; the lab tag must exist there."""
    out: dict[str, PublishedName] = {}
    for key, defn in catalog.bases.items():
        if keys is not None and key not in keys:
            continue
        repo = public_repo(defn.stands_in_for)
        if via:
            tgt = f"{reg}/{repo}"
            for args in (("tag", defn.tag, tgt), ("push", "--quiet", tgt)):
                cp = subprocess.run(
                    ["docker", "-H", via, *args], capture_output=True, text=True, timeout=900, check=False
                )
                if cp.returncode != 0:
                    raise LabError(f"docker {args[0]} {tgt} failed: {cp.stderr.strip()[-300:]}")
            out[defn.stands_in_for] = {"lab_tag": defn.tag, "ref": tgt}
        else:
            out[defn.stands_in_for] = {"lab_tag": defn.tag, **registry.push(defn.tag, reg, repo)}
    return out


def parse_builder(text: str) -> BuilderInfo:
    """Pure: name, driver and the first node's endpoint of `docker buildx inspect NAME` output."""
    out: BuilderInfo = {"name": None, "driver": None, "endpoint": None}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Name" and out["name"] is None:
            out["name"] = value
        elif key == "Driver" and out["driver"] is None:
            out["driver"] = value
        elif key == "Endpoint" and out["endpoint"] is None:
            out["endpoint"] = value
    return out


def describe_builder(name: str) -> BuilderInfo:
    """What a buildx builder is and which engine it builds on (for a run's fingerprint)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30, check=False)

    cp = run("buildx", "inspect", name)
    if cp.returncode != 0:
        return {"name": name, "error": cp.stderr.strip()[-200:]}
    b = parse_builder(cp.stdout)
    host = b["endpoint"]
    if host and "://" not in host:  # a docker context name
        ctx = run("context", "inspect", host, "--format", "{{json .Endpoints.docker.Host}}")
        if ctx.returncode == 0:
            host = cast(str | None, json.loads(ctx.stdout or "null")) or host
    b["engine_host"] = host
    if host and "://" in host:
        info = subprocess.run(
            ["docker", "-H", host, "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if info.returncode == 0:
            with contextlib.suppress(ValueError):
                d = json.loads(info.stdout)
                b["engine_id"] = d.get("ID")
                b["engine_name"] = d.get("Name")
                b["engine_version"] = d.get("ServerVersion")
                b["engine_root"] = d.get("DockerRootDir")
    return b


def builder_host(name: str) -> str | None:
    """The DOCKER_HOST of the engine a docker-driver builder builds on (None if not an engine)."""
    b = describe_builder(name)
    return b.get("engine_host") if b.get("driver") == "docker" else None
