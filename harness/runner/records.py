"""A trial's record from what its build and inspection returned (pure, but for reading the context).

The fields are those results/README.md documents; secrets are scrubbed from anything kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Required, TypedDict, cast

from docker.utils.build import exclude_paths

from harness.engine.buildx import BuildResult
from harness.engine.events import BuildEvents, Step
from harness.engine.inspect import BaseSplit, ImageFacts
from harness.records import ImageRecord, PlanEntry, StepRecord, TrialRecord, TrialStatus


class MeasuredRepro(TypedDict, total=False):
    """The image a trial measures (`ImageMeasurer.reproducible`): the build's own, or its re-pack."""

    image_id: Required[str]
    method: str | None
    why: str
    epoch: int
    source_image_id: str
    changed_layers: int


class MeasuredImage(ImageFacts, BaseSplit, total=False):
    """What a trial learns about its image: the facts, the split at its base, the re-pack, the push."""

    repro: MeasuredRepro
    manifest_digest: str | None
    layer_compressed_bytes: list[int] | None


DEPS_HINTS = ("pip install", "pip3 install", "requirements", "apt-get install", "npm ci", "npm install")
IMAGE_KEYS = (
    "id",
    "bytes",
    "layers",
    "layer_bytes",
    "storage_driver",
    "manifest_digest",
    "layer_compressed_bytes",
    "base",
    "base_image_id",
    "base_layers",
    "own_layers",
    "repro",
    "user",
    "healthcheck",
)


def record_from(entry: PlanEntry, status: TrialStatus, error: str | None) -> TrialRecord:
    """A trial record's first keys: the plan entry's (in its order), the status and the error.

    Every caller adds `metrics` (and what else its status keeps) next, key by key, so the run file
    keeps the order it always had."""
    rec = cast(TrialRecord, dict(entry))  # `metrics` follows at once: see above
    rec["status"] = status
    rec["error"] = error
    return rec


def context_bytes(ctx_dir: Path, dockerfile: Path | None = None) -> int:
    """Bytes of regular files in the context after .dockerignore (what the context really is)."""
    patterns: list[str] = []
    ignore = None
    if dockerfile is not None and Path(str(dockerfile) + ".dockerignore").is_file():
        ignore = Path(str(dockerfile) + ".dockerignore")
    elif (ctx_dir / ".dockerignore").is_file():
        ignore = ctx_dir / ".dockerignore"
    if ignore is not None:
        patterns = [
            ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and not ln.startswith("#")
        ]
    total = 0
    for rel in exclude_paths(str(ctx_dir), patterns):
        p = ctx_dir / rel
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def step_counts(events: BuildEvents) -> dict[str, int]:
    """Dockerfile step vertices, FROM excluded, of a successful build.

    FROM is left out on purpose: for a base in the local image store BuildKit reports its vertex
    cached on cold builds and not cached on identical warm rebuilds (both observed on Engine 26),
    so it says nothing about the build cache.
    """
    steps = [s for s in events.dockerfile_steps() if s.instruction != "FROM"]
    cached = sum(1 for s in steps if s.cached)
    return {"steps_total": len(steps), "steps_cached": cached, "steps_executed": len(steps) - cached}


def deps_step(events: BuildEvents, hint: str = "") -> Step | None:
    """The dependency-installing RUN step: the experiment's hint, else the first that looks like one."""
    hints = (hint,) if hint else DEPS_HINTS
    for s in events.dockerfile_steps():
        if s.instruction == "RUN" and any(h in s.name for h in hints):
            return s
    return None


def build_metrics(result: BuildResult, ctx_dir: Path, dockerfile: Path, deps_hint: str) -> dict[str, float]:
    """The timed build's metrics: wall and span time, step counts, context bytes, the deps step."""
    ev = result.events
    m: dict[str, float] = {"build_seconds": result.seconds}
    if ev.span_seconds is not None:
        m["build_span_seconds"] = ev.span_seconds
    m.update(step_counts(ev))
    if ev.context_sent_bytes is not None:
        m["context_sent_bytes"] = ev.context_sent_bytes
    m["context_bytes"] = context_bytes(ctx_dir, dockerfile)
    deps = deps_step(ev, deps_hint)
    if deps is not None:
        m["deps_step_cached"] = 1 if deps.cached else 0
        m["step_seconds_deps"] = deps.seconds
    return m


def _offset(t: float | None, t0: float | None) -> float | None:
    return round(t - t0, 6) if (t0 is not None and t is not None) else None


def steps_record(result: BuildResult) -> list[StepRecord]:
    steps = result.events.dockerfile_steps()
    starts = [s.started for s in steps if s.started is not None]
    t0 = min(starts) if starts else None
    return [
        {
            "name": s.name if len(s.name) <= 300 else s.name[:300] + "...",
            "stage": s.stage,
            "index": s.index,
            "instruction": s.instruction,
            "cached": s.cached,
            "seconds": round(s.seconds, 6),
            "start_offset": _offset(s.started, t0),
            "end_offset": _offset(s.completed, t0),
        }
        for s in steps
    ]


def image_record(image: Mapping[str, object], tag: str) -> ImageRecord:
    """The run file's `image` of a trial: IMAGE_KEYS of what was measured (a MeasuredImage), and the tag."""
    rec = {k: image.get(k) for k in IMAGE_KEYS if k in image}
    rec["tag"] = tag
    return cast(ImageRecord, rec)


def clean_metrics(metrics: Mapping[str, object]) -> dict[str, float]:
    """Numbers only (booleans as 0/1), NaN dropped."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, int | float) and v == v:  # drop NaN
            out[k] = v
    return out


def scrub(obj: Any, redact: set[str]) -> Any:
    """Remove secrets (canaries) from anything that goes to results or logs.

    Longest secrets first; a string cut short by BuildKit or by us still hides any copy of a
    secret's first 12 characters (and the rest of that token).
    """
    if not redact:
        return obj
    if isinstance(obj, str):
        for s in sorted(redact, key=len, reverse=True):
            obj = obj.replace(s, "<redacted>")
            if len(s) >= 12 and s[:12] in obj:
                obj = re.sub(re.escape(s[:12]) + r"\S*", "<redacted>", obj)
        return obj
    if isinstance(obj, dict):
        return {scrub(k, redact): scrub(v, redact) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [scrub(x, redact) for x in obj]
    return obj
