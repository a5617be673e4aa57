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
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from harness.advise.rewrites import ContextInfo, Rewrite, parse, rewrites
from harness.errors import UsageError
from harness.experiment import Claim, Experiment, Variant
from harness.metrics import human_value
from harness.runner import RunOptions, RunOutcome, run_experiments
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
    run: dict[str, Any] = {}
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


def _write_variants(advice: Advice, folder: Path, smoke: str | None, run: dict[str, Any]) -> list[Variant]:
    """The original and each rewrite written into `folder` (with their .dockerignore) as variants."""
    has_smoke = "smoke" in {f.name for f in dataclasses.fields(Variant)}
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
        extra: dict[str, Any] = {"smoke": smoke} if (smoke and has_smoke) else {}
        variants.append(
            Variant(
                name=name,
                dockerfile=f"{name}.Dockerfile",
                context=str(advice.context),
                scenarios=advice.scenarios,
                run=run,
                description=why,
                **extra,
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
    reporter: Any = None,
) -> tuple[RunOutcome, dict[str, Any]]:
    """Measure the original and every rewrite through the runner; the ranked summary."""
    if not advice.rewrites:
        raise UsageError(f"no practice applies to {advice.dockerfile}: nothing to measure")
    with tempfile.TemporaryDirectory(prefix="imagebench-advise-") as tmp:
        folder = Path(tmp) / "advise"
        folder.mkdir()
        exp = experiment(advice, folder, smoke)
        outcome = run_experiments([exp], opts, reporter)
    return outcome, summarize(outcome.run.data, advice, smoke)


# --------------------------------------------------------------------------- summary


def failing_line(trial: dict) -> str:
    """The line that says why a trial failed: the compiler's or pip's error line when there is one."""
    text = trial.get("error_text") or ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [re.sub(r"^#\d+\s+[\d.]+\s+", "", ln) for ln in lines]
    generic = ("failed to solve", "subprocess-exited-with-error")
    for pat in (
        r"error: command '.*' failed",
        r"(?i)error: .*(No such file or directory|not found)",
        r"^error: ",
        r"(?i)\berror\b",
    ):
        hits = [ln for ln in lines if re.search(pat, ln) and not any(g in ln for g in generic)]
        if hits:
            return hits[0][:200]
    return (trial.get("error") or "build failed")[:200]


def _values(run: dict, variant: str, scenario: str, metric: str) -> list[float]:
    return [
        float(t["metrics"][metric])
        for t in run["trials"]
        if t["variant"] == variant
        and t["scenario"] == scenario
        and t["status"] == "ok"
        and metric in t.get("metrics", {})
    ]


def _status(run: dict, variant: str, smoke: str | None) -> tuple[str, str | None]:
    trials = [t for t in run["trials"] if t["variant"] == variant]
    for t in trials:
        if t["status"] == "failed":
            return "broken", f"build failed: {failing_line(t)}"
    for t in trials:
        if (t.get("metrics") or {}).get("smoke_ok") == 0:
            return "broken", f"smoke failed: {(t.get('smoke') or {}).get('last_line', '')}"
    if not any(t["status"] == "ok" for t in trials):
        return "not measured", trials[0].get("error") if trials else None
    return ("ok" if smoke else "built"), None


def _runs_as_root(run: dict, variant: str) -> bool | None:
    for t in run["trials"]:
        if t["variant"] == variant and t["status"] == "ok" and "image" in t:
            user = (t["image"].get("user") or "").split(":")[0]
            return user in ("", "root", "0")
    return None


def summarize(run: dict, advice: Advice, smoke: str | None) -> dict[str, Any]:
    """Per variant: status, medians and, for rewrites, ratio to the original with its 95 % interval;
    rewrites ranked by their strongest effect (lowest upper bound of a size/time ratio)."""

    seed = run.get("seed", 0) % (2**31)
    reasons = {r.name: r.reason for r in advice.rewrites}
    rows = [
        _row(run, name, reasons.get(name, f"your {advice.dockerfile.name}"), smoke, seed)
        for name in [ORIGINAL, *reasons]
    ]
    original, cands = rows[0], rows[1:]

    def key(r: dict) -> tuple:
        broken = r["status"] not in ("ok", "built")
        return (broken, r["effect_bound"] if r["effect_bound"] is not None else 9e9, r["variant"])

    cands.sort(key=key)
    for k, r in enumerate(cands, 1):
        r["rank"] = k
        works = r["status"] in ("ok", "built")
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


def _row(run: dict, name: str, reason: str, smoke: str | None, seed: int) -> dict[str, Any]:
    """One variant's summary row: status, the cells of COLUMNS and its strongest effect."""
    status, why = _status(run, name, smoke)
    cells: dict[str, Any] = {}
    for col, metric, scen in COLUMNS:
        vals = _values(run, name, scen, metric)
        if not vals:
            continue
        cell: dict[str, Any] = {"metric": metric, "scenario": scen, "median": float(np.median(vals))}
        base = _values(run, ORIGINAL, scen, metric)
        if name != ORIGINAL and base:
            r = ratio_ci(base, vals, seed=seed, with_p=False)
            cell.update({k: r.get(k) for k in ("ratio", "low", "high")})
        cells[col] = cell
    best = _strongest_effect(cells)
    return {
        "variant": name,
        "reason": reason,
        "status": status,
        "failure": why,
        "root": _runs_as_root(run, name),
        "cells": cells,
        "effect": best[0] if best else None,
        "effect_bound": best[1] if best else None,
    }


def _strongest_effect(cells: dict[str, Any]) -> tuple[str, float] | None:
    """(column, bound) of the size/time ratio with the lowest upper bound; a single trial's ratio
    (no interval) ranks after any interval."""
    best = None
    for col, cell in cells.items():
        if cell["metric"] not in EFFECT_METRICS or cell.get("ratio") is None:
            continue
        bound = cell["high"] if cell.get("high") is not None else 1.0 + abs(cell["ratio"])
        if best is None or bound < best[1]:
            best = (col, bound)
    return best


def _cell(metric: str, cell: dict | None, original: bool) -> str:

    if not cell:
        return "-"
    if original or cell.get("ratio") is None or metric in ABSOLUTE:
        return human_value(metric, cell["median"])

    def num(x: float) -> str:
        return f"{x:.3f}" if 0.01 <= x < 100 else f"{x:.3g}"

    r = f"×{num(cell['ratio'])}"
    if cell.get("low") is not None:
        r += f" ({num(cell['low'])}–{num(cell['high'])})"
    return r


def render(summary: dict[str, Any]) -> str:
    """The ranked table, then each rewrite's reason and every broken rewrite's failing line."""

    table = Table(
        title="rewrites ranked by effect: ratio to the original (median of n trials, bootstrap 95 % CI)",
        box=box.SIMPLE,
    )
    for col in ("#", "rewrite", "status", *[c for c, _, _ in COLUMNS], "root"):
        table.add_column(col, justify="left" if col in ("rewrite", "status") else "right")
    metric_of = {c: m for c, m, _ in COLUMNS}

    def add(r: dict, rank: str, original: bool) -> None:
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
        console.print(table)
        for r in summary["rewrites"]:
            has_ci = any(c.get("high") is not None for c in r["cells"].values())
            mark = (
                "recommended"
                if r["recommended"]
                else "BROKEN"
                if r["status"] == "broken"
                else "no gain"
                if has_ci
                else "not established: needs 2+ trials"
            )
            line = f"{r['rank']}. {r['variant']} ({mark}): {r['reason']}"
            if r["recommended"] and r["effect_bound"] is not None and r["effect_bound"] < 1.0:
                line += f" [strongest: {r['effect']}, whole interval below 1]"
            elif r["stops_root"]:
                line += " [the image no longer runs as root]"
            console.print(line, highlight=False, markup=False)
            if r["failure"]:
                console.print(f"   {r['failure']}", highlight=False, markup=False)
        if summary["original"]["failure"]:
            console.print(f"original: {summary['original']['failure']}", highlight=False, markup=False)
        if not summary["smoke"]:
            console.print("no --smoke command: rewrites were built, not checked to run", markup=False)
    return cap.get().rstrip()
