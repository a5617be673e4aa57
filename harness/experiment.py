"""Experiment definitions: load and validate `experiments/<name>/experiment.toml`, discover them.

Every error names the file, the line (where it can be found) and the key, so a user fixing an
experiment never reads a traceback. Paths inside a definition must stay in the experiment's
folder.
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
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

from harness.errors import SchemaError, UsageError
from harness.paths import experiments_dir
from harness.probes import known_probes
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
"""A table of the parsed experiment.toml, before it is checked (`_get` checks each value's type)."""
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

    def to_dict(self) -> dict[str, Any]:
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
            "variants": [
                {
                    "name": v.name,
                    "dockerfile": v.dockerfile,
                    "target": v.target,
                    "scenarios": list(v.scenarios),
                    "requires": list(v.requires),
                    "description": v.description,
                    **({"smoke": v.smoke if isinstance(v.smoke, str) else list(v.smoke)} if v.smoke else {}),
                    **({"trials": v.trials} if v.trials else {}),
                    **({"cache": v.cache} if v.cache != "none" else {}),
                }
                for v in self.variants
            ],
            "claims": [
                {k: getattr(c, k) for k in Claim.__dataclass_fields__ if getattr(c, k) not in (None, "")}
                for c in self.claims
            ],
            "preconditions": [
                {k: getattr(c, k) for k in Claim.__dataclass_fields__ if getattr(c, k) not in (None, "")}
                for c in self.preconditions
            ],
            "min_trials": self.min_trials,
        }


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


def _get(
    d: Table,
    key: str,
    typ: type | tuple[type, ...],
    ctx: _Ctx,
    *,
    required: bool = False,
    default: Any = None,
    table: str | None = None,
    index: int = 0,
    qual: str = "",
) -> Any:
    full = f"{qual}{key}"
    if key not in d:
        if required:
            raise ctx.fail(full, "is required", table, index)
        return default
    val = d[key]
    if typ is float and isinstance(val, int) and not isinstance(val, bool):
        val = float(val)
    ok = isinstance(val, typ) and not (isinstance(val, bool) and typ in (int, float))
    if not ok:
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ctx.fail(full, f"must be {names}, got {type(val).__name__}", table, index)
    if isinstance(val, float) and not math.isfinite(val):
        raise ctx.fail(full, f"must be a finite number, got {val}", table, index)
    return val


def _str_list(
    d: Table,
    key: str,
    ctx: _Ctx,
    *,
    allowed: tuple[str, ...] | None = None,
    default: tuple[str, ...] = (),
    table: str | None = None,
    index: int = 0,
    qual: str = "",
) -> tuple[str, ...]:
    val = _get(d, key, list, ctx, default=list(default), table=table, index=index, qual=qual)
    out = []
    for item in val:
        if not isinstance(item, str):
            raise ctx.fail(f"{qual}{key}", f"items must be strings, got {type(item).__name__}", table, index)
        if allowed is not None and item not in allowed:
            raise ctx.fail(
                f"{qual}{key}", f"unknown value {item!r} (allowed: {', '.join(allowed)})", table, index
            )
        out.append(item)
    return tuple(out)


def _known_metrics() -> tuple[str, ...]:
    from harness import metrics

    metrics.get("")  # loads the probes, which register their own metrics
    return tuple(sorted(metrics.METRICS))


def _known_probes() -> tuple[str, ...]:
    return tuple(known_probes())


def _requires(
    d: Table, ctx: _Ctx, *, table: str | None = None, index: int = 0, qual: str = ""
) -> tuple[str, ...]:
    out = _str_list(d, "requires", ctx, table=table, index=index, qual=qual)
    for need in out:
        if need not in REQUIREMENTS and not TOOL_RE.match(need):
            raise ctx.fail(
                f"{qual}requires",
                f"unknown requirement {_one_line(repr(need), 80)} (known: {', '.join(REQUIREMENTS)}, tool:NAME)",
                table,
                index,
            )
    return out


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


