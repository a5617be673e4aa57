"""lab up / status / down, and the `Lab` handle the runner uses.

State: state_dir()/lab.json (pids, ports, profile, measured rate, base records), data under
state_dir()/lab/.  Services (all on 127.0.0.1):

    public port (env)                        behind it
    index     3141 (IMAGEBENCH_INDEX_PORT)    shaper -> harness.lab.index on 13141
    apt proxy 3142 (IMAGEBENCH_APT_PORT)      shaper -> apt-cacher-ng on 13142
    registry  5000 (IMAGEBENCH_REGISTRY_PORT) docker-registry (unshaped)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from harness.engine.check import EngineInfo, engine_info, require_engine
from harness.errors import EngineUnavailable, LabError
from harness.lab import aptproxy, builder, prereqs, procs, registry, shaper, wheelhouse
from harness.lab.basedefs import BaseDef, Bases, load_bases, normalize_name
from harness.lab.state import (
    BaseEntry,
    BaseRecord,
    LabDown,
    LabState,
    LabStatus,
    MappingEntry,
    Measurement,
    NetworkStatus,
    ProcessStatus,
    ProcRecord,
    ProfileRecord,
    PublicPin,
    WheelhouseRecord,
)
from harness.paths import state_dir
from harness.records import JSONObject

STATE_VERSION = 1
BASES_MODES = ("lab", "registry")
PUBLIC_REGISTRY_PROBE = "https://registry-1.docker.io/v2/"
ALPINE_NAMES = ("python:3.13-alpine",)

Progress = Callable[[str], None]


# ---- paths and state ------------------------------------------------------------------------


def lab_root() -> Path:
    p = state_dir() / "lab"
    p.mkdir(parents=True, exist_ok=True)
    return p


def state_file() -> Path:
    return state_dir() / "lab.json"


def read_state() -> LabState:
    f = state_file()
    if not f.exists():
        return {}
    try:
        return cast(LabState, json.loads(f.read_text()))
    except ValueError:
        return {}


def write_state(state: LabState) -> None:
    f = state_file()
    tmp = f.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(f)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One lab up/down at a time."""
    with open(state_dir() / "lab.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError("another `imagebench lab up/down` is running", hint="wait for it to finish")
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ports() -> dict[str, int]:
    return {
        "index": procs.port("index"),
        "index_backend": procs.backend_port("index"),
        "apt_proxy": procs.port("apt_proxy"),
        "apt_backend": procs.backend_port("apt_proxy"),
        "registry": procs.port("registry"),
    }


def urls(p: dict[str, int]) -> dict[str, str]:
    h = procs.HOST
    return {
        "index": f"http://{h}:{p['index']}/simple/",
        "index_backend": f"http://{h}:{p['index_backend']}/simple/",
        "apt_proxy": f"http://{h}:{p['apt_proxy']}",
        "apt_backend": f"http://{h}:{p['apt_backend']}",
        "registry": f"{h}:{p['registry']}",
    }


# ---- services ---------------------------------------------------------------------------------


def _running(state: LabState, name: str) -> ProcRecord | None:
    proc = (state.get("processes") or {}).get(name)
    return proc if proc and procs.is_ours(proc) else None


def _argv_index(root: Path, port: int, cutoff: str | None = None) -> list[str]:
    """The index's command line; a new cutoff (experiments/index.toml) restarts it (the argv differs)."""
    argv = [sys.executable, "-m", "harness.lab.index", "--root", str(root), "--port", str(port)]
    return [*argv, "--uploaded-before", cutoff] if cutoff else argv


def _argv_shaper(profile: shaper.Profile, p: dict[str, int]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.lab.shaper",
        "--profile",
        profile.name,
        "--route",
        f"{p['index']}:{p['index_backend']}",
        "--route",
        f"{p['apt_proxy']}:{p['apt_backend']}",
    ]


def check_ports(state: LabState, p: dict[str, int]) -> None:
    """Every port we will bind is free or held by our own recorded process (fail before building)."""
    ours = {
        "index": "shaper",
        "apt_proxy": "shaper",
        "index_backend": "index",
        "apt_backend": "apt_proxy",
        "registry": "registry",
    }
    env = {
        "index": "IMAGEBENCH_INDEX_PORT",
        "apt_proxy": "IMAGEBENCH_APT_PORT",
        "registry": "IMAGEBENCH_REGISTRY_PORT",
        "index_backend": "IMAGEBENCH_INDEX_PORT",
        "apt_backend": "IMAGEBENCH_APT_PORT",
    }
    for key, port in p.items():
        proc = _running(state, ours[key])
        if proc and (proc.get("argv_ports") or {}).get(key) == port:
            continue
        procs.require_free(port, key.replace("_", " "), env[key])


def start_services(
    state: LabState, p: dict[str, int], profile: shaper.Profile, progress: Progress
) -> dict[str, ProcRecord]:
    root = lab_root()
    processes = dict(state.get("processes") or {})
    wanted: dict[str, tuple[dict[str, int], list[str] | None]] = {
        "apt_proxy": ({"apt_backend": p["apt_backend"]}, None),
        "index": (
            {"index_backend": p["index_backend"]},
            _argv_index(root / "wheelhouse", p["index_backend"], wheelhouse.uploaded_before()),
        ),
        "registry": ({"registry": p["registry"]}, None),
        "shaper": ({"index": p["index"], "apt_proxy": p["apt_proxy"]}, _argv_shaper(profile, p)),
    }
    for name, (pmap, argv) in wanted.items():
        proc = _running(state, name)
        if proc and proc.get("argv_ports") == pmap and (argv is None or proc["argv"] == argv):
            continue
        if proc:  # ours but with other ports or another profile: restart it
            progress(f"lab: restarting {name}")
            procs.stop(proc)
        port = next(iter(pmap.values()))
        if name == "apt_proxy":
            new = aptproxy.start(root / "apt-cacher-ng", port)
        elif name == "registry":
            new = registry.start(root / "registry", port)
        else:
            assert argv is not None
            new = procs.spawn(
                name, argv, root / "logs" / f"{name}.log", port=port, env={"PYTHONPATH": _pythonpath()}
            )
        rec = new.to_dict()
        rec["argv_ports"] = pmap
        processes[name] = rec
        progress(f"lab: {name} started (pid {new.pid}, port {port})")
    return processes


def _pythonpath() -> str:
    """Make `python -m harness.lab.*` importable even when the package is not installed."""
    here = str(Path(__file__).resolve().parents[2])
    old = os.environ.get("PYTHONPATH")
    return f"{here}{os.pathsep}{old}" if old else here


def stop_services(state: LabState) -> dict[str, str]:
    out = {}
    for name, proc in (state.get("processes") or {}).items():
        out[name] = "stopped" if procs.stop(proc) else "not running"
    return out


# ---- bases ------------------------------------------------------------------------------------


def _bases_dir() -> Path:
    d = lab_root() / "bases"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _load_record(key: str) -> BaseRecord | None:
    f = _bases_dir() / f"{key}.json"
    if not f.exists():
        return None
    with contextlib.suppress(ValueError):
        return cast(BaseRecord, json.loads(f.read_text()))
    return None


def _save_record(rec: BaseRecord) -> None:
    f = _bases_dir() / f"{rec['key']}.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=2))
    tmp.replace(f)


@contextlib.contextmanager
def _base_lock(key: str) -> Iterator[None]:
    """One build of a base at a time (two runs needing the same on-demand base: the second waits)."""
    with open(_bases_dir() / f"{key}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_on_demand(defn: BaseDef, state: LabState, progress: Progress) -> BaseRecord:
    """Build (or find) an on-demand base for a running lab and push it to the lab registry: its record.

    Its builder stage's base must be there (`lab up` builds every other base)."""
    u = state["urls"]
    with _base_lock(defn.key):
        if defn.kind == "dockerfile" and not builder.inspect_image(load_bases().bases[defn.builder_base].tag):
            raise LabError(
                f"{defn.tag} is built on demand FROM the {defn.builder_base} lab base, which is missing",
                hint="run `imagebench lab up`",
            )
        progress(f"bases: {defn.tag} (for {defn.stands_in_for}) is built on demand, once")
        rec = ensure_base(defn, u["index"], u["apt_backend"], progress)
        rec = push_base(rec, u["registry"], progress)
    return rec


def ensure_base(defn: BaseDef, index_url: str, apt_backend: str, progress: Progress) -> BaseRecord:
    h = builder.effective_hash(defn, index_url)
    existing = builder.current(defn, h)
    rec = _load_record(defn.key)
    if existing:
        if rec and rec.get("image_id") == existing["image_id"]:
            rec["skipped"] = True
            return rec
        rec = builder.record_from_image(defn, h, existing)
    elif defn.kind == "dockerfile":
        builder_tag = load_bases().bases[defn.builder_base].tag
        rec = builder.build_dockerfile(
            defn, h, _bases_dir() / "work", apt_backend, index_url, builder_tag, progress
        )
        progress(f"bases: {defn.tag} built in {rec['build_seconds']:.1f} s, {rec['bytes'] / 1e6:.0f} MB")
    else:
        rec = builder.build(defn, h, _bases_dir() / "work", apt_backend, index_url, progress)
        progress(f"bases: {defn.tag} built in {rec['build_seconds']:.1f} s, {rec['bytes'] / 1e6:.0f} MB")
    rec["skipped"] = False
    _save_record(rec)
    return rec


def push_base(rec: BaseRecord, reg: str, progress: Progress) -> BaseRecord:
    """Push a lab base to the local registry once per image id (so it has a registry digest)."""
    ref = f"{reg}/{rec['lab_tag']}"
    pushed = rec.get("registry") or {}
    if pushed.get("image_id") == rec["image_id"] and pushed.get("ref") == ref:
        with contextlib.suppress(LabError):
            digest, _layers = registry.compressed_bytes(ref)
            if digest == pushed.get("manifest_digest"):
                return rec
    progress(f"registry: pushing {rec['lab_tag']}")
    out = registry.push(rec["lab_tag"], reg, rec["lab_tag"])
    out["image_id"] = rec["image_id"]
    rec["registry"] = out
    _save_record(rec)
    return rec


def public_registry_reachable(timeout: float = 5.0) -> tuple[bool, str]:
    url = os.environ.get("IMAGEBENCH_PUBLIC_REGISTRY_PROBE", PUBLIC_REGISTRY_PROBE)
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return True, url  # 401 from Docker Hub: it answers
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url} ({reason})"
    return True, url


def pick_digest(repo_digests: list[str], public: str) -> str | None:
    """Pure: the RepoDigest of the public name's repository (an image id can carry several)."""
    repo = normalize_name(public).rsplit(":", 1)[0]
    wanted = {repo, f"docker.io/{repo}", f"docker.io/library/{repo}", f"library/{repo}"}
    for d in repo_digests:
        if "@" in d and d.split("@", 1)[0] in wanted:
            return d
    return next((d for d in repo_digests if "@" in d), None)


def pull_public(names: list[str], progress: Progress) -> dict[str, PublicPin]:
    """--bases registry: pull the real images once and pin them by digest."""
    out: dict[str, PublicPin] = {}
    for name in names:
        progress(f"bases: pulling {name}")
        cp = builder._docker("pull", "--quiet", name, timeout=900)
        if cp.returncode != 0:
            raise LabError(
                f"docker pull {name} failed: {procs.tail_text(cp.stderr)}",
                hint="check registry access, or use --bases lab",
            )
        info = builder.inspect_image(name)
        if not info:
            raise LabError(f"{name} pulled but not found locally")
        s = builder.image_summary(info)
        digest = pick_digest(s["repo_digests"], name)
        out[normalize_name(name)] = {
            "public": name,
            "pinned": digest,
            "image_id": s["image_id"],
            "bytes": s["bytes"],
            "layers": s["layers"],
        }
    return out


# ---- lab up / down / status -----------------------------------------------------------------


def measure_profile(p: dict[str, int], profile: shaper.Profile) -> Measurement:
    nbytes = 16 * 1024 * 1024 if profile.rate_bps == 0 or profile.rate_bps >= 50e6 else 8 * 1024 * 1024
    url = f"http://{procs.HOST}:{p['index']}/-/blob"
    m = shaper.measure(url, nbytes)
    m["within_15pct"] = shaper.within(m["measured_bps"], profile.rate_bps)
    m["at"] = time.time()
    return m


def lab_up(profile: str = "unlimited", bases: str = "lab", progress: Progress = print) -> LabStatus:
    """Bring the lab up (idempotent) and return lab_status()."""
    if bases not in BASES_MODES:
        raise LabError(f"unknown --bases {bases!r}", hint="use --bases lab or --bases registry")
    prof = shaper.get_profile(profile)
    t0 = time.perf_counter()
    catalog = load_bases()
    engine = require_engine()  # before the lock: "no engine" must not wait for another lab up
    with _locked():
        _preflight(bases, engine, progress)
        state, p, u = _start_and_record_services(prof, bases, progress)
        timings: dict[str, float] = {}
        wheelhouse_record, recs = _fill_wheelhouse_and_bases(catalog, u, state, timings, progress)
        t = time.perf_counter()
        recs = [push_base(r, u["registry"], progress) for r in recs]
        timings["push_s"] = round(time.perf_counter() - t, 2)
        state["bases"] = {r["key"]: _without_packages(r) for r in recs}
        if bases == "registry":
            names = sorted({d.stands_in_for for d in catalog.bases.values()} | set(ALPINE_NAMES))
            state["public_bases"] = pull_public(names, progress)
        state["wheelhouse"] = wheelhouse_record
        m = _measure_and_record(p, prof, state, timings, progress)
        timings["total_s"] = round(time.perf_counter() - t0, 2)
        state["up_at"] = time.time()
        state["up_timings"] = timings
        write_state(state)
        progress(
            f"lab: up in {timings['total_s']:.1f} s (profile {prof.name}, "
            f"measured {m['measured_bps'] / 1e6:.1f} Mbit/s)"
        )
    return lab_status()


def _without_packages(rec: BaseRecord) -> BaseRecord:
    """A base's record as lab.json keeps it: without its package list."""
    out = rec.copy()
    out.pop("packages", None)
    return out


def _preflight(bases: str, engine: EngineInfo, progress: Progress) -> None:
    """Tools installed, disk space under the docker root and the state dir, the registry for --bases registry."""
    prereqs.ensure_tools(progress)
    prereqs.check_disk({"docker root": engine.get("docker_root_dir"), "state dir": state_dir()})
    if bases == "registry":
        ok, where = public_registry_reachable()
        if not ok:
            raise LabError(
                f"--bases registry needs a reachable registry; {where} did not answer",
                hint="use --bases lab (the default) on offline machines",
            )


def _start_and_record_services(
    prof: shaper.Profile, bases: str, progress: Progress
) -> tuple[LabState, dict[str, int], dict[str, str]]:
    """Start the lab's services and write their pids to the state file: (state, ports, urls)."""
    state = read_state()
    p = ports()
    u = urls(p)
    check_ports(state, p)
    processes = start_services(state, p, prof, progress)
    state.update(
        {
            "version": STATE_VERSION,
            "ports": p,
            "urls": u,
            "processes": processes,
            "bases_mode": bases,
            "profile": prof.to_dict(),
        }
    )
    write_state(state)  # pids first: `lab down` can stop them even if what follows fails
    return state, p, u


def built_by_lab_up(catalog: Bases) -> list[BaseDef]:
    """The bases every `lab up` builds: all but the on-demand ones (the first run needing one builds it). Pure."""
    return [b for b in catalog.bases.values() if not b.on_demand]


def _fill_wheelhouse_and_bases(
    catalog: Bases, u: dict[str, str], state: LabState, timings: dict[str, float], progress: Progress
) -> tuple[WheelhouseRecord, list[BaseRecord]]:
    """Fill the wheelhouse and build the bases side by side: (the state's wheelhouse record, base records)."""
    wh_root = lab_root() / "wheelhouse"
    pythons = sorted(
        {
            builder.SUITE_PYTHON[b.suite] + ("-musl" if b.libc == "musl" else "")
            for b in built_by_lab_up(catalog)  # an on-demand base's wheels come from the index's mirror
            if b.python
        }
    )

    def _wheels() -> WheelhouseRecord:
        t = time.perf_counter()
        r = wheelhouse.fill(wh_root, pythons, progress)
        timings["wheelhouse_s"] = round(time.perf_counter() - t, 2)
        return r

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lab-up") as pool:
        fw = pool.submit(_wheels)
        fb = pool.submit(_build_bases, catalog, u, state, timings, progress)
        wh = fw.result()
        recs = fb.result()
    return {**wh, "root": str(wh_root), "pythons": pythons}, recs


def _build_bases(
    catalog: Bases, u: dict[str, str], state: LabState, timings: dict[str, float], progress: Progress
) -> list[BaseRecord]:
    """Build every base, biggest first, two at a time; then the bases whose builder stage is a lab base.

    A compiled-from-source base (the musl stand-in) that fails is recorded in state["bases_failed"]:
    it is one variant's base, not the lab's, so the lab stays usable."""
    t = time.perf_counter()
    order = sorted(built_by_lab_up(catalog), key=lambda b: -len(b.packages))  # biggest first
    first = [d for d in order if d.kind == "mmdebstrap"]
    then = [d for d in order if d.kind != "mmdebstrap"]  # their builder stage is a lab base
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="base") as pool:
        futs = [pool.submit(ensure_base, d, u["index"], u["apt_backend"], progress) for d in first]
        recs = [f.result() for f in futs]
    failed: dict[str, str] = {}
    for d in then:
        t1 = time.perf_counter()
        try:
            recs.append(ensure_base(d, u["index"], u["apt_backend"], progress))
        except LabError as exc:
            # the variants needing it say why they are skipped
            failed[d.key] = str(exc).splitlines()[0][:300]
            progress(
                f"bases: warning: {d.tag} was not built ({failed[d.key]}); variants needing it are skipped"
            )
        timings[f"base_{d.key}_s"] = round(time.perf_counter() - t1, 2)
    state["bases_failed"] = failed
    timings["bases_s"] = round(time.perf_counter() - t, 2)
    return recs


