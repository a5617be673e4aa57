"""Typed records: what flows through imagebench, one home each.

The run file and its parts are what results/README.md documents (schema `imagebench.run`,
version 1); these TypedDicts say the same in types and change nothing on disk. Claim results and
experiment verdicts are what `harness.analysis` hands to the report, gate and compare. `LabHandle`
is what the runner and the probes use of a running lab (`harness.lab.core.Lab`, or a stand-in in
tests). The verdict words are `harness.verdicts.Verdict`; a probe's context is the `ProbeContext`
dataclass in `harness.probes`.

A field that older run files lack, or that is written only in some cases, is `NotRequired`. (No
`from __future__ import annotations` here: TypedDict reads `NotRequired` from evaluated annotations.)
"""

from typing import Any, Literal, NotRequired, Protocol, TypeAlias, TypedDict, runtime_checkable

from harness.verdicts import Verdict

RUN_SCHEMA = "imagebench.run"

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject: TypeAlias = dict[str, JSONValue]
"""Open JSON, for the parts of a run file we pass through untouched (a BuildKit event, a probe's
detail): typed as JSON, not as `Any`."""

RunStatus = Literal["running", "complete", "interrupted", "failed"]
TrialStatus = Literal["ok", "failed", "interrupted", "skipped"]
NotMeasured = Literal["not measured here"]
ClaimVerdict = Verdict | NotMeasured | Literal["by construction"]
"""A claim's verdict: the three of `stats`, "not measured here" (no values for a variant), or "by
construction" (the experiment's own settings decide the value: stated, never judged)."""
ExperimentVerdictWord = Verdict | NotMeasured | Literal["measured"]
"""An experiment's verdict: as a claim's, or "measured" when it states no claim."""
ClaimKind = Literal["ratio", "delta", "check"]


# ---------------------------------------------------------------------------------------- run file


class PlanEntry(TypedDict):
    """One planned trial, in execution order (`order`: the variant's place in its shuffled round)."""

    experiment: str
    variant: str
    scenario: str
    trial: int
    order: NotRequired[int]


class BasePin(TypedDict):
    """A public base name pinned for the whole run."""

    public: str
    lab_tag: str
    image_id: str
    bytes: int
    provenance: dict[str, Any]


class StepRecord(TypedDict):
    """One Dockerfile step vertex of a build (BuildKit's events)."""

    name: str
    stage: str | None
    index: int | None
    instruction: str | None
    cached: bool
    seconds: float
    start_offset: float | None
    end_offset: float | None


class ImageRecord(TypedDict, total=False):
    """The built image of a trial (the push fields only after a push to the lab registry)."""

    id: str
    tag: str
    bytes: int
    layers: int
    layer_bytes: list[int]
    storage_driver: str
    manifest_digest: str
    layer_compressed_bytes: list[int]
    base: str | None
    base_image_id: str | None
    base_layers: int | None
    own_layers: int | None
    repro: JSONObject
    user: str
    healthcheck: bool


class SmokeRecord(TypedDict, total=False):
    """The smoke check of a trial's image (harness/smoke.py)."""

    command: str
    exit_code: int | None
    seconds: float
    ok: bool
    output_tail: str
    last_line: str


class TrialRecord(TypedDict):
    """One trial: identity, status, metrics in base units, the image, the bases, steps and probe data."""

    experiment: str
    variant: str
    scenario: str
    trial: int
    order: NotRequired[int]
    status: TrialStatus
    error: NotRequired[str | None]
    error_text: NotRequired[str]
    started_at: NotRequired[str]
    ended_at: NotRequired[str]
    metrics: dict[str, float]
    image: NotRequired[ImageRecord]
    bases: NotRequired[dict[str, str]]
    steps: NotRequired[list[StepRecord]]
    probe_data: NotRequired[dict[str, Any]]
    smoke: NotRequired[SmokeRecord]
    build_warnings: NotRequired[str]


class ClaimDef(TypedDict, total=False):
    """A claim as an experiment states it (experiment.toml `[[claims]]`, kept in the run file)."""

    metric: str
    scenario: str
    expect: str | None
    baseline: str
    candidate: str
    variant: str
    op: str
    value: float
    tolerance: float
    tolerance_rel: float
    label: str
    primary: bool
    source: str
    article_section: str  # an id of ARTICLE_SECTIONS (harness/experiment.py)
    article_figure: str  # the article's own figure as it prints it
    by_construction: bool  # the checked value is fixed by the experiment's own settings
    role: str


class VariantDef(TypedDict):
    """A variant as run (`Experiment.to_dict`; the optional keys only when the experiment sets them)."""

    name: str
    dockerfile: str
    target: str | None
    scenarios: list[str]
    requires: list[str]
    description: str
    smoke: NotRequired[str | list[str]]
    trials: NotRequired[int]
    cache: NotRequired[str]


