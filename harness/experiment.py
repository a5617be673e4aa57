"""Experiment definitions: load and validate `experiments/<name>/experiment.toml`, discover them.

Every error names the file, the line (where it can be found) and the key, so a user fixing an
experiment never reads a traceback. The parsed TOML is checked against its model first
(schemas.Experiment: types, required and unknown keys, ranges, the words a key allows), and msgspec's
error is worded here as the one-line message; by hand the loader checks only what a type cannot say.
Paths inside a definition must stay in the experiment's folder.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any, TypeAlias, TypeVar, cast

import msgspec

from harness import schemas
from harness.errors import SchemaError, UsageError
from harness.paths import experiments_dir
from harness.probes import known_probes
from harness.records import ClaimDef, ExperimentDef, VariantDef
from harness.results import read_bounded

SCHEMA_VERSION = 1
MAX_TOML_BYTES = 16 * 1024 * 1024
REQUIREMENTS = (
    "compose",
    "cosign",
    "docker-compose",
    "dockerd",
    "hadolint",
    "musl-base",
    "openssl",
    "registry-bases",
    "shaped-network",
)
TOOL_RE = re.compile(r"^tool:[A-Za-z0-9][A-Za-z0-9._+-]*$")  # any other tool on PATH
SCENARIOS = ("cold", "warm", "edit-source", "edit-deps", "base-bump", "ci", "ci-deps", "ci-none")
# the ephemeral-runner scenarios (harness/ci): an empty builder imports the last pipeline's cache
CI_SCENARIOS = ("ci", "ci-deps", "ci-none")
# a variant's `cache`: how a ci trial imports and exports its build cache (harness/ci/strategy.py)
CACHE_STRATEGIES = ("none", "inline", "registry-min", "registry-max", "local")
SECTIONS = ("calibration", "dockerfile", "image", "bonus")
EXPECT = ("lower", "higher", "delta")
SOURCES = ("article", "extension")  # a claim the article makes, or one we check beyond it
# The article's sections as ../shared/article-claims.md numbers them (our own summary of the
# article): a claim's `article_section` is one of these ids.
ARTICLE_SECTIONS: dict[str, str] = {
    "dockerfiles.1": "Multi-stage builds",
    "dockerfiles.2": "Order instructions",
    "dockerfiles.3": "Small base images",
    "dockerfiles.4": "Minimise layers",
    "dockerfiles.5": "Unprivileged containers",
    "dockerfiles.6": "COPY over ADD",
    "dockerfiles.7": "Cache Python packages",
    "dockerfiles.8": "One process per container",
    "dockerfiles.9": "Exec (array) over shell (string) form",
    "dockerfiles.10": "ENTRYPOINT vs CMD",
    "dockerfiles.11": "HEALTHCHECK",
    "images.1": "Version images",
    "images.2": "No secrets in images",
    "images.3": ".dockerignore",
    "images.4": "Lint and scan",
    "images.5": "Sign and verify",
    "bonus.1": "Virtual environments",
    "bonus.2": "Memory and CPU limits",
    "bonus.3": "Log to stdout/stderr",
    "bonus.4": "Gunicorn heartbeat",
    "bonus.5": "TLS to the daemon",
}
ARTICLE_SECTION_RE = re.compile(r"^(dockerfiles|images|bonus)\.([1-9][0-9]*)$")
OPS = ("<", "<=", ">", ">=", "==", "!=")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


Table: TypeAlias = Mapping[str, object]
"""A table of the parsed experiment.toml, as tomllib gives it (schemas.Experiment checks its types)."""
T = TypeVar("T")
OnError: TypeAlias = Callable[[str, Exception], object]
"""What `discover` and `select` call with a broken experiment's name and its error."""


@dataclass(frozen=True)
class Variant:
    name: str
    dockerfile: str  # relative to the experiment folder
    context: str = "context"
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    scenarios: tuple[str, ...] = ("cold",)
    requires: tuple[str, ...] = ()
    # the probes' own options (`[variants.run]`: each probe reads its keys): an open TOML table
    run: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    smoke: str | tuple[str, ...] | None = None  # command the built image must pass (harness/smoke.py)
    trials: int | None = None  # at most this many trials (e.g. exact sizes next to noisy times)
    cache: str = "none"  # ci scenarios only: one of CACHE_STRATEGIES


