"""The regression gate: compare a current results directory with a baseline, fail on regressions.

Per machine x experiment x variant x scenario (the latest run per machine and experiment on
each side, as the report shows them):

- **Sizes** (`image_bytes`, `image_bytes_compressed` and every other exact byte metric) are
  exact: a growth of more than `size_bytes` bytes fails, naming the variant; with `size_pct`
  the growth must also exceed that percentage (an absolute floor plus a relative threshold).
  With the defaults (0 bytes, no percentage) any growth fails. Shrinking never fails.
- **Layers** (`layers`): more than `layers` extra layers fails.
- **Times** (every metric of kind `time`: `build_seconds`, `pull_seconds` ...) are compared
  statistically: the ratio of medians current / baseline gets a bootstrap confidence interval
  (`conf`, default 95 %), and the check fails only when the interval's *lower* bound is above
  `time_ratio` (default 1.10): noise alone almost never does that. One trial on a side gives
  no interval: that check is skipped with a reason.
- **Verdicts**: a claim that was "supported" in the baseline and is "not supported" or
  "inconclusive" in the current results fails (a practice stopped paying off).

Machines: when both sides have runs from the same machine(s), only those are compared, machine
by machine; otherwise everything is pooled across machines, and the result says so.
Anything measured on one side only is listed in the notes, never failed (a CI shard measures
part of the catalog).

Exit codes (`GateResult.exit_code`, `run_gate`): 0 pass, 1 regression (ExitStatus.FAILURE);
usage errors raise UsageError (2) and unreadable results SchemaError (4).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ExitStatus, SchemaError, UsageError
from harness.metrics import kind_of, unit_of

KEY = ["machine", "experiment", "variant", "scenario", "metric"]
LAYER_METRICS = ("layers",)
POOLED = "(pooled)"
N_BOOT = 2000
SEED = 0


@dataclass
class Check:
    kind: str  # size | layers | time | verdict | exact
    machine: str
    experiment: str
    variant: str
    scenario: str
    metric: str
    status: str  # fail | pass | improved | skipped | changed
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

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def improvements(self) -> list[Check]:
        return [c for c in self.checks if c.status == "improved"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return int(ExitStatus.OK if self.passed else ExitStatus.FAILURE)

    def to_dict(self) -> dict:
        return {
            "schema": "imagebench.gate",
            "schema_version": 1,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "baseline": self.baseline_dir,
            "current": self.current_dir,
            "thresholds": self.thresholds,
            "machines": self.machines,
            "notes": self.notes,
            "failures": [asdict(c) for c in self.failures],
            "checks": [asdict(c) for c in self.checks],
        }


# --------------------------------------------------------------------------- loading


def _load(directory: Path, label: str, notes: list[str]) -> tuple[list[dict], Any]:
    from harness.analysis import select_latest
    from harness.results import load_runs

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
    _, df = select_latest(runs)
    return runs, df


def _definitions(runs: list[dict]) -> dict[str, dict]:
    """{experiment: definition}, the latest run's definition winning."""
    out: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: r["run_id"]):
        out.update(run.get("experiments") or {})
    return out


