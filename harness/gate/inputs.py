"""What the gate reads besides the tidy table: the size fields it derives own-layer bytes from, checked
before any arithmetic, and the nondeterminism each experiment declares or its trials show.

Size fields (`check_size_fields`): every byte count and layer count the gate uses (a trial's size
metrics, `image.layer_bytes`, `image.layer_compressed_bytes`, the run's base pins' `bytes`) must be a
whole number from 0 to 2**53 (beyond that a float no longer holds every byte). Anything else (text,
null, a fraction, a negative or absurd number) is refused with one line naming the file, the trial
and the field: SchemaError, exit 4. The gate never writes a run file, so nothing measured is lost.

Known nondeterminism (`declared_allowances`, `spread`): a size that differs between builds of the same
inputs is not a regression as long as the difference stays within what is known about it:

- **declared** by the experiment: a `delta` claim with a tolerance on a size (calibration's
  "file-10m − file-0, image_bytes_compressed" with `tolerance_rel = 0.01`: its variants write random
  bytes by design, so their compressed size is only known within 1 %). The candidate variant's size,
  and its own-layer part, may move that much.
- **measured**: the spread between trials of one run on either side (the largest minus the smallest
  value of the cell). Identical inputs built twice that do not give the same bytes show it there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from harness.errors import SchemaError
from harness.metrics import unit_of
from harness.results import iter_run_files

#: the largest byte count a run file may hold (2**53: every smaller whole number is exact as a float)
MAX_BYTES = 2**53
#: whole-image sizes and the own-layer part a declared allowance also covers
OWN_PART = {"image_bytes": "own_bytes", "image_bytes_compressed": "own_bytes_compressed"}
_COUNT_METRICS = ("layers", "own_layers")
_LIST_FIELDS = ("layer_bytes", "layer_compressed_bytes")


def _short(value: object) -> str:
    text = repr(value)
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= 40 else text[:37] + "..."


def _bad(value: object) -> bool:
    """True unless `value` is a whole number of bytes (an int, or a float with no fraction) in range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        return True
    return not 0 <= value <= MAX_BYTES


def _fraction(value: object) -> bool:
    """True for a finite number above 0 and at most 1 (a relative tolerance)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 < value <= 1


def _file_of(directory: Path, run: Mapping[str, object]) -> str:
    """The run's file for a message: `<dir>/<machine>/<run id>.json` when it exists, else the run id."""
    run_id = str(run.get("run_id"))
    for path in iter_run_files(directory):
        if path.stem == run_id:
            return str(path)
    return f"the run file of {run_id} in {directory}"


def size_field_errors(run: Mapping[str, object]) -> list[str]:
    """Pure: 'trial N (experiment/variant/scenario): field is VALUE' for each bad size field of `run`
    (read as it may be: any value of any field)."""
    out: list[str] = []
    bases = run.get("bases")
    pins: dict[object, object] = bases if isinstance(bases, dict) else {}
    for name, pin in sorted(pins.items(), key=lambda item: str(item[0])):
        if isinstance(pin, dict) and "bytes" in pin and _bad(pin["bytes"]):
            out.append(f"bases.{name}.bytes is {_short(pin['bytes'])}, not a byte count")
    listed = run.get("trials")
    trials: list[object] = listed if isinstance(listed, list) else []
    for i, trial in enumerate(trials):
        if not isinstance(trial, dict) or trial.get("status") != "ok":
            continue
        where = f"trial {i} ({trial.get('experiment')}/{trial.get('variant')}/{trial.get('scenario')})"
        metrics = trial["metrics"] if isinstance(trial.get("metrics"), dict) else {}
        for metric, value in sorted(metrics.items()):
            if (unit_of(metric) == "B" or metric in _COUNT_METRICS) and _bad(value):
                what = "a layer count" if metric in _COUNT_METRICS else "a byte count"
                out.append(f"{where}: metrics.{metric} is {_short(value)}, not {what}")
        image = trial["image"] if isinstance(trial.get("image"), dict) else {}
        for field in _LIST_FIELDS:
            values = image.get(field)
            if values is None:
                continue
            if not isinstance(values, list):
                out.append(f"{where}: image.{field} is {_short(values)}, not a list of byte counts")
                continue
            bad = [(k, v) for k, v in enumerate(values) if _bad(v)]
            if bad:
                k, v = bad[0]
                out.append(f"{where}: image.{field}[{k}] is {_short(v)}, not a byte count")
    return out


def check_size_fields(runs: Sequence[Mapping[str, object]], directory: Path, label: str) -> None:
    """SchemaError (exit 4, one line naming the file and the field) for the first run with a bad size
    field; the count of further bad fields is said."""
    for run in runs:
        errors = size_field_errors(run)
        if errors:
            more = f" (and {len(errors) - 1} more bad size field(s))" if len(errors) > 1 else ""
            raise SchemaError(
                f"{label} results: {_file_of(directory, run)}: {errors[0]}{more}; the gate compares "
                "sizes exactly and will not guess this one (fix or move the file)"
            )


def declared_allowances(
    definitions: Sequence[Mapping[str, object]],
) -> dict[tuple[str, str, str], tuple[float, str]]:
    """{(experiment, variant, metric): (bytes, why)} from every `delta` claim with a tolerance on a size
    metric, in any of `definitions` ({experiment: definition} of each run); the largest wins."""
    out: dict[tuple[str, str, str], tuple[float, str]] = {}
    for defs in definitions:
        for experiment, definition in (defs or {}).items():
            if not isinstance(definition, dict):
                continue
            for claim in definition.get("claims") or []:
                got = _claim_allowance(claim)
                if got is None:
                    continue
                metric, variant, allowed = got
                label = claim.get("label") or f"{variant} {metric}"
                why = (
                    f"{experiment} declares {variant}'s {metric} variable by up to {allowed:,.0f} B "
                    f"(the tolerance of its claim {label!r})"
                )
                for m in (metric, OWN_PART.get(metric, metric)):
                    key = (str(experiment), variant, m)
                    if allowed > out.get(key, (-1.0, ""))[0]:
                        out[key] = (allowed, why)
    return out


def _claim_allowance(claim: object) -> tuple[str, str, float] | None:
    """(metric, candidate, allowed bytes) of a size `delta` claim with a positive tolerance, else None."""
    if not isinstance(claim, dict) or claim.get("expect") != "delta":
        return None
    metric, variant = claim.get("metric"), claim.get("candidate")
    if not isinstance(metric, str) or not isinstance(variant, str) or unit_of(metric) != "B":
        return None
    tol, rel, value = claim.get("tolerance"), claim.get("tolerance_rel"), claim.get("value")
    allowed = 0.0
    if isinstance(tol, int | float) and not _bad(tol):
        allowed = float(tol)
    elif (
        isinstance(rel, int | float) and isinstance(value, int | float) and _fraction(rel) and not _bad(value)
    ):
        allowed = float(rel) * float(value)
    return (metric, variant, allowed) if allowed > 0 else None


def spread(values: Iterable[float]) -> float:
    """The largest minus the smallest value of one side's trials (0 for one trial)."""
    listed = list(values)
    return float(max(listed) - min(listed)) if listed else 0.0