@dataclass(frozen=True)
class Claim:
    metric: str
    scenario: str = "cold"
    expect: str | None = None  # lower|higher: candidate/baseline ratio; delta: candidate - baseline == value
    baseline: str | None = None
    candidate: str | None = None
    variant: str | None = None  # absolute check on one variant
    op: str | None = None
    value: float | None = None
    tolerance: float | None = None  # expect = "delta": allowed |measured - value| (absolute) ...
    tolerance_rel: float | None = None  # ... or relative to value
    primary: bool = False
    label: str = ""
    source: str = "article"  # article | extension: only article claims decide the practice verdict
    article_section: str = ""  # ARTICLE_SECTIONS id the claim checks (article) or extends (extension)
    article_figure: str = ""  # the article's own figure as it prints it, e.g. "259 MB -> 156 MB"
    by_construction: bool = False  # the checked value is fixed by the experiment's own settings

    @property
    def is_ratio(self) -> bool:
        return self.expect is not None


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path
    practice: str
    section: str
    claim: str
    article: str
    summary: str
    default: bool
    trials: int
    compressed: bool
    probes: tuple[str, ...]
    metrics: tuple[str, ...]
    requires: tuple[str, ...]
    # `[edits]`: source (list of paths), deps, deps_append (paths and a line); callers build it too
    # (compare, advise), as a plain table: schemas.Edits is its model
    edits: dict[str, Any]
    variants: tuple[Variant, ...]
    claims: tuple[Claim, ...]
    cannot_show: str = ""
    min_trials: int = 0  # floor that neither --trials nor --quick lowers (calibration's power)
    preconditions: tuple[Claim, ...] = ()  # checks that must hold for the claims to mean anything
    deps_step: str = ""  # substring naming the dependency-install RUN step (default: pip/apt/npm install)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise UsageError(f"experiment {self.name!r} has no variant {name!r}")

    def file(self, rel: str) -> Path:
        return self.path / rel

    def definition_hash(self) -> str:
        """sha256 over experiment.toml, the Dockerfiles and the contexts (sorted paths and bytes)."""
        h = hashlib.sha256()
        for p in _walk(self.path):
            rel = p.relative_to(self.path).as_posix().encode("utf-8", "surrogateescape")
            mode = p.lstat().st_mode
            if stat.S_ISLNK(mode):  # a link is hashed as its target text, never read through
                h.update(rel + b"\0link:" + os.fsencode(p.readlink()))
            elif stat.S_ISREG(mode):
                h.update(rel + b"\0")
                with open(p, "rb") as fh:
                    for chunk in iter(partial(fh.read, 1 << 20), b""):
                        h.update(chunk)
        return "sha256:" + h.hexdigest()

    def to_dict(self) -> ExperimentDef:
        """The definition as recorded in results files (so reports never need experiments/)."""
        return {
            "name": self.name,
            "practice": self.practice,
            "section": self.section,
            "claim": self.claim,
            "article": self.article,
            "summary": self.summary,
            "cannot_show": self.cannot_show,
            "requires": list(self.requires),
            "probes": list(self.probes),
            "metrics": list(self.metrics),
            "definition_hash": self.definition_hash(),
            "variants": [_variant_def(v) for v in self.variants],
            "claims": [_claim_def(c) for c in self.claims],
            "preconditions": [_claim_def(c) for c in self.preconditions],
            "min_trials": self.min_trials,
        }


def _variant_def(v: Variant) -> VariantDef:
    """A variant as recorded: the optional keys only when the experiment sets them, in this order."""
    rec: VariantDef = {
        "name": v.name,
        "dockerfile": v.dockerfile,
        "target": v.target,
        "scenarios": list(v.scenarios),
        "requires": list(v.requires),
        "description": v.description,
    }
    if v.smoke:
        rec["smoke"] = v.smoke if isinstance(v.smoke, str) else list(v.smoke)
    if v.trials:
        rec["trials"] = v.trials
    if v.cache != "none":
        rec["cache"] = v.cache
    return rec


