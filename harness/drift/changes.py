"""Diff and judgement: what changed between two observations, and whether it is drift.

Pure functions on observation records: `diff(prev, cur)`, `judge(diff, Thresholds)` and the
package-version order they use (dpkg's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

from harness.drift.schema import Observation
from harness.errors import UsageError
from harness.fmt import signed_bytes, signed_fixed_percent

Number = int | float


class Delta(TypedDict):
    """A number before and after, the change and the change in percent (None where unknown)."""

    before: Number | None
    after: Number | None
    delta: Number | None
    pct: float | None


class LayersDelta(Delta):
    """The layer count's change, and the layer digests added and removed."""

    added: list[str | None]
    removed: list[str | None]
    changed: bool


class Change(TypedDict):
    before: str
    after: str


class PackagesDiff(TypedDict):
    """Packages added and removed ({name: version}), upgraded and downgraded ({name: change})."""

    added: dict[str, str]
    removed: dict[str, str]
    upgraded: dict[str, Change]
    downgraded: dict[str, Change]
    changed: int


class ObservationRef(TypedDict):
    observed_at: str | None
    digest: str | None
    source: str | None


class VersionChange(TypedDict):
    before: str | None
    after: str | None
    changed: bool


Diff = TypedDict(
    "Diff",
    {
        "image": str | None,
        "from": ObservationRef,
        "to": ObservationRef,
        "digest_changed": bool,
        "image_id_changed": bool,
        "compressed_bytes": Delta,
        "uncompressed_bytes": Delta,
        "layers": LayersDelta,
        "packages": PackagesDiff | None,
        "python_packages": PackagesDiff | None,
        "python_version": VersionChange,
    },
)
"""What changed between two observations (`diff`)."""


VersionPart = list[int | tuple[int, ...]]


