"""What a run measures about the images its trials build, with the per-image caches.

An image id names its content exactly, so what follows from the content alone is computed once per
image id in a run: package counts (a throw-away container) and the smoke check. Identical images
across trials (the re-packed image of a reproducible build) cost one container for the whole run.
Timings (push, pull) and the re-pack of each build's own layers are per trial.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from harness.engine import inspect as dinspect
from harness.engine import repro
from harness.engine.inspect import BaseSplit
from harness.engine.repro import ReproSupport
from harness.errors import LabError
from harness.runner.records import MeasuredRepro
from harness.smoke import SmokeResult, command_text, run_smoke

PACKAGE_METRICS = ("packages_os", "packages_python", "os_files")


class ImageMeasurer:
    """Per-run measurement of built images: re-pack, package counts and smoke, cached by image id."""

    def __init__(self, client: Any, repro_support: ReproSupport, track: Callable[[str, str], None]) -> None:
        self.client = client
        self.repro = repro_support
        self.track = track
        self.package_cache: dict[str, dict[str, int]] = {}
        self.smoke_cache: dict[tuple[str, str], SmokeResult] = {}

    def reproducible(self, image_id: str, split: BaseSplit, tag: str) -> MeasuredRepro:
        """The image to measure: the build's own when the exporter rewrote timestamps, else our layers
        re-packed with mtimes clamped to SOURCE_DATE_EPOCH (harness/engine/repro.py), loaded as TAG-repro."""
        if self.repro["rewrite_timestamp_honoured"]:
            return {"image_id": image_id, "method": self.repro["method"]}
        try:
            out = repro.repack(image_id, split.get("base_layers", 0), repro.DEFAULT_EPOCH, f"{tag}-repro")
        except Exception as exc:  # noqa: BLE001 - the build's own image is still a valid measurement: say why
            return {"image_id": image_id, "method": None, "why": f"re-pack failed: {str(exc)[:200]}"}
        self.track("image", out["image_id"])
        return {
            "image_id": out["image_id"],
            "source_image_id": out["source_image_id"],
            "changed_layers": out["changed_layers"],
            "method": self.repro["method"],
            "epoch": repro.DEFAULT_EPOCH,
        }

    def packages(self, image_id: str, labels: dict[str, str]) -> dict[str, int]:
        """OS and Python package counts, files where there is no package database, gcc on PATH."""
        if image_id not in self.package_cache:
            self.package_cache[image_id] = dinspect.package_counts(image_id, labels)
        return self.package_cache[image_id]

    def smoke(
        self, image_id: str, command: Any, labels: dict[str, str], track: Callable[[str, str], None]
    ) -> SmokeResult:
        """The variant's smoke check, once per built image and command (untimed)."""
        key = (image_id, command_text(command))
        if key not in self.smoke_cache:
            self.smoke_cache[key] = run_smoke(self.client, image_id, command, labels=labels, track=track)
        return self.smoke_cache[key]

    def pull_back(self, ref: str, image_id: str) -> float:
        """Seconds to pull the pushed image back from the lab registry after removing it locally.

        Layers that are still present locally (the lab base's) are not transferred: this is what a
        host that already has the base pulls for this image."""
        dinspect.remove_image(image_id)
        t0 = time.perf_counter()
        cp = subprocess.run(["docker", "pull", "-q", ref], capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - t0
        if cp.returncode != 0:
            raise LabError(
                f"pull of {ref} from the lab registry failed: {(cp.stderr or cp.stdout).strip()[-200:]}",
                hint="is the lab registry up? `imagebench lab status`",
            )
        self.track("image", ref)
        return seconds
