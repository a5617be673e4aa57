"""The run file's and experiment.toml's models, the one source of their published JSON Schemas.

`RunFile` is what a reader of a run file relies on (schema `imagebench.run`, results/README.md):
the types of every field the readers use, unknown keys accepted and ignored, so an older or a newer
writer's extras never take a file down. `harness.results.validate_run` checks a parsed run file
against it and keeps by hand only what a type cannot say (the header's messages, printable ids, a
claim's expect-or-op rule, repeated trials). `Experiment` is the parsed form of an experiment.toml
(unknown keys refused): `harness.experiment.load_experiment` checks the parsed TOML against it first
and words msgspec's error (its path, `$.variants[0].name`) as the one-line message naming the TOML
line; by hand it keeps only what a type cannot say (files inside the folder, claims naming variants,
known metrics and probes, the scenarios' [edits]).

Library: msgspec, picked by measured load time of the committed results (2 run files, 1.4 MB;
scripts/load_time.py, median of 5 per run, 7 runs on the shared, loaded 2-core machine, the same
TypedDicts for both): from bytes, msgspec.json.decode(type=...) 3.2-16.0 ms against 9.1-25.6 ms for
pydantic 2.14's TypeAdapter.validate_json(strict), msgspec faster in all 7 runs; on the parsed file
(what the reader does, as it keeps the parsed dict), msgspec.convert 1.5-7.5 ms against
validate_python(strict) 2.1-11.3 ms, msgspec faster in 5 of 7, equal in 1; and a process pays 46 ms
for `import msgspec` against 170 ms for pydantic with one TypeAdapter (median of 5).

`python -m harness.schemas` rewrites schemas/*.schema.json from these models; a unit test fails
when the committed files differ from what it would write.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypeAlias, TypedDict

import msgspec

from harness.records import JSONObject

RUN_SCHEMA = "imagebench.run"
RUN_SCHEMA_VERSION = 1
EXPERIMENT_SCHEMA = "imagebench.experiment"
EXPERIMENT_SCHEMA_VERSION = 1
SCHEMA_BASE_URL = "https://imagebench.invalid/schemas"  # a name, not a place: nothing is served there
MAX_TEXT = 100_000  # longest string a reader relies on (ids, names, errors)

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=r"\S")]
"""Text with at least one non-blank character (the analysis keys results by it)."""
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63) + 1, le=2**63 - 1)]
Number: TypeAlias = Int64 | float
"""A finite number: the parser refuses NaN and infinities, an integer fits 64 bits."""
OpenObject: TypeAlias = dict[str, Any]
"""An object the readers pass through untouched (a probe's data, the engine's info). `Any` is msgspec's
"any JSON value" here and no reader sees this type (`results.validate_run` gives a records.RunRecord):
msgspec takes neither records.JSONObject (a recursive alias: "name 'JSONValue' is not defined",
msgspec issue 722) nor dict[str, object] (its JSON Schema: "type <class 'object'> is not supported")."""


# ---------------------------------------------------------------------------------- the run file


class BaseFile(TypedDict, total=False):
    """A base image as the run pins it and the report shows it."""

    public: Text | None
    lab_tag: Text | None
    image_id: Text | None
    registry_digest: Text | None
    stands_in_for: Text | None
    name: Text | None
    tag: Text | None
    bytes: Number | None
    compressed_bytes: Number | None
    official_compressed_bytes: Number | None


class ProfileFile(TypedDict, total=False):
    """The lab's network profile in the fingerprint."""

    name: Text | None
    rate_bps: Number | None
    measured_bps: Number | None
    latency_ms: Number | None


class LabFile(TypedDict, total=False):
    """The lab's part of the fingerprint."""

    profile: ProfileFile | None
    bases: list[BaseFile | None] | dict[str, BaseFile | None] | None


class FingerprintFile(TypedDict, total=False):
    """Where and with what the run was measured."""

    engine: OpenObject | None
    harness: OpenObject | None
    host: OpenObject | None
    lab: LabFile | None


class VariantFile(TypedDict):
    """A variant of an experiment as run."""

    name: Text
    dockerfile: NotRequired[Text | None]
    target: NotRequired[Text | None]
    description: NotRequired[Text | None]
    scenarios: NotRequired[list[str] | None]
    requires: NotRequired[list[str] | None]


class ClaimFile(TypedDict):
    """A claim (or precondition) as the experiment states it."""

    metric: Name
    scenario: NotRequired[Text | None]
    label: NotRequired[Text | None]
    source: NotRequired[Text | None]
    value: NotRequired[Number | None]
    tolerance: NotRequired[Number | None]
    tolerance_rel: NotRequired[Number | None]
    primary: NotRequired[bool | None]
    expect: NotRequired[Literal["lower", "higher", "delta"] | None]
    op: NotRequired[Literal["<", "<=", ">", ">=", "==", "!="] | None]
    baseline: NotRequired[Text | None]
    candidate: NotRequired[Text | None]
    variant: NotRequired[Text | None]


