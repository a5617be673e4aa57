"""`imagebench compare A.Dockerfile B.Dockerfile`: a user's own pair through the same runner.

The pair becomes a two-variant experiment in a private folder (the Dockerfiles copied, the
context referenced), measured like any catalog experiment and written as a normal run.

It answers the questions people have about their own Dockerfiles:
  - scenarios: `cold`, `warm`, `edit-source` (a source file changes: does my rebuild stay
    cached?), `edit-deps` (the dependency list changes), `base-bump` (the base gets a new digest).
    The edited files default to what the Dockerfiles' COPY lines bring in (`default_edits`);
    `--edit PATH` / `--deps PATH` name them.
  - runtime probes on request (`--probe stop`, `--probe user`, `--probe health`, ...: any name in
    harness/probes) and a smoke command (`--smoke CMD`, metric `smoke_ok`).
  - no verdict on claims the user did not state: every metric's difference B vs A with its 95 %
    interval, or "no detectable difference"; exact when neither variant varies (then no interval
    and no p-value is needed or shown). A claim given with `--claim METRIC:lower|higher[:SCENARIO]`
    is judged with the catalog's rules and shown on its own line.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

import numpy as np
from docker.utils.build import exclude_paths
from rich.console import Console
from rich.table import Table

from harness.analysis import analyze
from harness.errors import UsageError
from harness.experiment import SCENARIOS, Claim, Experiment, Variant
from harness.fmt import fixed, general
from harness.metrics import TIMED_KINDS, human_value, kind_of
from harness.probes import get_probe
from harness.records import ClaimVerdict, JSONObject, RunRecord
from harness.results import load_table
from harness.runner import Reporter, RunOptions, RunOutcome, run_experiments
from harness.stats import ratio_ci

if TYPE_CHECKING:
    import numpy.typing as npt

# shown first, in this order; any other metric the run recorded follows
SUMMARY_METRICS = (
    "build_seconds",
    "steps_executed",
    "steps_cached",
    "deps_step_cached",
    "image_bytes",
    "image_bytes_compressed",
    "layers",
    "context_bytes",
    "packages_os",
    "packages_python",
    "gcc_present",
    "smoke_ok",
)
SKIP_METRICS = ("steps_total", "build_span_seconds", "context_sent_bytes", "step_seconds_deps")

DEPS_NAMES = (
    "requirements*.txt",
    "requirements/*.txt",
    "constraints*.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "package.json",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "Cargo.toml",
    "Cargo.lock",
    "composer.json",
    "composer.lock",
)
CODE_SUFFIXES = (".py", ".js", ".ts", ".go", ".rb", ".rs", ".php", ".java", ".sh", ".html", ".css")


# --------------------------------------------------------------------------- edits from COPY lines


def copy_sources(text: str) -> list[str]:
    """Sources of every COPY/ADD from the build context (not `--from=`), in Dockerfile order. Pure."""
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not buf and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        lines.append(buf + line)
        buf = ""
    if buf:
        lines.append(buf)
    out: list[str] = []
    for line in lines:
        m = re.match(r"\s*(COPY|ADD)\s+(.*)$", line, re.IGNORECASE)
        if not m:
            continue
        rest = m.group(2).strip()
        if rest.startswith("<<"):  # heredoc: nothing from the context
            continue
        words: list[str]
        if rest.startswith("["):
            try:
                words = [str(w) for w in json.loads(rest)]
            except ValueError:
                continue
        else:
            words = rest.split()
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        args = [w for w in words if not w.startswith("--")]
        if len(args) < 2:
            continue
        out += [s for s in args[:-1] if "://" not in s and not s.startswith("git@")]
    return out


def _is_deps(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(Path(rel).name, pat) for pat in DEPS_NAMES)


def _context_files(context: Path, ignore_file: Path | None) -> list[str]:
    """Regular files of the context after .dockerignore, relative, sorted."""
    ignore = ignore_file if ignore_file and ignore_file.is_file() else context / ".dockerignore"
    patterns = []
    if ignore.is_file():
        patterns = [
            ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and not ln.startswith("#")
        ]
    files = []
    for rel in exclude_paths(str(context), patterns):
        p = context / rel
        if p.is_file() and not p.is_symlink():
            files.append(Path(rel).as_posix())
    return sorted(files)


def _copied(files: list[str], sources: list[str]) -> list[str]:
    """Context files a list of COPY sources brings in (a directory brings everything under it)."""
    picked: list[str] = []
    for src in sources:
        s = src.strip("/").removeprefix("./") or "."
        for f in files:
            if f in picked:
                continue
            if s == "." or f == s or f.startswith(s.rstrip("/") + "/") or fnmatch.fnmatch(f, s):
                picked.append(f)
    return picked


@dataclass(frozen=True)
class Edits:
    source: tuple[str, ...]
    deps: str | None
    how: str  # how they were chosen, for the terminal and the run file


def default_edits(dockerfiles: list[Path], context: Path) -> Edits:
    """Which file `edit-source` and `edit-deps` touch when the user names none. Pure over the files.

    deps: the first dependency manifest (requirements*.txt, pyproject.toml, package.json, ...) a COPY
    names explicitly, else the first one any COPY brings in. source: the first code file (by
    suffix, else any file) that every Dockerfile's COPY lines bring in and that is not a manifest.
    """
    per_file = []
    named: list[str] = []
    for df in dockerfiles:
        srcs = copy_sources(df.read_text(errors="replace"))
        named += [s.removeprefix("./") for s in srcs]
        files = _context_files(context, Path(str(df) + ".dockerignore"))
        skip = {df.name, ".dockerignore", f"{df.name}.dockerignore"}
        per_file.append([f for f in _copied(files, srcs) if Path(f).name not in skip])
    common = [f for f in per_file[0] if all(f in other for other in per_file[1:])] if per_file else []
    deps = next((n for n in named if _is_deps(n) and (context / n).is_file()), None)
    if deps is None:
        deps = next((f for f in common if _is_deps(f)), None)
    candidates = [f for f in common if not _is_deps(f)]
    code = [f for f in candidates if f.endswith(CODE_SUFFIXES)]
    source = (code or candidates)[:1]
    how = "from the Dockerfiles' COPY lines"
    return Edits(source=tuple(source), deps=deps, how=how)


# --------------------------------------------------------------------------- claims


def parse_claim(text: str, scenarios: tuple[str, ...]) -> tuple[str, str, str]:
    """`METRIC:lower|higher[:SCENARIO]` -> (metric, expect, scenario): B's metric against A's."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[1] not in ("lower", "higher"):
        raise UsageError(f"--claim {text!r}: use METRIC:lower or METRIC:higher[:SCENARIO] (B against A)")
    scen = parts[2] if len(parts) == 3 else scenarios[0]
    if scen not in scenarios:
        raise UsageError(f"--claim {text!r}: scenario {scen!r} is not measured (add --scenario {scen})")
    return parts[0], parts[1], scen


