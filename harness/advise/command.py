"""`imagebench advise Dockerfile`: every applicable practice applied to the user's Dockerfile, measured.

The original and each rewrite become the variants of one synthesized experiment (the Dockerfiles
copied into a private folder, the user's context referenced), measured by the runner like any
catalog experiment (cold, and edit-source when the instruction order matters), smoke-checked
when `--smoke` is given, written as a normal run, and summarized as a table ranked by effect:
each rewrite's ratio to the original with its bootstrap 95 % interval.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tempfile
from pathlib import Path
from typing import TypedDict

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from harness import pyversions
from harness.advise.outcome import (
    AS_ORIGINAL,
    WORKING,
    Outcome,
    OutcomeRecord,
    StandInEntry,
    StandInVerdict,
    build_line,
    classify,
    stand_in_verdict,
    variant_outcome,
)
from harness.advise.rewrites import ContextInfo, Rewrite, parse, rewrites
from harness.engine.dockerfile import base_images
from harness.errors import HarnessError, UsageError
from harness.experiment import Claim, Experiment, Variant
from harness.fmt import figure
from harness.metrics import human_value
from harness.records import JSONObject, RunRecord, TrialRecord
from harness.runner import QuietReporter, Reporter, RunOptions, RunOutcome, run_experiments
from harness.runner.environment import load_lab_or_none
from harness.stats import ratio_ci

ORIGINAL = "original"
# (column, metric, scenario): what the table shows for every variant
COLUMNS = (
    ("image", "image_bytes", "cold"),
    ("compressed", "image_bytes_compressed", "cold"),
    ("cold build", "build_seconds", "cold"),
    ("rebuild after edit", "build_seconds", "edit-source"),
    ("packages", "packages_os", "cold"),
    ("stop", "stop_seconds", "cold"),
)
ABSOLUTE = ("packages_os",)  # shown as counts, not ratios
EFFECT_METRICS = ("image_bytes", "image_bytes_compressed", "build_seconds")


class Cell(TypedDict, total=False):
    """One column of a variant's row: the median, and for a rewrite its ratio to the original."""

    metric: str
    scenario: str
    median: float
    ratio: float | None
    low: float | None
    high: float | None


class StandIns(TypedDict):
    """The original alone on the other stand-ins (`other_stand_ins`)."""

    used: str | None  # the Python minor of the main run (None: no substitution)
    tried: list[StandInEntry]


class TriedRecord(OutcomeRecord):
    """One stand-in tried, as the summary states it."""

    python: str
    rule: str
    run_id: str | None


class StandInSummary(StandInVerdict):
    """A failing original under every stand-in, as the summary states it."""

    used: str | None
    tried: list[TriedRecord]


class Row(TypedDict, total=False):
    """One variant's summary row (`_row`); rewrites are ranked, a failing original says how it fails."""

    variant: str
    reason: str
    status: str
    failure: str | None
    vs_original: str | None
    root: bool | None
    cells: dict[str, Cell]
    effect: str | None
    effect_bound: float | None
    rank: int
    stops_root: bool
    recommended: bool
    outcome: OutcomeRecord
    stand_ins: StandInSummary


class Summary(TypedDict):
    """What `advise` measured, ranked (`summarize`): `imagebench advise --json` prints it."""

    run_id: str
    dockerfile: str
    context: str
    smoke: str | None
    scenarios: list[str]
    edit_file: str | None
    original: Row
    rewrites: list[Row]


_SKIP_DIRS = {".git", ".hg", "node_modules", "__pycache__", ".tox", ".mypy_cache", ".pytest_cache"}
MAX_ENTRIES = 50_000
MAX_TEXT = 256 * 1024


# --------------------------------------------------------------------------- the context


