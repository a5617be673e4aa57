"""The regression gate: compare a current results directory with a baseline, fail on regressions.

Per machine x experiment x variant x scenario (the latest run per machine and experiment on
each side, as the report shows them):

- **Sizes** are exact: a growth of more than `size_bytes` bytes fails, naming the variant; with
  `size_pct` the growth must also exceed that percentage (an absolute floor plus a relative
  threshold). With the defaults (0 bytes, no percentage) any growth fails. Shrinking never fails.
  By default only **our own layers** are gated (`own_bytes`, `own_bytes_compressed` and every
  other exact byte metric); the whole image (`image_bytes`, `image_bytes_compressed`) is split
  into base and own bytes and reported ("the base grew by 32 B (sha256:aaa -> sha256:bbb); our
  layers by +0 B"): a base rebuilt under us is drift, not a regression. `whole_image=True`
  (`--whole-image`) gates the totals too. Runs recorded before own-layer metrics existed get them
  derived from the trial's layer list and the run's pinned base (a base whose bytes equal a
  prefix of the image's layers). **Known nondeterminism** is not a regression: a size may also
  move by what its experiment declares (a size `delta` claim's tolerance: calibration's random
  `file-10m` is known only within 1 % compressed), by the spread of one side's own trials
  (harness/gate_inputs.py), or, for a compressed size whose uncompressed size is one value in every
  trial on both sides, by 0.1 % (`SAME_CONTENT_REL`: equal-sized content compressing a few bytes
  differently, which three trials' spread misses); such a growth is said ("known nondeterminism", status
  `nondeterministic`), not failed. Every size field is checked before any arithmetic: text, null,
  fractional, negative or absurd byte counts are refused naming the file and field (exit 4).
  **Inputs changed**: when the runs compared for an experiment were served by the lab index at
  different points in time (`fingerprint.lab.index_uploaded_before`, from experiments/index.toml;
  absent in runs made before it existed), their package versions may differ: a size or layer growth
  there is said ("inputs changed", status `inputs-changed`), not failed. Same cutoff on both sides,
  same packages: any growth is gated as above.
- **Layers** (`layers`): more than `layers` extra layers fails.
- **Times** (every metric of kind `time`: `build_seconds`, `pull_seconds` ...) are compared
  statistically: the ratio of medians current / baseline gets a bootstrap confidence interval
  (`conf`, default 95 %), and the check fails only when the interval's *lower* bound is above
  `time_ratio` (default 1.10): noise alone almost never does that. One trial on a side gives
  no interval: that check is skipped with a reason.
- **Verdicts**: a claim that was "supported" in the baseline and is "not supported",
  "inconclusive", or missing from an experiment the current results measured fails (a practice
  stopped paying off), with its own exit code (6, `EXIT_CLAIM_LOST`).

Machines: like is compared with like. Each run's machine is its `machine_identity` name (the
host name plus a hash of its ids); a run recorded without one is known by its folder name plus
the fingerprint's CPUs, memory, kernel, architecture and engine version. When the two sides
do not come from the same machine(s) the gate refuses (`GateRefused`, exit 2, one line naming
both) unless `across_machines=True` (`--across-machines`); then the machines are pooled, and only
exact metrics and verdicts (ratios *within* each run) are compared, never absolute times.
Anything measured on one side only is listed in the notes, never failed (a CI shard measures
part of the catalog).

Exit codes (`GateResult.exit_code`, `run_gate`): 0 pass; 1 a measured regression (size,
layers, time: ExitStatus.FAILURE); 6 a supported claim lost (wins over 1 when both happen);
usage errors and refusals (different machines, bad thresholds) raise UsageError (2);
unreadable results SchemaError (4). Threshold validation lives here (`validate_thresholds`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import fmt, stats
from harness.analysis import NOT_MEASURED, analyze, select_latest
from harness.errors import ExitStatus, SchemaError, UsageError
from harness.gate_inputs import check_size_fields, declared_allowances, spread
from harness.metrics import human_value, kind_of, unit_of
from harness.results import json_default, load_runs

KEY = ["machine", "experiment", "variant", "scenario", "metric"]
LAYER_METRICS = ("layers", "own_layers")
POOLED = "(pooled)"
N_BOOT = 2000
SEED = 0
EXIT_CLAIM_LOST = 6
#: whole-image sizes and the own-layer metric each one is split into
ATTRIBUTED = {"image_bytes": "own_bytes", "image_bytes_compressed": "own_bytes_compressed"}
BASE_METRICS = {"image_bytes": "base_bytes", "image_bytes_compressed": "base_bytes_compressed"}
# One side of the gate: its runs, the tidy table of the rows compared, {experiment: definition}.
Side = tuple[list[dict], Any, dict[str, dict]]


class GateRefused(UsageError):
    """The two sides cannot be compared as asked (e.g. different machines without --across-machines)."""


@dataclass
class Check:
    kind: str  # size | layers | time | verdict | exact | base | attributed
    machine: str
    experiment: str
    variant: str
    scenario: str
    metric: str
    status: str  # fail | pass | improved | skipped | changed | nondeterministic | inputs-changed
    baseline: Any = None
    current: Any = None
    delta: float | None = None
    pct: float | None = None
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    n_baseline: int = 0
    n_current: int = 0
    message: str = ""

    @property
    def where(self) -> str:
        return f"{self.experiment}/{self.variant}/{self.scenario}"


@dataclass
class GateResult:
    baseline_dir: str
    current_dir: str
    thresholds: dict
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machines: dict = field(default_factory=dict)
    bases: dict = field(default_factory=dict)  # cell -> {"baseline": [base ids], "current": [...]}

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def improvements(self) -> list[Check]:
        return [c for c in self.checks if c.status == "improved"]

    @property
    def nondeterministic(self) -> list[Check]:
        """Sizes that grew past the threshold but within their known nondeterminism (not failed)."""
        return [c for c in self.checks if c.status == "nondeterministic"]

    @property
    def inputs_changed(self) -> list[Check]:
        """Sizes that grew where the two sides' package inputs differ (the index cutoff): not failed."""
        return [c for c in self.checks if c.status == "inputs-changed"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def claims_lost(self) -> list[Check]:
        return [c for c in self.failures if c.kind == "verdict"]

    @property
    def base_changes(self) -> list[Check]:
        return [c for c in self.checks if c.kind in ("base", "attributed") and c.status == "changed"]

    @property
    def exit_code(self) -> int:
        if self.passed:
            return int(ExitStatus.OK)
        return EXIT_CLAIM_LOST if self.claims_lost else int(ExitStatus.FAILURE)

    def to_dict(self) -> dict:
        return {
            "schema": "imagebench.gate",
            "schema_version": 2,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "baseline": self.baseline_dir,
            "current": self.current_dir,
            "thresholds": self.thresholds,
            "machines": self.machines,
            "notes": self.notes,
            "base_changes": [asdict(c) for c in self.base_changes],
            "failures": [asdict(c) for c in self.failures],
            "checks": [asdict(c) for c in self.checks],
        }


# --------------------------------------------------------------------------- loading


def _load(directory: Path, label: str, notes: list[str]) -> tuple[list[dict], Any]:

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


# --------------------------------------------------------------------------- machines


def hardware_of(run: dict) -> tuple:
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


def machine_key(run: dict) -> str:
    """The machine a run was measured on: its machine_identity name (host + hash of its ids), or for a
    run recorded without one, its folder name plus a short hash of the fingerprint's hardware."""
    ident = run.get("machine_identity") or {}
    if ident.get("name"):
        return str(ident["name"])
    hw = hardware_of(run)
    if all(v is None for v in hw):
        return str(run.get("machine"))
    return f"{run.get('machine')}~{hashlib.sha256(repr(hw).encode()).hexdigest()[:6]}"


def _describe_machines(runs: list[dict], keys: list[str]) -> str:
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


# --------------------------------------------------------------------------- size attribution


def _base_pin(run: dict, trial: dict) -> tuple[str, dict] | None:
    """The base the trial's final stage was built FROM, for runs recorded without own-layer metrics:
    the run's pinned base whose bytes equal a prefix sum of the image's layer bytes."""
    image = trial.get("image") or {}
    layer_bytes = [int(x) for x in image.get("layer_bytes") or []]
    pins = run.get("bases") or {}
    best = None
    for name in trial.get("bases") or {}:
        pin = pins.get(name) or {}
        total = pin.get("bytes")
        if not isinstance(total, int):
            continue
        acc = 0
        for k, b in enumerate(layer_bytes, 1):
            acc += b
            if acc == total and (best is None or k > best[2]):
                best = (name, pin, k)
                break
            if acc > total:
                break
    return (best[0], {**best[1], "_layers": best[2]}) if best else None


def derive_attribution(run: dict, trial: dict) -> None:
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
        name, pin, k = found[0], found[1], found[1]["_layers"]
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
        image.setdefault("attribution", "derived by the gate from layer_bytes and the pinned base")


def _definitions(runs: list[dict]) -> dict[str, dict]:
    """{experiment: definition}, the latest run's definition winning."""
    out: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: r["run_id"]):
        out.update(run.get("experiments") or {})
    return out


