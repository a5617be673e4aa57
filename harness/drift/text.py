"""Text rendering: what `imagebench drift` and `imagebench drift history` print for people.

Pure: a DriftReport or a history DataFrame in, lines of text out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.drift.changes import Change, PackagesDiff
from harness.drift.schema import Observation
from harness.drift.track import DriftReport, ImageDrift
from harness.fmt import human_bytes, short_digest

STATUS_LABELS = {
    "first": "FIRST",
    "unchanged": "ok",
    "changed": "changed",
    "drifted": "DRIFTED",
    "error": "ERROR",
}
STATUS_ORDER = ("drifted", "changed", "unchanged", "first", "error")
PACKAGE_SIGNS = (("added", "+"), ("removed", "-"), ("upgraded", "^"), ("downgraded", "v"))
INDENT = " " * 9


def render_text(report: DriftReport, *, max_packages: int = 40) -> str:
    """The drift report for a terminal: a count line, notes, then each image and what changed."""
    counts: dict[str, int] = {}
    for i in report.images:
        counts[i.status] = counts.get(i.status, 0) + 1
    head = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts.get(s))
    lines = [f"drift: {len(report.images)} image(s): {head or 'none'} (exit {report.exit_code})"]
    lines += [f"note: {n}" for n in report.notes]
    for i in report.images:
        lines += _image_lines(i, max_packages)
    return "\n".join(lines)


def _image_lines(i: ImageDrift, max_packages: int) -> list[str]:
    """One image: its status line, partial-observation errors, then what changed since last time."""
    label = STATUS_LABELS[i.status]
    if i.status == "error":
        error = i.error or "not observed"
        return [f"{label:8} {error}" if error.startswith(i.image) else f"{label:8} {i.image}: {error}"]
    o = i.observation or {}
    lines = [_observation_line(label, i.image, o)]
    lines += [f"{INDENT}partial: {err}" for err in o.get("errors") or []]
    if i.status == "first":
        return [*lines, f"{INDENT}first observation: recorded as the baseline"]
    d = i.diff
    if i.previous:
        lines.append(
            f"{INDENT}since {i.previous.get('observed_at')}"
            + (
                f": digest {short_digest(d['from']['digest'])} -> {short_digest(d['to']['digest'])}"
                if d is not None and d["digest_changed"]
                else ": same digest"
            )
        )
    lines += [f"{INDENT}- {r}" for r in i.reasons]
    if d is not None and d["layers"]["added"] and not any(r.startswith("layers") for r in i.reasons):
        lines.append(
            f"{INDENT}layers replaced: {len(d['layers']['removed'])} removed, {len(d['layers']['added'])} added"
        )
    lines += _os_package_lines(d["packages"] if d is not None else None, max_packages)
    lines += _python_package_lines(d["python_packages"] if d is not None else None, max_packages)
    return lines


def _observation_line(label: str, image: str, o: Observation) -> str:
    """`DRIFTED  python:3.12-slim  sha256:abc…  41 MB compressed, 120 MB on disk, 4 layers, python 3.12.8`."""
    compressed, on_disk = o.get("compressed_bytes"), o.get("uncompressed_bytes")
    size = f"{human_bytes(compressed)} compressed" if compressed is not None else ""
    if on_disk is not None:
        size += (", " if size else "") + f"{human_bytes(on_disk)} on disk"
    layers = f"{o.get('layers')} layer{'' if o.get('layers') == 1 else 's'}"
    return f"{label:8} {image}  {short_digest(o.get('digest'))}  {size}, {layers}" + (
        f", python {o['python_version']}" if o.get("python_version") else ""
    )


def _change_text(v: str | Change) -> str:
    return f"{v['before']} -> {v['after']}" if isinstance(v, dict) else v


def _of_kind(pk: PackagesDiff, kind: str) -> Mapping[str, str | Change]:
    """The packages of one PACKAGE_SIGNS kind: added and removed {name: version}, the others {name: change}."""
    if kind == "added":
        return pk["added"]
    if kind == "removed":
        return pk["removed"]
    return pk["upgraded"] if kind == "upgraded" else pk["downgraded"]


def _os_package_lines(pk: PackagesDiff | None, max_packages: int) -> list[str]:
    """OS packages changed, `max_packages` at most per kind in total order, then how many more."""
    if not (pk and pk["changed"]):
        return []
    lines: list[str] = []
    shown = 0
    for kind, sign in PACKAGE_SIGNS:
        for name, v in _of_kind(pk, kind).items():
            if shown >= max_packages:
                break
            lines.append(f"{INDENT}  {sign} {name} {_change_text(v)}")
            shown += 1
    if pk["changed"] > shown:
        lines.append(f"{INDENT}  ... and {pk['changed'] - shown} more (--json lists all)")
    return lines


def _python_package_lines(pp: PackagesDiff | None, max_packages: int) -> list[str]:
    """Python distributions changed, at most `max_packages` of each kind."""
    if not (pp and pp["changed"]):
        return []
    return [
        f"{INDENT}  {sign} {name} {_change_text(v)} (python)"
        for kind, sign in PACKAGE_SIGNS
        for name, v in list(_of_kind(pp, kind).items())[:max_packages]
    ]


def render_history(image: str, df: Any) -> str:
    """One line per image version of a `history()` DataFrame (not empty), oldest first."""
    lines = [
        f"{image}: {len(df)} version(s), {df['observed_at'].min():%Y-%m-%d} to "
        f"{df['observed_at'].max():%Y-%m-%d}"
    ]
    for r in df.itertuples(index=False):
        disk = human_bytes(r.uncompressed_bytes) if r.uncompressed_bytes == r.uncompressed_bytes else "–"
        lines.append(
            f"{r.observed_at:%Y-%m-%d %H:%M}  {r.source:9}  {short_digest(r.digest)}  "
            f"{human_bytes(r.compressed_bytes):>8} compressed  {disk:>8} on disk  "
            f"{int(r.layers) if r.layers == r.layers else '–'} layers  python {r.python_version or '–'}"
            + ("  (new digest)" if r.digest_changed else "")
        )
    return "\n".join(lines)
