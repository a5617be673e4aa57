"""A drift run: observe each tracked image, append to its history, diff and judge against the last one.

`drift(...)` returns a `DriftReport` (one `ImageDrift` per image and the exit code);
`default_images()` says which images are tracked when none are named.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.drift.changes import Diff, Thresholds, anything_changed, diff, judge
from harness.drift.observation import observe, observe_local
from harness.drift.schema import Observation, canonical, utcnow
from harness.drift.store import append_observation, history_path, read_observations
from harness.errors import ExitStatus, HarnessError
from harness.lab import load_lab
from harness.lab.basedefs import load_bases
from harness.registry_client import RegistryClient

#: Public tags tracked by default (besides the lab bases when the lab is up).
DEFAULT_PUBLIC_IMAGES = ("python:3.13-slim", "python:3.12-slim", "python:3.12-alpine", "python:3.12")


@dataclass
class ImageDrift:
    image: str
    status: str  # first | unchanged | changed (within thresholds) | drifted | error
    observation: Observation | None = None
    previous: dict[str, object] | None = None  # PREVIOUS_FIELDS of the previous observation
    diff: Diff | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    file: str | None = None


@dataclass
class DriftReport:
    images: list[ImageDrift]
    thresholds: Thresholds
    observed_at: str = field(default_factory=utcnow)
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[ImageDrift]:
        return [i for i in self.images if i.status == "drifted"]

    @property
    def errors(self) -> list[ImageDrift]:
        return [i for i in self.images if i.status == "error" or (i.observation or {}).get("errors")]

    @property
    def exit_code(self) -> int:
        if self.drifted:
            return int(ExitStatus.FAILURE)
        if self.errors:
            return int(ExitStatus.ENVIRONMENT)
        return int(ExitStatus.OK)

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": "imagebench.drift-report",
            "schema_version": 1,
            "observed_at": self.observed_at,
            "exit_code": self.exit_code,
            "thresholds": asdict(self.thresholds),
            "notes": self.notes,
            "images": [asdict(i) for i in self.images],
        }


def _previous_view(history: list[Observation]) -> Observation | None:
    """The latest observation, with the package list (and Python version) of the latest observation
    that had one, so a partial observation does not hide package changes."""
    if not history:
        return None
    prev = history[-1].copy()
    if prev.get("packages") is None:
        for old in reversed(history[:-1]):
            if old.get("packages") is not None:
                prev["packages"] = old["packages"]
                prev["python_version"] = prev.get("python_version") or old.get("python_version")
                break
    return prev


def drift(
    images: Iterable[str],
    results_dir: Path,
    thresholds: Thresholds | None = None,
    *,
    registry: RegistryClient | None = None,
    client: Any = None,
    observe_fn: Callable[[str], Observation] | None = None,
    on_skip: Callable[[str], None] | None = None,
    local: bool = False,
) -> DriftReport:
    """Observe each image, append the observation to its history, diff against the previous one.

    An image that cannot be observed gets status "error" with a one-line reason; the others go on.
    `observe_fn(image) -> observation` replaces `observe` (tests, or a caller with its own engine).
    """
    thresholds = thresholds or Thresholds()
    registry = registry or RegistryClient()
    if observe_fn is None and local:
        observe_fn = lambda image: observe_local(image, client=client)  # noqa: E731
    observe_fn = observe_fn or (lambda image: observe(image, registry=registry, client=client))
    report = DriftReport(images=[], thresholds=thresholds)
    seen = set()
    for image in images:
        key = canonical(image)
        if key in seen:
            continue
        seen.add(key)
        report.images.append(_track_one(image, results_dir, thresholds, observe_fn, on_skip))
    return report


#: The previous observation's fields an ImageDrift keeps (`previous`).
PREVIOUS_FIELDS = (
    "observed_at",
    "digest",
    "compressed_bytes",
    "uncompressed_bytes",
    "layers",
    "python_version",
)


def _track_one(
    image: str,
    results_dir: Path,
    thresholds: Thresholds,
    observe_fn: Callable[[str], Observation],
    on_skip: Callable[[str], None] | None,
) -> ImageDrift:
    """Observe one image, append the observation to its history and judge it against the previous one."""
    path = history_path(results_dir, image)
    entry = ImageDrift(image=canonical(image), status="error", file=str(path))
    try:
        obs = observe_fn(image)
    except HarnessError as exc:
        entry.error = str(exc)
        return entry
    history = read_observations(path, on_skip=on_skip)
    append_observation(path, obs)
    entry.observation = obs
    prev = _previous_view(history)
    if prev is None:
        entry.status = "first"
        return entry
    entry.previous = {k: prev.get(k) for k in PREVIOUS_FIELDS}
    entry.diff = diff(prev, obs)
    entry.reasons = judge(entry.diff, thresholds)
    if entry.reasons:
        entry.status = "drifted"
    elif anything_changed(entry.diff):
        entry.status = "changed"
    else:
        entry.status = "unchanged"
    return entry


def default_images() -> tuple[list[str], list[str]]:
    """(images, notes): the lab bases as pushed to the lab registry when the lab is up, then
    DEFAULT_PUBLIC_IMAGES ($IMAGEBENCH_DRIFT_IMAGES, comma-separated, replaces the whole list)."""
    env = os.environ.get("IMAGEBENCH_DRIFT_IMAGES")
    if env:
        return [s.strip() for s in env.split(",") if s.strip()], []
    images: list[str] = []
    notes: list[str] = []
    try:
        lab = load_lab()
        host = str(getattr(lab, "registry", "") or "").removeprefix("http://").rstrip("/")
        if host:
            images.extend(f"{host}/{b.tag}" for b in load_bases().bases.values() if not b.on_demand)
        else:
            notes.append("the lab has no registry: lab bases not tracked")
    except HarnessError as exc:
        notes.append(f"lab not up, lab bases not tracked: {exc}")
    images.extend(DEFAULT_PUBLIC_IMAGES)
    return images, notes
