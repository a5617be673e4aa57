"""The shapes the lab keeps in lab.json and its base records, and what it reads of `docker image inspect`.

Types only (no behaviour): every one is a TypedDict of the keys the lab writes or reads, `total=False`
where older files or some paths lack a key. lab.json is written by `harness.lab.core` and read back
with `json.loads`, so these say what the code expects, not what a file is checked to hold.
"""

from __future__ import annotations

from typing import TypedDict

from harness.engine.check import EngineInfo
from harness.records import JSONObject


class ProcRecord(TypedDict, total=False):
    """A service process lab up started (`procs.Proc.to_dict()`, plus the ports it was given)."""

    name: str
    pid: int
    argv: list[str]
    port: int | None
    log: str
    started_at: float
    argv_ports: dict[str, int]


class ProfileRecord(TypedDict, total=False):
    """A network profile (`shaper.Profile.to_dict()`)."""

    name: str
    rate_bps: float
    latency_s: float
    burst_bytes: int


class Measurement(TypedDict, total=False):
    """One measurement of the shaped network (`shaper.measure`, plus what lab up adds)."""

    bytes: int
    seconds: float
    ttfb_s: float
    measured_bps: float
    within_15pct: bool
    at: float


class PushRecord(TypedDict, total=False):
    """An image pushed to the lab registry (`registry.push`; a base's record adds its image id)."""

    ref: str
    manifest_digest: str | None
    layer_sizes: list[int]
    compressed_bytes: int
    push_seconds: float
    image_id: str


class ImageSummary(TypedDict):
    """What the lab reads of a `docker image inspect` object (`builder.image_summary`)."""

    image_id: str
    bytes: int
    layers: int
    labels: dict[str, str]
    created: str | None
    repo_digests: list[str]


class RootFS(TypedDict, total=False):
    Layers: list[str]


class ImageConfig(TypedDict, total=False):
    Labels: dict[str, str] | None


class ImageInspect(TypedDict, total=False):
    """The keys of a `docker image inspect` object the lab reads."""

    Id: str
    Size: int
    RootFS: RootFS
    Config: ImageConfig
    Created: str
    RepoDigests: list[str]


class SourceEntry(TypedDict):
    """One line of a recipe's sources.txt."""

    name: str
    path: str
    sha256: str


class BaseFacts(TypedDict, total=False):
    """What a compiled-from-source base says about itself (`builder.MUSL_FACTS`, `builder.parse_facts`)."""

    python: str
    libc: list[str]
    openssl: str | None
    sqlite: str
    zlib: str
    soabi: str | None
    modules: dict[str, bool]
    pip: str | None
    musl: str | None
    busybox: str | None
    files: int


class BaseRecord(TypedDict, total=False):
    """A lab base's record (state_dir()/lab/bases/KEY.json and lab.json's `bases`)."""

    key: str
    lab_tag: str
    image_id: str
    bytes: int
    layers: int
    suite: str
    python: str | None
    pip: str | None
    packages: list[str]
    facts: BaseFacts
    sources: list[SourceEntry]
    stands_in_for: str
    definition_hash: str
    build_seconds: float | None
    mmdebstrap_seconds: float | None
    built_at: float | None
    mmdebstrap: str | None
    skipped: bool
    registry: PushRecord


class PublicPin(TypedDict):
    """A real public base pulled by `lab up --bases registry`, pinned by digest."""

    public: str
    pinned: str | None
    image_id: str
    bytes: int
    layers: int


class WheelhouseRecord(TypedDict, total=False):
    """What `wheelhouse.fill` did, as lab.json keeps it (with where and for which Pythons)."""

    skipped: bool
    stamp: str
    files: int
    seconds: float
    unavailable: dict[str, list[str]]
    root: str
    pythons: list[str]


class LabState(TypedDict, total=False):
    """lab.json: the lab's ports, urls, processes, profile, measurement and bases."""

    version: int
    ports: dict[str, int]
    urls: dict[str, str]
    processes: dict[str, ProcRecord]
    bases_mode: str
    profile: ProfileRecord
    bases: dict[str, BaseRecord]
    bases_failed: dict[str, str]
    public_bases: dict[str, PublicPin]
    wheelhouse: WheelhouseRecord
    measurement: Measurement
    up_at: float
    up_timings: dict[str, float]
    down_at: float


class MappingEntry(TypedDict):
    """A public-name mapping rule as `lab status` shows it."""

    pattern: str
    lab_tag: str | None
    reason: str | None


class ServiceStatus(TypedDict):
    url: str
    alive: bool


class IndexStatus(TypedDict):
    url: str
    packages: int
    files: int
    alive: bool


class NetworkStatus(TypedDict):
    """The shaped network: its profile, the last measurement, whether the shaper runs."""

    profile: str
    rate_bps: float
    latency_s: float
    measured_bps: float | None
    ttfb_s: float | None
    within_15pct: bool | None
    shaped_by: str
    alive: bool


class ProcessStatus(TypedDict):
    pid: int | None
    port: int | None
    alive: bool
    log: str | None


class BaseEntry(TypedDict):
    """A lab base as `lab status` lists it."""

    key: str
    public_patterns: list[str]
    lab_tag: str
    present: bool
    on_demand: bool
    image_id: str | None
    bytes: int | None
    layers: int | None
    suite: str
    python: str | None
    registry_digest: str | None
    compressed_bytes: int | None
    provenance: JSONObject


class LabStatus(TypedDict):
    """`lab status` (and what `lab up` returns)."""

    up: bool
    down: list[str]
    bases_mode: str
    engine: EngineInfo
    bases: list[BaseEntry]
    mapping: list[MappingEntry]
    public_bases: dict[str, PublicPin]
    index: IndexStatus
    apt_proxy: ServiceStatus
    registry: ServiceStatus
    network: NetworkStatus
    processes: dict[str, ProcessStatus]
    up_timings: dict[str, float]
    state_file: str


class LabDown(TypedDict):
    """What `lab down` stopped and kept."""

    stopped: dict[str, str]
    kept: list[str]
