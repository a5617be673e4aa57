"""Python version fidelity: which lab stand-in a `FROM python:3.X...` gets, by a stated rule, said aloud.

The lab's stand-ins are built offline from Debian's Python (bookworm: 3.11, trixie: 3.13, forky: 3.14 slim, plus
whatever harness/lab/bases.toml adds). A FROM naming a minor the lab has no stand-in for gets a
substitute chosen by `--python-substitute`:

    nearest  the stand-in with the closest minor of the same flavour (slim / full / alpine);
             a tie goes to the newer one (3.12 -> 3.13, as the lab always did)
    older    the newest stand-in not newer than the requested minor (3.12 -> 3.11): packages
             pinned for 3.12 usually have wheels for 3.11, rarely for a newer Python
    refuse   no substitution: the run stops before the first build

Every substitution is printed before the first build, recorded in the run file
(`python_substitutions`, and a run warning the report shows) and named in the error of any build
that fails afterwards as a likely cause.
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import LabError
from harness.lab.basedefs import normalize_name

RULES = ("nearest", "older", "refuse")
_MINOR_RE = re.compile(r"^python:(\d+)\.(\d+)(?:[.\-]|$)")
_STANDIN_RE = re.compile(r"python:(\d+)\.(\d+)")


def _normal(public: str) -> str:
    return normalize_name(public)


def requested_minor(public: str) -> tuple[int, int] | None:
    """(3, 12) for python:3.12-slim, python:3.12.2 or docker.io/library/python:3.12; None otherwise. Pure."""
    m = _MINOR_RE.match(_normal(public))
    return (int(m.group(1)), int(m.group(2))) if m else None


def flavour(public: str) -> str:
    """slim, alpine or full, from the tag. Pure."""
    tag = _normal(public).split(":", 1)[-1]
    if "alpine" in tag:
        return "alpine"
    return "slim" if "slim" in tag else "full"


def stand_ins(catalog: Any) -> dict[str, dict[tuple[int, int], Any]]:
    """flavour -> {(major, minor): BaseDef} for every Python base of the lab catalog."""
    out: dict[str, dict[tuple[int, int], Any]] = {}
    for defn in catalog.bases.values():
        if not getattr(defn, "python", False):
            continue
        m = _STANDIN_RE.search(defn.stands_in_for)
        if not m:
            continue
        fl = "alpine" if getattr(defn, "libc", "glibc") == "musl" else flavour(defn.stands_in_for)
        out.setdefault(fl, {}).setdefault((int(m.group(1)), int(m.group(2))), defn)
    return out


def choose(requested: tuple[int, int], available: list[tuple[int, int]], rule: str) -> tuple[int, int] | None:
    """The stand-in minor the rule picks (None: nothing acceptable). Pure."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}")
    if requested in available:
        return requested
    same_major = [v for v in available if v[0] == requested[0]]
    if rule == "refuse" or not same_major:
        return None
    if rule == "older":
        older = [v for v in same_major if v < requested]
        return max(older) if older else None
    return min(same_major, key=lambda v: (abs(v[1] - requested[1]), v < requested))


def _fmt(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def resolve(lab: Any, public: str, rule: str = "nearest") -> tuple[Any, dict | None]:
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
    pick = choose(req, list(avail), rule)
    if pick is None:
        raise LabError(
            f"{public}: the lab has no Python {_fmt(req)} stand-in ({fl}: {have}) and "
            f"--python-substitute {rule} allows no other",
            hint="--python-substitute nearest|older picks another minor; --bases registry uses the real image",
        )
    defn = avail[pick]
    ref = lab.resolve_base(public)
    if ref.lab_tag != defn.tag:  # the mapping would give another stand-in: take the rule's
        ref = lab.resolve_base(defn.stands_in_for)
    if pick == req:
        return ref, None
    others = [v for v in sorted(avail) if v != pick]
    alt = {"nearest": "older", "older": "nearest"}.get(rule, "nearest")
    alt_pick = choose(req, list(avail), alt)
    message = (
        f"Python version changed: {public} asks for Python {_fmt(req)}; the lab has no {_fmt(req)} stand-in "
        f"and uses Python {_fmt(pick)} ({defn.tag}) by --python-substitute {rule}. Packages without "
        f"wheels for {_fmt(pick)} may compile from source or fail to install"
        + (f"; --python-substitute {alt} picks {_fmt(alt_pick)}" if alt_pick and alt_pick != pick else "")
        + "; --bases registry uses the real image."
    )
    return ref, {
        "public": public,
        "requested": _fmt(req),
        "used": _fmt(pick),
        "stand_in": defn.tag,
        "rule": rule,
        "available": [_fmt(v) for v in sorted(avail)],
        "alternatives": [_fmt(v) for v in others],
        "message": message,
    }


def failure_hint(notes: list[dict]) -> str:
    """Appended to the error of a build that failed after a substitution. Pure."""
    if not notes:
        return ""
    parts = [f"{n['public']} ran on Python {n['used']} instead of {n['requested']}" for n in notes]
    return (
        "; likely cause: the Python substitution ("
        + "; ".join(parts)
        + "): try --python-substitute older|nearest or --bases registry"
    )