def _pm_version_key(version: str) -> list[int | VersionPart]:
    """A sort key for Debian (and most apk) version strings, after dpkg's verrevcmp."""
    epoch, _, rest = version.partition(":") if re.match(r"^\d+:", version) else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")

    def part(s: str) -> VersionPart:
        out: VersionPart = []
        while s:
            m = re.match(r"^([^\d]*)(\d*)", s)
            assert m is not None  # both groups may be empty: it always matches
            alpha, digits = m.group(1), m.group(2)
            # '~' sorts before everything, even the end; letters before non-letters
            out.append((*(-1 if c == "~" else ord(c) if c.isalpha() else ord(c) + 256 for c in alpha), 0))
            out.append(int(digits) if digits else 0)
            s = s[len(alpha) + len(digits) :]
        out.append((0,))  # the end: after '~', before anything else
        return out

    return [int(epoch), part(upstream), part(revision)]


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 like `dpkg --compare-versions` (close enough for apk's versions too)."""
    ka, kb = _pm_version_key(str(a)), _pm_version_key(str(b))
    return (ka > kb) - (ka < kb)


def _delta(before: Number | None, after: Number | None) -> Delta:
    d: Delta = {"before": before, "after": after, "delta": None, "pct": None}
    if isinstance(before, int | float) and isinstance(after, int | float):
        d["delta"] = after - before
        d["pct"] = (100.0 * (after - before) / before) if before else None
    return d


def diff_packages(before: dict[str, str] | None, after: dict[str, str] | None) -> PackagesDiff | None:
    """Packages added, removed, upgraded and downgraded (by Debian version order); None when either
    side has no package list."""
    if before is None or after is None:
        return None
    added = {n: after[n] for n in sorted(set(after) - set(before))}
    removed = {n: before[n] for n in sorted(set(before) - set(after))}
    upgraded: dict[str, Change] = {}
    downgraded: dict[str, Change] = {}
    for n in sorted(set(before) & set(after)):
        if before[n] == after[n]:
            continue
        target = upgraded if compare_versions(after[n], before[n]) > 0 else downgraded
        target[n] = {"before": before[n], "after": after[n]}
    return {
        "added": added,
        "removed": removed,
        "upgraded": upgraded,
        "downgraded": downgraded,
        "changed": len(added) + len(removed) + len(upgraded) + len(downgraded),
    }


def diff(prev: Observation, cur: Observation) -> Diff:
    """What changed from observation `prev` to `cur` (pure)."""
    before_layers = list(prev.get("layer_digests") or [])
    after_layers = list(cur.get("layer_digests") or [])
    count = _delta(prev.get("layers"), cur.get("layers"))
    added = [d for d in after_layers if d not in before_layers]
    removed = [d for d in before_layers if d not in after_layers]
    layers: LayersDelta = {
        **count,
        "added": added,
        "removed": removed,
        "changed": bool(added or removed or count["delta"]),
    }
    pkgs = diff_packages(prev.get("packages"), cur.get("packages"))
    pip = diff_packages(prev.get("python_packages"), cur.get("python_packages"))
    return {
        "image": cur.get("image") or prev.get("image"),
        "from": {
            "observed_at": prev.get("observed_at"),
            "digest": prev.get("digest"),
            "source": prev.get("source"),
        },
        "to": {
            "observed_at": cur.get("observed_at"),
            "digest": cur.get("digest"),
            "source": cur.get("source"),
        },
        "digest_changed": prev.get("digest") != cur.get("digest")
        if prev.get("source") == cur.get("source")
        else prev.get("image_id") != cur.get("image_id"),
        "image_id_changed": prev.get("image_id") != cur.get("image_id"),
        "compressed_bytes": _delta(prev.get("compressed_bytes"), cur.get("compressed_bytes")),
        "uncompressed_bytes": _delta(prev.get("uncompressed_bytes"), cur.get("uncompressed_bytes")),
        "layers": layers,
        "packages": pkgs,
        "python_packages": pip,
        "python_version": {
            "before": prev.get("python_version"),
            "after": cur.get("python_version"),
            "changed": prev.get("python_version") != cur.get("python_version")
            and None not in (prev.get("python_version"), cur.get("python_version")),
        },
    }


@dataclass
class Thresholds:
    """What counts as drift. Byte thresholds apply to growth and shrinkage alike: a change of more
    than `*_bytes` bytes flags, and with `pct` set it must also exceed `pct` percent (an absolute
    floor plus a relative threshold, so small images do not flap)."""

    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    pct: float | None = None
    layers: int = 0
    packages: bool = True  # any package added, removed, upgraded or downgraded
    python: bool = True  # a different Python version
    digest: bool = False  # a new digest alone (a rebuild with nothing else beyond thresholds)

    def __post_init__(self) -> None:
        for name in ("compressed_bytes", "uncompressed_bytes", "layers"):
            if getattr(self, name) < 0:
                raise UsageError(f"drift threshold {name} must be >= 0")
        if self.pct is not None and self.pct < 0:
            raise UsageError("drift threshold pct must be >= 0")


def judge(d: Diff, thresholds: Thresholds | None = None) -> list[str]:
    """The reasons `d` (a diff) is drift beyond `thresholds`; empty when it is not."""
    t = thresholds or Thresholds()
    reasons = []
    for change, limit, label in (
        (d["compressed_bytes"], t.compressed_bytes, "compressed size"),
        (d["uncompressed_bytes"], t.uncompressed_bytes, "uncompressed size"),
    ):
        delta, pct = change["delta"], change["pct"]
        if delta is None or abs(delta) <= limit:
            continue
        if t.pct is not None and pct is not None and abs(pct) <= t.pct:
            continue
        reasons.append(
            f"{label} {signed_bytes(delta)}" + (f" ({signed_fixed_percent(pct)})" if pct is not None else "")
        )
    if d["layers"]["delta"] is not None and abs(d["layers"]["delta"]) > t.layers:
        reasons.append(f"layers {d['layers']['before']} -> {d['layers']['after']}")
    pk = d.get("packages")
    if t.packages and pk and pk["changed"]:
        parts = [f"{len(pk[k])} {k}" for k in ("added", "removed", "upgraded", "downgraded") if pk[k]]
        reasons.append("packages: " + ", ".join(parts) + " (" + package_summary(pk) + ")")
    pp = d.get("python_packages")
    if t.packages and pp and pp["changed"]:
        reasons.append("python packages: " + package_summary(pp))
    if t.python and d["python_version"]["changed"]:
        reasons.append(f"python {d['python_version']['before']} -> {d['python_version']['after']}")
    if t.digest and d["digest_changed"] and not reasons:
        reasons.append("new digest")
    return reasons


def package_summary(pk: PackagesDiff, limit: int = 6) -> str:
    """`tzdata 2025b -> 2025c, +libfoo 1.0, -libbar` (pure; at most `limit` names, then a count)."""
    parts = [
        f"{n} {v['before']} -> {v['after']}"
        for kind in ("upgraded", "downgraded")
        for n, v in pk[kind].items()
    ]
    parts += [f"+{n} {v}" for n, v in pk["added"].items()]
    parts += [f"-{n}" for n in pk["removed"]]
    more = len(parts) - limit
    return ", ".join(parts[:limit]) + (f" and {more} more" if more > 0 else "")


def anything_changed(d: Diff) -> bool:
    """True when `d` (a diff) shows any change at all, within the thresholds or not."""
    pk, pp = d.get("packages"), d.get("python_packages")
    return bool(
        (pp and pp["changed"])
        or d["digest_changed"]
        or d["compressed_bytes"]["delta"]
        or d["uncompressed_bytes"]["delta"]
        or d["layers"]["changed"]
        or (pk and pk["changed"])
        or d["python_version"]["changed"]
    )
