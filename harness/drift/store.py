"""The history store: one append-only JSON-lines file per image under `<results>/drift/`.

Appending is one write with fsync; reading skips a corrupt or too-new line with a warning.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import cast

from harness.drift.schema import SCHEMA, SCHEMA_VERSION, Observation, canonical
from harness.errors import EnvironmentProblem

DRIFT_DIR = "drift"


def slug(image: str) -> str:
    """A file name for an image reference: `127.0.0.1:5000/a/python:3.13` -> `127.0.0.1_5000_a_python_3.13`."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(image).strip()).strip("_.")
    return s or "image"


def history_path(results_dir: Path, image: str) -> Path:
    return Path(results_dir) / DRIFT_DIR / f"{slug(canonical(image))}.jsonl"


def append_observation(path: Path, obs: Observation) -> None:
    """Append one observation as one line: O_APPEND, one write, fsync. A file whose last line was
    cut short (a crash mid-write) gets a newline first, so the new line stays readable."""
    path = Path(path)
    line = json.dumps(obs, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:
                with open(path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        line = "\n" + line
            data = line.encode("utf-8")
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(28, f"short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot append to {path}: {exc.strerror or exc}") from None


def read_observations(path: Path, *, on_skip: Callable[[str], None] | None = None) -> list[Observation]:
    """Every readable observation in a drift file, oldest first; corrupt lines are skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        return []
    out: list[Observation] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obs = json.loads(line)
                if not isinstance(obs, dict) or obs.get("schema") != SCHEMA or not obs.get("observed_at"):
                    raise ValueError("not a drift observation")
                if int(obs.get("schema_version", 0)) > SCHEMA_VERSION:
                    raise ValueError(
                        f"schema_version {obs.get('schema_version')} is newer than this imagebench"
                    )
            except (ValueError, TypeError) as exc:
                msg = f"{path}:{number}: skipped corrupt observation ({str(exc)[:80]})"
                if on_skip:
                    on_skip(msg)
                else:
                    warnings.warn(msg, stacklevel=2)
                continue
            out.append(cast(Observation, obs))
    return out


def load_observations(
    results_dir: Path, image: str | None = None, *, on_skip: Callable[[str], None] | None = None
) -> list[Observation]:
    """Recorded observations of one image (or of every image), oldest first."""
    root = Path(results_dir) / DRIFT_DIR
    paths = [history_path(results_dir, image)] if image else sorted(root.glob("*.jsonl"))
    out: list[Observation] = []
    for p in paths:
        out.extend(read_observations(p, on_skip=on_skip))
    return sorted(out, key=lambda o: o["observed_at"])
