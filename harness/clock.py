"""The harness's one clock helper: now, in UTC, as the ISO 8601 text the records store.

A leaf module (it imports nothing from harness). Run and trial records stamp microseconds
(`2026-11-29T22:31:03.123456Z`); drift observations stamp whole seconds (`2026-11-29T22:31:03Z`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow(*, micro: bool = True) -> str:
    """Now in UTC with a `Z` suffix: with microseconds, or (micro=False) to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")
