"""Published history: the `python:*` tags' past (docker-library/repo-info, shipped in harness/data)
as observations, merged with recorded ones into one size-over-time table per image.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from harness.drift.schema import SCHEMA, SCHEMA_VERSION, Observation, canonical
from harness.drift.store import load_observations
from harness.errors import EnvironmentProblem, HarnessError
from harness.registry_client import DOCKER_HUB, parse_ref
from harness.report.published import flavour, load_published_history, load_published_layers

if TYPE_CHECKING:
    import pandas as pd


class _LayerRow(Protocol):
    """A row of harness/data/python-layers.csv (harness/data/README.md)."""

    tag: str
    repo_info_commit: str
    layer_digest: str
    layer_bytes: int


class _TagRow(Protocol):
    """A row of harness/data/python-tags.csv (harness/data/README.md); observed_at parsed as a datetime."""

    tag: str
    repo_info_commit: str
    manifest_digest: str
    index_digest: str
    image_id: str
    compressed_bytes: int
    layer_count: int
    python_version: str
    observed_at: datetime
    base_distro: str


def load_published(data_dir: Path | None = None) -> list[Observation]:
    """The published history of `python:*` tags (docker-library/repo-info, linux/amd64) as
    observations with source "published": digest, index digest, image ID, compressed bytes, layers
    (digests and sizes), Python version and the date (the newest layer's Last-Modified). No
    package lists or uncompressed sizes: repo-info does not publish them."""
    try:
        tags = load_published_history(Path(data_dir) / "python-tags.csv" if data_dir else None)
        layers = load_published_layers(Path(data_dir) / "python-layers.csv" if data_dir else None)
    except (OSError, ValueError, KeyError) as exc:
        raise EnvironmentProblem(f"cannot read the published history: {exc}") from None
    by_snapshot: dict[tuple[str, str], list[tuple[str, int]]] = {}
    # pandas-stubs type a row's fields as any scalar: the CSV's columns are what the protocols say
    for raw in layers.itertuples(index=False):
        row = cast(_LayerRow, raw)
        by_snapshot.setdefault((row.tag, row.repo_info_commit), []).append(
            (row.layer_digest, int(row.layer_bytes))
        )
    out: list[Observation] = []
    for raw_tag in tags.itertuples(index=False):
        tag_row = cast(_TagRow, raw_tag)
        layer_list = by_snapshot.get((tag_row.tag, tag_row.repo_info_commit), [])
        out.append(
            {
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "image": f"python:{tag_row.tag}",
                "registry": DOCKER_HUB,
                "repository": "library/python",
                "tag": tag_row.tag,
                "digest": tag_row.manifest_digest,
                "index_digest": tag_row.index_digest,
                "image_id": tag_row.image_id,
                "compressed_bytes": int(tag_row.compressed_bytes),
                "uncompressed_bytes": None,
                "layers": int(tag_row.layer_count),
                "layer_digests": [d for d, _ in layer_list],
                "layer_sizes": [s for _, s in layer_list],
                "package_manager": None,
                "packages": None,
                "python_version": str(tag_row.python_version),
                "observed_at": tag_row.observed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source": "published",
                "base_distro": tag_row.base_distro,
                "repo_info_commit": tag_row.repo_info_commit,
                "errors": [],
            }
        )
    return sorted(out, key=lambda o: (o["image"], o["observed_at"]))


HISTORY_COLUMNS = [
    "observed_at",
    "image",
    "source",
    "digest",
    "compressed_bytes",
    "uncompressed_bytes",
    "layers",
    "python_version",
    "packages",
    "digest_changed",
    "tag",
    "flavour",
]


def history(
    image: str,
    results_dir: Path | None = None,
    *,
    data_dir: Path | None = None,
    published: list[Observation] | None = None,
) -> pd.DataFrame:
    """Size over time of one image: published snapshots plus recorded observations, oldest first.

    Repeated snapshots of one unchanged image (same source, digest and date) collapse to one row.
    Columns: observed_at (UTC datetime), image, source (published|registry), digest,
    compressed_bytes, uncompressed_bytes (NaN where unknown), layers, python_version, packages
    (count, NaN where unknown), digest_changed (vs the previous row), tag and flavour (as
    `harness.report.plots.published_history()` reads them: `3.12-slim`, `slim`). Recorded observations of the
    lab stand-ins are separate images: pass their lab reference to see them.
    """
    import pandas as pd  # heavy: loaded only when a history table is asked for

    key = canonical(image)
    rows = [
        o
        for o in (published if published is not None else load_published(data_dir))
        if canonical(o["image"]) == key
    ]
    if results_dir is not None:
        rows += [o for o in load_observations(results_dir, image) if canonical(o.get("image", "")) == key]
    records = [
        {
            "observed_at": o["observed_at"],
            "image": key,
            "source": o.get("source", "registry"),
            "digest": o.get("digest"),
            "compressed_bytes": o.get("compressed_bytes"),
            "uncompressed_bytes": o.get("uncompressed_bytes"),
            "layers": o.get("layers"),
            "python_version": o.get("python_version"),
            "packages": len(packages) if isinstance(packages := o.get("packages"), dict) else None,
        }
        for o in rows
    ]
    df = pd.DataFrame.from_records(records, columns=HISTORY_COLUMNS[:-3])
    df["observed_at"] = pd.to_datetime(df["observed_at"], utc=True)
    for col in ("compressed_bytes", "uncompressed_bytes", "layers", "packages"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    # repo-info snapshots of an unchanged tag repeat the same facts: keep one row per image version
    df = df.drop_duplicates(["source", "digest", "observed_at"], keep="first")
    df = df.sort_values("observed_at", kind="stable").reset_index(drop=True)
    prev = df["digest"].shift()
    df["digest_changed"] = prev.notna() & (prev != df["digest"])
    # the columns harness.report.plots.published_history() reads
    df["tag"] = _python_tag(key) or key
    df["flavour"] = flavour(df["tag"].iloc[0]) if len(df) else "full"
    return df


def _python_tag(image: str) -> str | None:
    """`3.12-slim` for python:3.12-slim (an official python image), else None."""
    try:
        ref = parse_ref(image)
    except HarnessError:
        return None
    return ref.tag if ref.registry == DOCKER_HUB and ref.repository == "library/python" else None


def published_images(data_dir: Path | None = None) -> list[str]:
    """The images the published history covers (python:3.12-slim, ...)."""
    return sorted({o["image"] for o in load_published(data_dir)})
