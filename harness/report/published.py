"""The published history of `python:*` tags (docker-library/repo-info), shipped in harness/data.

These are published facts, not measurements: compressed sizes and digests of the official
images as Docker Hub served them at each repo-info snapshot. See harness/data/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict, cast

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SOURCE = "docker-library/repo-info (repos/python/remote/<tag>.md, linux/amd64)"


class Snapshot(TypedDict):
    """One published snapshot of a tag (a row of `load_published_history`, numpy scalars as Python's)."""

    tag: str
    observed_at: pd.Timestamp
    compressed_bytes: int
    manifest_digest: str
    index_digest: str
    image_id: str
    layer_count: int
    python_version: str
    base_distro: str
    base_history_date: str
    base_layer_digest: str
    base_layer_bytes: int
    repo_info_commit: str
    flavour: str
    digest_changed: bool


def load_published_history(path: Path | None = None) -> pd.DataFrame:
    """One row per (tag, snapshot), sorted by tag and time, with `digest_changed` marking the
    snapshots whose amd64 manifest digest differs from the tag's previous snapshot.

    Columns: tag, observed_at (UTC datetime), compressed_bytes, manifest_digest, index_digest,
    image_id, layer_count, python_version, base_distro, base_layer_digest, base_layer_bytes,
    repo_info_commit, flavour (full|slim|alpine), digest_changed (bool).
    """
    df = pd.read_csv(path or DATA_DIR / "python-tags.csv")
    df = df.rename(
        columns={
            "amd64_total_compressed_bytes": "compressed_bytes",
            "amd64_manifest_digest": "manifest_digest",
            "amd64_image_id": "image_id",
        }
    )
    df["observed_at"] = pd.to_datetime(df["observed_at"], utc=True)
    df["flavour"] = df["tag"].map(flavour)
    df = df.sort_values(["tag", "observed_at", "repo_info_commit"], kind="stable").reset_index(drop=True)
    previous = df.groupby("tag")["manifest_digest"].shift()
    df["digest_changed"] = previous.notna() & (previous != df["manifest_digest"])
    return df


def load_published_layers(path: Path | None = None) -> pd.DataFrame:
    """One row per layer of each snapshot: tag, repo_info_commit, layer_index, layer_digest,
    layer_bytes, last_modified."""
    df = pd.read_csv(path or DATA_DIR / "python-layers.csv")
    df["last_modified"] = pd.to_datetime(df["last_modified"], utc=True)
    return df.sort_values(["tag", "repo_info_commit", "layer_index"], kind="stable").reset_index(drop=True)


def flavour(tag: str) -> str:
    """full, slim or alpine: the family a python tag belongs to."""
    tag = str(tag).split(":")[-1]
    if "alpine" in tag:
        return "alpine"
    if "slim" in tag:
        return "slim"
    return "full"


def latest_published(history: pd.DataFrame, public: str) -> Snapshot | None:
    """The latest snapshot of `public` (e.g. "python:3.12-slim") as a dict, or None if not in the data."""
    name, _, tag = str(public).rpartition(":")
    if name.split("/")[-1] != "python" or not tag:
        return None
    rows = history[history["tag"] == tag]
    if rows.empty:
        return None
    row = rows.sort_values(["observed_at", "repo_info_commit"], kind="stable").iloc[-1]
    # the CSV's columns, as harness/data/README.md documents them
    return cast(Snapshot, {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