def _claim_def(c: Claim) -> ClaimDef:
    """A claim as recorded: the fields it sets (Claim's fields are ClaimDef keys, read by name here)."""
    fields = {k: getattr(c, k) for k in Claim.__dataclass_fields__ if getattr(c, k) not in (None, "")}
    return cast("ClaimDef", fields)


# --------------------------------------------------------------------------- validation


class _Ctx:
    """Locates keys in the TOML text so errors can name a line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str, table: str | None = None, index: int = 0) -> int | None:
        start = 0
        if table is not None:
            hits = [
                i
                for i, ln in enumerate(self.lines)
                if re.match(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?", ln)
            ]
            if index < len(hits):
                start = hits[index]
            elif hits:
                start = hits[-1]
        pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for i in range(start, len(self.lines)):
            if i > start and table is not None and re.match(r"^\s*\[", self.lines[i]):
                break
            if pat.match(self.lines[i]):
                return i + 1
        return start + 1 if table is not None else None

    def fail(self, key: str, message: str, table: str | None = None, index: int = 0) -> SchemaError:
        key, message = _one_line(key), _one_line(message, 2000)
        line = self.line_of(key.split(".")[-1], table, index)
        where = f"{_one_line(str(self.path))}:{line}" if line else _one_line(str(self.path))
        return SchemaError(f"{where}: key '{key}': {message}")


def _one_line(text: str, limit: int = 200) -> str:
    """Control characters escaped and length bounded: an error message stays one readable line."""
    out = (
        text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    )
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _walk(top: Path) -> list[Path]:
    """Every entry under `top`, sorted, without following symlinked folders (no loops, no escape)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        base = Path(dirpath)
        out += [base / n for n in filenames]
        out += [base / d for d in dirnames if (base / d).is_symlink()]
    return sorted(out)


def _known_metrics() -> tuple[str, ...]:
    from harness import metrics

    metrics.get("")  # loads the probes, which register their own metrics
    return tuple(sorted(metrics.METRICS))


def _known_probes() -> tuple[str, ...]:
    return tuple(known_probes())


def _check_known(
    items: list[str],
    key: str,
    allowed: tuple[str, ...],
    ctx: _Ctx,
    table: str | None = None,
    index: int = 0,
    qual: str = "",
) -> tuple[str, ...]:
    """A list of names the model types as strings, each in a vocabulary it cannot know (probes, metrics)."""
    for item in items:
        if item not in allowed:
            raise ctx.fail(
                f"{qual}{key}", f"unknown value {item!r} (allowed: {', '.join(allowed)})", table, index
            )
    return tuple(items)


def _requires(
    needs: list[str], ctx: _Ctx, *, table: str | None = None, index: int = 0, qual: str = ""
) -> tuple[str, ...]:
    for need in needs:
        if need not in REQUIREMENTS and not TOOL_RE.match(need):
            raise ctx.fail(
                f"{qual}requires",
                f"unknown requirement {_one_line(repr(need), 80)} (known: {', '.join(REQUIREMENTS)}, tool:NAME)",
                table,
                index,
            )
    return tuple(needs)


def _inside(
    folder: Path,
    rel: str,
    key: str,
    ctx: _Ctx,
    table: str | None,
    index: int,
    *,
    must_exist: bool,
    kind: str = "file",
) -> str:
    seen = ctx.__dict__.setdefault("checked_paths", set())  # 50,000 variants share a few paths
    if (rel, kind, must_exist) in seen:
        return rel
    shown = _one_line(repr(rel), 120)
    if "\0" in rel or len(rel) > 1024:
        raise ctx.fail(
            key, f"path {shown} is not a usable path (NUL byte or over 1024 characters)", table, index
        )
    if Path(rel).is_absolute():
        raise ctx.fail(key, f"path {shown} must be relative to the experiment folder", table, index)
    try:
        target = (folder / rel).resolve()
        escapes = not target.is_relative_to(folder.resolve())
        exists = target.exists()
        mode = target.stat().st_mode if exists else 0
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, name too long
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ctx.fail(key, f"path {shown} cannot be resolved ({_one_line(reason)})", table, index) from None
    if escapes:
        raise ctx.fail(key, f"path {shown} escapes the experiment folder", table, index)
    if must_exist and not exists:
        raise ctx.fail(key, f"{kind} {shown} does not exist", table, index)
    if exists and kind == "Dockerfile" and not stat.S_ISREG(mode):
        raise ctx.fail(key, f"Dockerfile {shown} is not a regular file", table, index)
    if exists and kind == "context directory":
        if not stat.S_ISDIR(mode):
            raise ctx.fail(key, f"context {shown} is not a directory", table, index)
        _context_links(target, folder, key, ctx, table, index)
    seen.add((rel, kind, must_exist))
    return rel


