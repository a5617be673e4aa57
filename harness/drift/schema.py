"""What a drift observation is on disk: its schema name and version, its timestamps, image names.

Every other drift module builds or reads records with these; this one imports nothing from them.
"""

from __future__ import annotations

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
