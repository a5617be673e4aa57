"""A ci job's time split and bytes (pure: rawjson text, manifests and directory listings in, numbers out).

Time: one `docker buildx build` does the whole job, so the split is read from its vertices:
import  = "importing cache manifest from ..." (the manifest only: BuildKit fetches cache blobs lazily,
          under the first vertex that needs them: a step that builds on them (then it is in `build`)
          or, when every step is reused, the image export (then it is in `push`: a ci-none job of
          the ci-cache sketch spent 0.3 s in build and 4.8 s in push))
export  = "exporting cache to registry" / "exporting cache to client directory" (inline cache has no
          vertex of its own: it is written into the image config while the image is exported)
push    = "exporting to image" + "pushing ..." (the job's image, pushed to the registry)
build   = the command's wall time minus those three
Bytes pulled: the largest `total` of each blob download status (id "sha256:<64 hex>"), split into
the base image's layers and the rest (cache blobs). Reused steps: reported cached, or loaded from the
imported cache (`loading_vertices`: BuildKit reports those not cached). Bytes pushed: blobs reachable after the job and
not before, in the pipeline's registry repositories or its cache directory (a blob already there is
not uploaded again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypedDict, cast

from harness.engine.events import BuildEvents
from harness.lab.registry import Manifest

BLOB_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
IMPORT_PREFIX = "importing cache manifest from "
EXPORT_PREFIX = "exporting cache to "
PUSH_NAMES = ("exporting to image",)
PUSH_PREFIX = "pushing "
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


def time_split(events: BuildEvents, wall: float) -> dict[str, float]:
    """{import, export, push, build} seconds of one job (see the module text)."""
    imp = exp = push = 0.0
    for s in events.steps:
        if s.name.startswith(IMPORT_PREFIX):
            imp += s.seconds
        elif s.name.startswith(EXPORT_PREFIX):
            exp += s.seconds
        elif s.name in PUSH_NAMES or s.name.startswith(PUSH_PREFIX):
            push += s.seconds
    return {"import": imp, "export": exp, "push": push, "build": max(0.0, wall - imp - exp - push)}


class _Status(TypedDict, total=False):
    """A vertex status of a rawjson object: a blob's transfer (`id` its digest, `total` its bytes,
    `vertex` the step it belongs to)."""

    id: str
    total: int
    vertex: str


class _Progress(TypedDict, total=False):
    """A rawjson object, as far as the byte accounting reads it."""

    statuses: list[_Status]


def _objects(text: str) -> Iterator[_Progress]:
    """The JSON objects of a rawjson stream, up to the first plain text."""
    dec = json.JSONDecoder()
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n or text[pos] != "{":
            return
        try:
            obj, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError:
            return
        if isinstance(obj, dict):
            yield cast(_Progress, obj)


def downloads(text: str) -> dict[str, int]:
    """{blob digest: bytes} of every blob the build downloaded, from its rawjson statuses."""
    out: dict[str, int] = {}
    for obj in _objects(text):
        for st in obj.get("statuses") or ():
            sid, total = st.get("id") or "", st.get("total")
            if BLOB_ID.match(sid) and isinstance(total, int) and total > out.get(sid, -1):
                out[sid] = total
    return out


def pulled_bytes(down: dict[str, int], base_layers: Iterable[str]) -> dict[str, int]:
    """{base, cache, total}: downloaded bytes of the base image's layers, of everything else, both."""
    base = set(base_layers)
    b = sum(v for d, v in down.items() if d in base)
    total = sum(down.values())
    return {"base": b, "cache": total - b, "total": total}


def manifest_blobs(manifest: Manifest, digest: str, size: int) -> tuple[dict[str, int], list[str]]:
    """({digest: size} a manifest makes reachable, itself included; digests of child manifests to read).

    BuildKit's registry cache is an OCI index whose `manifests` hold layers and its cache config
    (not manifests): those count as blobs here, only real manifest types are descended into."""
    blobs = {digest: size}
    children: list[str] = []
    cfg = manifest.get("config")
    if isinstance(cfg, dict) and cfg.get("digest"):
        blobs[cfg["digest"]] = int(cfg.get("size") or 0)
    for layer in manifest.get("layers") or ():
        blobs[layer["digest"]] = int(layer.get("size") or 0)
    for m in manifest.get("manifests") or ():
        if m.get("mediaType") in MANIFEST_TYPES:
            children.append(m["digest"])
            blobs[m["digest"]] = int(m.get("size") or 0)
        else:
            blobs[m["digest"]] = int(m.get("size") or 0)
    return blobs, children