def _context_links(context: Path, folder: Path, key: str, ctx: _Ctx, table: str | None, index: int) -> None:
    """Refuse a symlink in a context that points outside it: nothing may read through it."""
    for p in _walk(context):
        if not p.is_symlink():
            continue
        try:
            target = p.resolve()
            inside = target.is_relative_to(context)
        except (OSError, RuntimeError, ValueError):
            inside = False
        if not inside:
            rel = _one_line(p.relative_to(folder).as_posix(), 120)
            raise ctx.fail(
                key, f"symlink {rel} in the context points outside it; copy the file in", table, index
            )


# --------------------------------------------------------------------------- the model's errors

_TABLES: dict[str, type[msgspec.Struct]] = {
    "variants": schemas.Variant,
    "claims": schemas.Claim,
    "preconditions": schemas.Claim,
}
_EITHER = "give either expect (lower|higher, with baseline and candidate) or op and value (with variant)"
_PATH_RE = re.compile(r" - at `\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[(?:[0-9]+|\.\.\.)\])*)`$")
_SEGMENT_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+|\.\.\.)\]")
_TYPE_NAMES: dict[type[msgspec.inspect.Type], str] = {
    msgspec.inspect.StrType: "str",
    msgspec.inspect.IntType: "int",
    msgspec.inspect.FloatType: "float",
    msgspec.inspect.BoolType: "bool",
    msgspec.inspect.ListType: "list",
    msgspec.inspect.DictType: "dict",
    msgspec.inspect.StructType: "dict",
}
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),  # an integer is a fine float
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


@cache
def _fields(model: type[msgspec.Struct]) -> dict[str, msgspec.inspect.Field]:
    """A model's fields by their TOML key, in the model's order."""
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.encode_name: f for f in info.fields}


_TOP_KEYS = frozenset(_fields(schemas.Experiment))
_VARIANT_KEYS = frozenset(_fields(schemas.Variant))
_CLAIM_KEYS = frozenset(_fields(schemas.Claim))


def _type_names(t: msgspec.inspect.Type) -> tuple[str, ...]:
    """The Python type names a field's type stands for, as the messages say them ("str or list")."""
    if isinstance(t, msgspec.inspect.UnionType):
        return tuple(n for x in t.types for n in _type_names(x))
    if isinstance(t, msgspec.inspect.LiteralType):
        return (type(t.values[0]).__name__,)
    if isinstance(t, msgspec.inspect.AnyType):
        return ()
    return (_TYPE_NAMES.get(type(t), type(t).__name__),)


def _fits(value: object, names: tuple[str, ...]) -> bool:
    """Whether a parsed value has one of the named types (the type check the model made)."""
    if not names:
        return True
    if isinstance(value, bool):  # a bool is an int to Python, never to an experiment
        return "bool" in names
    return any(isinstance(value, _PY_TYPES.get(n, ())) for n in names)