def _number(value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{flag} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UsageError(f"{flag} must be a finite number, got {value}")
    return float(value)


def validate_thresholds(size_bytes, size_pct, layers, time_ratio, conf) -> None:
    """Every threshold finite and in range; UsageError (exit 2) with the flag's name otherwise."""
    if _number(size_bytes, "--size-bytes") < 0 or int(size_bytes) != size_bytes:
        raise UsageError(f"--size-bytes must be a whole number >= 0, got {size_bytes}")
    if size_pct is not None and not 0 <= _number(size_pct, "--size-pct") <= 1e6:
        raise UsageError(f"--size-pct must be between 0 and 1000000, got {size_pct}")
    if _number(layers, "--layers") < 0 or int(layers) != layers:
        raise UsageError(f"--layers must be a whole number >= 0, got {layers}")
    if not 0 < _number(time_ratio, "--time-ratio") <= 1e6:
        raise UsageError(f"--time-ratio must be > 0 and <= 1000000, got {time_ratio}")
    if not 0 < _number(conf, "--conf") < 1:
        raise UsageError(f"--conf must be between 0 and 1, got {conf}")


_validate = validate_thresholds


# --------------------------------------------------------------------------- the gate


def gate(
    baseline_dir: Path,
    current_dir: Path,
    *,
    size_bytes: int = 0,
    size_pct: float | None = None,
    layers: int = 0,
    time_ratio: float = 1.10,
    conf: float = 0.95,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    across_machines: bool = False,
    whole_image: bool = False,
) -> GateResult:
    """Compare `current_dir` with `baseline_dir` (see the module docstring for the rules)."""
    _validate(size_bytes, size_pct, layers, time_ratio, conf)
    limits = {"size_bytes": size_bytes, "size_pct": size_pct, "layers": layers, "time_ratio": time_ratio}
    result = GateResult(
        str(baseline_dir),
        str(current_dir),
        thresholds={**limits, "conf": conf, "across_machines": across_machines, "whole_image": whole_image},
    )
    base_runs, base = _load(baseline_dir, "baseline", result.notes)
    cur_runs, cur = _load(current_dir, "current", result.notes)
    base, cur = _pair_machines(base, cur, result, base_runs, cur_runs, across_machines=across_machines)
    result.bases = {
        "baseline": _base_ids(base_runs, base),
        "current": _base_ids(cur_runs, cur),
    }

    base_groups, cur_groups = _groups(base), _groups(cur)
    allowances = declared_allowances([r.get("experiments") or {} for r in base_runs + cur_runs])
    for key in sorted(set(base_groups) & set(cur_groups)):
        check = _metric_check(
            key,
            base_groups,
            cur_groups,
            result,
            limits=limits,
            allowances=allowances,
            conf=conf,
            n_boot=n_boot,
            seed=seed,
            whole_image=whole_image,
            across_machines=across_machines,
        )
        if check is not None:
            result.checks.append(check)
    if across_machines:
        result.notes.append(
            "across machines: absolute times are not compared; exact metrics and the verdicts of "
            "claims (ratios within each run) are"
        )
    _note_one_sided(base_groups, cur_groups, result.notes)
    _mark_changed_inputs(result, _changed_inputs(base_runs, base, cur_runs, cur))
    sides = (base_runs, base, _definitions(base_runs)), (cur_runs, cur, _definitions(cur_runs))
    result.checks += _verdict_checks(*sides, n_boot=n_boot, seed=seed, notes=result.notes)
    return result


def index_cutoff_of(run: dict) -> str | None:
    """The lab index's cutoff a run was served with (None: none recorded, as in runs before it existed)."""
    lab = (run.get("fingerprint") or {}).get("lab")
    value = lab.get("index_uploaded_before") if isinstance(lab, dict) else None
    return value if isinstance(value, str) else None


def _cutoff_text(values: set[str | None]) -> str:
    return ", ".join(sorted(v or "none recorded" for v in values))


def _changed_inputs(base_runs: list[dict], base, cur_runs: list[dict], cur) -> dict[str, str]:
    """{experiment: why its package inputs differ} for experiments whose compared runs (the ones in each
    side's table) were served by the lab index with different cutoffs."""

    def per_experiment(runs: list[dict], df) -> dict[str, set[str | None]]:
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


def _mark_changed_inputs(result: GateResult, changed: dict[str, str]) -> None:
    """A size or layer growth in an experiment whose package inputs changed is said, not failed."""
    for check in result.checks:
        if check.status == "fail" and check.kind in ("size", "layers") and check.experiment in changed:
            check.status = "inputs-changed"
            check.message += (
                f"; inputs changed, not a regression of the same inputs: {changed[check.experiment]}"
            )
    if changed:
        result.notes.append(
            f"inputs changed for {len(changed)} experiment(s) ({', '.join(changed)}): the lab index's "
            "package cutoff differs between the sides; their size growth is reported, not failed"
        )


def _groups(df) -> dict[tuple, Any]:
    """{(machine, experiment, variant, scenario, metric): values} of a tidy table."""
    return {k: g["value"].to_numpy() for k, g in df.groupby(KEY, sort=True)} if not df.empty else {}


def _metric_check(
    key: tuple,
    base_groups: dict,
    cur_groups: dict,
    result: GateResult,
    *,
    limits: dict[str, Any],
    allowances: dict,
    conf: float,
    n_boot: int,
    seed: int,
    whole_image: bool,
    across_machines: bool,
) -> Check | None:
    """The check of one metric cell present on both sides (None when it is not gated here): whole
    sizes attributed to own layers, base metrics as base changes, the rest compared."""
    cell = key[:4]
    if key[4] in ATTRIBUTED and not whole_image:
        own = ATTRIBUTED[key[4]]
        if (*cell, own) in base_groups and (*cell, own) in cur_groups:
            return _attributed(key, base_groups, cur_groups, result.bases)
    if (
        key[4] == "layers"
        and not whole_image
        and (*cell, "own_layers") in base_groups
        and (*cell, "own_layers") in cur_groups
    ):
        return None  # our layers are gated as own_layers; the base's count is the base's business
    if key[4] in BASE_METRICS.values():
        return _base_check(key, base_groups[key], cur_groups[key], result.bases)
    if across_machines and kind_of(key[4]) == "time":
        return None
    return _compare(
        key,
        base_groups[key],
        cur_groups[key],
        **limits,
        declared=_larger(
            allowances.get((key[1], key[2], key[4])), _same_content_allowance(key, base_groups, cur_groups)
        ),
        conf=conf,
        n_boot=n_boot,
        seed=seed,
        notes=result.notes,
    )


def _pair_machines(base, cur, result: GateResult, base_runs, cur_runs, *, across_machines: bool):
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


def _base_ids(runs: list[dict], df) -> dict:
    """{(machine, experiment, variant, scenario): sorted base image ids} of the trials in `df`'s runs."""
    if df.empty:
        return {}
    chosen = set(zip(df["run_id"], df["experiment"], strict=True))
    out: dict = {}
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


def _ids_text(ids: list[str]) -> str:
    return ", ".join(fmt.short_digest(i) for i in ids) or "unknown"


def _base_move(cell: tuple, bases: dict) -> str:
    def ids(side: str) -> list[str]:
        table = bases.get(side) or {}
        if cell in table:
            return table[cell]
        return sorted({i for k, v in table.items() if k[1:] == cell[1:] for i in v})

    b, c = ids("baseline"), ids("current")
    if not b and not c:
        return "base ids not recorded"
    if b == c:
        return f"same base {_ids_text(b)}"
    return f"base {_ids_text(b)} -> {_ids_text(c)}"


def _signed(delta: float) -> str:
    sign = "+" if delta > 0 else "-" if delta < 0 else "±"
    return f"{sign}{fmt.human_bytes(abs(delta))}" + (f" ({int(delta):+,} B)" if abs(delta) >= 1000 else "")


def _attributed(key, base_groups, cur_groups, bases) -> Check:
    """A whole-image size split into the base's change (drift) and our layers' change (gated separately)."""
    machine, experiment, variant, scenario, metric = key
    cell = key[:4]
    own = ATTRIBUTED[metric]
    mb, mc = _median(base_groups[key]), _median(cur_groups[key])
    ob, oc = _median(base_groups[(*cell, own)]), _median(cur_groups[(*cell, own)])
    own_delta = oc - ob
    base_delta = (mc - mb) - own_delta
    kind = "compressed " if metric.endswith("compressed") else ""
    if base_delta:
        base_text = (
            f"the base grew by {_signed(base_delta)[1:]}"
            if base_delta > 0
            else (f"the base shrank by {_signed(base_delta)[1:]}")
        )
    else:
        base_text = "the base did not change size"
    own_text = (
        f"our layers grew by {_signed(own_delta)[1:]}"
        if own_delta > 0
        else f"our layers shrank by {_signed(own_delta)[1:]}"
        if own_delta < 0
        else "our layers did not change size"
    )
    msg = (
        f"{variant} ({experiment}, {scenario}): {kind}image {_signed(mc - mb)}: {base_text} "
        f"({_base_move(cell, bases)}); {own_text} (gated as {own})"
    )
    return Check(
        kind="attributed",
        machine=machine,
        experiment=experiment,
        variant=variant,
        scenario=scenario,
        metric=metric,
        status="changed" if base_delta else "pass",
        baseline=mb,
        current=mc,
        delta=mc - mb,
        pct=(100.0 * (mc - mb) / mb) if mb else None,
        n_baseline=len(base_groups[key]),
        n_current=len(cur_groups[key]),
        message=msg,
    )


def _base_check(key, b, c, bases) -> Check:
    """The base's bytes: a change is drift, reported with the base digests, never a failure."""
    machine, experiment, variant, scenario, metric = key
    mb, mc = _median(b), _median(c)
    delta = mc - mb
    what = "compressed bytes" if metric.endswith("compressed") else "bytes"
    msg = f"{variant} ({experiment}, {scenario}): base {what} {_signed(delta)} ({_base_move(key[:4], bases)})"
    return Check(
        kind="base",
        machine=machine,
        experiment=experiment,
        variant=variant,
        scenario=scenario,
        metric=metric,
        status="changed" if delta else "pass",
        baseline=mb,
        current=mc,
        delta=delta,
        pct=(100.0 * delta / mb) if mb else None,
        n_baseline=len(b),
        n_current=len(c),
        message=msg + (": drift, not a regression" if delta else ""),
    )


#: how far a compressed size may move when the uncompressed bytes are the same to the byte on both
#: sides: equal-sized content that differs only in what builds cannot pin (timestamps, generated file
#: contents) compresses a few bytes differently (observed: 1-17 B on 2.7-186 MB); a real growth of the
#: transfer size at an unchanged uncompressed size (less compressible content) is far larger
SAME_CONTENT_REL = 0.001


def _same_content_allowance(key: tuple, base_groups: dict, cur_groups: dict) -> tuple[float, str] | None:
    """(bytes, why) a `*_compressed` size may move when its uncompressed size is one value in every
    baseline and current trial; None otherwise."""
    metric = key[4]
    if not metric.endswith("_compressed"):
        return None
    plain = (*key[:4], metric.removesuffix("_compressed"))
    if plain not in base_groups or plain not in cur_groups:
        return None
    values = {float(v) for v in base_groups[plain]} | {float(v) for v in cur_groups[plain]}
    if len(values) != 1 or not len(base_groups[key]):
        return None
    allowed = SAME_CONTENT_REL * _median(base_groups[key])
    why = (
        f"the uncompressed {plain[4]} is {int(values.pop()):,} B in every trial on both sides, so only the "
        f"compression of equal-sized content moved (allowed {SAME_CONTENT_REL:.1%} of the compressed size)"
    )
    return allowed, why


def _larger(a: tuple[float, str] | None, b: tuple[float, str] | None) -> tuple[float, str] | None:
    """The larger of two (bytes, why) allowances (either may be None)."""
    if a is None or b is None:
        return a or b
    return a if a[0] >= b[0] else b


def _median(values) -> float:
    return float(np.median(values))


def _compare(
    key, b, c, *, size_bytes, size_pct, layers, time_ratio, conf, n_boot, seed, notes, declared=None
) -> Check | None:
    """One metric cell, baseline values `b` against current `c`: exact metrics (sizes, layer counts,
    other exact values) and times are judged; counts, flags and rates are left to the report."""
    machine, experiment, variant, scenario, metric = key
    base = {
        "machine": machine,
        "experiment": experiment,
        "variant": variant,
        "scenario": scenario,
        "metric": metric,
        "n_baseline": len(b),
        "n_current": len(c),
    }
    kind = kind_of(metric)
    if kind == "exact":
        _note_spread(b, c, f"{experiment}/{variant}/{scenario}", metric, notes)
        if unit_of(metric) == "B":
            known = _known_nondeterminism(b, c, declared)
            return _size_check(base, _median(b), _median(c), known, size_bytes, size_pct)
        if metric in LAYER_METRICS:
            return _layers_check(base, _median(b), _median(c), layers)
        return _exact_check(base, _median(b), _median(c))
    if kind == "time":
        return _time_check(base, b, c, time_ratio=time_ratio, conf=conf, n_boot=n_boot, seed=seed)
    return None  # counts, flags, rates: described by the report, not gated


def _head(base: dict[str, Any]) -> str:
    return f"{base['variant']} ({base['experiment']}, {base['scenario']})"


def _note_spread(b, c, where: str, metric: str, notes: list[str]) -> None:
    """An exact metric that differs between one side's trials is noted (and compared by the median)."""
    for side, values in (("baseline", b), ("current", c)):
        if len(set(values.tolist())) > 1:
            notes.append(
                f"{where}: {metric} differs between {side} trials "
                f"({human_value(metric, min(values))} – {human_value(metric, max(values))}); "
                "compared by the median"
            )


def _known_nondeterminism(b, c, declared: tuple[float, str] | None) -> tuple[float, str]:
    """(bytes, why) a size may move without it being a regression: the larger of the experiment's
    declared allowance and the spread between one side's own trials (harness/gate_inputs.py)."""
    sb, sc = spread(b), spread(c)
    known = (0.0, "")
    if sb or sc:
        which = "baseline" if sb >= sc else "current"
        known = (max(sb, sc), f"the {which} trials' own spread ({int(max(sb, sc)):,} B)")
    if declared and declared[0] > known[0]:
        known = declared
    return known


def _size_check(
    base: dict[str, Any],
    mb: float,
    mc: float,
    known: tuple[float, str],
    size_bytes: int,
    size_pct: float | None,
) -> Check:
    """An exact size: fails when it grew by more than the allowance plus its known nondeterminism
    (`known`: bytes and why). Growth past the allowance but within the known nondeterminism is
    "nondeterministic": said, not failed."""
    metric = base["metric"]
    noise, why = known
    delta = mc - mb
    pct = (100.0 * delta / mb) if mb else None
    over_pct = size_pct is None or pct is None or pct > size_pct
    if delta > size_bytes + noise and over_pct:
        status = "fail"
    elif delta > size_bytes and over_pct:
        status = "nondeterministic"
    else:
        status = "improved" if delta < -noise else "pass"
    limit = f"{size_bytes:,} B" + (f" and {size_pct:g} %" if size_pct is not None else "")
    msg = (
        f"{_head(base)}: {metric} {human_value(metric, mb)} → "
        f"{human_value(metric, mc)} ({int(delta):+,} B" + (f", {_pct(pct)}" if pct is not None else "") + ")"
    )
    if status == "fail":
        msg += f": grew by more than {limit}" + (f" plus its known nondeterminism, {why}" if noise else "")
    elif status == "nondeterministic":
        msg += f": known nondeterminism, not a regression: {why}"
    elif noise and delta > 0:
        msg += f": within {why}"
    return Check(
        kind="size", status=status, baseline=mb, current=mc, delta=delta, pct=pct, message=msg, **base
    )


def _layers_check(base: dict[str, Any], mb: float, mc: float, layers: int) -> Check:
    """A layer count: fails with more than `layers` extra layers."""
    delta = mc - mb
    pct = (100.0 * delta / mb) if mb else None
    status = "fail" if delta > layers else "improved" if delta < 0 else "pass"
    msg = f"{_head(base)}: layers {int(mb)} → {int(mc)}"
    if status == "fail":
        msg += f": more than {layers} extra layer(s)"
    return Check(
        kind="layers", status=status, baseline=mb, current=mc, delta=delta, pct=pct, message=msg, **base
    )


def _exact_check(base: dict[str, Any], mb: float, mc: float) -> Check:
    """Any other exact value: a change is reported, not gated."""
    metric = base["metric"]
    delta = mc - mb
    return Check(
        kind="exact",
        status="changed" if mb != mc else "pass",
        baseline=mb,
        current=mc,
        delta=delta,
        pct=(100.0 * delta / mb) if mb else None,
        message=f"{_head(base)}: {metric} {human_value(metric, mb)} → "
        f"{human_value(metric, mc)} (reported, not gated)",
        **base,
    )


def _time_check(
    base: dict[str, Any], b, c, *, time_ratio: float, conf: float, n_boot: int, seed: int
) -> Check:
    """A time: fails when the lower bound of the current/baseline ratio's interval exceeds
    `time_ratio`, improves when the upper bound is below 1."""
    metric = base["metric"]
    r = stats.ratio_ci(b, c, n_boot=n_boot, seed=seed, conf=conf)
    mb, mc = _median(b), _median(c)
    check = Check(
        kind="time",
        status="pass",
        baseline=mb,
        current=mc,
        delta=mc - mb,
        pct=(100.0 * (mc - mb) / mb) if mb else None,
        ratio=r["ratio"],
        low=r["low"],
        high=r["high"],
        p_value=r["p_value"],
        **base,
    )
    head = f"{_head(base)}: {metric} {human_value(metric, mb)} → {human_value(metric, mc)}"
    if r["ratio"] is None or r["low"] is None or r["high"] is None:  # low and high are None together
        check.status = "skipped"
        check.message = f"{head}: not judged ({r['reason']})"
        return check
    ci = (
        f"{fmt.human_ratio(r['ratio'])}, {round(conf * 100):d} % CI {fmt.human_ratio(r['low'])}–"
        f"{fmt.human_ratio(r['high'])}"
    )
    if r["low"] > time_ratio:
        check.status = "fail"
        check.message = f"{head} ({ci}): slower, the interval is above {fmt.human_ratio(time_ratio)}"
    elif r["high"] < 1:
        check.status = "improved"
        check.message = f"{head} ({ci}): faster"
    else:
        check.message = f"{head} ({ci})"
    return check


def _note_one_sided(base_groups: dict, cur_groups: dict, notes: list[str]) -> None:
    def cells(keys):
        return {(m, e, v, s) for m, e, v, s, _ in keys}

    only_base = sorted(cells(base_groups) - cells(cur_groups))
    only_cur = sorted(cells(cur_groups) - cells(base_groups))
    for label, items in (
        ("in the baseline only (not measured now)", only_base),
        ("new in the current results (no baseline)", only_cur),
    ):
        if items:
            by_exp: dict[str, list[str]] = {}
            for _m, e, v, s in items:
                by_exp.setdefault(e, []).append(f"{v}/{s}")
            notes.append(
                f"{label}: "
                + "; ".join(f"{e} ({', '.join(sorted(set(vs)))})" for e, vs in sorted(by_exp.items()))
            )


def _claim_id(c: dict) -> tuple:
    return (
        c["machine"],
        c["experiment"],
        c["metric"],
        c["scenario"],
        c.get("baseline"),
        c.get("candidate"),
        c.get("variant"),
        c.get("op"),
        c.get("value"),
        c.get("expect"),
    )


def _claim_name(c: dict) -> str:
    if c.get("label"):
        return c["label"]
    if c.get("expect"):
        return f"{c['metric']}: {c['candidate']} {c['expect']} than {c['baseline']} ({c['scenario']})"
    return f"{c['metric']} of {c.get('variant')} {c.get('op')} {c.get('value')} ({c['scenario']})"


def _verdict_checks(baseline: Side, current: Side, *, n_boot, seed, notes) -> list[Check]:
    """Every claim judged on both sides (the analysis of each side's compared rows, without the
    report's calibration rule): a supported claim that is no longer supported (or no longer measured
    although its experiment ran) fails; other moves are improvements or changes."""
    if not any(d.get("claims") for d in list(baseline[2].values()) + list(current[2].values())):
        return []
    judged = [
        analyze(runs, table=df, definitions=defs, n_boot=n_boot, seed=seed).claims
        for runs, df, defs in (baseline, current)
    ]
    before = {_claim_id(c): c for c in judged[0]}
    after = {_claim_id(c): c for c in judged[1]}
    out = []
    for cid in sorted(before, key=str):
        b = before[cid]
        a = after.get(cid)
        if b["verdict"] == NOT_MEASURED:
            continue
        if a is None or a["verdict"] == NOT_MEASURED:
            missing = _missing_claim(b, a, b["experiment"] in set(current[1]["experiment"]), notes)
            out += [missing] if missing else []
            continue
        out.append(_verdict_check(b, a))
    return out


def _claim_check(c: dict, **fields: Any) -> Check:
    """A verdict check on claim `c` (its machine, experiment, candidate, scenario and metric)."""
    return Check(
        kind="verdict",
        machine=c["machine"],
        experiment=c["experiment"],
        variant=c.get("candidate") or c.get("variant") or "",
        scenario=c["scenario"],
        metric=c["metric"],
        **fields,
    )


def _missing_claim(b: dict, a: dict | None, measured_now: bool, notes: list[str]) -> Check | None:
    """A claim the current results do not measure: a failure when it was supported and its experiment
    ran, else a note (nothing when the experiment did not run at all)."""
    if measured_now and b["verdict"] == "supported":
        return _claim_check(
            b,
            status="fail",
            baseline=b["verdict"],
            current=NOT_MEASURED,
            message=f"{b['experiment']}: {_claim_name(b)}: supported → missing from the "
            "current results (the experiment ran, this claim's cells did not)",
        )
    if measured_now or a is not None:
        notes.append(f"claim not measured in the current results: {b['experiment']}: {_claim_name(b)}")
    return None


def _verdict_check(b: dict, a: dict) -> Check:
    """A claim measured on both sides: pass when its verdict held, fail when it lost "supported"."""
    if a["verdict"] == b["verdict"]:
        status = "pass"
    elif b["verdict"] == "supported":
        status = "fail"
    elif a["verdict"] == "supported":
        status = "improved"
    else:
        status = "changed"
    return _claim_check(
        a,
        status=status,
        baseline=b["verdict"],
        current=a["verdict"],
        ratio=a.get("ratio"),
        low=a.get("low"),
        high=a.get("high"),
        p_value=a.get("p"),
        n_baseline=int(a.get("n_baseline") or 0),
        n_current=int(a.get("n_candidate") or 0),
        message=f"{a['experiment']}: {_claim_name(a)}: {b['verdict']} → {a['verdict']} ({a.get('figure', '')})",
    )


# --------------------------------------------------------------------------- output


def _pct(p: float) -> str:
    return ("+" if p > 0 else "") + f"{fmt.sig(p, 2)} %"


def _threshold_text(t: dict) -> str:
    size = f"{t['size_bytes']:,} B" + (f" and {t['size_pct']:g} %" if t.get("size_pct") is not None else "")
    which = "whole images and own layers" if t.get("whole_image") else "own layers"
    times = (
        "absolute times are not compared (across machines)"
        if t.get("across_machines")
        else f"a time fails when the lower bound of its {round(t['conf'] * 100):d} % interval of "
        f"current/baseline is above ×{t['time_ratio']:.2f}"
    )
    return (
        f"sizes of {which} may grow by at most {size} (base changes are drift); layers by at most "
        f"{t['layers']}; {times}; a supported claim must stay supported"
    )


def render_text(result: GateResult) -> str:
    """A short plain-text summary for the terminal."""
    n_fail = len(result.failures)
    head = "PASS" if result.passed else f"FAIL: {n_fail} regression{'s' if n_fail != 1 else ''}"
    if result.claims_lost:
        head += f" ({len(result.claims_lost)} supported claim(s) lost)"
    lines = [
        f"gate: {head} ({len(result.checks)} checks; baseline {result.baseline_dir}, "
        f"current {result.current_dir}; exit {result.exit_code})",
        f"thresholds: {_threshold_text(result.thresholds)}",
    ]
    for c in result.failures:
        lines.append(f"  FAIL  [{c.kind}] {c.message}")
    for c in result.nondeterministic:
        lines.append(f"  known [{c.kind}] {c.message}")
    for c in result.inputs_changed:
        lines.append(f"  input [{c.kind}] {c.message}")
    for c in result.improvements:
        lines.append(f"  better [{c.kind}] {c.message}")
    for c in result.base_changes:
        lines.append(f"  base  [{c.kind}] {c.message}")
    skipped = [c for c in result.checks if c.status == "skipped"]
    if skipped:
        lines.append(f"  {len(skipped)} time check(s) not judged (fewer than 2 trials on a side)")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _md_value(c: Check, v: Any) -> str:
    return v if isinstance(v, str) else human_value(c.metric, v)


def _md_change(c: Check) -> str:
    """The change column: a time's ratio with its interval, a size's or count's signed delta, a verdict's move."""
    if c.kind == "time" and c.ratio is not None:
        text = fmt.human_ratio(c.ratio)
        if c.low is not None and c.high is not None:
            text += f" ({fmt.human_ratio(c.low)}–{fmt.human_ratio(c.high)})"
        return text
    if c.kind in ("size", "layers", "exact") and c.delta is not None:
        text = f"{int(c.delta):+,}" + (" B" if unit_of(c.metric) == "B" else "")
        return text + (f" ({_pct(c.pct)})" if c.pct is not None and c.delta else "")
    return f"{c.baseline} → {c.current}" if c.kind == "verdict" else ""


_MD_COLUMNS = [
    "status",
    "kind",
    "experiment",
    "variant",
    "scenario",
    "metric",
    "baseline",
    "current",
    "change",
    "machine",
]


def _md_checks_table(checks: list[Check]) -> str:
    """Every check as one row of a Markdown table."""
    rows = [
        [
            c.status,
            c.kind,
            c.experiment,
            c.variant,
            c.scenario,
            c.metric,
            _md_value(c, c.baseline),
            _md_value(c, c.current),
            _md_change(c),
            c.machine,
        ]
        for c in checks
    ]
    return fmt.md_table(_MD_COLUMNS, rows, ["l", "l", "l", "l", "l", "l", "r", "r", "r", "l"])


def _md_lists(result: GateResult) -> list[str]:
    """The regressions, base changes and improvements as Markdown bullet lists (each when present)."""
    out: list[str] = []
    if result.failures:
        out += ["### Regressions", ""]
        out += [
            f"- **{fmt.md_escape(c.experiment)} / {fmt.md_escape(c.variant)}** ({c.kind}): {fmt.md_escape(c.message)}"
            for c in result.failures
        ]
        out.append("")
    if result.nondeterministic:
        out += ["### Known nondeterminism (not gated)", ""]
        out += [f"- {fmt.md_escape(c.message)}" for c in result.nondeterministic]
        out.append("")
    if result.inputs_changed:
        out += ["### Inputs changed (not gated)", ""]
        out += [f"- {fmt.md_escape(c.message)}" for c in result.inputs_changed]
        out.append("")
    if result.base_changes:
        out += ["### Base changes (drift, not gated)", ""]
        out += [f"- {fmt.md_escape(c.message)}" for c in result.base_changes]
        out.append("")
    if result.improvements:
        out += ["### Improvements", ""]
        out += [f"- {fmt.md_escape(c.message)}" for c in result.improvements]
        out.append("")
    return out


def render_markdown(result: GateResult) -> str:
    """A Markdown summary for a CI job summary ($GITHUB_STEP_SUMMARY): verdict, regressions,
    improvements, every check in a collapsed table, notes."""
    n_fail = len(result.failures)
    title = "passed" if result.passed else f"failed: {n_fail} regression{'s' if n_fail != 1 else ''}"
    out = [
        f"## imagebench gate: {title}",
        "",
        f"Baseline `{fmt.md_escape(result.baseline_dir)}` vs current `{fmt.md_escape(result.current_dir)}`, "
        f"machines compared: {', '.join(result.machines.get('compared', [])) or 'none'}. "
        f"Exit code {result.exit_code}.",
        "",
        f"Thresholds: {_threshold_text(result.thresholds)}.",
        "",
    ]
    out += _md_lists(result)
    counts: dict[str, int] = {}
    for c in result.checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    if result.checks:
        out += [
            f"<details><summary>All {len(result.checks)} checks ({summary})</summary>",
            "",
            _md_checks_table(result.checks),
            "</details>",
            "",
        ]
    if result.notes:
        out += ["### Notes", ""] + [f"- {fmt.md_escape(n)}" for n in result.notes] + [""]
    return "\n".join(out)


def run_gate(
    baseline: Path,
    current: Path,
    *,
    size_bytes: int = 0,
    size_pct: float | None = None,
    layers: int = 0,
    time_ratio: float = 1.10,
    conf: float = 0.95,
    summary: Path | None = None,
    json_out: bool = False,
    across_machines: bool = False,
    whole_image: bool = False,
) -> tuple[int, str]:
    """What `imagebench gate` does: (exit code, text to print). With `summary`, the Markdown summary is
    appended to that file (e.g. $GITHUB_STEP_SUMMARY, which other steps write to as well).
    Raises UsageError (2) for bad thresholds and SchemaError (4) for unreadable results."""
    result = gate(
        baseline,
        current,
        size_bytes=size_bytes,
        size_pct=size_pct,
        layers=layers,
        time_ratio=time_ratio,
        conf=conf,
        across_machines=across_machines,
        whole_image=whole_image,
    )
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(render_markdown(result) + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write the summary to {summary}: {exc.strerror or exc}") from None
    if json_out:
        return result.exit_code, json.dumps(result.to_dict(), indent=1, default=json_default)
    return result.exit_code, render_text(result)