def _validate(size_bytes, size_pct, layers, time_ratio, conf) -> None:
    if size_bytes is None or size_bytes < 0:
        raise UsageError(f"--size-bytes must be >= 0, got {size_bytes}")
    if size_pct is not None and size_pct < 0:
        raise UsageError(f"--size-pct must be >= 0, got {size_pct}")
    if layers is None or layers < 0:
        raise UsageError(f"--layers must be >= 0, got {layers}")
    if time_ratio is None or time_ratio <= 0:
        raise UsageError(f"--time-ratio must be > 0, got {time_ratio}")
    if not 0 < conf < 1:
        raise UsageError(f"--conf must be between 0 and 1, got {conf}")


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
) -> GateResult:
    """Compare `current_dir` with `baseline_dir` (see the module docstring for the rules)."""
    _validate(size_bytes, size_pct, layers, time_ratio, conf)
    result = GateResult(
        str(baseline_dir),
        str(current_dir),
        thresholds={
            "size_bytes": size_bytes,
            "size_pct": size_pct,
            "layers": layers,
            "time_ratio": time_ratio,
            "conf": conf,
        },
    )
    base_runs, base = _load(baseline_dir, "baseline", result.notes)
    cur_runs, cur = _load(current_dir, "current", result.notes)
    base, cur = _pair_machines(base, cur, result)

    base_groups = (
        {k: g["value"].to_numpy() for k, g in base.groupby(KEY, sort=True)} if not base.empty else {}
    )
    cur_groups = {k: g["value"].to_numpy() for k, g in cur.groupby(KEY, sort=True)} if not cur.empty else {}
    for key in sorted(set(base_groups) & set(cur_groups)):
        check = _compare(
            key,
            base_groups[key],
            cur_groups[key],
            size_bytes=size_bytes,
            size_pct=size_pct,
            layers=layers,
            time_ratio=time_ratio,
            conf=conf,
            n_boot=n_boot,
            seed=seed,
            notes=result.notes,
        )
        if check is not None:
            result.checks.append(check)
    _note_one_sided(base_groups, cur_groups, result.notes)
    result.checks.extend(
        _verdict_checks(
            base,
            cur,
            _definitions(base_runs),
            _definitions(cur_runs),
            n_boot=n_boot,
            seed=seed,
            notes=result.notes,
        )
    )
    return result


def _pair_machines(base, cur, result: GateResult):
    bm = sorted(set(base["machine"])) if not base.empty else []
    cm = sorted(set(cur["machine"])) if not cur.empty else []
    common = sorted(set(bm) & set(cm))
    result.machines = {"baseline": bm, "current": cm, "compared": common or [POOLED]}
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
        f"{', '.join(cm) or 'none'}): results pooled across machines, so time ratios "
        "include the difference between the machines"
    )
    base, cur = base.copy(), cur.copy()
    base["machine"] = POOLED
    cur["machine"] = POOLED
    return base, cur


def _median(values) -> float:
    import numpy as np

    return float(np.median(values))


def _compare(
    key, b, c, *, size_bytes, size_pct, layers, time_ratio, conf, n_boot, seed, notes
) -> Check | None:
    from harness import stats
    from harness.report import format as fmt

    machine, experiment, variant, scenario, metric = key
    kind = kind_of(metric)
    base = {
        "machine": machine,
        "experiment": experiment,
        "variant": variant,
        "scenario": scenario,
        "metric": metric,
        "n_baseline": len(b),
        "n_current": len(c),
    }
    where = f"{experiment}/{variant}/{scenario}"
    if kind == "exact":
        for side, values in (("baseline", b), ("current", c)):
            if len(set(values.tolist())) > 1:
                notes.append(
                    f"{where}: {metric} differs between {side} trials "
                    f"({fmt.human_value(metric, min(values))} – {fmt.human_value(metric, max(values))}); "
                    "compared by the median"
                )
        mb, mc = _median(b), _median(c)
        delta = mc - mb
        pct = (100.0 * delta / mb) if mb else None
        if unit_of(metric) == "B":
            over_bytes = delta > size_bytes
            over_pct = size_pct is None or pct is None or pct > size_pct
            status = "fail" if (over_bytes and over_pct) else "improved" if delta < 0 else "pass"
            limit = f"{size_bytes:,} B" + (f" and {size_pct:g} %" if size_pct is not None else "")
            msg = (
                f"{variant} ({experiment}, {scenario}): {metric} {fmt.human_value(metric, mb)} → "
                f"{fmt.human_value(metric, mc)} ({int(delta):+,} B"
                + (f", {_pct(pct)}" if pct is not None else "")
                + ")"
            )
            if status == "fail":
                msg += f": grew by more than {limit}"
            return Check(
                kind="size", status=status, baseline=mb, current=mc, delta=delta, pct=pct, message=msg, **base
            )
        if metric in LAYER_METRICS:
            status = "fail" if delta > layers else "improved" if delta < 0 else "pass"
            msg = f"{variant} ({experiment}, {scenario}): layers {int(mb)} → {int(mc)}"
            if status == "fail":
                msg += f": more than {layers} extra layer(s)"
            return Check(
                kind="layers",
                status=status,
                baseline=mb,
                current=mc,
                delta=delta,
                pct=pct,
                message=msg,
                **base,
            )
        status = "changed" if mb != mc else "pass"
        return Check(
            kind="exact",
            status=status,
            baseline=mb,
            current=mc,
            delta=delta,
            pct=pct,
            message=f"{variant} ({experiment}, {scenario}): {metric} {fmt.human_value(metric, mb)} → "
            f"{fmt.human_value(metric, mc)} (reported, not gated)",
            **base,
        )
    if kind == "time":
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
        head = (
            f"{variant} ({experiment}, {scenario}): {metric} {fmt.human_value(metric, mb)} → "
            f"{fmt.human_value(metric, mc)}"
        )
        if r["ratio"] is None or r["low"] is None:
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
    return None  # counts, flags, rates: described by the report, not gated


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