# --------------------------------------------------------------------------- the pair


def _variant_name(path: Path, other: Path) -> str:
    name = path.name.removesuffix(".Dockerfile").removeprefix("Dockerfile.").lower() or "a"
    if name in ("dockerfile", other.name.lower()):
        name = path.parent.name.lower() or "a"
    return re.sub(r"[^a-z0-9-]+", "-", name).strip("-") or "a"


def make_pair(
    a: Path,
    b: Path,
    context: Path | None,
    folder: Path,
    scenarios: tuple[str, ...] = ("cold",),
    *,
    edit: tuple[str, ...] = (),
    deps: str | None = None,
    probes: tuple[str, ...] = (),
    smoke: str | None = None,
    claims: tuple[str, ...] = (),
) -> Experiment:
    """The ad-hoc experiment `compare` runs: A and B copied into `folder` as two variants of one
    context, with the scenarios, edits, probes, smoke command and stated claims given."""
    context = _checked_inputs(a, b, context, scenarios, probes)
    na, nb = _variant_name(a, b), _variant_name(b, a)
    if na == nb:
        na, nb = f"{na}-a", f"{nb}-b"
    _copy_dockerfiles(a, b, folder)
    edits_def = _edits(a, b, context, scenarios, edit, deps)
    (folder / "experiment.toml").write_text(f'practice = "compare"\nclaim = "{nb} vs {na}"\n')
    run_opts: dict[str, str] = {"ready": ""} if probes else {}  # a user's app prints no agreed ready line
    variants = tuple(
        Variant(
            name=name,
            dockerfile=df,
            context=str(context),
            scenarios=scenarios,
            run=run_opts,
            smoke=smoke or None,
        )
        for name, df in ((na, "A.Dockerfile"), (nb, "B.Dockerfile"))
    )
    stated = _stated_claims(claims, scenarios, na, nb)
    return Experiment(
        name="compare",
        path=folder,
        practice="compare",
        section="dockerfile",
        claim=f"{b.name} against {a.name}",
        article="",
        summary="",
        default=False,
        trials=5,
        compressed=True,
        probes=tuple(probes),
        metrics=("gcc_present", *(("smoke_ok",) if smoke else ())),
        requires=(),
        edits=edits_def,
        variants=variants,
        claims=stated,
    )