def _model_error(exc: msgspec.ValidationError, data: Table, folder: Path, ctx: _Ctx) -> SchemaError:
    """msgspec's error ("Expected `str`, got `int` - at `$.variants[0].name`") as the one-line message the
    loader gives: the place comes from msgspec's path, the words from the key and its value in the file."""
    text = str(exc)
    found = _PATH_RE.search(text)
    path: list[str | int] = [
        name or (int(item) if item.isdigit() else item)
        for name, item in _SEGMENT_RE.findall(found.group(1) if found else "")
    ]
    kind = (
        "unknown"
        if text.startswith("Object contains unknown field")
        else "missing"
        if text.startswith("Object missing required field")
        else "value"
    )
    model: type[msgspec.Struct] = schemas.Experiment
    obj: Table = data
    table: str | None = None
    index = 0
    qual = ""
    head = path[0] if path else None
    if isinstance(head, str) and head in _TABLES and len(path) >= 2 and isinstance(path[1], int):
        index = path[1]
        item = _at(data, head, index)
        if not isinstance(item, dict):
            return ctx.fail(head, f"must be an array of tables ([[{head}]])")
        model, obj, table, qual = _TABLES[head], item, head, f"{head}[{index}]."
        path = path[2:]
    elif head == "edits" and (len(path) >= 2 or kind != "value") and isinstance(data.get("edits"), dict):
        model, obj, table, qual = schemas.Edits, _table(data, "edits"), "edits", "edits."
        path = path[1:]
    fields = _fields(model)
    unknown = sorted(set(obj) - set(fields))
    if kind == "unknown" and unknown:
        allowed = ", ".join(fields if model is schemas.Edits else sorted(fields))
        return ctx.fail(f"{qual}{unknown[0]}", f"unknown key (allowed: {allowed})", table, index)
    missing = [k for k, f in fields.items() if f.required and k not in obj]
    if kind == "missing" and missing:
        return ctx.fail(f"{qual}{missing[0]}", "is required", table, index)
    key = str(path[0]) if path else ""
    if key not in fields or key not in obj:
        return ctx.fail(qual.rstrip(".") or "(file)", _one_line(text, 300), table, index)
    value = obj[key]
    names = _type_names(fields[key].type)
    if not _fits(value, names):
        got = type(value).__name__
        return ctx.fail(f"{qual}{key}", f"must be {' or '.join(names)}, got {got}", table, index)
    if model is schemas.Claim and key in ("expect", "op") and "expect" in obj and "op" in obj:
        return ctx.fail(f"{qual}expect", _EITHER, table, index)  # both given: that comes first
    where, message = _value_message(model, key, value, folder)
    return ctx.fail(f"{qual}{where}", message or _one_line(text, 300), table, index)


def _at(data: Table, key: str, index: int) -> object:
    """Item `index` of the list `key` of a table as parsed (None where there is none)."""
    items = data.get(key)
    return items[index] if isinstance(items, list) and index < len(items) else None


