"""Shared helpers of the runtime probes: labelled containers, daemon events, compose projects, cleanup.

Everything a probe creates goes through `Owned`: it carries the trial's labels (plus
`imagebench.probe` and `imagebench.trial`), is registered with `ctx.track(kind, id)` and is
removed by `Owned.cleanup()` whatever happened (and, as a safety net, anything else still
carrying the trial label). Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeAlias, TypedDict, cast

from harness.probes import Probe

Number: TypeAlias = int | float | str
"""A number a probe reads with float() or int(): TOML's number, or its text ("2.5")."""


class Case(TypedDict):
    """One way of running the image (probes/argv.py): its command and entrypoint (None: the image's own)."""

    case: str
    command: list[str] | None
    entrypoint: str | None


class HealthcheckOptions(TypedDict, total=False):
    """`run = {healthcheck = {...}}` (probes/health.py): durations in seconds or as "1m30s"."""

    test: str | list[str]
    interval: Number
    timeout: Number
    start_period: Number
    retries: int | str


class RunOptions(TypedDict, total=False):
    """A variant's `run = {...}` options for one probe, as experiment.toml gives them (with the probe's
    own sub-table on top, `options`): the keys the probes read. TOML values, not checked at load: each
    probe converts (float(), int(), str(), list()) what it reads."""

    command: list[str]  # argv, heartbeat, logs, stop, user: the container's command
    timeout: Number
    ready: str
    ready_timeout: Number
    settle: Number
    source: str  # addsource
    dest: str
    member: str
    etag: bool
    marker: str  # argv
    cases: list[Case]
    args: list[str]
    entrypoint: str
    hold: Number
    healthcheck: HealthcheckOptions  # health
    compose: bool
    observe: Number
    port: Number
    health_path: str
    hang_path: str
    seconds: Number  # heartbeat
    dir: str
    interval_ms: Number
    op: str
    writer_mib: Number
    writer: bool
    lines: Number  # logs
    memory: Number  # limits: bytes or "64m"
    memory_swap: Number
    cpus: Number
    mem_mib: Number
    cpu_seconds: Number
    workloads: list[str]
    mem_command: list[str]
    cpu_command: list[str]
    neighbour_seconds: Number
    neighbour_workers: Number
    hog_workers: Number
    stop_timeout: Number  # stop
    init: bool
    term_marker: str
    mode: str  # supervise
    worker_match: str
    worker_command: list[str]
    app_match: str
    recovery_cap: Number
    restart: str
    paths: list[str]  # user
    app_paths: list[str]


class ComposeService(TypedDict, total=False):
    """One service of a compose document, as the probes write it (written out as JSON)."""

    image: str
    command: list[str]
    healthcheck: dict[str, object]
    deploy: dict[str, object]
    memswap_limit: object
    labels: dict[str, str]


class ProcStatus(TypedDict, total=False):
    """What `parse_proc_status` reads of /proc/<pid>/status."""

    uids: list[int]
    uid: int
    gids: list[int]
    gid: int
    name: str
    groups: list[int]


class TopRow(TypedDict):
    """One process of `container.top()`: host pid, parent pid, command line."""

    pid: int
    ppid: int
    cmd: str


class ContainerTop(TypedDict, total=False):
    """`container.top()`'s answer."""

    Titles: list[str]
    Processes: list[list[str]]


class EventActor(TypedDict, total=False):
    ID: str
    Attributes: dict[str, str]


class DaemonEvent(TypedDict, total=False):
    """A daemon event (`client.events(decode=True)`): the keys the probes read."""

    Type: str
    Action: str
    status: str
    id: str
    time: int
    timeNano: int
    Actor: EventActor


TRIAL_LABEL = "imagebench.trial"
PROBE_LABEL = "imagebench.probe"


# --------------------------------------------------------------------------- options


def options(ctx: Any, probe: str) -> RunOptions:
    """The variant's `run = {...}` options, with a per-probe sub-table (`run = {stop = {...}}`) on top."""
    run: dict[str, object] = dict(getattr(ctx.variant, "run", None) or {})
    own = run.pop(probe, None)
    if isinstance(own, dict):
        run.update(own)
    return cast("RunOptions", run)  # the TOML table as the experiment gives it (see RunOptions)