def scan_context(root: Path) -> ContextInfo:
    """Files and directories of the context (relative posix paths) and the text of its manifests.

    Directories that are caches or virtualenvs are listed but not entered."""
    files: list[str] = []
    dirs: list[str] = []
    texts: dict[str, str] = {}
    for here, subdirs, names in os.walk(root):
        rel = Path(here).relative_to(root).as_posix()
        rel = "" if rel == "." else rel + "/"
        keep = []
        for d in sorted(subdirs):
            dirs.append(rel + d)
            venv = (Path(here) / d / "pyvenv.cfg").is_file()
            if venv:
                files.append(rel + d + "/pyvenv.cfg")
            if d not in _SKIP_DIRS and not venv and not d.endswith(".egg-info"):
                keep.append(d)
        subdirs[:] = keep
        for n in sorted(names):
            p = rel + n
            files.append(p)
            if (n == ".dockerignore" and not rel) or (
                n.endswith(".txt") and ("requirement" in p or "constraint" in p)
            ):
                with open(Path(here) / n, "rb") as fh:
                    texts[p] = fh.read(MAX_TEXT).decode("utf-8", "replace")
        if len(files) + len(dirs) > MAX_ENTRIES:
            break
    return ContextInfo(files=tuple(files), dirs=tuple(dirs), texts=texts)


def source_file(ctx: ContextInfo) -> str | None:
    """The file an edit-source trial edits: the app's main module when there is one, else any .py."""
    py = [f for f in ctx.files if f.endswith(".py") and not re.search(r"(^|/)(tests?|\.[^/]+)/", f)]
    for name in ("app.py", "main.py", "manage.py", "wsgi.py"):
        if name in py:
            return name
    top = [f for f in py if "/" not in f]
    return next(iter(top or py), None)


# --------------------------------------------------------------------------- plan and write


@dataclasses.dataclass
class Advice:
    dockerfile: Path
    context: Path
    original: str
    rewrites: list[Rewrite]
    edit_file: str | None
    original_ignore: str | None

    @property
    def scenarios(self) -> tuple[str, ...]:
        if self.edit_file and any(r.name == "order" for r in self.rewrites):
            return ("cold", "edit-source")
        return ("cold",)


def plan(dockerfile: Path, context: Path | None, only: list[str] | None) -> Advice:
    """Read and parse the Dockerfile, look at the context, apply every selected practice (no builds)."""
    if not dockerfile.is_file():
        raise UsageError(f"Dockerfile not found: {dockerfile}")
    context = (context or dockerfile.parent).resolve()
    if not context.is_dir():
        raise UsageError(f"build context is not a directory: {context}")
    with open(dockerfile, "rb") as fh:
        text = fh.read().decode("utf-8", "replace")
    df = parse(text)
    ctx = scan_context(context)
    own = Path(str(dockerfile) + ".dockerignore")
    ignore = own.read_text(encoding="utf-8", errors="replace") if own.is_file() else None
    if ignore is not None:
        ctx = dataclasses.replace(ctx, texts={**ctx.texts, ".dockerignore": ignore})
    return Advice(
        dockerfile=dockerfile,
        context=context,
        original=text,
        rewrites=rewrites(df, ctx, only),
        edit_file=source_file(ctx),
        original_ignore=ignore,
    )


def diff(advice: Advice, r: Rewrite) -> str:
    name = advice.dockerfile.name
    out = "".join(
        difflib.unified_diff(
            advice.original.replace("\r\n", "\n").splitlines(keepends=True),
            r.dockerfile.replace("\r\n", "\n").splitlines(keepends=True),
            fromfile=name,
            tofile=f"{r.name}.Dockerfile",
        )
    )
    if r.dockerignore is not None:
        out += "".join(
            difflib.unified_diff(
                (advice.original_ignore or "").splitlines(keepends=True),
                r.dockerignore.splitlines(keepends=True),
                fromfile=".dockerignore",
                tofile=f"{r.name}.Dockerfile.dockerignore",
            )
        )
    return out


