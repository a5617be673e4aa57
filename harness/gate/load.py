"""Each side of the gate loaded: its run files read and their size fields checked, every run known by
the machine it was measured on (`machine_key`), own-layer sizes derived for runs recorded without
them (`derive_attribution`), the two sides' machines paired or pooled (`pair_machines`), and what the
compared runs rest on: their base image ids (`base_ids`) and the lab index's cutoff
(`changed_inputs`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from harness.analysis import select_latest
from harness.errors import SchemaError
from harness.gate.inputs import check_size_fields
from harness.gate.result import POOLED, Cell, GateRefused, GateResult
from harness.records import BasePin, ExperimentDef, RunRecord, TrialRecord
from harness.results import load_runs

if TYPE_CHECKING:
    import pandas as pd


def load_side(directory: Path, label: str, notes: list[str]) -> tuple[list[RunRecord], pd.DataFrame]:
    """One side's runs (each known by `machine_key`, own-layer sizes derived where missing) and the
    tidy table of the latest run per machine and experiment. SchemaError (exit 4) when the directory
    holds no readable run file or a size field is not a byte count."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SchemaError(f"{label} results {directory} is not a readable directory")
    skipped: list[str] = []
    runs = load_runs(directory, on_skip=skipped.append)
    notes.extend(f"{label}: {s}" for s in skipped)
    if not runs:
        raise SchemaError(
            f"{label} results {directory} hold no readable run file"
            + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    check_size_fields(runs, directory, label)  # before any arithmetic on them (SchemaError, exit 4)
    for run in runs:
        run["machine"] = machine_key(run)
        for trial in run.get("trials") or []:
            derive_attribution(run, trial)
    _, df = select_latest(runs)
    return runs, df


def hardware_of(run: RunRecord) -> tuple[object, ...]:
    """(cpus, memory GiB, kernel, architecture, engine version) from a run's fingerprint."""
    eng = (run.get("fingerprint") or {}).get("engine") or {}
    mem = eng.get("mem_bytes")
    return (
        eng.get("cpus"),
        round(mem / 2**30) if isinstance(mem, int | float) else None,
        eng.get("kernel"),
        eng.get("architecture"),
        eng.get("engine_version"),
    )


def machine_key(run: RunRecord) -> str:
    """The machine a run was measured on: its machine_identity name (host + hash of its ids), or for a
    run recorded without one, its folder name plus a short hash of the fingerprint's hardware."""
    ident = run.get("machine_identity") or {}
    if ident.get("name"):
        return str(ident["name"])
    hw = hardware_of(run)
    if all(v is None for v in hw):
        return str(run.get("machine"))
    return f"{run.get('machine')}~{hashlib.sha256(repr(hw).encode()).hexdigest()[:6]}"


def _describe_machines(runs: list[RunRecord], keys: list[str]) -> str:
    out = []
    for key in keys:
        run = next(r for r in runs if r["machine"] == key)
        cpus, mem, kernel, _arch, engine = hardware_of(run)
        hw = ", ".join(
            x
            for x in (
                f"{cpus} CPUs" if cpus else "",
                f"{mem} GiB" if mem else "",
                f"kernel {kernel}" if kernel else "",
                f"engine {engine}" if engine else "",
            )
            if x
        )
        out.append(f"{key}" + (f" ({hw})" if hw else ""))
    return "; ".join(out) or "none"


def _base_pin(run: RunRecord, trial: TrialRecord) -> tuple[str, BasePin, int] | None:
    """The base the trial's final stage was built FROM, for runs recorded without own-layer metrics:
    the run's pinned base whose bytes equal a prefix sum of the image's layer bytes, with the number
    of the image's layers it makes up."""
    layer_bytes = [int(x) for x in (trial.get("image") or {}).get("layer_bytes") or []]
    pins = run.get("bases") or {}
    best: tuple[str, BasePin, int] | None = None
    for name in trial.get("bases") or {}:
        pin = pins.get(name)
        total = pin.get("bytes") if pin else None
        if pin is None or not isinstance(total, int):
            continue
        acc = 0
        for k, b in enumerate(layer_bytes, 1):
            acc += b
            if acc == total and (best is None or k > best[2]):
                best = (name, pin, k)
                break
            if acc > total:
                break
    return best


def derive_attribution(run: RunRecord, trial: TrialRecord) -> None:
    """Fill own_bytes / own_bytes_compressed / base_bytes / base_bytes_compressed into a trial recorded
    before they existed (in memory only). Needs the image's layer list and the run's base pins."""
    metrics = trial.get("metrics")
    if trial.get("status") != "ok" or not isinstance(metrics, dict) or "image_bytes" not in metrics:
        return
    image = trial.setdefault("image", {}) if isinstance(trial.get("image"), dict) else {}
    if "own_bytes" not in metrics:
        found = _base_pin(run, trial)
        if found is None:
            return
        name, pin, k = found
        metrics["base_bytes"] = pin["bytes"]
        metrics["own_bytes"] = int(metrics["image_bytes"]) - int(pin["bytes"])
        if isinstance(metrics.get("layers"), int | float):
            metrics["own_layers"] = int(metrics["layers"]) - k
        comp = [int(x) for x in image.get("layer_compressed_bytes") or []]
        # bases recorded without a layer count were single-layer `docker import`s; map by position
        if comp and "image_bytes_compressed" in metrics and len(comp) >= k:
            metrics["base_bytes_compressed"] = sum(comp[:k])
            metrics["own_bytes_compressed"] = sum(comp[k:])
        image.setdefault("base", name)
        image.setdefault("base_image_id", pin.get("image_id"))


def latest_definitions(runs: list[RunRecord]) -> dict[str, ExperimentDef]:
    """{experiment: definition}, the latest run's definition winning."""
    out: dict[str, ExperimentDef] = {}
    for run in sorted(runs, key=lambda r: r["run_id"]):
        out.update(run.get("experiments") or {})
    return out


def index_cutoff_of(run: RunRecord) -> str | None:
    """The lab index's cutoff a run was served with (None: none recorded, as in runs before it existed)."""
    lab = (run.get("fingerprint") or {}).get("lab")
    value = lab.get("index_uploaded_before") if isinstance(lab, dict) else None
    return value if isinstance(value, str) else None


def _cutoff_text(values: set[str | None]) -> str:
    return ", ".join(sorted(v or "none recorded" for v in values))


def changed_inputs(
    base_runs: list[RunRecord], base: pd.DataFrame, cur_runs: list[RunRecord], cur: pd.DataFrame
) -> dict[str, str]:
    """{experiment: why its package inputs differ} for experiments whose compared runs (the ones in each
    side's table) were served by the lab index with different cutoffs."""

    def per_experiment(runs: list[RunRecord], df: pd.DataFrame) -> dict[str, set[str | None]]:
        cutoff = {r.get("run_id"): index_cutoff_of(r) for r in runs}
        out: dict[str, set[str | None]] = {}
        if df.empty:
            return out
        for experiment, run_id in set(zip(df["experiment"], df["run_id"], strict=True)):
            out.setdefault(experiment, set()).add(cutoff.get(run_id))
        return out

    b, c = per_experiment(base_runs, base), per_experiment(cur_runs, cur)
    return {
        e: f"the lab index's package cutoff differs (baseline: {_cutoff_text(b[e])}; current: {_cutoff_text(c[e])})"
        for e in sorted(set(b) & set(c))
        if b[e] != c[e]
    }


def pair_machines(
    base: pd.DataFrame,
    cur: pd.DataFrame,
    result: GateResult,
    base_runs: list[RunRecord],
    cur_runs: list[RunRecord],
    *,
    across_machines: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables restricted to the machines both sides measured (the others noted), or with
    `across_machines` and no machine in common, every machine pooled as one; GateRefused (exit 2)
    when no machine is in common and pooling was not asked for. Fills `result.machines`."""
    bm = sorted(set(base["machine"])) if not base.empty else []
    cm = sorted(set(cur["machine"])) if not cur.empty else []
    common = sorted(set(bm) & set(cm))
    result.machines = {"baseline": bm, "current": cm, "compared": common or [POOLED]}
    if not common and bm and cm and not across_machines:
        raise GateRefused(
            f"refusing to compare runs of different machines (baseline: {_describe_machines(base_runs, bm)}; "
            f"current: {_describe_machines(cur_runs, cm)}); pass --across-machines to compare exact "
            "metrics and within-run claims only"
        )
    if common:
        dropped = sorted((set(bm) | set(cm)) - set(common))
        if dropped:
            result.notes.append(f"machines on one side only, not compared: {', '.join(dropped)}")
        return (
            base[base["machine"].isin(common)].reset_index(drop=True),
            cur[cur["machine"].isin(common)].reset_index(drop=True),
        )
    result.notes.append(
        f"no machine in common (baseline: {', '.join(bm) or 'none'}; current: "
        f"{', '.join(cm) or 'none'}): compared across machines (--across-machines)"
    )
    base, cur = base.copy(), cur.copy()
    base["machine"] = POOLED
    cur["machine"] = POOLED
    return base, cur


def base_ids(runs: list[RunRecord], df: pd.DataFrame) -> dict[Cell, list[str]]:
    """{(machine, experiment, variant, scenario): sorted base image ids} of the trials in `df`'s runs."""
    if df.empty:
        return {}
    chosen = set(zip(df["run_id"], df["experiment"], strict=True))
    out: dict[Cell, set[str]] = {}
    for run in runs:
        for t in run.get("trials") or []:
            if t.get("status") != "ok" or (run["run_id"], t.get("experiment")) not in chosen:
                continue
            image = t.get("image") or {}
            ids = (
                [image["base_image_id"]]
                if image.get("base_image_id")
                else list((t.get("bases") or {}).values())
            )
            key = (run["machine"], t["experiment"], t["variant"], t["scenario"])
            out.setdefault(key, set()).update(x for x in ids if x)
    return {k: sorted(v) for k, v in out.items()}