def _table(data: Table, key: str) -> Table:
    """The table `key` of a table as parsed ({} where it is not a table)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _value_message(model: type[msgspec.Struct], key: str, value: object, folder: Path) -> tuple[str, str]:
    """(key, message) for a value of the right type the model refuses (a range, a name, a word)."""
    if isinstance(value, list):
        return _list_message(model, key, value)
    if isinstance(value, dict):
        bad = [k for k, v in value.items() if not isinstance(v, str | int | float) or isinstance(v, bool)]
        return (f"{key}.{bad[0]}", "values must be strings or numbers") if bad else (key, "")
    if model is schemas.Experiment:
        if key == "schema_version":
            return key, f"unsupported version {value} (this imagebench reads {SCHEMA_VERSION})"
        if key == "name":
            if value != folder.name:
                return key, f"{value!r} must equal the folder name {folder.name!r}"
            return key, "use lower-case letters, digits and '-'"
        if key == "section":
            return key, f"unknown section {value!r} (allowed: {', '.join(SECTIONS)})"
        if key == "min_trials":
            return key, "must be between 0 and 1000"
    if key == "trials":
        return key, "must be between 1 and 1000"
    if key == "name":
        return key, "use lower-case letters, digits and '-'"
    if key == "cache":
        return key, f"unknown cache strategy {value!r} (allowed: {', '.join(CACHE_STRATEGIES)})"
    if key == "scenario":
        return key, f"unknown scenario {value!r} (allowed: {', '.join(SCENARIOS)})"
    if key in ("tolerance", "tolerance_rel") and isinstance(value, int | float):
        return key, f"must be >= 0, got {value}" if value < 0 else f"must be a finite number, got {value}"
    if key == "article_section":
        return key, f"must look like dockerfiles.N, images.N or bonus.N, got {_one_line(repr(value), 80)}"
    one_of = {"expect": ", ".join(EXPECT), "op": " ".join(OPS), "source": ", ".join(SOURCES)}
    return key, f"must be one of {one_of[key]}" if key in one_of else ""


def _list_message(model: type[msgspec.Struct], key: str, value: list[object]) -> tuple[str, str]:
    """What is wrong in a list the model refuses: an empty one, or its first bad item."""
    if key == "smoke":
        return key, "a list must hold at least one non-empty string"
    if not value:
        if key == "variants":
            return key, "needs at least one [[variants]] table"
        return key, "must name at least one scenario" if key == "scenarios" else ""
    for item in value:
        if not isinstance(item, str):
            got = "" if model is schemas.Edits else f", got {type(item).__name__}"
            return key, f"items must be strings{got}"
        if key == "scenarios" and item not in SCENARIOS:
            return key, f"unknown value {item!r} (allowed: {', '.join(SCENARIOS)})"
    return key, ""


# --------------------------------------------------------------------------- loading


def load_experiment(path: Path) -> Experiment:
    """Load and validate one experiment folder (or its experiment.toml)."""
    path = Path(path)
    folder = path.parent if path.name == "experiment.toml" else path
    toml_path = folder / "experiment.toml"
    if not toml_path.is_file():
        raise UsageError(f"{toml_path}: no experiment.toml in {folder}")
    text = read_bounded(toml_path, limit=MAX_TOML_BYTES).decode("utf-8", errors="replace")
    ctx = _Ctx(toml_path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        where = f"{toml_path}:{m.group(1)}" if m else str(toml_path)
        raise SchemaError(f"{where}: key '(syntax)': invalid TOML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise SchemaError(f"{toml_path}: key '(syntax)': nested too deep to be an experiment") from None
    try:
        return _validate(data, folder, ctx)
    except RecursionError:
        raise SchemaError(f"{toml_path}: key '(syntax)': nested too deep to be an experiment") from None


def _unset(value: T | msgspec.UnsetType) -> T | None:
    return None if isinstance(value, msgspec.UnsetType) else value


def _validate(data: Table, folder: Path, ctx: _Ctx) -> Experiment:
    """The whole experiment.toml: first its types, required and unknown keys (schemas.Experiment), then
    what a type cannot say, in file order (the first problem is the one reported)."""
    try:
        model = msgspec.convert(data, schemas.Experiment, strict=True)
    except msgspec.ValidationError as exc:
        raise _model_error(exc, data, folder, ctx) from None
    name = _unset(model.name) or folder.name
    if name != folder.name:
        raise ctx.fail("name", f"{name!r} must equal the folder name {folder.name!r}")
    if not NAME_RE.match(name):  # the folder's own name, when the file names none
        raise ctx.fail("name", "use lower-case letters, digits and '-'")
    default_scen = tuple(model.scenarios)
    edits = dict(_table(data, "edits"))  # the table as written (schemas.Edits checked it)
    variants = _variants(model.variants, folder, ctx, default_scen, data)
    names = {v.name for v in variants}
    _check_edits(edits, _unset(model.edits), variants, folder, ctx)
    claims = tuple(_claim(mc, i, ctx, names, data) for i, mc in enumerate(model.claims))
    preconditions = tuple(
        _claim(mc, i, ctx, names, data, table="preconditions") for i, mc in enumerate(model.preconditions)
    )
    return Experiment(
        name=name,
        path=folder,
        practice=model.practice,
        section=model.section,
        claim=model.claim,
        article=model.article,
        summary=model.summary,
        cannot_show=model.cannot_show,
        deps_step=model.deps_step,
        default=model.default,
        trials=model.trials,
        compressed=model.compressed,
        probes=_check_known(model.probes, "probes", _known_probes(), ctx),
        metrics=_check_known(model.metrics, "metrics", _known_metrics(), ctx),
        requires=_requires(model.requires, ctx),
        edits=edits,
        variants=tuple(variants),
        claims=claims,
        min_trials=model.min_trials,
        preconditions=preconditions,
    )


def _variants(
    models: list[schemas.Variant], folder: Path, ctx: _Ctx, default_scen: tuple[str, ...], data: Table
) -> list[Variant]:
    """The [[variants]] tables: their files inside the folder, names unique."""
    variants = [
        _variant(mv, i, folder, ctx, default_scen, _at(data, "variants", i)) for i, mv in enumerate(models)
    ]
    dup = {n for n, k in Counter(v.name for v in variants).items() if k > 1}
    if dup:
        raise ctx.fail("variants.name", f"duplicate variant name {sorted(dup)[0]!r}", "variants")
    return variants


def _check_edits(
    edits: Table, model: schemas.Edits | None, variants: list[Variant], folder: Path, ctx: _Ctx
) -> None:
    """[edits] has what the variants' edit scenarios need, and its paths stay inside the folder."""
    for scen_needs, key in (
        ("edit-source", "source"),
        ("edit-deps", "deps"),
        ("ci", "source"),
        ("ci-deps", "deps"),
    ):
        if any(scen_needs in v.scenarios for v in variants) and key not in edits:
            raise ctx.fail(f"edits.{key}", f"scenario {scen_needs!r} needs [edits] {key}")
    if model is None:
        return
    for rel in model.source:
        _inside(folder, rel, "edits.source", ctx, "edits", 0, must_exist=False)
    deps = _unset(model.deps)
    if deps is not None:
        _inside(folder, deps, "edits.deps", ctx, "edits", 0, must_exist=False)