def _verdict_checks(base, cur, base_defs, cur_defs, *, n_boot, seed, notes) -> list[Check]:
    from harness.analysis import NOT_MEASURED, evaluate_claims

    if not any(d.get("claims") for d in list(base_defs.values()) + list(cur_defs.values())):
        return []
    before = {_claim_id(c): c for c in evaluate_claims(base, base_defs, n_boot=n_boot, seed=seed)}
    after = {_claim_id(c): c for c in evaluate_claims(cur, cur_defs, n_boot=n_boot, seed=seed)}
    out = []
    for cid in sorted(before, key=str):
        b = before[cid]
        a = after.get(cid)
        if b["verdict"] == NOT_MEASURED:
            continue
        if a is None or a["verdict"] == NOT_MEASURED:
            if b["experiment"] in set(cur["experiment"]) or a is not None:
                notes.append(
                    f"claim not measured in the current results: {b['experiment']}: {_claim_name(b)}"
                )
            continue
        if a["verdict"] == b["verdict"]:
            status = "pass"
        elif b["verdict"] == "supported":
            status = "fail"
        elif a["verdict"] == "supported":
            status = "improved"
        else:
            status = "changed"
        variant = a.get("candidate") or a.get("variant") or ""
        msg = f"{a['experiment']}: {_claim_name(a)}: {b['verdict']} → {a['verdict']} ({a.get('figure', '')})"
        out.append(
            Check(
                kind="verdict",
                machine=a["machine"],
                experiment=a["experiment"],
                variant=variant,
                scenario=a["scenario"],
                metric=a["metric"],
                status=status,
                baseline=b["verdict"],
                current=a["verdict"],
                ratio=a.get("ratio"),
                low=a.get("low"),
                high=a.get("high"),
                p_value=a.get("p"),
                n_baseline=int(a.get("n_baseline") or 0),
                n_current=int(a.get("n_candidate") or 0),
                message=msg,
            )
        )
    return out


# --------------------------------------------------------------------------- output


def _pct(p: float) -> str:
    from harness.report.format import sig

    return ("+" if p > 0 else "") + f"{sig(p, 2)} %"


def _threshold_text(t: dict) -> str:
    size = f"{t['size_bytes']:,} B" + (f" and {t['size_pct']:g} %" if t.get("size_pct") is not None else "")
    return (
        f"sizes may grow by at most {size}; layers by at most {t['layers']}; a time fails when the "
        f"lower bound of its {round(t['conf'] * 100):d} % interval of current/baseline is above "
        f"×{t['time_ratio']:.2f}; a supported claim must stay supported"
    )


