"""Results: one versioned JSON file per run, written atomically; a loader to a tidy DataFrame.

Layout: `<results>/<machine>/<run_id>.json`. A run file is rewritten (write to a temporary file
in the same directory, fsync, rename) after every trial, so a crash loses at most the trial in
flight, and a reader never sees a half-written file. A new run never overwrites another run's
file. See results/README.md for every field.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import EnvironmentProblem, SchemaError, UsageError
from harness.metrics import unit_of

SCHEMA = "imagebench.run"
SCHEMA_VERSION = 1
# Schema history (keep in step with results/README.md):
#   1 - first version: fingerprint, experiments, plan, trials with metrics and steps.

TIDY_COLUMNS = ["run_id", "machine", "experiment", "variant", "scenario", "trial", "metric", "value", "unit"]
TRIAL_STATES = ("ok", "failed", "interrupted", "skipped")


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def machine_name() -> str:
    """A filesystem-safe machine name: $IMAGEBENCH_MACHINE or the host name."""
    raw = os.environ.get("IMAGEBENCH_MACHINE") or socket.gethostname() or "machine"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-") or "machine"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class Run:
    """One run: the plan, the environment, every trial so far. Serialised as one JSON file."""

    run_id: str
    machine: str
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        results_dir: Path,
        *,
        command: list[str],
        seed: int,
        fingerprint: dict,
        experiments: dict[str, dict],
        plan: list[dict],
        options: dict,
    ) -> Run:
        machine = machine_name()
        folder = Path(results_dir) / machine
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = new_run_id()
            path = folder / f"{run_id}.json"
            if not path.exists():
                break
        now = utcnow()
        data = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "machine": machine,
            "created_at": now,
            "updated_at": now,
            "status": "running",
            "command": command,
            "seed": seed,
            "options": options,
            "fingerprint": fingerprint,
            "experiments": experiments,
            "plan": plan,
            "trials": [],
            "warnings": [],
        }
        run = cls(run_id=run_id, machine=machine, path=path, data=data)
        run.save(create=True)
        return run

    @classmethod
    def open(cls, results_dir: Path, run_id: str) -> Run:
        """Open an existing run by id (searching every machine folder) or by path."""
        candidate = Path(run_id)
        if candidate.suffix == ".json" and candidate.is_file():
            path = candidate
        else:
            hits = sorted(Path(results_dir).glob(f"*/{run_id}.json"))
            if not hits:
                raise UsageError(f"no run {run_id!r} under {results_dir}")
            path = hits[0]
        data = read_run_file(path)
        return cls(run_id=data["run_id"], machine=data["machine"], path=path, data=data)

    # -- mutation -------------------------------------------------------------------------
    @property
    def trials(self) -> list[dict]:
        return self.data["trials"]

    def record_trial(self, trial: dict) -> None:
        """Add (or replace an interrupted attempt of) a trial and rewrite the file atomically."""
        key = trial_key(trial)
        self.data["trials"] = [t for t in self.trials if trial_key(t) != key]
        self.data["trials"].append(trial)
        self.save()

    def warn(self, message: str) -> None:
        if message not in self.data["warnings"]:
            self.data["warnings"].append(message)

    def finish(self, status: str) -> None:
        self.data["status"] = status
        self.save()

    def missing(self) -> list[dict]:
        """Plan entries without a finished (ok/failed/skipped) trial: what --resume measures."""
        done = {trial_key(t) for t in self.trials if t.get("status") in ("ok", "failed", "skipped")}
        return [p for p in self.data["plan"] if trial_key(p) not in done]

    def save(self, *, create: bool = False) -> None:
        self.data["updated_at"] = utcnow()
        atomic_write_json(self.path, self.data, exclusive=create)


def trial_key(t: dict) -> tuple:
    return (t["experiment"], t["variant"], t["scenario"], int(t["trial"]))


def atomic_write_json(path: Path, data: Any, *, exclusive: bool = False) -> None:
    """Write JSON to a temporary file beside `path`, fsync and rename: all or nothing.

    With `exclusive`, refuse to replace an existing file (a new run never overwrites another).
    A full disk raises EnvironmentProblem and leaves any previous file untouched.
    """
    path = Path(path)
    if exclusive and path.exists():
        raise UsageError(f"{path} exists; refusing to overwrite another run")
    payload = json.dumps(data, indent=1, sort_keys=False, allow_nan=False, default=_json_default)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if path appeared meanwhile
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.errno == 28:  # ENOSPC
            raise EnvironmentProblem(
                f"no space left on device writing {path}; previous results kept",
                hint="free disk space and rerun with --resume",
            ) from None
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}") from None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- reading


def read_run_file(path: Path) -> dict:
    """Read and validate one run file, migrating older schema versions; SchemaError if foreign or corrupt."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"{path}: not a readable JSON results file ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SchemaError(f'{path}: not an imagebench run file (no "schema": "{SCHEMA}")')
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: schema_version {version!r} is newer than this imagebench reads "
            f"({SCHEMA_VERSION}); upgrade imagebench"
        )
    for key, typ in (
        ("run_id", str),
        ("machine", str),
        ("trials", list),
        ("plan", list),
        ("experiments", dict),
        ("fingerprint", dict),
    ):
        if not isinstance(data.get(key), typ):
            raise SchemaError(f"{path}: field {key!r} missing or not a {typ.__name__}")
    for t in data["trials"]:
        if not isinstance(t, dict) or not {"experiment", "variant", "scenario", "trial"} <= set(t):
            raise SchemaError(f"{path}: a trial lacks experiment/variant/scenario/trial")
    return data


def iter_run_files(results_dir: Path) -> Iterator[Path]:
    root = Path(results_dir)
    if not root.is_dir():
        return
    for p in sorted(root.glob("*/*.json")):
        if p.parent.name in ("drift", "report", "gate", "perf") or p.name.startswith("."):
            continue
        yield p


def load_runs(results_dir: Path, *, on_skip=None) -> list[dict]:
    """Every valid run under `results_dir`; corrupt or foreign files are skipped with a warning."""
    runs = []
    for p in iter_run_files(results_dir):
        try:
            runs.append(read_run_file(p))
        except SchemaError as exc:
            msg = f"skipped {exc}"
            if on_skip:
                on_skip(msg)
            else:
                warnings.warn(msg, stacklevel=2)
    return runs


def tidy_rows(runs: Iterable[dict]) -> Iterator[tuple]:
    for run in runs:
        for t in run["trials"]:
            if t.get("status") != "ok":
                continue
            for metric, value in (t.get("metrics") or {}).items():
                if value is None or isinstance(value, bool | str):
                    continue
                yield (
                    run["run_id"],
                    run["machine"],
                    t["experiment"],
                    t["variant"],
                    t["scenario"],
                    int(t["trial"]),
                    metric,
                    float(value),
                    unit_of(metric),
                )


def load_table(results_dir: Path | None = None, *, runs: list[dict] | None = None, on_skip=None):
    """The tidy table of everything measured: run_id, machine, experiment, variant, scenario, trial, metric,
    value, unit (one row per successful trial and metric)."""
    import pandas as pd

    if runs is None:
        runs = load_runs(results_dir, on_skip=on_skip)
    df = pd.DataFrame.from_records(list(tidy_rows(runs)), columns=TIDY_COLUMNS)
    df["trial"] = df["trial"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df
