"""Python version fidelity: which lab stand-in a `FROM python:3.X...` gets, by a stated rule, said aloud.

The lab's stand-ins are built offline from Debian's Python (bookworm: 3.11, trixie: 3.13, forky: 3.14, and
musl 3.11 and 3.13 compiled from Debian's sources, plus whatever harness/lab/bases.toml adds). A FROM naming a minor
the lab has no stand-in for gets a substitute chosen by `--python-substitute`:

    compatible  (the default) a tag naming a Debian release (-bookworm, -slim-trixie, ...) gets that
                release's stand-in (bookworm: 3.11, trixie: 3.13), whatever minor it names; otherwise the
                minor on which the fewest pinned requirement sets failed, as measured for the requested
                minor (harness/data/substitution-evidence.json, written by
                scripts/substitution_evidence.py); a minor with no measurement gets `older`, else `nearest`
    nearest     the stand-in with the closest minor of the same flavour (slim / full / alpine);
                a tie goes to the newer one (3.12 -> 3.13); the tag's release is not considered
    older       the newest stand-in not newer than the requested minor (3.12 -> 3.11)
    refuse      no substitution: the run stops before the first build

Every substitution is printed before the first build with its reason, recorded in the run file
(`python_substitutions`, and a run warning the report shows) and named in the error of any build
that fails afterwards as a likely cause.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict, cast

from harness.errors import LabError
from harness.lab.basedefs import normalize_name
from harness.records import BaseHandle, SubstitutionNote

RULES = ("compatible", "nearest", "older", "refuse")
DEFAULT_RULE = "compatible"
EVIDENCE = Path(__file__).parent / "data" / "substitution-evidence.json"
# Debian code names a python tag may carry, newest last (the ones the lab has stand-ins for are in bases.toml)
DEBIAN_RELEASES = ("buster", "bullseye", "bookworm", "trixie", "forky")
_MINOR_RE = re.compile(r"^python:(\d+)\.(\d+)(?:[.\-]|$)")
_STANDIN_RE = re.compile(r"python:(\d+)\.(\d+)")

Minor = tuple[int, int]


class EvidenceRow(TypedDict):
    """Pinned requirement sets tried on one candidate minor: how many failed, of how many."""

    failed: int
    sets: int


class Evidence(TypedDict, total=False):
    """harness/data/substitution-evidence.json: {results: {libc: {requested: {candidate: row}}}, label}."""

    label: str
    results: dict[str, dict[str, dict[str, EvidenceRow]]]


def _normal(public: str) -> str:
    return normalize_name(public)


def requested_minor(public: str) -> Minor | None:
    """(3, 12) for python:3.12-slim, python:3.12.2 or docker.io/library/python:3.12; None otherwise. Pure."""
    m = _MINOR_RE.match(_normal(public))
    return (int(m.group(1)), int(m.group(2))) if m else None


def flavour(public: str) -> str:
    """slim, alpine or full, from the tag. Pure."""
    tag = _normal(public).split(":", 1)[-1]
    if "alpine" in tag:
        return "alpine"
    return "slim" if "slim" in tag else "full"


def release(public: str) -> str | None:
    """The Debian release a python tag names (python:3.12-slim-bookworm -> bookworm), else None. Pure."""
    name = _normal(public)
    if not name.startswith("python:"):
        return None
    parts = name.split(":", 1)[1].split("-")
    found = [p for p in parts if p in DEBIAN_RELEASES]
    return found[-1] if found else None


def libc_of(fl: str) -> str:
    return "musl" if fl == "alpine" else "glibc"


def stand_ins(catalog: Any) -> dict[str, dict[Minor, Any]]:
    """flavour -> {(major, minor): BaseDef} for every Python base of the lab catalog."""
    out: dict[str, dict[Minor, Any]] = {}
    for defn in catalog.bases.values():
        if not getattr(defn, "python", False):
            continue
        m = _STANDIN_RE.search(defn.stands_in_for)
        if not m:
            continue
        fl = "alpine" if getattr(defn, "libc", "glibc") == "musl" else flavour(defn.stands_in_for)
        out.setdefault(fl, {}).setdefault((int(m.group(1)), int(m.group(2))), defn)
    return out


def choose(requested: Minor, available: list[Minor], rule: str) -> Minor | None:
    """The stand-in minor a minor-only rule picks (None: nothing acceptable). Pure.

    `compatible` here is its fallback (no release, no measurement): older, else nearest."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}")
    if requested in available:
        return requested
    same_major = [v for v in available if v[0] == requested[0]]
    if rule == "refuse" or not same_major:
        return None
    older = [v for v in same_major if v < requested]
    if rule == "older":
        return max(older) if older else None
    if rule == "compatible" and older:
        return max(older)
    return min(same_major, key=lambda v: (abs(v[1] - requested[1]), v < requested))


