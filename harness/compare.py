"""`imagebench compare A.Dockerfile B.Dockerfile`: a user's own pair through the same runner.

The pair becomes a two-variant experiment in a private folder (the Dockerfiles copied, the
context referenced), measured like any catalog experiment and written as a normal run.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.experiment import Claim, Experiment, Variant
from harness.runner import RunOptions, RunOutcome, run_experiments

SUMMARY_METRICS = (
    "build_seconds",
    "image_bytes",
    "image_bytes_compressed",
    "layers",
    "steps_executed",
    "context_bytes",
)


def _variant_name(path: Path, other: Path) -> str:
    import re

    name = path.name.removesuffix(".Dockerfile").removeprefix("Dockerfile.").lower() or "a"
    if name in ("dockerfile", other.name.lower()):
        name = path.parent.name.lower() or "a"
    return re.sub(r"[^a-z0-9-]+", "-", name).strip("-") or "a"


def make_pair(
    a: Path, b: Path, context: Path | None, folder: Path, scenarios: tuple[str, ...] = ("cold",)
) -> Experiment:
    for p in (a, b):
        if not p.is_file():
            raise UsageError(f"Dockerfile not found: {p}")
    context = (context or a.parent).resolve()
    if not context.is_dir():
        raise UsageError(f"build context is not a directory: {context}")
    na, nb = _variant_name(a, b), _variant_name(b, a)
    if na == nb:
        na, nb = f"{na}-a", f"{nb}-b"
    shutil.copyfile(a, folder / "A.Dockerfile")
    shutil.copyfile(b, folder / "B.Dockerfile")
    for src, dst in ((a, "A.Dockerfile"), (b, "B.Dockerfile")):
        ignore = Path(str(src) + ".dockerignore")
        if ignore.is_file():
            shutil.copyfile(ignore, folder / f"{dst}.dockerignore")
    (folder / "experiment.toml").write_text(f'practice = "compare"\nclaim = "{nb} vs {na}"\n')
    variants = (
        Variant(name=na, dockerfile="A.Dockerfile", context=str(context), scenarios=scenarios),
        Variant(name=nb, dockerfile="B.Dockerfile", context=str(context), scenarios=scenarios),
    )
    claims = tuple(
        Claim(metric=m, scenario=scenarios[0], expect="lower", baseline=na, candidate=nb)
        for m in ("image_bytes", "build_seconds")
    )
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
        probes=(),
        metrics=("gcc_present",),
        requires=(),
        edits={},
        variants=variants,
        claims=claims,
    )


def compare(
    a: Path,
    b: Path,
    *,
    context: Path | None,
    opts: RunOptions,
    reporter=None,
    scenarios: tuple[str, ...] = ("cold",),
) -> tuple[RunOutcome, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="imagebench-compare-") as tmp:
        folder = Path(tmp) / "compare"
        folder.mkdir()
        exp = make_pair(a.resolve(), b.resolve(), context, folder, scenarios)
        outcome = run_experiments([exp], opts, reporter)
    return outcome, summarize(outcome.run.data, exp.variants[0].name, exp.variants[1].name)


def summarize(run: dict, base: str, cand: str) -> dict[str, Any]:
    """Medians per variant and the candidate/baseline ratio with its bootstrap 95 % interval."""
    import numpy as np

    from harness.results import load_table
    from harness.stats import ratio_ci

    df = load_table(runs=[run])
    rows = []
    for metric in SUMMARY_METRICS:
        sub = df[df.metric == metric]
        va = sub[sub.variant == base].value.to_numpy()
        vb = sub[sub.variant == cand].value.to_numpy()
        if len(va) == 0 or len(vb) == 0:
            continue
        r = ratio_ci(va, vb, seed=run.get("seed", 0) % (2**31))
        rows.append(
            {
                "metric": metric,
                "unit": sub.unit.iloc[0],
                base: float(np.median(va)),
                cand: float(np.median(vb)),
                "n": min(len(va), len(vb)),
                **{k: r.get(k) for k in ("ratio", "low", "high", "p_value")},
            }
        )
    failed = [f"{t['variant']}: {t.get('error')}" for t in run["trials"] if t["status"] == "failed"]
    return {"run_id": run["run_id"], "baseline": base, "candidate": cand, "rows": rows, "failed": failed}


def render_compare(summary: dict[str, Any]) -> str:
    """A terminal table: medians, ratio and its interval."""
    from rich.console import Console
    from rich.table import Table

    from harness.report.format import human_value

    base, cand = summary["baseline"], summary["candidate"]
    table = Table(title=f"{cand} / {base}  (median of n trials; ratio with bootstrap 95 % CI)")
    for col in ("metric", base, cand, "n", "ratio", "95 % CI", "p"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for r in summary["rows"]:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        ci = "-" if r["low"] is None else f"{r['low']:.3f} - {r['high']:.3f}"
        p = "-" if r["p_value"] is None else f"{r['p_value']:.3g}"
        table.add_row(
            r["metric"],
            human_value(r["metric"], r[base]),
            human_value(r["metric"], r[cand]),
            str(r["n"]),
            ratio,
            ci,
            p,
        )
    console = Console(record=True, width=110)
    with console.capture() as cap:
        console.print(table)
        for f in summary["failed"]:
            console.print(f"[red]failed[/red] {f}")
    return cap.get().rstrip()