def _variant(
    mv: schemas.Variant, i: int, folder: Path, ctx: _Ctx, default_scen: tuple[str, ...], raw: object
) -> Variant:
    t = "variants"
    q = f"variants[{i}]."
    _inside(folder, mv.dockerfile, f"{q}dockerfile", ctx, t, i, must_exist=True, kind="Dockerfile")
    _inside(folder, mv.context, f"{q}context", ctx, t, i, must_exist=True, kind="context directory")
    scenarios = tuple(mv.scenarios) or default_scen
    if isinstance(raw, dict) and "cache" in raw and not any(s in CI_SCENARIOS for s in scenarios):
        raise ctx.fail(f"{q}cache", f"applies to the ci scenarios only ({', '.join(CI_SCENARIOS)})", t, i)
    requires = _requires(mv.requires, ctx, table=t, index=i, qual=q)
    smoke = _unset(mv.smoke)
    if isinstance(smoke, str) and not smoke.strip():
        raise ctx.fail(f"{q}smoke", "must not be empty", t, i)
    return Variant(
        name=mv.name,
        dockerfile=mv.dockerfile,
        context=mv.context,
        target=_unset(mv.target),
        build_args={k: str(v) for k, v in mv.build_args.items()},
        scenarios=scenarios,
        requires=requires,
        run=mv.run,
        description=mv.description,
        smoke=smoke if smoke is None or isinstance(smoke, str) else tuple(smoke),
        trials=_unset(mv.trials),
        cache=mv.cache,
    )


def _claim(
    mc: schemas.Claim, i: int, ctx: _Ctx, variants: set[str], data: Table, table: str = "claims"
) -> Claim:
    t = table
    q = f"{table}[{i}]."
    raw = _at(data, table, i)
    rc: Table = raw if isinstance(raw, dict) else {}
    known = _known_metrics()
    if mc.metric not in known:
        raise ctx.fail(
            f"{q}metric", f"unknown metric {_one_line(repr(mc.metric), 80)} (known: {', '.join(known)})", t, i
        )
    given = rc.get("value")  # as written: -1 stays -1 in the message
    if "op" in rc and isinstance(given, int | float) and given < 0:
        raise ctx.fail(f"{q}value", f"must be >= 0 (metrics are never negative), got {given}", t, i)
    expect, op = _unset(mc.expect), _unset(mc.op)
    if (expect is None) == (op is None):
        raise ctx.fail(f"{q}expect", _EITHER, t, i)
    refs, value = _claim_refs(mc, ctx, t, i, q)
    for k, ref in refs.items():
        if ref not in variants:
            raise ctx.fail(
                f"{q}{k}", f"no variant named {ref!r} (variants: {', '.join(sorted(variants))})", t, i
            )
    tolerance, tolerance_rel = _unset(mc.tolerance), _unset(mc.tolerance_rel)
    for k, tol in (("tolerance", tolerance), ("tolerance_rel", tolerance_rel)):
        if tol is not None and not math.isfinite(tol):
            raise ctx.fail(f"{q}{k}", f"must be a finite number, got {tol}", t, i)
    return Claim(
        metric=mc.metric,
        scenario=mc.scenario,
        expect=expect,
        baseline=refs.get("baseline"),
        candidate=refs.get("candidate"),
        variant=refs.get("variant"),
        op=op,
        value=value,
        tolerance=tolerance,
        tolerance_rel=tolerance_rel,
        primary=mc.primary,
        label=mc.label,
        source=mc.source,
        article_section=_article_section(mc, ctx, t, i, q),
        article_figure=mc.article_figure.strip(),
        by_construction=mc.by_construction,
    )