def _fmt(v: Minor) -> str:
    return f"{v[0]}.{v[1]}"


def _parse(v: str) -> Minor:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


@lru_cache(maxsize=4)
def _load_evidence(path: str) -> Evidence:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return cast(Evidence, data) if isinstance(data, dict) else {}


def load_evidence(path: Path | None = None) -> Evidence:
    """The committed measurement (empty when missing or unreadable: `compatible` falls back)."""
    return _load_evidence(str(path or EVIDENCE))


def measured(evidence: Evidence, requested: Minor, libc: str) -> dict[Minor, tuple[int, int]]:
    """{candidate minor: (failed sets, sets)} measured for code written for `requested` on `libc`. Pure."""
    table = ((evidence.get("results") or {}).get(libc) or {}).get(_fmt(requested)) or {}
    out: dict[Minor, tuple[int, int]] = {}
    for minor, row in table.items():
        try:
            failed, sets = int(row["failed"]), int(row["sets"])
            out[_parse(minor)] = (failed, sets)
        except (KeyError, TypeError, ValueError):
            continue
    return {k: v for k, v in out.items() if v[1] > 0}


def measured_pick(
    rates: dict[Minor, tuple[int, int]], available: list[Minor], requested: Minor
) -> Minor | None:
    """The available minor with the lowest measured failure rate (a tie: the nearer, then the older). Pure."""
    cands = [v for v in available if v in rates]
    if not cands:
        return None
    return min(cands, key=lambda v: (rates[v][0] / rates[v][1], abs(v[1] - requested[1]), v))


def rates_text(rates: dict[Minor, tuple[int, int]], pick: Minor, label: str) -> str:
    """'0 of 20 pinned 2023-2024 requirement sets failed on 3.11, 7 of 20 on 3.13'. Pure."""
    order = [pick, *sorted(v for v in rates if v != pick)]
    parts = []
    for i, v in enumerate(order):
        failed, sets = rates[v]
        parts.append(
            f"{failed} of {sets} {label} failed on {_fmt(v)}"
            if i == 0
            else f"{failed} of {sets} on {_fmt(v)}"
        )
    return ", ".join(parts)


def decide(
    public: str, avail: dict[Minor, Any], rule: str, evidence: Evidence | None = None
) -> tuple[Minor | None, str]:
    """(the stand-in minor `rule` picks for `public` among `avail` {minor: BaseDef}, the reason). Pure."""
    req = requested_minor(public)
    if req is None:
        raise ValueError(f"{public} names no Python minor")
    minors = list(avail)
    if rule != "compatible":
        pick = choose(req, minors, rule)
        return pick, f"by --python-substitute {rule}"
    rel = release(public)
    on_release = {v: d for v, d in avail.items() if getattr(d, "suite", None) == rel} if rel else {}
    if rel and on_release:
        pick = req if req in on_release else choose(req, list(on_release), "nearest")
        return pick, f"the tag names Debian {rel}, whose Python is {_fmt(pick)}" if pick else ""
    if req in avail:
        return req, ""
    ev = load_evidence() if evidence is None else evidence
    fl = flavour(public)
    rates = measured(ev, req, libc_of(fl))
    pick = measured_pick(rates, minors, req)
    if pick is not None:
        label = ev.get("label") or "pinned requirement sets"
        return (
            pick,
            f"{rates_text({v: r for v, r in rates.items() if v in avail}, pick, label)} ({_evidence_name()})",
        )
    pick = choose(req, minors, "compatible")
    why = f"no measurement for {_fmt(req)}: " + (
        "the newest older minor" if pick and pick < req else "the nearest minor"
    )
    return pick, why + (f" (the lab has no {rel} stand-in of this flavour)" if rel else "")