def write(advice: Advice, out: Path) -> list[Path]:
    """Each rewrite as `<name>.Dockerfile` (+ `.dockerignore`) and `<name>.diff` against the original."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in advice.rewrites:
        p = out / f"{r.name}.Dockerfile"
        with open(p, "w", encoding="utf-8", newline="") as fh:
            fh.write(r.dockerfile)
        written.append(p)
        ignore = r.dockerignore if r.dockerignore is not None else advice.original_ignore
        if ignore is not None:
            (out / f"{r.name}.Dockerfile.dockerignore").write_text(ignore, encoding="utf-8")
        (out / f"{r.name}.diff").write_text(diff(advice, r), encoding="utf-8")
        written.append(out / f"{r.name}.diff")
    return written


def _slug(path: Path) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", path.name.lower()).strip("-")
    return s or "project"


def experiment(advice: Advice, folder: Path, smoke: str | None, trials: int = 3) -> Experiment:
    """The original and every rewrite as the variants of one experiment in `folder`."""
    scen = advice.scenarios
    run: JSONObject = {}  # the variants' run settings (experiment.toml's [variants.run])
    probes: tuple[str, ...] = ()
    if any(r.name == "exec-form" for r in advice.rewrites):
        probes = ("stop",)
        run = {"stop": {"ready": "", "settle": 2.0, "stop_timeout": 3}}
    variants = _write_variants(advice, folder, smoke, run)
    claims = _claims(advice)
    project = _slug(advice.context)
    (folder / "experiment.toml").write_text(f'practice = "advise {project}"\n', encoding="utf-8")
    return Experiment(
        name=f"advise-{project}",
        path=folder,
        practice=f"advise: {advice.dockerfile.name} of {project}",
        section="dockerfile",
        claim=f"which practices pay off on {project}",
        article="",
        summary="Rewrites of your Dockerfile by `imagebench advise`, each measured against the original.",
        default=False,
        trials=trials,
        compressed=True,
        probes=probes,
        metrics=(),
        requires=(),
        edits={"source": [advice.edit_file]} if "edit-source" in scen else {},
        variants=tuple(variants),
        claims=tuple(claims),
    )


def _write_variants(advice: Advice, folder: Path, smoke: str | None, run: JSONObject) -> list[Variant]:
    """The original and each rewrite written into `folder` (with their .dockerignore) as variants."""
    variants = []
    texts = [(ORIGINAL, advice.original, advice.original_ignore, f"your {advice.dockerfile.name}")]
    texts += [
        (r.name, r.dockerfile, r.dockerignore or advice.original_ignore, r.reason) for r in advice.rewrites
    ]
    for name, text, ignore, why in texts:
        with open(folder / f"{name}.Dockerfile", "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        if ignore is not None:
            (folder / f"{name}.Dockerfile.dockerignore").write_text(ignore, encoding="utf-8")
        variants.append(
            Variant(
                name=name,
                dockerfile=f"{name}.Dockerfile",
                context=str(advice.context),
                scenarios=advice.scenarios,
                run=run,
                description=why,
                smoke=smoke or None,
            )
        )
    return variants


def _claims(advice: Advice) -> list[Claim]:
    """Each rewrite against the original: smaller image, and (with edit-source) a faster rebuild."""
    claims = []
    for r in advice.rewrites:
        claims.append(
            Claim(
                metric="image_bytes",
                scenario="cold",
                expect="lower",
                baseline=ORIGINAL,
                candidate=r.name,
                label=f"{r.name}: image bytes",
            )
        )
        if "edit-source" in advice.scenarios:
            claims.append(
                Claim(
                    metric="build_seconds",
                    scenario="edit-source",
                    expect="lower",
                    baseline=ORIGINAL,
                    candidate=r.name,
                    label=f"{r.name}: rebuild seconds after a source edit",
                    primary=r.name == "order",
                )
            )
    return claims


def advise(
    advice: Advice,
    *,
    smoke: str | None,
    opts: RunOptions,
    reporter: Reporter | None = None,
) -> tuple[RunOutcome, Summary]:
    """Measure the original and every rewrite through the runner; the ranked summary. When the original
    fails and its base was a Python substitution, the original alone is tried on the other stand-ins."""
    if not advice.rewrites:
        raise UsageError(f"no practice applies to {advice.dockerfile}: nothing to measure")
    with tempfile.TemporaryDirectory(prefix="imagebench-advise-") as tmp:
        folder = Path(tmp) / "advise"
        folder.mkdir()
        exp = experiment(advice, folder, smoke)
        outcome = run_experiments([exp], opts, reporter)
    stand_ins = None
    run = outcome.run.data
    if variant_outcome(run, ORIGINAL).fails:
        stand_ins = other_stand_ins(advice, run, smoke, opts, reporter)
    return outcome, summarize(run, advice, smoke, stand_ins)


class _Relay(QuietReporter):
    """The retry's progress through the command's reporter, without a second summary table."""

    def __init__(self, inner: Reporter | None) -> None:
        self.inner = inner

    def message(self, text: str) -> None:
        if self.inner is not None:
            self.inner.message(text)

    def trial_finished(self, status: str, seconds: float, error: str | None = None) -> None:  # noqa: ARG002
        if error and status != "ok":
            self.message(f"  {status}: {error}")


def substituted_base(advice: Advice, run: RunRecord) -> tuple[str, str] | None:
    """(public base, Python minor used) of the original's first base that was a Python substitution. Pure."""
    subs = run.get("python_substitutions") or {}
    for b in base_images(advice.original, {}):
        if b in subs:
            return b, str(subs[b]["used"])
    return None