def _claim_refs(
    mc: schemas.Claim, ctx: _Ctx, t: str, i: int, q: str
) -> tuple[dict[str, str | None], float | None]:
    """(the variants a claim names, its value): baseline and candidate for `expect`, variant for `op`;
    the value of a delta or an op claim, which must be given and finite."""
    refs: dict[str, str | None] = {}
    keys = ("baseline", "candidate") if mc.expect is not msgspec.UNSET else ("variant",)
    for k in keys:
        ref = _unset(getattr(mc, k))
        if ref is None:
            raise ctx.fail(f"{q}{k}", "is required", t, i)
        refs[k] = ref
    if mc.expect not in ("delta", msgspec.UNSET):
        return refs, None
    value = _unset(mc.value)
    if value is None:
        raise ctx.fail(f"{q}value", "is required", t, i)
    if not math.isfinite(value):
        raise ctx.fail(f"{q}value", f"must be a finite number, got {value}", t, i)
    if mc.expect == "delta" and mc.tolerance is msgspec.UNSET and mc.tolerance_rel is msgspec.UNSET:
        raise ctx.fail(f"{q}tolerance", 'expect = "delta" needs tolerance or tolerance_rel', t, i)
    return refs, value


def _article_section(mc: schemas.Claim, ctx: _Ctx, t: str, i: int, q: str) -> str:
    """A section id of the article list; required on a claim whose source is the article."""
    sec = mc.article_section
    if not sec:
        if t == "claims" and mc.source == "article":
            raise ctx.fail(
                f"{q}article_section",
                'is required when source = "article" (the section it checks, e.g. "dockerfiles.1")',
                t,
                i,
            )
        return ""
    if sec not in ARTICLE_SECTIONS:  # the model checked its form
        family = sec.split(".")[0]
        last = max(int(k.split(".")[1]) for k in ARTICLE_SECTIONS if k.startswith(family + "."))
        raise ctx.fail(
            f"{q}article_section", f"no section {sec!r} in the article ({family}.1 to .{last})", t, i
        )
    return sec


# --------------------------------------------------------------------------- discovery


def discover(root: Path | None = None, *, on_error: OnError | None = None) -> list[Experiment]:
    """Every experiment under `root` (default: the repository's experiments/), sorted with calibration first.

    With `on_error`, a broken experiment is passed to it (its SchemaError/UsageError) and skipped, so
    one bad experiment.toml does not make the others unusable; without it the first error is raised.
    """
    root = Path(root) if root else experiments_dir()
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise UsageError(f"experiments directory {_one_line(str(root))} {what}")
    out = []
    for p in sorted(root.glob("*/experiment.toml")):
        try:
            out.append(load_experiment(p.parent))
        except (SchemaError, UsageError) as exc:
            if on_error is None:
                raise
            on_error(p.parent.name, exc)
    return sorted(out, key=lambda e: (e.section != "calibration", e.name))


def select(
    names: list[str], *, all_: bool = False, root: Path | None = None, on_error: OnError | None = None
) -> list[Experiment]:
    """The experiments a command named (or the default set / all), failing on unknown names.

    With `on_error`, broken experiments are reported through it and left out; naming a broken one
    still fails with its own error."""
    broken: dict[str, Exception] = {}

    def note(name: str, exc: Exception) -> None:
        broken[name] = exc

    catalog = discover(root, on_error=note if on_error is not None else None)
    for n in names:
        if n in broken:
            raise broken[n]
    for name, exc in broken.items():
        if on_error is not None:  # broken is empty without it
            on_error(name, exc)
    by_name = {e.name: e for e in catalog}
    if all_:
        return catalog
    if not names:
        return [e for e in catalog if e.default]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(f"unknown experiment {unknown[0]!r}; known: {', '.join(sorted(by_name))}")
    return [by_name[n] for n in names]
