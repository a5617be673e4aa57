"""downloads: bytes the lab's package index served during the timed build.

The runner resets the index's counters right before the timed build (and this probe does too,
in before_build, for runners that do not); after the build the probe reads them.

download_bytes       bytes of package files and index pages the index sent
download_files       package files (wheels, sdists) requested
pip_cache_in_image   bytes under /root/.cache/pip in the final image (what a plain
                     `pip install` leaves behind), read through a created container

Needs the lab (`imagebench lab up`); experiments that use it should declare
`requires = ["shaped-network"]` so the time differences resemble a real network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ProbeFailed
from harness.probes import BuildExtras, Probe, ProbeContext, register
from harness.probes._containers import files_in_image

PIP_CACHE = "/root/.cache/pip"


def summarize_stats(stats: Mapping[str, Any]) -> tuple[int, int, dict[str, int]]:
    """Pure: (bytes served, package files served, {file: bytes}) from the index's /-/stats answer
    (harness.lab.index.IndexStats; records.LabHandle.index_stats types it as a plain dict)."""
    files = stats.get("files") or {}
    per_file = {name: int((v or {}).get("bytes", 0)) for name, v in files.items()}
    nfiles = sum(int((v or {}).get("requests", 0)) for v in files.values())
    return int(stats.get("bytes_served", 0)), nfiles, per_file


def dir_bytes(client: Any, image: str, path: str, labels: dict[str, str], track: Any) -> int:
    """Total bytes of regular files under `path` in the image (0 when missing)."""
    return sum(size for _, size in files_in_image(client, image, path, labels, track))


@register
class DownloadsProbe(Probe):
    name = "downloads"

    def before_build(self, ctx: ProbeContext) -> BuildExtras:
        if ctx.lab is None or not hasattr(ctx.lab, "index_stats"):
            raise ProbeFailed("the downloads probe needs the lab's package index (imagebench lab up)")
        ctx.lab.reset_index_stats()
        return BuildExtras()

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        assert ctx.lab is not None  # before_build refused to go on without it
        total, nfiles, per_file = summarize_stats(ctx.lab.index_stats())
        out = {"download_bytes": float(total), "download_files": float(nfiles)}
        if ctx.image:
            out["pip_cache_in_image"] = float(
                dir_bytes(ctx.client, ctx.image, PIP_CACHE, ctx.labels, ctx.track)
            )
        prof = getattr(ctx.lab, "profile", None)
        ctx.details[self.name] = {
            "largest_files": dict(sorted(per_file.items(), key=lambda kv: -kv[1])[:10]),
            "network_profile": getattr(prof, "name", None),
        }
        return out