def _checked_inputs(
    a: Path, b: Path, context: Path | None, scenarios: tuple[str, ...], probes: tuple[str, ...]
) -> Path:
    """The resolved build context, after checking both Dockerfiles, the scenarios and the probes."""
    for p in (a, b):
        if not p.is_file():
            raise UsageError(f"Dockerfile not found: {p}")
    context = (context or a.parent).resolve()
    if not context.is_dir():
        raise UsageError(f"build context is not a directory: {context}")
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        raise UsageError(f"unknown scenario {bad[0]!r}; known: {', '.join(SCENARIOS)}")
    for name in probes:
        get_probe(name)  # UsageError naming the known probes
    return context


def _copy_dockerfiles(a: Path, b: Path, folder: Path) -> None:
    """A and B (and their `<file>.dockerignore`, when there is one) into the experiment folder."""
    shutil.copyfile(a, folder / "A.Dockerfile")
    shutil.copyfile(b, folder / "B.Dockerfile")
    for src, dst in ((a, "A.Dockerfile"), (b, "B.Dockerfile")):
        ignore = Path(str(src) + ".dockerignore")
        if ignore.is_file():
            shutil.copyfile(ignore, folder / f"{dst}.dockerignore")


def _edits(
    a: Path, b: Path, context: Path, scenarios: tuple[str, ...], edit: tuple[str, ...], deps: str | None
) -> dict[str, str | list[str]]:
    """The `edits` table for edit-source / edit-deps: the files given, else those the COPY lines name."""
    edits_def: dict[str, str | list[str]] = {}
    if "edit-source" not in scenarios and "edit-deps" not in scenarios:
        return edits_def
    found = default_edits([a, b], context)
    source = tuple(edit) or found.source
    dep = deps or found.deps
    for rel in (*source, *([dep] if dep else [])):
        if not (context / rel).is_file():
            raise UsageError(f"--edit/--deps: {rel!r} is not a file in the build context {context}")
    if "edit-source" in scenarios:
        if not source:
            raise UsageError("edit-source: no source file found in the COPY lines; name one with --edit PATH")
        edits_def["source"] = list(source)
    if "edit-deps" in scenarios:
        if not dep:
            raise UsageError(
                "edit-deps: no dependency file found in the COPY lines; name one with --deps PATH"
            )
        edits_def["deps"] = dep
    return edits_def


def _stated_claims(
    claims: tuple[str, ...], scenarios: tuple[str, ...], na: str, nb: str
) -> tuple[Claim, ...]:
    """The user's `--claim METRIC:lower|higher[:SCENARIO]` as claims about B against A."""
    return tuple(
        Claim(
            metric=m,
            scenario=s,
            expect=e,
            baseline=na,
            candidate=nb,
            label=f"{nb} {e} {m} than {na} ({s})",
            source="article",
        )
        for m, e, s in (parse_claim(c, scenarios) for c in claims)
    )