class DefinitionFile(TypedDict):
    """An experiment's definition as run (a value of the run file's `experiments`)."""

    name: Name
    practice: NotRequired[Text | None]
    section: NotRequired[Text | None]
    claim: NotRequired[Text | None]
    article: NotRequired[Text | None]
    summary: NotRequired[Text | None]
    cannot_show: NotRequired[Text | None]
    definition_hash: NotRequired[Text | None]
    requires: NotRequired[list[str]]
    probes: NotRequired[list[str]]
    metrics: NotRequired[list[str]]
    not_measured: NotRequired[OpenObject]
    variants: NotRequired[list[VariantFile]]
    claims: NotRequired[list[ClaimFile]]
    preconditions: NotRequired[list[ClaimFile]]


TrialNumber = Annotated[int, msgspec.Meta(ge=0, lt=1_000_000)]


class PlanEntryFile(TypedDict):
    """One planned trial."""

    experiment: Name
    variant: Name
    scenario: Name
    trial: TrialNumber


class StepFile(TypedDict, total=False):
    """One Dockerfile step of a trial's build."""

    index: Annotated[int, msgspec.Meta(gt=-(2**31), lt=2**31)]
    seconds: Number | None
    start_offset: Number | None
    end_offset: Number | None


class ImageFile(TypedDict, total=False):
    """The built image of a trial."""

    id: Text | None
    user: Text | None
    tag: Text | None
    manifest_digest: Text | None
    storage_driver: Text | None
    bytes: Number | None
    layers: Number | None
    layer_bytes: list[Number] | None
    layer_compressed_bytes: list[Number] | None


MetricValue: TypeAlias = Number | bool | str | None
"""A measured value in base units (null, true/false or text where a probe records no number)."""


class TrialFile(TypedDict):
    """One trial: its identity, status, metrics, image, bases and steps."""

    experiment: Name
    variant: Name
    scenario: Name
    trial: TrialNumber
    status: Literal["ok", "failed", "interrupted", "skipped"]
    error: NotRequired[Text | None]
    metrics: NotRequired[dict[str, MetricValue] | None]
    steps: NotRequired[list[StepFile] | None]
    probe_data: NotRequired[OpenObject | None]
    bases: NotRequired[dict[str, str | None] | None]
    image: NotRequired[ImageFile | None]


IdentityValue: TypeAlias = str | int | float | bool | dict[str, Any] | list[str] | None


class RunFile(TypedDict):
    """A run file (`"schema": "imagebench.run"`), as every reader of it relies on it."""

    schema: Literal["imagebench.run"]
    schema_version: Annotated[int, msgspec.Meta(ge=1, le=RUN_SCHEMA_VERSION)]
    run_id: Annotated[str, msgspec.Meta(max_length=200, pattern=r"\S")]
    machine: Annotated[str, msgspec.Meta(max_length=200, pattern=r"\S")]
    status: Name
    created_at: NotRequired[Text | None]
    updated_at: NotRequired[Text | None]
    seed: NotRequired[int | None]
    command: NotRequired[list[str] | None]
    warnings: NotRequired[list[str] | None]
    options: NotRequired[OpenObject | None]
    machine_identity: NotRequired[dict[str, IdentityValue] | None]
    fingerprint: FingerprintFile
    bases: NotRequired[dict[str, BaseFile | None] | None]
    experiments: dict[str, DefinitionFile]
    plan: list[PlanEntryFile]
    trials: list[TrialFile]


# ---------------------------------------------------------------------------- experiment.toml