def stand_in_entry(rule: str, public: str, data: RunRecord, planned: str = "?") -> StandInEntry:
    """What the original's run under `rule` says: {"rule", "python" (as the run recorded its substitution;
    `planned` when it made none), "outcome", "run_id"}. Pure."""
    note = (data.get("python_substitutions") or {}).get(public)
    return {
        "rule": rule,
        "python": str((note["used"] if note else None) or planned),
        "outcome": variant_outcome(data, ORIGINAL),
        "run_id": data.get("run_id"),
    }


def other_stand_ins(
    advice: Advice, run: RunRecord, smoke: str | None, opts: RunOptions, reporter: Reporter | None = None
) -> StandIns:
    """The original alone, one cold trial on each other stand-in a `--python-substitute` rule picks for its
    substituted base, each a run file of its own (experiment `advise-<project>-py<major><minor>`):
    {"used": minor of the main run or None (no substitution), "tried": [stand_in_entry, ...]}."""
    found = substituted_base(advice, run)
    if found is None:
        return {"used": None, "tried": []}
    public, used = found
    seen = {used}
    tried: list[StandInEntry] = []
    lab = load_lab_or_none(opts.bases)
    for rule in pyversions.RULES:
        if rule == opts.python_substitute:
            continue
        try:
            _, note = pyversions.resolve(lab, public, rule)
        except HarnessError:  # the rule allows no stand-in for this tag
            continue
        py = str(note["used"]) if note else str(run["python_substitutions"][public]["requested"])
        if py in seen:
            continue
        seen.add(py)
        relay = _Relay(reporter)
        relay.message(f"the original failed on Python {used}: trying it on {py} (--python-substitute {rule})")
        tried.append(_try_original(advice, smoke, opts, rule, py, public, relay))
    return {"used": used, "tried": tried}


def _try_original(
    advice: Advice, smoke: str | None, opts: RunOptions, rule: str, py: str, public: str, reporter: Reporter
) -> StandInEntry:
    """One cold trial of the original under `rule`, as stand_in_entry says it."""
    only = dataclasses.replace(advice, rewrites=[])
    retry = dataclasses.replace(opts, python_substitute=rule, trials=1, auto=False, warmup=False)
    with tempfile.TemporaryDirectory(prefix="imagebench-advise-") as tmp:
        folder = Path(tmp) / "advise"
        folder.mkdir()
        exp = experiment(only, folder, smoke, trials=1)
        exp = dataclasses.replace(exp, name=f"{exp.name}-py{py.replace('.', '')}")  # a valid name: no dot
        try:
            data = run_experiments([exp], retry, reporter).run.data
        except HarnessError as exc:
            return {"rule": rule, "python": py, "outcome": Outcome("none", str(exc)), "run_id": None}
    return stand_in_entry(rule, public, data, py)


# --------------------------------------------------------------------------- summary


def failing_line(trial: TrialRecord) -> str:
    """The line that says why a trial failed: the compiler's or pip's error line when there is one."""
    return build_line(trial)


def _values(run: RunRecord, variant: str, scenario: str, metric: str) -> list[float]:
    return [
        float(t["metrics"][metric])
        for t in run["trials"]
        if t["variant"] == variant
        and t["scenario"] == scenario
        and t["status"] == "ok"
        and metric in t.get("metrics", {})
    ]