def compare(
    a: Path,
    b: Path,
    *,
    context: Path | None,
    opts: RunOptions,
    reporter: Reporter | None = None,
    scenarios: tuple[str, ...] = ("cold",),
    edit: tuple[str, ...] = (),
    deps: str | None = None,
    probes: tuple[str, ...] = (),
    smoke: str | None = None,
    claims: tuple[str, ...] = (),
) -> tuple[RunOutcome, CompareSummary]:
    """Build A and B as one two-variant experiment (`make_pair`), run it, and summarise B against A."""
    with tempfile.TemporaryDirectory(prefix="imagebench-compare-") as tmp:
        folder = Path(tmp) / "compare"
        folder.mkdir()
        exp = make_pair(
            a.resolve(),
            b.resolve(),
            context,
            folder,
            scenarios,
            edit=edit,
            deps=deps,
            probes=probes,
            smoke=smoke,
            claims=claims,
        )
        if reporter is not None and exp.edits:
            for key, val in exp.edits.items():
                reporter.message(f"{'edit-source' if key == 'source' else 'edit-deps'} edits: {val}")
        outcome = run_experiments([exp], opts, reporter)
    summary = summarize(outcome.run.data, exp.variants[0].name, exp.variants[1].name)
    summary["edits"] = dict(exp.edits)
    return outcome, summary


# --------------------------------------------------------------------------- summary


class Difference(TypedDict):
    """B against A on one metric: what `difference_text` puts in words."""

    a_median: float
    b_median: float
    n: int  # trials on the side with fewer
    exact: bool  # neither variant varies: the difference is exact
    ratio: float | None  # B/A with its bootstrap 95 % interval (stats.ratio_ci)
    low: float | None
    high: float | None
    reason: str | None


class CompareRow(Difference):
    """One scenario and metric of `summarize` (its JSON also holds each variant's name -> its median)."""

    scenario: str
    metric: str
    unit: str
    p_value: float | None
    difference: str


class StatedClaim(TypedDict):
    """A claim the user stated (`--claim`), judged by the analysis."""

    label: str | None
    metric: str | None
    scenario: str | None
    verdict: ClaimVerdict | None
    figure: str | None
    reason: str | None


class CompareSummary(TypedDict):
    """What `compare` returns and `imagebench compare --json` prints."""

    run_id: str
    baseline: str
    candidate: str
    rows: list[CompareRow]
    claims: list[StatedClaim]
    failed: list[str]
    warnings: list[str]
    edits: NotRequired[JSONObject]  # the edits table as the experiment holds it


def _varies(values: npt.NDArray[Any]) -> bool:
    return len(values) > 1 and float(max(values)) != float(min(values))


def difference_text(metric: str, _unit: str, ra: Difference) -> str:
    """One sentence: B against A with its interval, exact, or no detectable difference. Pure."""
    a, b = ra["a_median"], ra["b_median"]
    if ra["exact"]:
        every = "one trial each" if ra.get("n", 2) < 2 else "same in every trial"
        if a == b:
            return "identical (one trial each)" if ra.get("n", 2) < 2 else "identical in every trial"
        if a:
            pct = abs(b / a - 1) * 100
            word = "larger" if b > a else "smaller"
            return f"B {word} by {fixed(pct, 0)} % ({human_value(metric, b)} vs {human_value(metric, a)}; {every})"
        return f"B {human_value(metric, b)} vs A {human_value(metric, a)} ({every})"
    ratio, low, high = ra.get("ratio"), ra.get("low"), ra.get("high")
    if ratio is None:
        return f"B {human_value(metric, b)} vs A {human_value(metric, a)} ({ra.get('reason') or 'no ratio'})"
    if low is None or high is None:
        return (
            f"B/A = {fixed(ratio, 2)} (one trial each: no interval, not a finding)"
            if ra.get("n", 2) < 2
            else (f"B/A = {fixed(ratio, 2)} (too few trials for an interval)")
        )
    if low <= 1 <= high:
        return f"no detectable difference (B/A {fixed(ratio, 2)}, 95 % CI {fixed(low, 2)}-{fixed(high, 2)})"
    word = "larger" if ratio > 1 else "smaller"
    if ratio > 1:
        lo, hi = (low - 1) * 100, (high - 1) * 100
    else:
        lo, hi = (1 - high) * 100, (1 - low) * 100
    return f"B {word} by {fixed(abs(ratio - 1) * 100, 0)} % (95 % CI {fixed(lo, 0)}-{fixed(hi, 0)} %)"