Scenario = Literal["cold", "warm", "edit-source", "edit-deps", "base-bump", "ci", "ci-deps", "ci-none"]
ExperimentName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]*$")]
TrialCount = Annotated[int, msgspec.Meta(ge=1, le=1000)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
SmokeArgv = Annotated[list[Annotated[str, msgspec.Meta(min_length=1)]], msgspec.Meta(min_length=1)]


class Edits(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`[edits]`: the files the edit scenarios change (relative to the experiment folder)."""

    source: list[str] = []
    deps: str | msgspec.UnsetType = msgspec.UNSET
    deps_append: str | msgspec.UnsetType = msgspec.UNSET


class Variant(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`[[variants]]`: one way to build the image."""

    name: ExperimentName
    dockerfile: str
    context: str = "context"
    target: str | msgspec.UnsetType = msgspec.UNSET
    build_args: dict[str, str | int | float] = {}
    scenarios: list[Scenario] = []
    requires: list[str] = []
    run: dict[str, Any] = {}
    description: str = ""
    smoke: str | SmokeArgv | msgspec.UnsetType = msgspec.UNSET
    trials: TrialCount | msgspec.UnsetType = msgspec.UNSET
    cache: Literal["none", "inline", "registry-min", "registry-max", "local"] = "none"


class Claim(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`[[claims]]` / `[[preconditions]]`: expect (lower/higher/delta, baseline and candidate) or op and
    value (on one variant)."""

    metric: str
    scenario: Scenario = "cold"
    expect: Literal["lower", "higher", "delta"] | msgspec.UnsetType = msgspec.UNSET
    baseline: str | msgspec.UnsetType = msgspec.UNSET
    candidate: str | msgspec.UnsetType = msgspec.UNSET
    variant: str | msgspec.UnsetType = msgspec.UNSET
    op: Literal["<", "<=", ">", ">=", "==", "!="] | msgspec.UnsetType = msgspec.UNSET
    value: float | msgspec.UnsetType = msgspec.UNSET
    primary: bool = False
    label: str = ""
    tolerance: NonNegative | msgspec.UnsetType = msgspec.UNSET
    tolerance_rel: NonNegative | msgspec.UnsetType = msgspec.UNSET
    source: Literal["article", "extension"] = "article"
    article_section: Annotated[str, msgspec.Meta(pattern=r"^((dockerfiles|images|bonus)\.[1-9][0-9]*)?$")] = (
        ""
    )
    article_figure: str = ""
    by_construction: bool = False


class Experiment(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An experiment.toml, parsed (harness/experiment.py loads and checks it; experiments/README.md)."""

    practice: str
    claim: str
    variants: Annotated[list[Variant], msgspec.Meta(min_length=1)]
    schema_version: Literal[1] = 1
    name: ExperimentName | msgspec.UnsetType = msgspec.UNSET
    section: Literal["calibration", "dockerfile", "image", "bonus"] = "dockerfile"
    article: str = ""
    summary: str = ""
    cannot_show: str = ""
    deps_step: str = ""
    default: bool = False
    trials: TrialCount = 5
    scenarios: Annotated[list[Scenario], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["cold"]
    )
    compressed: bool = True
    probes: list[str] = []
    metrics: list[str] = []
    requires: list[str] = []
    edits: Edits | msgspec.UnsetType = msgspec.UNSET
    claims: list[Claim] = []
    preconditions: list[Claim] = []
    min_trials: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0


# ------------------------------------------------------------------------------- the schemas

SCHEMAS: dict[str, tuple[Any, str, int, str]] = {
    "run": (
        RunFile,
        RUN_SCHEMA,
        RUN_SCHEMA_VERSION,
        "An imagebench run file: results/<machine>/<run_id>.json (results/README.md). Unknown keys "
        "are allowed: a reader ignores them.",
    ),
    "experiment": (
        Experiment,
        EXPERIMENT_SCHEMA,
        EXPERIMENT_SCHEMA_VERSION,
        "An imagebench experiment.toml, as parsed from TOML (experiments/README.md). The loader also "
        "checks what a schema cannot: files exist, names match, claims name known variants and metrics.",
    ),
}


def json_schema(kind: str) -> JSONObject:
    """The JSON Schema (draft 2020-12) of `kind` ("run" or "experiment"), with its name and version."""
    model, name, version, description = SCHEMAS[kind]
    body: JSONObject = msgspec.json.schema(model)
    head: JSONObject = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URL}/{name}/v{version}.json",
        "title": f"{name} v{version}",
        "description": description,
    }
    return head | body


def schema_text(kind: str) -> str:
    """The committed text of `kind`'s schema: indented JSON, keys in model order, newline at the end."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def schema_path(kind: str, root: Path | None = None) -> Path:
    """Where `kind`'s schema is committed: <repository>/schemas/<kind>.schema.json."""
    base = Path(__file__).resolve().parents[1] if root is None else root
    return base / "schemas" / f"{kind}.schema.json"


def main(argv: list[str] | None = None) -> int:
    """Write schemas/*.schema.json from the models (`python -m harness.schemas [--check]`)."""
    args = sys.argv[1:] if argv is None else argv
    check = args == ["--check"]
    if args and not check:
        print("usage: python -m harness.schemas [--check]", file=sys.stderr)
        return 2
    stale = []
    for kind in SCHEMAS:
        path = schema_path(kind)
        text = schema_text(kind)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if check:
            stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(
            f"imagebench: error: stale schema(s), run python -m harness.schemas: {', '.join(stale)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