_TOP_KEYS = {
    "schema_version",
    "name",
    "practice",
    "section",
    "claim",
    "article",
    "summary",
    "cannot_show",
    "default",
    "trials",
    "scenarios",
    "compressed",
    "probes",
    "metrics",
    "requires",
    "edits",
    "variants",
    "claims",
    "deps_step",
    "min_trials",
    "preconditions",
}
_VARIANT_KEYS = {
    "name",
    "dockerfile",
    "context",
    "target",
    "build_args",
    "scenarios",
    "requires",
    "run",
    "description",
    "smoke",
    "trials",
    "cache",
}
_CLAIM_KEYS = {
    "metric",
    "scenario",
    "expect",
    "baseline",
    "candidate",
    "variant",
    "op",
    "value",
    "primary",
    "label",
    "tolerance",
    "tolerance_rel",
    "source",
    "article_section",
    "article_figure",
    "by_construction",
}


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


def _validate(data: Table, folder: Path, ctx: _Ctx) -> Experiment:
    """The whole experiment.toml, checked in file order: the first problem is the one reported."""
    name = _header(data, folder, ctx)
    practice = _get(data, "practice", str, ctx, required=True)
    section = _get(data, "section", str, ctx, default="dockerfile")
    if section not in SECTIONS:
        raise ctx.fail("section", f"unknown section {section!r} (allowed: {', '.join(SECTIONS)})")
    claim = _get(data, "claim", str, ctx, required=True)
    trials = _get(data, "trials", int, ctx, default=5)
    if trials < 1 or trials > 1000:
        raise ctx.fail("trials", "must be between 1 and 1000")
    default_scen = _str_list(data, "scenarios", ctx, allowed=SCENARIOS, default=("cold",))
    if not default_scen:
        raise ctx.fail("scenarios", "must name at least one scenario")
    edits = _get(data, "edits", dict, ctx, default={})
    for key in edits:
        if key not in ("source", "deps", "deps_append"):
            raise ctx.fail(f"edits.{key}", "unknown key (allowed: source, deps, deps_append)", "edits")
    variants = _variants(data, folder, ctx, default_scen)
    names = [v.name for v in variants]
    _check_edits(edits, variants, folder, ctx)
    claims = tuple(
        _claim(rc, i, ctx, set(names)) for i, rc in enumerate(_get(data, "claims", list, ctx, default=[]))
    )
    preconditions = tuple(
        _claim(rc, i, ctx, set(names), table="preconditions")
        for i, rc in enumerate(_get(data, "preconditions", list, ctx, default=[]))
    )
    min_trials = _get(data, "min_trials", int, ctx, default=0)
    if min_trials < 0 or min_trials > 1000:
        raise ctx.fail("min_trials", "must be between 0 and 1000")
    return Experiment(
        name=name,
        path=folder,
        practice=practice,
        section=section,
        claim=claim,
        article=_get(data, "article", str, ctx, default=""),
        summary=_get(data, "summary", str, ctx, default=""),
        cannot_show=_get(data, "cannot_show", str, ctx, default=""),
        deps_step=_get(data, "deps_step", str, ctx, default=""),
        default=_get(data, "default", bool, ctx, default=False),
        trials=trials,
        compressed=_get(data, "compressed", bool, ctx, default=True),
        probes=_str_list(data, "probes", ctx, allowed=_known_probes()),
        metrics=_str_list(data, "metrics", ctx, allowed=_known_metrics()),
        requires=_requires(data, ctx),
        edits=edits,
        variants=tuple(variants),
        claims=claims,
        min_trials=min_trials,
        preconditions=preconditions,
    )


