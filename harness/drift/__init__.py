"""Base-image drift: observe tracked images now, keep the history, flag what changed.

An *observation* is one look at an image tag: the registry's manifest digest (linux/amd64),
the compressed size (sum of the manifest's layer sizes, what Docker Hub reports), the
uncompressed size the engine reports after a pull, the layers, the OS package list
(`dpkg-query` or the apk database) and the Python version inside, each run in a container
with `--network=none`. Observations are appended, one JSON object per line, to
`<results>/drift/<slug>.jsonl` (append-only; a corrupt line is skipped with a warning).

`diff(prev, cur)` says what changed between two observations: digest, bytes (both kinds),
layers, packages added / removed / upgraded / downgraded, Python version. `drift(...)`
observes every image, diffs each against its previous observation and judges the change
against `Thresholds`. Exit codes (`DriftReport.exit_code`, `run_drift`):

  0  nothing changed beyond the thresholds (a first observation only records a baseline)
  1  at least one image drifted beyond the thresholds (ExitStatus.FAILURE)
  3  no image drifted, but at least one could not be observed (registry or engine
     unreachable: ExitStatus.ENVIRONMENT); the others are still observed and recorded

`load_published()` turns the published history of the `python:*` tags (docker-library/repo-info,
shipped in harness/data) into observations with source "published", and `history(image)` merges
them with what `drift` recorded into one DataFrame, so the history starts before the first run.

One module per concept; this package re-exports the public names (`harness.drift.diff`, ...):

  schema             the record's schema name and version, timestamps, canonical image names
  probe              the in-container package probe script and its output's parsers
  observation        observing an image through a registry and an engine (or the engine alone)
  store              the history files: append one observation, read them back
  changes            diff two observations, judge the change against Thresholds
  track              a drift run: observe, store, diff and judge every tracked image
  text               the text `imagebench drift` prints
  published_history  the published python:* history and one image's size over time
  command            the `imagebench drift` and `drift history` commands: exit code and output
"""

from __future__ import annotations

from harness.drift.changes import Thresholds, compare_versions, diff, diff_packages, judge, package_summary
from harness.drift.command import run_drift, run_history
from harness.drift.observation import PROBE_TIMEOUT, observe, observe_local
from harness.drift.probe import PROBE_SCRIPT, parse_pip, parse_probe
from harness.drift.published_history import HISTORY_COLUMNS, history, load_published, published_images
from harness.drift.schema import SCHEMA, SCHEMA_VERSION, canonical, utcnow
from harness.drift.store import (
    DRIFT_DIR,
    append_observation,
    history_path,
    load_observations,
    read_observations,
    slug,
)
from harness.drift.text import render_history, render_text
from harness.drift.track import DEFAULT_PUBLIC_IMAGES, DriftReport, ImageDrift, default_images, drift

__all__ = [
    "DEFAULT_PUBLIC_IMAGES",
    "DRIFT_DIR",
    "HISTORY_COLUMNS",
    "PROBE_SCRIPT",
    "PROBE_TIMEOUT",
    "SCHEMA",
    "SCHEMA_VERSION",
    "DriftReport",
    "ImageDrift",
    "Thresholds",
    "append_observation",
    "canonical",
    "compare_versions",
    "default_images",
    "diff",
    "diff_packages",
    "drift",
    "history",
    "history_path",
    "judge",
    "load_observations",
    "load_published",
    "observe",
    "observe_local",
    "package_summary",
    "parse_pip",
    "parse_probe",
    "published_images",
    "read_observations",
    "render_history",
    "render_text",
    "run_drift",
    "run_history",
    "slug",
    "utcnow",
]