def parse_bytes(value: Any) -> int | None:
    """'64m' / '1g' / '512k' / 1024 -> bytes (docker's units: powers of 1024)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*", str(value).lower())
    if not m:
        raise ValueError(f"not a size: {value!r}")
    mult = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2)]
    return int(float(m.group(1)) * mult)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(s)))
    return s[min(rank, len(s)) - 1]


# --------------------------------------------------------------------------- /proc parsing (pure)


def parse_proc_status(text: str) -> ProcStatus:
    """Uid/Gid lines of /proc/<pid>/status -> {'uid': effective, 'gid': effective, 'uids': [...], ...}."""
    out: ProcStatus = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "Uid":
            ids = [int(x) for x in rest.split()]
            out["uids"] = ids  # real, effective, saved, filesystem
            out["uid"] = ids[1] if len(ids) > 1 else ids[0]
        elif key == "Gid":
            ids = [int(x) for x in rest.split()]
            out["gids"] = ids  # real, effective, saved, filesystem
            out["gid"] = ids[1] if len(ids) > 1 else ids[0]
        elif key == "Name":
            out["name"] = rest.strip()
        elif key == "Groups":
            out["groups"] = [int(x) for x in rest.split()]
    return out


def parse_cmdline(raw: bytes) -> list[str]:
    """/proc/<pid>/cmdline (NUL-separated) -> argv."""
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts = parts[:-1]
    return [p.decode("utf-8", "replace") for p in parts]


def parse_top(top: ContainerTop) -> list[TopRow]:
    """container.top() -> [{'pid': host pid, 'ppid': ..., 'cmd': '...'}]."""
    titles = [t.upper() for t in top.get("Titles") or []]
    rows: list[TopRow] = []
    for proc in top.get("Processes") or []:
        row = dict(zip(titles, proc, strict=False))
        cmd = row.get("CMD") or row.get("COMMAND") or row.get("ARGS") or ""
        try:
            pid = int(row.get("PID", "-1"))
        except ValueError:
            pid = -1
        try:
            ppid = int(row.get("PPID", "-1"))
        except ValueError:
            ppid = -1
        rows.append({"pid": pid, "ppid": ppid, "cmd": cmd})
    return rows


# --------------------------------------------------------------------------- events


def event_seconds(a: DaemonEvent, b: DaemonEvent) -> float:
    """Seconds between two daemon events (timeNano, falling back to time)."""
    ta = a.get("timeNano") or a.get("time", 0) * 1_000_000_000
    tb = b.get("timeNano") or b.get("time", 0) * 1_000_000_000
    return (tb - ta) / 1e9


def event_time(ev: DaemonEvent) -> float:
    """Event time as a Unix timestamp (float seconds)."""
    if ev.get("timeNano"):
        return ev["timeNano"] / 1e9
    return float(ev.get("time", 0))


def is_action(ev: DaemonEvent, action: str) -> bool:
    return (
        ev.get("Type", "container") == "container" and (ev.get("Action") or ev.get("status") or "") == action
    )


class EventWatch:
    """Collect a container's daemon events in a background thread; wait for one with a bound."""

    def __init__(self, client: Any, container_id: str, *, since: float | None = None) -> None:
        self.items: list[DaemonEvent] = []
        self._cv = threading.Condition()
        self._closed = False
        since_i = int(since if since is not None else time.time()) - 1
        self._stream = client.events(filters={"container": container_id}, decode=True, since=since_i)
        self._thread = threading.Thread(target=self._pump, name=f"events-{container_id[:12]}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for ev in self._stream:
                with self._cv:
                    self.items.append(ev)
                    self._cv.notify_all()
        except Exception:  # noqa: BLE001 - stream closed or daemon gone: the waiters time out
            pass
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()

    def wait_for(
        self, pred: Callable[[DaemonEvent], bool], timeout: float, *, start: int = 0
    ) -> DaemonEvent | None:
        """First event (from index `start`) matching pred, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for ev in self.items[start:]:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                self._cv.wait(min(left, 0.25))

    def snapshot(self) -> list[DaemonEvent]:
        with self._cv:
            return list(self.items)

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing a dead stream: nothing to do
            pass
        self._thread.join(timeout=2)

    def __enter__(self) -> EventWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- owned resources


def compose_command() -> list[str] | None:
    """`docker compose` (plugin) or `docker-compose` (v2 binary), whichever works; None when neither."""
    if shutil.which("docker"):
        try:
            r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=15)
            if r.returncode == 0:
                return ["docker", "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    exe = shutil.which("docker-compose")
    if exe:
        try:
            r = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=15)
            if r.returncode == 0 and re.search(r"v?2\.", r.stdout):
                return [exe]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return None


class Owned:
    """What one probe created in one trial; `cleanup()` removes all of it."""

    def __init__(self, ctx: Any, probe: str) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.probe = probe
        self.labels = {**(ctx.labels or {}), PROBE_LABEL: probe, TRIAL_LABEL: str(ctx.nonce)}
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.volumes: list[str] = []
        self.projects: list[tuple[list[str], str, Path]] = []  # (compose cmd, project, workdir)

    # ---- containers
    def create(self, image: str, **kwargs: Any) -> Any:
        """client.containers.create with our labels; tracked before anything else can fail."""
        labels = {**self.labels, **(kwargs.pop("labels", None) or {})}
        kwargs.setdefault("detach", True)
        c = self.client.containers.create(image, labels=labels, **kwargs)
        self.track_container(c.id)
        return c

    def create_low(self, image: str, host_config: dict[str, object] | None = None, **kwargs: Any) -> Any:
        """APIClient.create_container (for options the high-level API lacks, e.g. stop_timeout)."""
        api = self.client.api
        labels = {**self.labels, **(kwargs.pop("labels", None) or {})}
        hc = api.create_host_config(**(host_config or {}))
        res = api.create_container(image, labels=labels, host_config=hc, **kwargs)
        self.track_container(res["Id"])
        return self.client.containers.get(res["Id"])

    def track_container(self, cid: str) -> None:
        if cid not in self.containers:
            self.containers.append(cid)
            self.ctx.track("container", cid)

    def track_network(self, nid: str) -> None:
        if nid not in self.networks:
            self.networks.append(nid)
            self.ctx.track("network", nid)

    def track_volume(self, name: str) -> None:
        if name not in self.volumes:
            self.volumes.append(name)
            self.ctx.track("volume", name)

    # ---- compose
    def compose_up(
        self, services: dict[str, ComposeService], *, start: bool = True, timeout: float = 120.0
    ) -> dict[str, str]:
        """Write a compose file for `services`, `up -d` it (or only `create` it), return {service: container id}."""
        cmd = compose_command()
        if cmd is None:
            raise RuntimeError("docker compose (v2) is not available")
        project = f"imagebench-{self.probe}-{str(self.ctx.nonce)[:12]}".lower()
        project = re.sub(r"[^a-z0-9_-]", "-", project)
        workdir = Path(tempfile.mkdtemp(prefix="imagebench-compose-"))
        doc = compose_document(services, self.labels)
        (workdir / "compose.yaml").write_text(json.dumps(doc, indent=2))  # JSON is valid YAML
        self.projects.append((cmd, project, workdir))
        base = [*cmd, "-p", project, "-f", str(workdir / "compose.yaml")]
        verb = ["up", "-d"] if start else ["create"]
        r = subprocess.run(
            [*base, *verb, "--no-build", "--pull", "never"],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
        )
        self._track_project(project)
        if r.returncode != 0:
            raise RuntimeError(f"docker compose {verb[0]} failed: {(r.stderr or r.stdout).strip()[-400:]}")
        out = {}
        for name in services:
            q = subprocess.run(
                [*base, "ps", "-aq", name], capture_output=True, text=True, timeout=30, cwd=workdir
            )
            ids = q.stdout.split()
            if ids:
                full = self.client.containers.get(ids[0]).id
                out[name] = full
                self.track_container(full)
        return out

    def _track_project(self, project: str) -> None:
        flt = {"label": f"com.docker.compose.project={project}"}
        try:
            for c in self.client.containers.list(all=True, filters=flt):
                self.track_container(c.id)
            for n in self.client.networks.list(filters=flt):
                self.track_network(n.id)
            for v in self.client.volumes.list(filters=flt):
                self.track_volume(v.name)
        except Exception:  # noqa: BLE001 - best effort: volumes seen are tracked, the daemon may be gone
            pass

    # ---- cleanup
    def cleanup(self) -> list[str]:
        """Remove everything; returns error strings (never raises)."""
        errors: list[str] = []
        for cmd, project, workdir in self.projects:
            try:
                subprocess.run(
                    [
                        *cmd,
                        "-p",
                        project,
                        "-f",
                        str(workdir / "compose.yaml"),
                        "down",
                        "-v",
                        "--remove-orphans",
                        "-t",
                        "0",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    cwd=workdir,
                )
            except Exception as exc:  # noqa: BLE001 - cleanup goes on; the error is reported
                errors.append(f"compose down {project}: {exc}")
            shutil.rmtree(workdir, ignore_errors=True)
        ids = list(self.containers)
        try:
            flt = {"label": f"{TRIAL_LABEL}={self.ctx.nonce}"}
            ids += [c.id for c in self.client.containers.list(all=True, filters=flt) if c.id not in ids]
        except Exception:  # noqa: BLE001 - best effort: the tracked ids are removed anyway
            pass
        for cid in ids:
            try:
                self.client.api.remove_container(cid, force=True, v=True)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on; the error is reported
                if "No such container" not in str(exc) and "404" not in str(exc):
                    errors.append(f"remove container {cid[:12]}: {exc}")
        for nid in self.networks:
            try:
                self.client.api.remove_network(nid)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on; the error is reported
                if "404" not in str(exc) and "not found" not in str(exc).lower():
                    errors.append(f"remove network {nid[:12]}: {exc}")
        for name in self.volumes:
            try:
                self.client.api.remove_volume(name, force=True)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on; the error is reported
                if "404" not in str(exc) and "no such volume" not in str(exc).lower():
                    errors.append(f"remove volume {name}: {exc}")
        self.containers.clear()
        self.networks.clear()
        self.volumes.clear()
        self.projects.clear()
        return errors


def compose_document(services: dict[str, ComposeService], labels: dict[str, str]) -> dict[str, object]:
    """A compose document: every service and the default network carry our labels."""
    doc_services: dict[str, ComposeService] = {}
    for name, spec in services.items():
        s = spec.copy()
        s["labels"] = {**labels, **(s.get("labels") or {})}
        doc_services[name] = s
    return {"services": doc_services, "networks": {"default": {"labels": dict(labels)}}}


# --------------------------------------------------------------------------- files of an image


def image_archive(client: Any, image: str, path: str, labels: dict[str, str], track: Any) -> bytes | None:
    """The tar archive of `path` in an image, read through a created (never started) container
    that is tracked and removed again; None when the path does not exist in the image."""
    import docker.errors  # the docker SDK costs ~0.8 s to import; loading every probe must not pay it

    c = client.containers.create(image, command=["true"], labels=labels, network_disabled=True)
    track("container", c.id)
    try:
        stream, _ = c.get_archive(path)
        return b"".join(stream)
    except docker.errors.NotFound:
        return None
    finally:
        with contextlib.suppress(Exception):
            c.remove(force=True)


def files_in_image(
    client: Any, image: str, path: str, labels: dict[str, str], track: Any
) -> list[tuple[str, int]]:
    """(name, size) of the regular files under `path` in the image ([] when the path is missing)."""
    archive = image_archive(client, image, path, labels, track)
    if archive is None:
        return []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        return [(m.name, m.size) for m in tf if m.isreg()]


def file_from_image(client: Any, image: str, path: str, labels: dict[str, str], track: Any) -> bytes | None:
    """The content of the file at `path` in the image (the first regular file when `path` is a
    directory); None when there is none."""
    archive = image_archive(client, image, path, labels, track)
    if archive is None:
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        for m in tf:
            if m.isreg():
                fh = tf.extractfile(m)
                return fh.read() if fh else None
    return None


# --------------------------------------------------------------------------- container facts


def host_pid(container: Any) -> int | None:
    container.reload()
    pid = container.attrs.get("State", {}).get("Pid") or 0
    return int(pid) or None


def read_host_proc(pid: int, name: str) -> bytes | None:
    """/proc/<pid>/<name> of a container process, read on the host (local daemon only)."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def pid1_status(container: Any) -> ProcStatus:
    """uid/gid of PID 1: host /proc when the daemon is local, else `cat /proc/1/status` inside."""
    pid = host_pid(container)
    raw = read_host_proc(pid, "status") if pid else None
    if raw is None:
        res = container.exec_run(["cat", "/proc/1/status"], user="0")
        raw = res.output if res.exit_code == 0 else b""
    return parse_proc_status(raw.decode("utf-8", "replace"))


def pid1_cmdline(container: Any) -> list[str] | None:
    pid = host_pid(container)
    raw = read_host_proc(pid, "cmdline") if pid else None
    if raw is None:
        try:
            res = container.exec_run(["cat", "/proc/1/cmdline"])
            raw = res.output if res.exit_code == 0 else None
        except Exception:  # noqa: BLE001 - the container may be gone: no cmdline
            raw = None
    return parse_cmdline(raw) if raw else None


def wait_status(container: Any, statuses: Iterable[str], timeout: float, poll: float = 0.05) -> str:
    """Poll until the container's State.Status is one of `statuses`; returns the last status seen."""
    want = set(statuses)
    deadline = time.monotonic() + timeout
    status = ""
    while True:
        container.reload()
        status = str(container.attrs.get("State", {}).get("Status", ""))
        if status in want or time.monotonic() >= deadline:
            return status
        time.sleep(poll)


def wait_exit(container: Any, timeout: float) -> int | None:
    """Exit code after the container stops by itself within `timeout`, else None (it is still running)."""
    try:
        res = container.wait(timeout=timeout)
        return int(res.get("StatusCode", -1))
    except Exception:  # noqa: BLE001 - requests' ReadTimeout / ConnectionError: did not exit in time
        return None


def wait_log(container: Any, needle: str, timeout: float, poll: float = 0.05) -> bool:
    """Poll the container's logs until `needle` appears (or it exits, or time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if needle.encode() in container.logs(stdout=True, stderr=True):
                return True
            container.reload()
            if container.attrs.get("State", {}).get("Status") in ("exited", "dead"):
                return needle.encode() in container.logs(stdout=True, stderr=True)
        except Exception:  # noqa: BLE001 - the container may be gone: not seen
            return False
        time.sleep(poll)
    return False


def image_ref(ctx: Any) -> str:
    ref: str | None = ctx.image or ctx.tag
    if not ref:
        raise RuntimeError("the probe needs the built image (ctx.image is empty)")
    return ref


def local_daemon() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return host in ("", "unix:///var/run/docker.sock") or host.startswith("unix://")


class ContainerProbe(Probe):
    """A probe that runs containers: `start(ctx)` gives its options, the registry of what it creates
    and its details dict; `cleanup` removes everything it created and notes what could not be removed."""

    def __init__(self) -> None:
        self._owned: Owned | None = None

    def start(self, ctx: Any) -> tuple[RunOptions, Owned, dict[str, object]]:
        self._owned = Owned(ctx, self.name)
        details: dict[str, object] = {}
        ctx.details[self.name] = details
        return options(ctx, self.name), self._owned, details

    def cleanup(self, ctx: Any) -> None:
        if self._owned is not None:
            errors = self._owned.cleanup()
            if errors:
                ctx.details.setdefault(self.name, {})["cleanup_errors"] = errors
            self._owned = None