class ExperimentDef(TypedDict, total=False):
    """An experiment's definition as run (the run file's `experiments` values)."""

    name: str
    practice: str
    section: str
    claim: str
    article: str
    summary: str
    cannot_show: str
    requires: list[str]
    probes: list[str]
    metrics: list[str]
    definition_hash: str
    variants: list[VariantDef]
    claims: list[ClaimDef]
    preconditions: list[ClaimDef]
    min_trials: int
    not_measured: dict[str, str]
    smoke_failures: dict[str, str]
    stand_in_gaps: dict[str, list[str]]


class SubstitutionNote(TypedDict):
    """A Python substitution as the run file records it (`python_substitutions`, a base's provenance)."""

    public: str
    requested: str
    used: str
    stand_in: str
    rule: str
    reason: str
    release: str | None
    available: list[str]
    alternatives: list[str]
    message: str


class Precision(TypedDict):
    """--trials auto: where one (variant, scenario)'s build time stands (the run file's `precision`)."""

    n: int
    within_3pct: bool
    stopped_by: Literal["precision", "cap", "running"]


class ResumeRecord(TypedDict):
    """One `imagebench run --resume` of the run (the run file's `resumed`)."""

    at: str
    command: list[str]


class RunRecord(TypedDict):
    """A run file (`"schema": "imagebench.run"`), as results/README.md documents it."""

    schema: str
    schema_version: int
    run_id: str
    machine: str
    machine_identity: NotRequired[JSONObject]
    created_at: str
    updated_at: str
    status: RunStatus
    command: list[str]
    seed: int
    options: JSONObject
    fingerprint: dict[str, Any]
    experiments: dict[str, ExperimentDef]
    bases: NotRequired[dict[str, BasePin]]
    python_substitutions: NotRequired[dict[str, SubstitutionNote]]
    plan: list[PlanEntry]
    trials: list[TrialRecord]
    precision: NotRequired[dict[str, Precision]]
    resumed: NotRequired[list[ResumeRecord]]
    warnings: list[str]


# ---------------------------------------------------------------------------------------- analysis


class ClaimResult(TypedDict, total=False):
    """One claim judged on one machine's trials (`harness.analysis.evaluate_claim`)."""

    machine: str
    experiment: str
    index: int
    kind: ClaimKind
    metric: str
    unit: str
    scenario: str
    label: str
    primary: bool
    source: str
    article_section: str | None  # as the claim states it (ClaimDef); None when it names none
    article_figure: str | None
    role: str
    baseline: str | None
    candidate: str | None
    variant: str | None
    op: str | None
    value: float | None
    expect: str | None
    tolerance: float | None
    tolerance_rel: float | None
    tolerance_abs: float
    n_baseline: int
    n_candidate: int
    baseline_median: float | None
    candidate_median: float | None
    median: float | None
    ratio: float | None
    delta: float | None
    low: float | None
    high: float | None
    p: float | None
    yes: int | None
    k: int | None
    mde: float | None
    paired: bool
    interval: Literal["ci", "exact", "range", "single"] | None
    by_construction: bool
    measured_verdict: ClaimVerdict
    values: list[float]
    verdict: ClaimVerdict
    reason: str | None
    figure: str


class ExperimentVerdict(TypedDict, total=False):
    """One experiment's verdict on one machine (`harness.analysis.experiment_verdicts`)."""

    machine: str
    experiment: str
    practice: str
    section: str
    claim: str
    article: str
    cannot_show: str
    ok_trials: int
    failed_trials: int
    claims: list[ClaimResult]
    preconditions: list[ClaimResult]
    extension_claims: list[ClaimResult]
    primary: ClaimResult | None
    deciding: ClaimResult | None
    also_found: list[str]
    verdict: ExperimentVerdictWord
    reason: str | None


# ---------------------------------------------------------------------------------------- the lab


@runtime_checkable
class BaseHandle(Protocol):
    """A resolved base: the public name, the lab image standing in for it, and where it came from."""

    @property
    def public(self) -> str: ...
    @property
    def lab_tag(self) -> str: ...
    @property
    def image_id(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def provenance(self) -> JSONObject: ...
    @property
    def build_context(self) -> str: ...


@runtime_checkable
class ProfileHandle(Protocol):
    """The lab's network profile."""

    @property
    def name(self) -> str: ...
    @property
    def rate_bps(self) -> float: ...


@runtime_checkable
class LabHandle(Protocol):
    """What the runner and the probes use of a running lab (`harness.lab.core.Lab`)."""

    registry: str
    index_url: str
    bases_mode: str
    state: JSONObject

    @property
    def profile(self) -> ProfileHandle: ...

    def build_args(self) -> dict[str, str]:
        """Build args that point pip and apt at the lab (index URL, proxy)."""
        ...

    def resolve_base(self, public_name: str) -> BaseHandle:
        """The lab image that stands in for a public base name."""
        ...

    def index_stats(self) -> JSONObject:
        """The lab index's byte and request counters."""
        ...

    def reset_index_stats(self) -> None:
        """Zero the lab index's counters (before a build whose downloads are measured)."""
        ...

    def check_alive(self) -> None:
        """Raise LabError when a lab service is down."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """The lab's part of a run's fingerprint."""
        ...

    def push(self, image_ref: str, repo: str) -> dict[str, Any]:
        """Push an image to the lab registry; its digest, sizes and push time."""
        ...