def _header(data: Table, folder: Path, ctx: _Ctx) -> str:
    """Only known top-level keys, a schema_version this imagebench reads, a name equal to the folder's."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    version = _get(data, "schema_version", int, ctx, default=SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ctx.fail(
            "schema_version", f"unsupported version {version} (this imagebench reads {SCHEMA_VERSION})"
        )
    name: str = _get(data, "name", str, ctx, default=folder.name)
    if name != folder.name:
        raise ctx.fail("name", f"{name!r} must equal the folder name {folder.name!r}")
    if not NAME_RE.match(name):
        raise ctx.fail("name", "use lower-case letters, digits and '-'")
    return name


def _variants(data: Table, folder: Path, ctx: _Ctx, default_scen: tuple[str, ...]) -> list[Variant]:
    """The [[variants]] tables: at least one, each valid, names unique."""
    raw_variants = _get(data, "variants", list, ctx, required=True)
    if not raw_variants:
        raise ctx.fail("variants", "needs at least one [[variants]] table")
    variants = [_variant(rv, i, folder, ctx, default_scen) for i, rv in enumerate(raw_variants)]
    dup = {n for n, k in Counter(v.name for v in variants).items() if k > 1}
    if dup:
        raise ctx.fail("variants.name", f"duplicate variant name {sorted(dup)[0]!r}", "variants")
    return variants


def _check_edits(edits: Table, variants: list[Variant], folder: Path, ctx: _Ctx) -> None:
    """[edits] has what the variants' edit scenarios need, and its paths stay inside the folder."""
    for scen_needs, key in (
        ("edit-source", "source"),
        ("edit-deps", "deps"),
        ("ci", "source"),
        ("ci-deps", "deps"),
    ):
        if any(scen_needs in v.scenarios for v in variants) and key not in edits:
            raise ctx.fail(f"edits.{key}", f"scenario {scen_needs!r} needs [edits] {key}")
    for rel in _get(edits, "source", list, ctx, default=[], table="edits", qual="edits."):
        if not isinstance(rel, str):
            raise ctx.fail("edits.source", "items must be strings", "edits")
        _inside(folder, rel, "edits.source", ctx, "edits", 0, must_exist=False)
    if "deps" in edits:
        _inside(
            folder,
            _get(edits, "deps", str, ctx, table="edits", qual="edits."),
            "edits.deps",
            ctx,
            "edits",
            0,
            must_exist=False,
        )


def _variant(rv: Any, i: int, folder: Path, ctx: _Ctx, default_scen: tuple[str, ...]) -> Variant:
    t = "variants"
    if not isinstance(rv, dict):
        raise ctx.fail("variants", "must be an array of tables ([[variants]])")
    unknown = sorted(set(rv) - _VARIANT_KEYS)
    if unknown:
        raise ctx.fail(
            f"variants[{i}].{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(_VARIANT_KEYS))})", t, i
        )
    q = f"variants[{i}]."
    name = _get(rv, "name", str, ctx, required=True, table=t, index=i, qual=q)
    if not NAME_RE.match(name):
        raise ctx.fail(f"{q}name", "use lower-case letters, digits and '-'", t, i)
    dockerfile = _get(rv, "dockerfile", str, ctx, required=True, table=t, index=i, qual=q)
    _inside(folder, dockerfile, f"{q}dockerfile", ctx, t, i, must_exist=True, kind="Dockerfile")
    context = _get(rv, "context", str, ctx, default="context", table=t, index=i, qual=q)
    _inside(folder, context, f"{q}context", ctx, t, i, must_exist=True, kind="context directory")
    build_args = _get(rv, "build_args", dict, ctx, default={}, table=t, index=i, qual=q)
    for k, v in build_args.items():
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise ctx.fail(f"{q}build_args.{k}", "values must be strings or numbers", t, i)
    scenarios = (
        _str_list(rv, "scenarios", ctx, allowed=SCENARIOS, default=default_scen, table=t, index=i, qual=q)
        or default_scen
    )
    cache = _cache(rv, scenarios, ctx, t, i, q)
    return Variant(
        name=name,
        dockerfile=dockerfile,
        context=context,
        target=_get(rv, "target", str, ctx, default=None, table=t, index=i, qual=q),
        build_args={k: str(v) for k, v in build_args.items()},
        scenarios=scenarios,
        requires=_requires(rv, ctx, table=t, index=i, qual=q),
        run=_get(rv, "run", dict, ctx, default={}, table=t, index=i, qual=q),
        description=_get(rv, "description", str, ctx, default="", table=t, index=i, qual=q),
        smoke=_smoke(rv, ctx, t, i, q),
        trials=_variant_trials(rv, ctx, t, i, q),
        cache=cache,
    )


