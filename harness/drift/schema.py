"""What a drift observation is on disk: its schema name and version, its timestamps, image names.

Every other drift module builds or reads records with these; this one imports nothing from them.
"""

from __future__ import annotations

from typing import TypedDict

from harness import clock
from harness.errors import HarnessError
from harness.registry_client import parse_ref

SCHEMA = "imagebench.drift"
SCHEMA_VERSION = 1
# Schema history:
#   1 - first version (`harness.drift.observation.observe` lists the fields).


def utcnow() -> str:
    return clock.utcnow(micro=False)  # drift records stamp whole seconds


def canonical(image: str) -> str:
    """The familiar form of a reference (python:3.12-slim, 127.0.0.1:5000/x/y:t), for matching names."""
    try:
        return parse_ref(image).familiar()
    except HarnessError:
        return str(image)


class Observation(TypedDict, total=False):
    """One observation of an image (a line of a drift file; `observation.observe` lists the fields).

    `registry_digests` and `python_packages` only in engine observations, `base_distro` and
    `repo_info_commit` only in the published history's."""

    schema: str
    schema_version: int
    image: str
    registry: str | None
    repository: str | None
    tag: str | None
    digest: str | None
    index_digest: str | None
    image_id: str | None
    registry_digests: list[str]
    compressed_bytes: int | None
    uncompressed_bytes: int | None
    layers: int
    layer_digests: list[str | None]
    layer_sizes: list[int] | None
    package_manager: str | None
    packages: dict[str, str] | None
    python_version: str | None
    python_packages: dict[str, str] | None
    observed_at: str
    source: str
    base_distro: str
    repo_info_commit: str
    errors: list[str]
