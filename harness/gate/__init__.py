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
  (harness/gate/inputs.py), or, for a compressed size whose uncompressed size is one value in every
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

The package, by concept: `load` (each side's runs, machine identity, own-layer sizes derived for old
runs), `checks` (sizes, layers, exact metrics, times), `attribution` (a whole image split into the
base's change and ours), `claims` (verdicts through `harness.analysis.analyze`), `render` (text and
Markdown), `inputs` (size fields checked, known nondeterminism), `result` (Check, GateResult, the
shapes they share); `gate` and `run_gate` here put them together.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.errors import UsageError
from harness.gate.checks import groups, mark_changed_inputs, metric_check, note_one_sided
from harness.gate.claims import verdict_checks
from harness.gate.inputs import declared_allowances
from harness.gate.load import (
    base_ids,
    changed_inputs,
    derive_attribution,
    hardware_of,
    index_cutoff_of,
    latest_definitions,
    load_side,
    machine_key,
    pair_machines,
)
from harness.gate.render import render_markdown, render_text
from harness.gate.result import (
    EXIT_CLAIM_LOST,
    N_BOOT,
    POOLED,
    SEED,
    Check,
    GateRefused,
    GateResult,
    Limits,
    Thresholds,
)
from harness.results import json_default

__all__ = [
    "EXIT_CLAIM_LOST",
    "N_BOOT",
    "POOLED",
    "SEED",
    "Check",
    "GateRefused",
    "GateResult",
    "derive_attribution",
    "gate",
    "hardware_of",
    "index_cutoff_of",
    "machine_key",
    "render_markdown",
    "render_text",
    "run_gate",
    "validate_thresholds",
]


def _number(value: object, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{flag} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UsageError(f"{flag} must be a finite number, got {value}")
    return float(value)


def validate_thresholds(
    size_bytes: object, size_pct: object, layers: object, time_ratio: object, conf: object
) -> None:
    """Every threshold finite and in range; UsageError (exit 2) with the flag's name otherwise (the
    values as a caller may pass them: any type)."""
    if (n := _number(size_bytes, "--size-bytes")) < 0 or int(n) != n:
        raise UsageError(f"--size-bytes must be a whole number >= 0, got {size_bytes}")
    if size_pct is not None and not 0 <= _number(size_pct, "--size-pct") <= 1e6:
        raise UsageError(f"--size-pct must be between 0 and 1000000, got {size_pct}")
    if (n := _number(layers, "--layers")) < 0 or int(n) != n:
        raise UsageError(f"--layers must be a whole number >= 0, got {layers}")
    if not 0 < _number(time_ratio, "--time-ratio") <= 1e6:
        raise UsageError(f"--time-ratio must be > 0 and <= 1000000, got {time_ratio}")
    if not 0 < _number(conf, "--conf") < 1:
        raise UsageError(f"--conf must be between 0 and 1, got {conf}")


_validate = validate_thresholds


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
    limits: Limits = {
        "size_bytes": size_bytes,
        "size_pct": size_pct,
        "layers": layers,
        "time_ratio": time_ratio,
    }
    thresholds: Thresholds = {
        **limits,
        "conf": conf,
        "across_machines": across_machines,
        "whole_image": whole_image,
    }
    result = GateResult(str(baseline_dir), str(current_dir), thresholds=thresholds)
    base_runs, base = load_side(baseline_dir, "baseline", result.notes)
    cur_runs, cur = load_side(current_dir, "current", result.notes)
    base, cur = pair_machines(base, cur, result, base_runs, cur_runs, across_machines=across_machines)
    result.bases = {
        "baseline": base_ids(base_runs, base),
        "current": base_ids(cur_runs, cur),
    }

    base_groups, cur_groups = groups(base), groups(cur)
    allowances = declared_allowances([r.get("experiments") or {} for r in base_runs + cur_runs])
    for key in sorted(set(base_groups) & set(cur_groups)):
        check = metric_check(
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
    note_one_sided(base_groups, cur_groups, result.notes)
    mark_changed_inputs(result, changed_inputs(base_runs, base, cur_runs, cur))
    sides = (base_runs, base, latest_definitions(base_runs)), (cur_runs, cur, latest_definitions(cur_runs))
    result.checks += verdict_checks(*sides, n_boot=n_boot, seed=seed, notes=result.notes)
    return result


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
