"""Cleanup: everything a trial or a run created is removed (images kept only with --keep-images)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from harness.engine import inspect as dinspect

LABEL = dinspect.LABEL


class Tracker:
    """What the current trial created on the engine: ("container"|"image"|"network"|"volume", id)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def track(self, kind: str, ident: str) -> None:
        self.items.append((kind, ident))

    def remove_all(self, *, keep_images: bool) -> None:
        """Remove the trial's resources, newest first, and forget them."""
        dinspect.remove_tracked(self.items, keep_images=keep_images)
        self.items = []


def cleanup_run(
    tracker: Tracker, client: Any, run_id: str, *, keep_images: bool, workroot: Path | None
) -> None:
    """At the end of a run (however it ends): the last trial's leftovers, anything labelled with the
    run's id (containers only with --keep-images), and the run's private working directory."""
    with contextlib.suppress(Exception):
        tracker.remove_all(keep_images=keep_images)
    if not keep_images:
        with contextlib.suppress(Exception):
            dinspect.remove_labelled(LABEL, run_id)
    else:
        with contextlib.suppress(Exception):
            for x in client.containers.list(all=True, filters={"label": f"{LABEL}={run_id}"}):
                x.remove(force=True, v=True)
    if workroot:
        shutil.rmtree(workroot, ignore_errors=True)