def _runs_as_root(run: RunRecord, variant: str) -> bool | None:
    for t in run["trials"]:
        if t["variant"] == variant and t["status"] == "ok" and "image" in t:
            user = (t["image"].get("user") or "").split(":")[0]
            return user in ("", "root", "0")
    return None


def summarize(
    run: RunRecord, advice: Advice, smoke: str | None, stand_ins: StandIns | None = None
) -> Summary:
    """Per variant: status, medians and, for rewrites, ratio to the original with its 95 % interval;
    rewrites ranked by their strongest effect (lowest upper bound of a size/time ratio). A rewrite that
    fails exactly as the original does is "as the original" and ranked like a working one; `stand_ins`
    (from other_stand_ins) says whether a failing original fails under every stand-in."""

    seed = run.get("seed", 0) % (2**31)
    reasons = {r.name: r.reason for r in advice.rewrites}
    base = variant_outcome(run, ORIGINAL)
    original = _row(run, ORIGINAL, f"your {advice.dockerfile.name}", _original_status(base, smoke), seed)
    cands = [
        _row(run, name, why, classify(base, variant_outcome(run, name), smoke), seed)
        for name, why in reasons.items()
    ]
    if base.fails:
        original["outcome"] = base.record()
        if stand_ins is not None:
            tried = list(stand_ins.get("tried", []))
            verdict = stand_in_verdict(base, stand_ins.get("used"), tried)
            original["stand_ins"] = {
                **verdict,
                "used": stand_ins.get("used"),
                "tried": [
                    {
                        "python": t["python"],
                        "rule": t["rule"],
                        "run_id": t.get("run_id"),
                        **t["outcome"].record(),
                    }
                    for t in tried
                ],
            }

    def key(r: Row) -> tuple[bool, float, str]:
        broken = r["status"] not in WORKING
        return (broken, r["effect_bound"] if r["effect_bound"] is not None else 9e9, r["variant"])

    cands.sort(key=key)
    for k, r in enumerate(cands, 1):
        r["rank"] = k
        works = r["status"] in WORKING
        r["stops_root"] = bool(works and r["root"] is False and original["root"] is True)
        r["recommended"] = (works and r["effect_bound"] is not None and r["effect_bound"] < 1.0) or r[
            "stops_root"
        ]
    return {
        "run_id": run["run_id"],
        "dockerfile": str(advice.dockerfile),
        "context": str(advice.context),
        "smoke": smoke,
        "scenarios": list(advice.scenarios),
        "edit_file": advice.edit_file if "edit-source" in advice.scenarios else None,
        "original": original,
        "rewrites": cands,
    }


def _original_status(o: Outcome, smoke: str | None) -> tuple[str, str | None, str | None]:
    if o.kind == "pass":
        return ("ok" if smoke else "built"), None, None
    if o.fails:
        return "fails", o.describe(), None
    return "not measured", o.line or None, None


def _row(
    run: RunRecord, name: str, reason: str, status: tuple[str, str | None, str | None], seed: int
) -> Row:
    """One variant's summary row: status, the cells of COLUMNS and its strongest effect."""
    cells: dict[str, Cell] = {}
    for col, metric, scen in COLUMNS:
        vals = _values(run, name, scen, metric)
        if not vals:
            continue
        cell: Cell = {"metric": metric, "scenario": scen, "median": float(np.median(vals))}
        base = _values(run, ORIGINAL, scen, metric)
        if name != ORIGINAL and base:
            r = ratio_ci(base, vals, seed=seed, with_p=False)
            cell["ratio"], cell["low"], cell["high"] = r["ratio"], r["low"], r["high"]
        cells[col] = cell
    best = _strongest_effect(cells)
    return {
        "variant": name,
        "reason": reason,
        "status": status[0],
        "failure": status[1],
        "vs_original": status[2],
        "root": _runs_as_root(run, name),
        "cells": cells,
        "effect": best[0] if best else None,
        "effect_bound": best[1] if best else None,
    }