def render_text(result: GateResult) -> str:
    """A short plain-text summary for the terminal."""
    n_fail = len(result.failures)
    head = "PASS" if result.passed else f"FAIL: {n_fail} regression{'s' if n_fail != 1 else ''}"
    lines = [
        f"gate: {head} ({len(result.checks)} checks; baseline {result.baseline_dir}, "
        f"current {result.current_dir}; exit {result.exit_code})",
        f"thresholds: {_threshold_text(result.thresholds)}",
    ]
    for c in result.failures:
        lines.append(f"  FAIL  [{c.kind}] {c.message}")
    for c in result.improvements:
        lines.append(f"  better [{c.kind}] {c.message}")
    skipped = [c for c in result.checks if c.status == "skipped"]
    if skipped:
        lines.append(f"  {len(skipped)} time check(s) not judged (fewer than 2 trials on a side)")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def render_markdown(result: GateResult) -> str:
    """A Markdown summary for a CI job summary ($GITHUB_STEP_SUMMARY): verdict, regressions,
    improvements, every check in a collapsed table, notes."""
    from harness.report.format import human_ratio, human_value, md_escape, md_table

    def value(c: Check, v):
        return v if isinstance(v, str) else human_value(c.metric, v)

    def change(c: Check) -> str:
        if c.kind == "time" and c.ratio is not None:
            text = human_ratio(c.ratio)
            if c.low is not None and c.high is not None:
                text += f" ({human_ratio(c.low)}–{human_ratio(c.high)})"
            return text
        if c.kind in ("size", "layers", "exact") and c.delta is not None:
            text = f"{int(c.delta):+,}" + (" B" if unit_of(c.metric) == "B" else "")
            return text + (f" ({_pct(c.pct)})" if c.pct is not None and c.delta else "")
        return f"{c.baseline} → {c.current}" if c.kind == "verdict" else ""

    def table(checks: list[Check]) -> str:
        return md_table(
            [
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
            ],
            [
                [
                    c.status,
                    c.kind,
                    c.experiment,
                    c.variant,
                    c.scenario,
                    c.metric,
                    value(c, c.baseline),
                    value(c, c.current),
                    change(c),
                    c.machine,
                ]
                for c in checks
            ],
            ["l", "l", "l", "l", "l", "l", "r", "r", "r", "l"],
        )

    n_fail = len(result.failures)
    title = "passed" if result.passed else f"failed: {n_fail} regression{'s' if n_fail != 1 else ''}"
    out = [
        f"## imagebench gate: {title}",
        "",
        f"Baseline `{md_escape(result.baseline_dir)}` vs current `{md_escape(result.current_dir)}`, "
        f"machines compared: {', '.join(result.machines.get('compared', [])) or 'none'}. "
        f"Exit code {result.exit_code}.",
        "",
        f"Thresholds: {_threshold_text(result.thresholds)}.",
        "",
    ]
    if result.failures:
        out += ["### Regressions", ""]
        out += [
            f"- **{md_escape(c.experiment)} / {md_escape(c.variant)}** ({c.kind}): {md_escape(c.message)}"
            for c in result.failures
        ]
        out.append("")
    if result.improvements:
        out += ["### Improvements", ""]
        out += [f"- {md_escape(c.message)}" for c in result.improvements]
        out.append("")
    counts: dict[str, int] = {}
    for c in result.checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    if result.checks:
        out += [
            f"<details><summary>All {len(result.checks)} checks ({summary})</summary>",
            "",
            table(result.checks),
            "</details>",
            "",
        ]
    if result.notes:
        out += ["### Notes", ""] + [f"- {md_escape(n)}" for n in result.notes] + [""]
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
    )
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(render_markdown(result) + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write the summary to {summary}: {exc.strerror or exc}") from None
    if json_out:
        return result.exit_code, json.dumps(result.to_dict(), indent=1, default=_json_default)
    return result.exit_code, render_text(result)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
