"""The `imagebench drift` commands: (exit code, text to print) for the CLI, JSON or text.

`run_drift` observes and judges (harness.drift.track), `run_history` shows one image's past
(harness.drift.published_history); the words come from harness.drift.text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.drift.changes import Thresholds
from harness.drift.published_history import history, published_images
from harness.drift.schema import canonical
from harness.drift.text import render_history, render_text
from harness.drift.track import default_images, drift
from harness.errors import ExitStatus, UsageError
from harness.registry_client import RegistryClient


def run_drift(
    images: list[str] | None,
    results_dir: Path,
    *,
    json_out: bool = False,
    thresholds: Thresholds | None = None,
    registry: RegistryClient | None = None,
    client: Any = None,
    local: bool = False,
) -> tuple[int, str]:
    """What `imagebench drift` does: (exit code, text to print). `images` None = default_images().
    `local`: observe the images in the local engine (no registry, no network: `observe_local`)."""
    notes: list[str] = []
    if not images:
        images, notes = default_images()
        if local:
            images = [i for i in images if "/" in i and ("." in i.split("/")[0] or ":" in i.split("/")[0])]
    skipped: list[str] = []
    report = drift(
        images, results_dir, thresholds, registry=registry, client=client, on_skip=skipped.append, local=local
    )
    report.notes = notes + skipped
    if json_out:
        return report.exit_code, json.dumps(report.to_dict(), indent=1, sort_keys=False)
    return report.exit_code, render_text(report)


def run_history(image: str, results_dir: Path | None, *, json_out: bool = False) -> tuple[int, str]:
    """What a `imagebench drift history IMAGE` would print: (exit code, text). One line per image
    version, published and observed, oldest first; exit 2 when nothing is known about the image."""
    df = history(image, results_dir)
    if df.empty:
        known = ", ".join(published_images())
        raise UsageError(f"no history of {image}: not in the published data ({known}) and never observed")
    if json_out:
        records = df.assign(observed_at=df["observed_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dict(
            "records"
        )
        clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in records]
        return int(ExitStatus.OK), json.dumps(clean, indent=1)
    return int(ExitStatus.OK), render_history(canonical(image), df)