def dir_blobs(root: Path) -> dict[str, int]:
    """{digest: size} of an OCI layout directory's blobs (the local cache); {} when it is not there."""
    out: dict[str, int] = {}
    blobdir = root / "blobs"
    if not blobdir.is_dir():
        return out
    for algo in sorted(blobdir.iterdir()):
        if algo.is_dir():
            for f in algo.iterdir():
                if f.is_file():
                    out[f"{algo.name}:{f.name}"] = f.stat().st_size
    return out


def dir_bytes(root: Path) -> int:
    """Bytes of regular files under `root` (0 when missing): the size of a cache directory."""
    if not root.is_dir():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def pushed_bytes(before: dict[str, int], after: dict[str, int]) -> int:
    """Bytes of blobs reachable after and not before: what the job uploaded (or wrote)."""
    return sum(size for d, size in after.items() if d not in before)


def cached_steps(events: BuildEvents) -> list[str]:
    """Names of the Dockerfile steps BuildKit reported cached (FROM left out, as records.step_counts does)."""
    return [s.name for s in events.dockerfile_steps() if s.instruction != "FROM" and s.cached]


def loading_vertices(text: str, base_layers: Iterable[str]) -> set[str]:
    """Vertices under which a blob other than a base layer was downloaded: results loaded from an
    imported cache. BuildKit fetches a remote cache result lazily, under the vertex of the step it
    stands for, and reports that vertex not cached (seen with the docker driver on Engine 26.1,
    buildx 0.13: a mode=max RUN of 2 s took 0.03 s, downloading its layers, cached=false)."""
    base = set(base_layers)
    out: set[str] = set()
    for obj in _objects(text):
        for st in obj.get("statuses") or ():
            sid = st.get("id") or ""
            if BLOB_ID.match(sid) and sid not in base and st.get("vertex"):
                out.add(st["vertex"])
    return out


def reused_steps(events: BuildEvents, text: str, base_layers: Iterable[str]) -> list[str]:
    """Dockerfile steps (FROM left out) whose result came from a cache: reported cached, or loaded
    from the imported cache (loading_vertices)."""
    loaded = loading_vertices(text, base_layers)
    return [
        s.name
        for s in events.dockerfile_steps()
        if s.instruction != "FROM" and (s.cached or s.digest in loaded)
    ]


def job_metrics(
    events: BuildEvents,
    wall: float,
    text: str,
    base: list[str],
    before: dict[str, int],
    after: dict[str, int],
) -> dict[str, float]:
    """Every metric of one ci job (harness/metrics.py names) from its events, raw stream and the
    pipeline's blob sets before and after (registry image and cache repositories, local cache directory)."""
    split = time_split(events, wall)
    pulled = pulled_bytes(downloads(text), base)
    steps = [s for s in events.dockerfile_steps() if s.instruction != "FROM"]
    reused = reused_steps(events, text, base)
    m: dict[str, float] = {
        "build_seconds": wall,
        "ci_job_seconds": wall,
        "ci_import_seconds": split["import"],
        "ci_build_seconds": split["build"],
        "ci_export_seconds": split["export"],
        "ci_push_seconds": split["push"],
        "ci_pulled_bytes": pulled["total"],
        "ci_base_pulled_bytes": pulled["base"],
        "ci_cache_pulled_bytes": pulled["cache"],
        "ci_pushed_bytes": pushed_bytes(before, after),
        "ci_cache_bytes": sum(after.values()),
        "steps_total": len(steps),
        "steps_cached": sum(1 for s in steps if s.cached),
        "steps_executed": sum(1 for s in steps if not s.cached),
        "ci_steps_reused": len(reused),
        "ci_steps_rebuilt": len(steps) - len(reused),
    }
    if events.span_seconds is not None:
        m["build_span_seconds"] = events.span_seconds
    return m