def _evidence_name() -> str:
    return "harness/data/substitution-evidence.json"


def resolve(lab: Any, public: str, rule: str = DEFAULT_RULE) -> tuple[BaseHandle, SubstitutionNote | None]:
    """The lab's BaseRef for `public` under `rule`, and the substitution note (None when faithful)."""
    req = requested_minor(public)
    catalog = getattr(lab, "catalog", None)
    if req is None or catalog is None or getattr(lab, "bases_mode", "lab") != "lab":
        return lab.resolve_base(public), None
    fl = flavour(public)
    avail = stand_ins(catalog).get(fl, {})
    if not avail:  # no Python stand-in of this flavour: the mapping decides (and explains a refusal)
        return lab.resolve_base(public), None
    have = ", ".join(_fmt(v) for v in sorted(avail))
    pick, why = decide(public, avail, rule)
    if pick is None:
        raise LabError(
            f"{public}: the lab has no Python {_fmt(req)} stand-in ({fl}: {have}) and "
            f"--python-substitute {rule} allows no other",
            hint="--python-substitute compatible|nearest|older picks another minor; --bases registry uses the real image",
        )
    defn = avail[pick]
    try:
        mapped = catalog.resolve(public)[0].key
    except LabError:
        mapped = None
    # the mapping's own stand-in when it is the rule's; else the rule's, by its public name (an on-demand
    # base is built only when picked)
    ref = lab.resolve_base(public if mapped == defn.key else defn.stands_in_for)
    if pick == req:
        return ref, None
    others = [v for v in sorted(avail) if v != pick]
    alts: list[tuple[str, Minor]] = []
    for alt in ("nearest", "older"):
        a = choose(req, list(avail), alt) if alt != rule else None
        if a and a != pick and all(a != x for _r, x in alts):
            alts.append((alt, a))
    rel = release(public)
    asks = f"Python {_fmt(req)}" + (f" on Debian {rel}" if rel else "")
    message = (
        f"Python version changed: {public} asks for {asks}; the lab uses Python {_fmt(pick)} ({defn.tag}) "
        f"by --python-substitute {rule}"
        + (f": {why}" if why and rule == "compatible" else "")
        + f". Packages without wheels for {_fmt(pick)} may compile from source or fail to install"
        + "".join(f"; --python-substitute {r} picks {_fmt(a)}" for r, a in alts)
        + "; --bases registry uses the real image."
    )
    return ref, {
        "public": public,
        "requested": _fmt(req),
        "used": _fmt(pick),
        "stand_in": defn.tag,
        "rule": rule,
        "reason": why,
        "release": rel,
        "available": [_fmt(v) for v in sorted(avail)],
        "alternatives": [_fmt(v) for v in others],
        "message": message,
    }


def failure_hint(notes: list[SubstitutionNote]) -> str:
    """Appended to the error of a build that failed after a substitution. Pure."""
    if not notes:
        return ""
    parts = [f"{n['public']} ran on Python {n['used']} instead of {n['requested']}" for n in notes]
    return (
        "; likely cause: the Python substitution ("
        + "; ".join(parts)
        + "): try --python-substitute compatible|nearest|older or --bases registry"
    )