def _cache(rv: Table, scenarios: tuple[str, ...], ctx: _Ctx, t: str, i: int, q: str) -> str:
    """`cache`: a known strategy, and only on a variant that runs a ci scenario (elsewhere it means nothing)."""
    cache: str = _get(rv, "cache", str, ctx, default="none", table=t, index=i, qual=q)
    if cache not in CACHE_STRATEGIES:
        raise ctx.fail(
            f"{q}cache", f"unknown cache strategy {cache!r} (allowed: {', '.join(CACHE_STRATEGIES)})", t, i
        )
    if "cache" in rv and not any(s in CI_SCENARIOS for s in scenarios):
        raise ctx.fail(f"{q}cache", f"applies to the ci scenarios only ({', '.join(CI_SCENARIOS)})", t, i)
    return cache


def _variant_trials(rv: Table, ctx: _Ctx, t: str, i: int, q: str) -> int | None:
    n: int | None = _get(rv, "trials", int, ctx, default=None, table=t, index=i, qual=q)
    if n is not None and not 1 <= n <= 1000:
        raise ctx.fail(f"{q}trials", "must be between 1 and 1000", t, i)
    return n


def _smoke(rv: Table, ctx: _Ctx, t: str, i: int, q: str) -> str | tuple[str, ...] | None:
    """`smoke`: a shell command (string) or an exec-form argv (non-empty list of strings)."""
    val = _get(rv, "smoke", (str, list), ctx, default=None, table=t, index=i, qual=q)
    if val is None:
        return None
    if isinstance(val, str):
        if not val.strip():
            raise ctx.fail(f"{q}smoke", "must not be empty", t, i)
        return val
    if not val or not all(isinstance(x, str) and x for x in val):
        raise ctx.fail(f"{q}smoke", "a list must hold at least one non-empty string", t, i)
    return tuple(val)


def _claim(rc: Any, i: int, ctx: _Ctx, variants: set[str], table: str = "claims") -> Claim:
    t = table
    q = f"{table}[{i}]."
    if not isinstance(rc, dict):
        raise ctx.fail(table, f"must be an array of tables ([[{table}]])")
    unknown = sorted(set(rc) - _CLAIM_KEYS)
    if unknown:
        raise ctx.fail(f"{q}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(_CLAIM_KEYS))})", t, i)
    metric = _claim_metric(rc, ctx, t, i, q)
    scenario = _get(rc, "scenario", str, ctx, default="cold", table=t, index=i, qual=q)
    if scenario not in SCENARIOS:
        raise ctx.fail(
            f"{q}scenario", f"unknown scenario {scenario!r} (allowed: {', '.join(SCENARIOS)})", t, i
        )
    expect = _get(rc, "expect", str, ctx, default=None, table=t, index=i, qual=q)
    op = _get(rc, "op", str, ctx, default=None, table=t, index=i, qual=q)
    if (expect is None) == (op is None):
        raise ctx.fail(
            f"{q}expect",
            "give either expect (lower|higher, with baseline and candidate) or op and value (with variant)",
            t,
            i,
        )
    refs, value = _claim_refs(rc, ctx, t, i, q, expect, op)
    for k, ref in refs.items():
        if ref not in variants:
            raise ctx.fail(
                f"{q}{k}", f"no variant named {ref!r} (variants: {', '.join(sorted(variants))})", t, i
            )
    return Claim(
        metric=metric,
        scenario=scenario,
        expect=expect,
        baseline=refs.get("baseline"),
        candidate=refs.get("candidate"),
        variant=refs.get("variant"),
        op=op,
        value=value,
        tolerance=_get(rc, "tolerance", float, ctx, default=None, table=t, index=i, qual=q),
        tolerance_rel=_get(rc, "tolerance_rel", float, ctx, default=None, table=t, index=i, qual=q),
        primary=_get(rc, "primary", bool, ctx, default=False, table=t, index=i, qual=q),
        label=_get(rc, "label", str, ctx, default="", table=t, index=i, qual=q),
        source=_source(rc, ctx, t, i, q),
        article_section=_article_section(rc, ctx, t, i, q),
        article_figure=_get(rc, "article_figure", str, ctx, default="", table=t, index=i, qual=q).strip(),
        by_construction=_get(rc, "by_construction", bool, ctx, default=False, table=t, index=i, qual=q),
    )