def _strongest_effect(cells: dict[str, Cell]) -> tuple[str, float] | None:
    """(column, bound) of the size/time ratio with the lowest upper bound; a single trial's ratio
    (no interval) ranks after any interval."""
    best: tuple[str, float] | None = None
    for col, cell in cells.items():
        ratio, high = cell.get("ratio"), cell.get("high")
        if cell["metric"] not in EFFECT_METRICS or ratio is None:
            continue
        bound = high if high is not None else 1.0 + abs(ratio)
        if best is None or bound < best[1]:
            best = (col, bound)
    return best


def _cell(metric: str, cell: Cell | None, original: bool) -> str:

    if not cell:
        return "-"
    ratio, low, high = cell.get("ratio"), cell.get("low"), cell.get("high")
    if original or ratio is None or metric in ABSOLUTE:
        return human_value(metric, cell["median"])

    r = f"×{figure(ratio)}"
    if low is not None:
        r += f" ({figure(low)}–{figure(high if high is not None else low)})"
    return r


def render(summary: Summary) -> str:
    """The ranked table, then each rewrite's reason and every broken rewrite's failing line."""

    table = Table(
        title="rewrites ranked by effect: ratio to the original (median of n trials, bootstrap 95 % CI)",
        box=box.SIMPLE,
    )
    for col in ("#", "rewrite", "status", *[c for c, _, _ in COLUMNS], "root"):
        table.add_column(col, justify="left" if col in ("rewrite", "status") else "right")
    metric_of = {c: m for c, m, _ in COLUMNS}

    def add(r: Row, rank: str, original: bool) -> None:
        root = "-" if r["root"] is None else ("yes" if r["root"] else "no")
        table.add_row(
            rank,
            r["variant"],
            r["status"],
            *[_cell(metric_of[c], r["cells"].get(c), original) for c, _, _ in COLUMNS],
            root,
        )

    add(summary["original"], "", True)
    for r in summary["rewrites"]:
        add(r, str(r["rank"]), False)
    console = Console(record=True, width=150)
    with console.capture() as cap:
        for line in _original_lines(summary):
            console.print(line, highlight=False, markup=False)
        console.print(table)
        for r in summary["rewrites"]:
            console.print(_rewrite_line(r), highlight=False, markup=False)
            if r["failure"] and r["status"] != AS_ORIGINAL:
                console.print(f"   {r['failure']}", highlight=False, markup=False)
        if not summary["smoke"]:
            console.print("no --smoke command: rewrites were built, not checked to run", markup=False)
    return cap.get().rstrip()


def _original_lines(summary: Summary) -> list[str]:
    """Said once, before the table: the original fails, why, and whether the Python substitution matters."""
    o = summary["original"]
    if o["status"] != "fails":
        return []
    lines = [f"The original fails: {o['failure']}"]
    si = o.get("stand_ins")
    if si:
        lines.append(f"It {si['message']}.")
    same = [r["variant"] for r in summary["rewrites"] if r["status"] == AS_ORIGINAL]
    if same:
        lines.append(
            f"Rewrites that fail exactly as the original ({', '.join(same)}) are marked "
            f"'{AS_ORIGINAL}' and ranked by what they buy."
        )
    return [*lines, ""]


def _rewrite_line(r: Row) -> str:
    has_ci = any(c.get("high") is not None for c in r["cells"].values())
    if r["recommended"]:
        mark = "recommended" + ("; fails as the original does" if r["status"] == AS_ORIGINAL else "")
    elif r["status"] == "broken":
        mark = "BROKEN"
    elif r["status"] == AS_ORIGINAL:
        mark = AS_ORIGINAL + ("; no gain" if has_ci else "; not established: needs 2+ trials")
    else:
        mark = "no gain" if has_ci else "not established: needs 2+ trials"
    line = f"{r['rank']}. {r['variant']} ({mark}): {r['reason']}"
    if r["recommended"] and r["effect_bound"] is not None and r["effect_bound"] < 1.0:
        line += f" [strongest: {r['effect']}, whole interval below 1]"
    elif r["stops_root"]:
        line += " [the image no longer runs as root]"
    if r.get("vs_original") == "fixes":
        line += " [passes where the original fails]"
    return line
