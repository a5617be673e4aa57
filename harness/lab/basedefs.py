"""The lab's base-image catalog (bases.toml): definitions, validation, public-name mapping.

Pure: no Docker, no network.  `load_bases()` validates; `Bases.resolve(name)` maps a
public image name (as written in a `FROM` line) to a lab base, first matching glob wins.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypedDict, TypeVar

from harness.errors import LabError, SchemaError

BASES_TOML = Path(__file__).with_name("bases.toml")
LAB_DIR = Path(__file__).parent
SUITES = {"bookworm", "trixie", "forky"}
KINDS = ("mmdebstrap", "dockerfile")  # dockerfile: `docker build` of a recipe directory under harness/lab
LIBCS = ("glibc", "musl")
# bump when the build recipe in builder.py changes in a way that changes the images
RECIPE_VERSION = 3  # 3: official apt configuration (docker-clean etc.)
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PKG_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")

TomlTable: TypeAlias = Mapping[str, Any]
"""A table of bases.toml as `tomllib` parses it, before validation: its values are what the file says."""
_T = TypeVar("_T")


@dataclass(frozen=True)
class BaseDef:
    key: str
    tag: str
    suite: str
    variant: str
    packages: tuple[str, ...]
    python: bool
    stands_in_for: str
    cmd: tuple[str, ...]
    mirror: str
    security_mirror: str
    dpkg_excludes: tuple[str, ...]
    dpkg_includes: tuple[str, ...]
    official_compressed_bytes: int | None = None
    official_disk_bytes: int | None = None
    remove: tuple[str, ...] = ()  # globs deleted from the root filesystem after install (e.g. static libs)
    kind: str = "mmdebstrap"
    recipe: str = ""  # kind dockerfile: directory (relative to harness/lab) holding the Dockerfile
    builder_base: str = ""  # kind dockerfile: the lab base its builder stage starts FROM
    libc: str = "glibc"
    left_out: tuple[str, ...] = ()  # what the stand-in lacks against the official image (provenance)
    # False for a suite whose mirror snapshot is older than its Release's Valid-Until allows (testing):
    # apt accepts the expired Release, at build time and in the image (said in its provenance)
    check_valid_until: bool = True
    # built when a run first needs it (resolve_base), not by every `lab up` (a compiled-from-source
    # base takes minutes): not part of the definition, it does not change the image
    on_demand: bool = False
    # kind dockerfile: build arguments of the recipe (which source, which version): part of the definition
    recipe_args: tuple[tuple[str, str], ...] = ()

    def recipe_dir(self) -> Path:
        return LAB_DIR / self.recipe

    def recipe_files(self) -> dict[str, str]:
        """kind dockerfile: sha256 of every file of the recipe directory (part of the definition)."""
        d = self.recipe_dir()
        if not self.recipe or not d.is_dir():
            return {}
        return {
            str(f.relative_to(d)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(d.rglob("*"))
            if f.is_file()
        }

    def definition(self) -> dict[str, object]:
        d: dict[str, object] = asdict(self)
        for k in ("official_compressed_bytes", "official_disk_bytes", "left_out", "on_demand"):
            d.pop(k)
        if not self.recipe_args:  # old hashes stay valid: only new fields' non-defaults count
            d.pop("recipe_args")
        else:
            d["recipe_args"] = dict(self.recipe_args)
        if self.check_valid_until:  # old hashes stay valid: only new fields' non-defaults count
            d.pop("check_valid_until")
        if self.kind == "mmdebstrap":
            for k in ("kind", "recipe", "builder_base", "libc"):
                d.pop(k)
        else:
            d["recipe_files"] = self.recipe_files()
        d["recipe_version"] = RECIPE_VERSION
        return d

    def definition_hash(self) -> str:
        blob = json.dumps(self.definition(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class MapRule:
    pattern: str
    base: str  # "" = no stand-in
    reason: str = ""


@dataclass(frozen=True)
class Bases:
    bases: dict[str, BaseDef]
    rules: tuple[MapRule, ...]
    source: str = field(default=str(BASES_TOML))

    def patterns_for(self, key: str) -> list[str]:
        return [r.pattern for r in self.rules if r.base == key]

    def mapping_text(self) -> str:
        """One line: every rule, in order."""
        parts = []
        for r in self.rules:
            target = self.bases[r.base].tag if r.base else f"none ({r.reason or 'no stand-in'})"
            parts.append(f"{r.pattern} -> {target}")
        return "; ".join(parts)

    def resolve(self, public_name: str) -> tuple[BaseDef, MapRule]:
        """Map a public image name to a lab base or raise LabError listing the mapping."""
        name = normalize_name(public_name)
        for rule in self.rules:
            if fnmatch.fnmatchcase(name, rule.pattern):
                if not rule.base:
                    raise LabError(
                        f"no lab base for {public_name}: {rule.reason or 'no stand-in'}",
                        hint=f"lab mapping ({self.source}): {self.mapping_text()}",
                    )
                return self.bases[rule.base], rule
        raise LabError(
            f"no lab base maps {public_name}",
            hint=f"add a [[map]] rule to {self.source} or use --bases registry; "
            f"lab mapping: {self.mapping_text()}",
        )


def normalize_name(ref: str) -> str:
    """'docker.io/library/python:3.13-slim@sha256:..' -> 'python:3.13-slim'; 'python' -> 'python:latest'."""
    name = ref.strip().split("@", 1)[0]
    for prefix in ("docker.io/library/", "index.docker.io/library/", "library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    return name


def _req(table: TomlTable, key: str, typ: type[_T], where: str) -> _T:
    if key not in table:
        raise SchemaError(f"{where}: missing `{key}`")
    value = table[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise SchemaError(f"{where}: `{key}` must be {typ.__name__}, got {type(value).__name__}")
    return value


#: The fields a [bases.*] table may have.
BASE_FIELDS = frozenset(
    {
        "tag",
        "suite",
        "variant",
        "packages",
        "python",
        "stands_in_for",
        "cmd",
        "official_compressed_bytes",
        "official_disk_bytes",
        "mirror",
        "security_mirror",
        "dpkg_excludes",
        "dpkg_includes",
        "remove",
        "kind",
        "recipe",
        "builder_base",
        "libc",
        "left_out",
        "check_valid_until",
        "on_demand",
        "recipe_args",
    }
)


def parse_bases(data: TomlTable, source: str = "bases.toml") -> Bases:
    """Validate the parsed TOML and build a Bases; SchemaError naming the bad field."""
    if data.get("schema") != 1:
        raise SchemaError(f"{source}: `schema = 1` expected")
    defaults = data.get("defaults", {})
    raw = data.get("bases")
    if not isinstance(raw, dict) or not raw:
        raise SchemaError(f"{source}: no [bases.*] tables")
    bases: dict[str, BaseDef] = {}
    tags: set[str] = set()
    for key, t in raw.items():
        bases[key] = _parse_base(key, t, defaults, f"{source} [bases.{key}]", tags)
    for key, b in bases.items():
        if b.kind == "dockerfile":
            dep = bases.get(b.builder_base)
            if dep is None or dep.kind != "mmdebstrap":
                raise SchemaError(
                    f"{source} [bases.{key}]: builder_base {b.builder_base!r} must be an mmdebstrap base"
                )
    return Bases(bases=bases, rules=_parse_rules(data.get("map", []), bases, source), source=source)


def _parse_base(key: str, t: TomlTable, defaults: TomlTable, where: str, tags: set[str]) -> BaseDef:
    """One [bases.KEY] table: its fields checked (a tag used once in `tags`), defaults filled in."""
    unknown = set(t) - BASE_FIELDS
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    tag = _req(t, "tag", str, where)
    if not _TAG_RE.match(tag) or not tag.startswith("imagebench-lab/"):
        raise SchemaError(f"{where}: tag {tag!r} must look like imagebench-lab/NAME:TAG")
    if tag in tags:
        raise SchemaError(f"{where}: tag {tag} used twice")
    tags.add(tag)
    suite = _req(t, "suite", str, where)
    if suite not in SUITES:
        raise SchemaError(f"{where}: suite {suite!r} not one of {sorted(SUITES)}")
    packages = _req(t, "packages", list, where)
    bad = [p for p in packages if not isinstance(p, str) or not _PKG_RE.match(p)]
    if bad:
        raise SchemaError(f"{where}: invalid package name(s) {bad}")
    python = _req(t, "python", bool, where)
    kind, libc, recipe = _base_kind(t, where, packages)
    left_out = t.get("left_out", [])
    if not isinstance(left_out, list) or not all(isinstance(x, str) for x in left_out):
        raise SchemaError(f"{where}: `left_out` must be a list of strings")
    if python and kind == "mmdebstrap" and "python3-venv" not in packages:
        raise SchemaError(f"{where}: a python base needs python3-venv (pip comes from its wheel)")
    if "python3-pip" in packages:
        raise SchemaError(f"{where}: python3-pip makes pip's site-packages Debian-owned; remove it")
    cmd = t.get("cmd", ["bash"])
    if not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
        raise SchemaError(f"{where}: `cmd` must be a list of strings")
    for opt in ("official_compressed_bytes", "official_disk_bytes"):
        if opt in t and (not isinstance(t[opt], int) or isinstance(t[opt], bool)):
            raise SchemaError(f"{where}: `{opt}` must be an integer")
    return BaseDef(
        key=key,
        tag=tag,
        suite=suite,
        variant=t.get("variant", "minbase"),
        packages=tuple(packages),
        python=python,
        stands_in_for=_req(t, "stands_in_for", str, where),
        cmd=tuple(cmd),
        **_mirror_fields(t, defaults),
        official_compressed_bytes=t.get("official_compressed_bytes"),
        official_disk_bytes=t.get("official_disk_bytes"),
        remove=tuple(t.get("remove", [])),
        kind=kind,
        recipe=recipe,
        builder_base=t.get("builder_base", ""),
        libc=libc,
        left_out=tuple(left_out),
        check_valid_until=_opt_bool(t, "check_valid_until", True, where),
        on_demand=_opt_bool(t, "on_demand", False, where),
        recipe_args=_recipe_args(t, kind, where),
    )


def _recipe_args(t: TomlTable, kind: str, where: str) -> tuple[tuple[str, str], ...]:
    """`recipe_args = { NAME = "value" }` of a kind-dockerfile base, sorted (part of its definition)."""
    raw = t.get("recipe_args", {})
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", k) and isinstance(v, str)
        for k, v in raw.items()
    ):
        raise SchemaError(f"{where}: `recipe_args` must map UPPER_CASE names to strings")
    if raw and kind != "dockerfile":
        raise SchemaError(f"{where}: `recipe_args` is for kind dockerfile only")
    return tuple(sorted(raw.items()))


def _opt_bool(t: TomlTable, key: str, default: bool, where: str) -> bool:
    value = t.get(key, default)
    if not isinstance(value, bool):
        raise SchemaError(f"{where}: `{key}` must be true or false")
    return value


def _base_kind(t: TomlTable, where: str, packages: Sequence[object]) -> tuple[str, str, str]:
    """(kind, libc, recipe) of a base table; a `dockerfile` base needs a recipe and a builder base."""
    kind = t.get("kind", "mmdebstrap")
    if kind not in KINDS:
        raise SchemaError(f"{where}: kind {kind!r} not one of {list(KINDS)}")
    libc = t.get("libc", "glibc")
    if libc not in LIBCS:
        raise SchemaError(f"{where}: libc {libc!r} not one of {list(LIBCS)}")
    recipe = t.get("recipe", "")
    if kind == "dockerfile":
        if not isinstance(recipe, str) or not recipe or ".." in recipe or recipe.startswith("/"):
            raise SchemaError(f"{where}: kind dockerfile needs `recipe`, a directory under harness/lab")
        if not isinstance(t.get("builder_base", ""), str) or not t.get("builder_base"):
            raise SchemaError(f"{where}: kind dockerfile needs `builder_base` (a lab base key)")
        if packages:
            raise SchemaError(f"{where}: kind dockerfile takes no `packages` (its recipe says what it has)")
    return kind, libc, recipe


class _MirrorFields(TypedDict):
    mirror: str
    security_mirror: str
    dpkg_excludes: tuple[str, ...]
    dpkg_includes: tuple[str, ...]


def _mirror_fields(t: TomlTable, defaults: TomlTable) -> _MirrorFields:
    """The Debian mirrors and dpkg path filters of a base: its own, else [defaults], else Debian's."""
    return {
        "mirror": t.get("mirror", defaults.get("mirror", "http://deb.debian.org/debian")),
        "security_mirror": t.get(
            "security_mirror", defaults.get("security_mirror", "http://deb.debian.org/debian-security")
        ),
        "dpkg_excludes": tuple(t.get("dpkg_excludes", defaults.get("dpkg_excludes", []))),
        "dpkg_includes": tuple(t.get("dpkg_includes", defaults.get("dpkg_includes", []))),
    }


def _parse_rules(raw: Sequence[TomlTable], bases: dict[str, BaseDef], source: str) -> tuple[MapRule, ...]:
    """The [[map]] rules in order; each names a defined base, or none with a reason."""
    rules = []
    for i, r in enumerate(raw):
        where = f"{source} [[map]] #{i + 1}"
        pattern = _req(r, "pattern", str, where)
        base = _req(r, "base", str, where)
        if base and base not in bases:
            raise SchemaError(f"{where}: base {base!r} is not defined (have: {', '.join(bases)})")
        if not base and not r.get("reason"):
            raise SchemaError(f"{where}: an unmapped pattern needs a `reason`")
        rules.append(MapRule(pattern=pattern, base=base, reason=r.get("reason", "")))
    if not rules:
        raise SchemaError(f"{source}: no [[map]] rules")
    return tuple(rules)


def load_bases(path: Path | None = None) -> Bases:
    path = path or BASES_TOML
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{path}: invalid TOML: {exc}")
    return parse_bases(data, source=str(path))