def _claim_metric(rc: Table, ctx: _Ctx, t: str, i: int, q: str) -> str:
    """A claim's metric is in the vocabulary; its tolerances and an absolute value are not negative."""
    metric: str = _get(rc, "metric", str, ctx, required=True, table=t, index=i, qual=q)
    known = _known_metrics()
    if metric not in known:
        raise ctx.fail(
            f"{q}metric", f"unknown metric {_one_line(repr(metric), 80)} (known: {', '.join(known)})", t, i
        )
    for k in ("tolerance", "tolerance_rel"):
        tol = rc.get(k)
        if isinstance(tol, int | float) and not isinstance(tol, bool) and tol < 0:
            raise ctx.fail(f"{q}{k}", f"must be >= 0, got {tol}", t, i)
    value = rc.get("value")
    if "op" in rc and isinstance(value, int | float) and value < 0:
        raise ctx.fail(f"{q}value", f"must be >= 0 (metrics are never negative), got {value}", t, i)
    return metric


def _claim_refs(
    rc: Table, ctx: _Ctx, t: str, i: int, q: str, expect: str | None, op: str | None
) -> tuple[dict[str, str | None], float | None]:
    """(the variants a claim names, its value): baseline and candidate for `expect`, variant for `op`."""
    refs: dict[str, str | None] = {}
    if expect is not None:
        if expect not in EXPECT:
            raise ctx.fail(f"{q}expect", f"must be one of {', '.join(EXPECT)}", t, i)
        for k in ("baseline", "candidate"):
            refs[k] = _get(rc, k, str, ctx, required=True, table=t, index=i, qual=q)
        value = None
        if expect == "delta":
            value = _get(rc, "value", float, ctx, required=True, table=t, index=i, qual=q)
            if "tolerance" not in rc and "tolerance_rel" not in rc:
                raise ctx.fail(f"{q}tolerance", 'expect = "delta" needs tolerance or tolerance_rel', t, i)
    else:
        if op not in OPS:
            raise ctx.fail(f"{q}op", f"must be one of {' '.join(OPS)}", t, i)
        refs["variant"] = _get(rc, "variant", str, ctx, required=True, table=t, index=i, qual=q)
        value = _get(rc, "value", float, ctx, required=True, table=t, index=i, qual=q)
    return refs, value


def _source(rc: Table, ctx: _Ctx, t: str, i: int, q: str) -> str:
    source: str = _get(rc, "source", str, ctx, default="article", table=t, index=i, qual=q)
    if source not in SOURCES:
        raise ctx.fail(f"{q}source", f"must be one of {', '.join(SOURCES)}", t, i)
    return source


def _article_section(rc: Table, ctx: _Ctx, t: str, i: int, q: str) -> str:
    """A section id of the article list; required on a claim whose source is the article."""
    sec: str = _get(rc, "article_section", str, ctx, default="", table=t, index=i, qual=q)
    if not sec:
        if t == "claims" and rc.get("source", "article") == "article":
            raise ctx.fail(
                f"{q}article_section",
                'is required when source = "article" (the section it checks, e.g. "dockerfiles.1")',
                t,
                i,
            )
        return ""
    m = ARTICLE_SECTION_RE.match(sec)
    if not m:
        raise ctx.fail(
            f"{q}article_section",
            f"must look like dockerfiles.N, images.N or bonus.N, got {_one_line(repr(sec), 80)}",
            t,
            i,
        )
    if sec not in ARTICLE_SECTIONS:
        last = max(int(k.split(".")[1]) for k in ARTICLE_SECTIONS if k.startswith(m.group(1) + "."))
        raise ctx.fail(
            f"{q}article_section", f"no section {sec!r} in the article ({m.group(1)}.1 to .{last})", t, i
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