def summarize(run: RunRecord, base: str, cand: str) -> CompareSummary:
    """Per scenario and metric: both medians, B/A with its bootstrap 95 % interval, and a sentence.

    No p-value where neither variant varies (the difference is then exact), and no verdict unless
    the user stated a claim (those are judged and listed under `claims`)."""

    df = load_table(runs=[run])
    rows: list[CompareRow] = []
    present = list(dict.fromkeys(df.metric)) if len(df) else []
    order = [m for m in SUMMARY_METRICS if m in present] + sorted(
        m for m in present if m not in SUMMARY_METRICS and m not in SKIP_METRICS
    )
    scenarios = list(dict.fromkeys(t["scenario"] for t in run.get("plan", []))) or ["cold"]
    for scen in scenarios:
        for metric in order:
            sub = df[(df.metric == metric) & (df.scenario == scen)]
            va = sub[sub.variant == base].value.to_numpy()
            vb = sub[sub.variant == cand].value.to_numpy()
            if len(va) == 0 or len(vb) == 0:
                continue
            # a time measured once per side is one draw of a noisy quantity, not an exact value
            once = min(len(va), len(vb)) < 2
            exact = not _varies(va) and not _varies(vb) and not (once and kind_of(metric) in TIMED_KINDS)
            r = ratio_ci(va, vb, seed=run.get("seed", 0) % (2**31), with_p=not exact)
            # each variant's median also under its own name, for the JSON: keys no TypedDict can name
            named = {base: float(np.median(va)), cand: float(np.median(vb))}
            fields = {
                "scenario": scen,
                "metric": metric,
                "unit": sub.unit.iloc[0],
                "a_median": float(np.median(va)),
                "b_median": float(np.median(vb)),
                **named,
                "n": min(len(va), len(vb)),
                "exact": exact,
                "ratio": r["ratio"],
                "low": r["low"],
                "high": r["high"],
                "reason": r["reason"],
                "p_value": None if exact else r["p_value"],
                "difference": "",
            }
            row = cast(CompareRow, fields)
            row["difference"] = difference_text(metric, row["unit"], row)
            rows.append(row)
    claims: list[StatedClaim] = []
    if any((d or {}).get("claims") for d in run.get("experiments", {}).values()):
        claims = [
            {
                "label": c.get("label"),
                "metric": c.get("metric"),
                "scenario": c.get("scenario"),
                "verdict": c.get("verdict"),
                "figure": c.get("figure"),
                "reason": c.get("reason"),
            }
            for c in analyze([run], latest=False).claims
        ]
    failed = [f"{t['variant']}: {t.get('error')}" for t in run["trials"] if t["status"] == "failed"]
    return {
        "run_id": run["run_id"],
        "baseline": base,
        "candidate": cand,
        "rows": rows,
        "claims": claims,
        "failed": failed,
        "warnings": list(run.get("warnings") or []),
    }


def render_compare(summary: CompareSummary) -> str:
    """A terminal table per scenario: medians, B against A in words with the interval; stated claims."""

    base, cand = summary["baseline"], summary["candidate"]
    console = Console(record=True, width=130)
    with console.capture() as cap:
        scenarios = list(dict.fromkeys(r["scenario"] for r in summary["rows"]))
        for scen in scenarios:
            table = Table(
                title=f"B = {cand} against A = {base}, scenario {scen} (median of n trials; bootstrap 95 % CI)",
                title_justify="left",
            )
            for col in ("metric", f"A {base}", f"B {cand}", "n", "B against A", "p"):
                table.add_column(col, justify="left" if col in ("metric", "B against A") else "right")
            for r in (r for r in summary["rows"] if r["scenario"] == scen):
                p = "" if r["p_value"] is None else general(r["p_value"])
                table.add_row(
                    r["metric"],
                    human_value(r["metric"], r["a_median"]),
                    human_value(r["metric"], r["b_median"]),
                    str(r["n"]),
                    r["difference"],
                    p,
                )
            console.print(table)
        if summary.get("edits"):
            console.print(f"edited between the builds: {summary['edits']}", markup=False, highlight=False)
        for c in summary.get("claims") or []:
            console.print(
                f"claim: {c['label']}: {c['verdict']} ({c.get('figure') or c.get('reason') or ''})",
                markup=False,
                highlight=False,
            )
        for w in summary.get("warnings") or []:
            console.print(f"[yellow]warning[/yellow] {w}", highlight=False)
        for f in summary["failed"]:
            console.print(f"[red]failed[/red] {f}", highlight=False)
    return cap.get().rstrip()