def _measure_and_record(
    p: dict[str, int], prof: shaper.Profile, state: LabState, timings: dict[str, float], progress: Progress
) -> Measurement:
    """Measure the shaped network once, keep it in the state, warn when it is more than 15 % off."""
    t = time.perf_counter()
    m = measure_profile(p, prof)
    timings["measure_s"] = round(time.perf_counter() - t, 2)
    state["measurement"] = m
    if not m["within_15pct"]:
        progress(
            f"lab: warning: measured {m['measured_bps'] / 1e6:.1f} Mbit/s, "
            f"nominal {prof.rate_bps / 1e6:.0f} Mbit/s (more than 15 % off)"
        )
    return m


def lab_down() -> LabDown:
    """Stop what lab_up started (by recorded pids); keep images, wheelhouse, caches."""
    with _locked():
        state = read_state()
        stopped = stop_services(state)
        state["processes"] = {}
        state["down_at"] = time.time()
        if state:
            write_state(state)
    return {"stopped": stopped, "kept": ["base images", "wheelhouse", "apt cache", "registry data"]}


def _alive_http(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(200 <= r.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def service_health(state: LabState) -> dict[str, bool]:
    p = state.get("ports") or ports()
    return {
        "index": _alive_http(f"http://{procs.HOST}:{p['index_backend']}/-/health")
        and procs.port_open(p["index"]),
        "apt_proxy": procs.port_open(p["apt_backend"]) and procs.port_open(p["apt_proxy"]),
        "registry": registry.alive(p["registry"]),
        "shaper": _running(state, "shaper") is not None,
    }


def base_entries(catalog: Bases, _state: LabState) -> list[BaseEntry]:
    out: list[BaseEntry] = []
    for key, defn in catalog.bases.items():
        rec = _load_record(key) or {}
        info = builder.inspect_image(defn.tag)
        s = builder.image_summary(info) if info else None
        reg = rec.get("registry") or {}
        out.append(
            {
                "key": key,
                "public_patterns": catalog.patterns_for(key),
                "lab_tag": defn.tag,
                "present": s is not None,
                "on_demand": defn.on_demand,
                "image_id": s["image_id"] if s else None,
                "bytes": s["bytes"] if s else None,
                "layers": s["layers"] if s else None,
                "suite": defn.suite,
                "python": rec.get("python"),
                "registry_digest": reg.get("manifest_digest")
                if s and reg.get("image_id") == s["image_id"]
                else None,
                "compressed_bytes": reg.get("compressed_bytes"),
                "provenance": provenance(defn, rec),
            }
        )
    return out


def provenance(defn: BaseDef, rec: BaseRecord) -> JSONObject:
    if defn.kind == "dockerfile":
        facts = rec.get("facts") or {}
        return {
            "stands_in_for": defn.stands_in_for,
            "built_with": f"docker build of harness/lab/{defn.recipe}/Dockerfile (compiled from source, "
            f"builder stage FROM the {defn.builder_base} lab base)",
            "libc": f"musl {facts.get('musl') or ''}".strip(),
            "userland": f"busybox {facts.get('busybox') or ''} (static)".strip(),
            "package_manager": None,
            "package_database": "none (no apk: Alpine's repositories are unreachable offline)",
            "debian_suite": defn.suite,
            "mirror": defn.mirror,
            "sources": [
                {"name": s["name"], "path": s["path"], "sha256": s["sha256"]} for s in rec.get("sources", [])
            ],
            "python": rec.get("python"),
            "openssl": facts.get("openssl"),
            "sqlite": facts.get("sqlite"),
            "modules": dict(modules) if (modules := facts.get("modules")) is not None else None,
            "left_out": list(defn.left_out),
            "files": facts.get("files"),
            "packages": [],
            "package_count": 0,
            "pip": rec.get("pip"),
            "definition_hash": rec.get("definition_hash"),
            "build_seconds": rec.get("build_seconds"),
            "built_at": rec.get("built_at"),
            "official_compressed_bytes": defn.official_compressed_bytes,
            "official_disk_bytes": defn.official_disk_bytes,
        }
    return {
        "stands_in_for": defn.stands_in_for,
        "built_with": f"mmdebstrap {rec.get('mmdebstrap') or ''}".strip() + " + docker import",
        "debian_suite": defn.suite,
        "mirror": defn.mirror,
        "variant": defn.variant,
        "requested_packages": list(defn.packages),
        "packages": list(rec.get("packages", [])),
        "package_count": len(rec.get("packages", [])),
        "pip": rec.get("pip"),
        "definition_hash": rec.get("definition_hash"),
        "build_seconds": rec.get("build_seconds"),
        "built_at": rec.get("built_at"),
        "official_compressed_bytes": defn.official_compressed_bytes,
        "official_disk_bytes": defn.official_disk_bytes,
    }


def lab_status() -> LabStatus:
    """What is up and what is down; works with the engine or services down."""
    state = read_state()
    try:
        eng: EngineInfo = engine_info()
    except EngineUnavailable as exc:
        eng = {"error": str(exc)}
    catalog = load_bases()
    p = state.get("ports") or ports()
    u = state.get("urls") or urls(p)
    health = service_health({**state, "ports": p})
    try:
        bases_list = base_entries(catalog, state) if "error" not in eng else []
    except (OSError, ValueError):
        bases_list = []
    wh_root = lab_root() / "wheelhouse"
    prof = state.get("profile") or shaper.PROFILES["unlimited"].to_dict()
    down = [k for k, ok in health.items() if not ok]
    return {
        "up": not down and bool(state.get("processes")),
        "down": down,
        "bases_mode": state.get("bases_mode", "lab"),
        "engine": eng,
        "bases": bases_list,
        "mapping": _mapping_entries(catalog),
        "public_bases": state.get("public_bases", {}),
        "index": {
            "url": u["index"],
            "packages": wheelhouse.count_projects(wh_root),
            "files": wheelhouse.count_files(wh_root),
            "alive": health["index"],
        },
        "apt_proxy": {"url": u["apt_proxy"], "alive": health["apt_proxy"]},
        "registry": {"url": u["registry"], "alive": health["registry"]},
        "network": _network_status(prof, state.get("measurement") or {}, health["shaper"]),
        "processes": _process_status(state),
        "up_timings": state.get("up_timings", {}),
        "state_file": str(state_file()),
    }


def _mapping_entries(catalog: Bases) -> list[MappingEntry]:
    """The public-name mapping rules as lab_status shows them."""
    return [
        {
            "pattern": r.pattern,
            "lab_tag": catalog.bases[r.base].tag if r.base else None,
            "reason": r.reason or None,
        }
        for r in catalog.rules
    ]


def _network_status(prof: ProfileRecord, m: Measurement, alive: bool) -> NetworkStatus:
    """The shaped network: its profile, the last measurement, whether the shaper runs."""
    return {
        "profile": prof["name"],
        "rate_bps": prof["rate_bps"],
        "latency_s": prof["latency_s"],
        "measured_bps": m.get("measured_bps"),
        "ttfb_s": m.get("ttfb_s"),
        "within_15pct": m.get("within_15pct"),
        "shaped_by": "server-side TCP shaper",
        "alive": alive,
    }


def _process_status(state: LabState) -> dict[str, ProcessStatus]:
    """Each service process lab_up started: pid, port, whether it is still ours, its log."""
    return {
        name: {
            "pid": pr.get("pid"),
            "port": pr.get("port"),
            "alive": procs.is_ours(pr),
            "log": pr.get("log"),
        }
        for name, pr in (state.get("processes") or {}).items()
    }


def _pin_json(pin: PublicPin) -> JSONObject:
    """A pinned public base as a run file's JSON (its keys in pull_public's order)."""
    return {k: v for k, v in pin.items() if isinstance(v, (str, int)) or v is None}


# ---- the runner's handle ------------------------------------------------------------------


@dataclass(frozen=True)
class BaseRef:
    public: str
    lab_tag: str
    image_id: str
    bytes: int
    provenance: JSONObject = field(default_factory=dict)

    @property
    def build_context(self) -> str:
        """The value for `--build-context PUBLIC=...` (buildx named context)."""
        return f"docker-image://{self.lab_tag}"


@dataclass(frozen=True)
class Profile:
    name: str
    rate_bps: float
    latency_s: float
    measured_bps: float | None


class Lab:
    """A running lab, as recorded in lab.json."""

    def __init__(
        self, state: LabState, catalog: Bases | None = None, progress: Progress | None = None
    ) -> None:
        self.lab_state = state
        # records.LabHandle's `state`: the same object, as open JSON (lab_state is the typed view)
        self.state: JSONObject = cast(JSONObject, state)
        # where an on-demand base's build says what it does (minutes): stderr unless the caller says
        self.progress: Progress = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.catalog = catalog or load_bases()
        self.ports = state["ports"]
        self.urls = state["urls"]
        self.registry: str = self.urls["registry"]
        self.index_url: str = self.urls["index"]
        self.apt_proxy_url: str = self.urls["apt_proxy"]
        self.bases_mode: str = state.get("bases_mode", "lab")
        prof: ProfileRecord = state.get("profile") or {}
        m: Measurement = state.get("measurement") or {}
        self.profile = Profile(
            prof.get("name", "unlimited"),
            prof.get("rate_bps", 0.0),
            prof.get("latency_s", 0.0),
            m.get("measured_bps"),
        )

    def build_args(self) -> dict[str, str]:
        no_proxy = "127.0.0.1,localhost"
        return {
            "PIP_INDEX_URL": self.index_url,
            "PIP_TRUSTED_HOST": procs.HOST,
            "http_proxy": self.apt_proxy_url,
            "HTTP_PROXY": self.apt_proxy_url,
            "no_proxy": no_proxy,
            "NO_PROXY": no_proxy,
        }

    def resolve_base(self, public_name: str) -> BaseRef:
        if self.bases_mode == "registry":
            pinned = (self.lab_state.get("public_bases") or {}).get(normalize_name(public_name))
            if not pinned:
                have = ", ".join(sorted(self.lab_state.get("public_bases") or {})) or "none"
                raise LabError(
                    f"{public_name} was not pulled by `lab up --bases registry`",
                    hint=f"pinned public bases: {have}",
                )
            return BaseRef(
                public_name,
                pinned["pinned"] or pinned["public"],
                pinned["image_id"],
                pinned["bytes"],
                {"source": "registry", **_pin_json(pinned)},
            )
        defn, rule = self.catalog.resolve(public_name)
        info = builder.inspect_image(defn.tag)
        if not info and defn.on_demand and self.bases_mode == "lab":
            try:
                build_on_demand(defn, self.lab_state, self.progress)
            except LabError as exc:
                raise LabError(
                    f"{public_name}: its lab base could not be built on demand: {exc.message}", hint=exc.hint
                ) from None
            info = builder.inspect_image(defn.tag)
        if not info:
            raise LabError(
                f"lab base {defn.tag} (for {public_name}) is missing", hint="run `imagebench lab up`"
            )
        s = builder.image_summary(info)
        rec = _load_record(defn.key) or {}
        prov = provenance(defn, rec)
        prov.update(
            {
                "matched_pattern": rule.pattern,
                "python": rec.get("python"),
                "registry_digest": (rec.get("registry") or {}).get("manifest_digest"),
                "compressed_bytes": (rec.get("registry") or {}).get("compressed_bytes"),
            }
        )
        return BaseRef(public_name, defn.tag, s["image_id"], s["bytes"], prov)

    def index_stats(self) -> JSONObject:
        """The index's counters (`index.IndexStats`), as records.LabHandle types them: JSON."""
        url = f"http://{procs.HOST}:{self.ports['index_backend']}/-/stats"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return cast(JSONObject, json.loads(r.read()))
        except OSError as exc:
            raise LabError(f"the lab index is not answering at {url}: {exc}", hint="run `imagebench lab up`")

    def index_uploaded_before(self) -> str | None:
        """The cutoff the running index serves with (its /-/health), None when it has none or is down."""
        url = f"http://{procs.HOST}:{self.ports['index_backend']}/-/health"
        with (
            contextlib.suppress(OSError, ValueError, AttributeError),
            urllib.request.urlopen(url, timeout=5) as r,
        ):
            value = json.loads(r.read()).get("uploaded_before")
            return value if isinstance(value, str) else None
        return None

    def reset_index_stats(self) -> None:
        url = f"http://{procs.HOST}:{self.ports['index_backend']}/-/stats/reset"
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=10).close()
        except OSError as exc:
            raise LabError(f"the lab index is not answering at {url}: {exc}", hint="run `imagebench lab up`")

    def check_alive(self) -> None:
        health = service_health(self.lab_state)
        down = [k.replace("_", " ") for k, ok in health.items() if not ok]
        if down:
            raise LabError(
                f"lab {' and '.join(down)} {'is' if len(down) == 1 else 'are'} down",
                hint="run `imagebench lab up`",
            )

    def fingerprint(self) -> JSONObject:
        bases: JSONObject = {}
        for key, defn in self.catalog.bases.items():
            rec = _load_record(key) or {}
            bases[defn.tag] = {
                "image_id": rec.get("image_id"),
                "registry_digest": (rec.get("registry") or {}).get("manifest_digest"),
                "bytes": rec.get("bytes"),
                "suite": defn.suite,
                "python": rec.get("python"),
                "stands_in_for": defn.stands_in_for,
                "definition_hash": rec.get("definition_hash"),
                "package_count": len(rec.get("packages", [])),
            }
        wh_root = lab_root() / "wheelhouse"
        return {
            "bases_mode": self.bases_mode,
            "bases": bases,
            "public_bases": {k: _pin_json(v) for k, v in self.lab_state.get("public_bases", {}).items()},
            "mapping_source": self.catalog.source,
            "profile": {
                "name": self.profile.name,
                "rate_bps": self.profile.rate_bps,
                "latency_s": self.profile.latency_s,
                "measured_bps": self.profile.measured_bps,
            },
            "index_url": self.index_url,
            "index_packages": wheelhouse.count_projects(wh_root),
            "index_stamp": (self.lab_state.get("wheelhouse") or {}).get("stamp"),
            "index_uploaded_before": self.index_uploaded_before(),
            "apt_proxy_url": self.apt_proxy_url,
            "registry_url": self.registry,
        }

    def push(self, image_ref: str, repo: str) -> JSONObject:
        """`registry.push`'s record (a PushRecord, JSON values only), as records.LabHandle types it."""
        return cast(JSONObject, registry.push(image_ref, self.registry, repo))


def load_lab() -> Lab:
    state = read_state()
    if not state.get("processes") or not state.get("ports"):
        raise LabError("lab is not up: run `imagebench lab up`")
    return Lab(state)
