#!/usr/bin/env python3
"""Is results/ a reference? The rules one `make reference` must meet, checked on the run files.

    python scripts/reference_check.py results    # exit 0, or exit 1 with one line per broken rule

A reference is what one `make reference` produced on an idle machine (scripts/reference-run.sh):
every run from one harness commit on a clean tree, on one engine, complete (none interrupted), no
two runs overlapping in time, each started by the command the script runs
(`imagebench --results results run ...`), each run's own calibration passed (a run whose
calibration failed cannot judge its time claims), and each run was served by the lab index at the
point in time experiments/index.toml names (`fingerprint.lab.index_uploaded_before`: the packages a
rerun gets). A test runs `problems` on generated runs.
"""

from __future__ import annotations

import sys
from itertools import pairwise
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness import analysis  # noqa: E402
from harness.gate import index_cutoff_of  # noqa: E402
from harness.lab.wheelhouse import uploaded_before  # noqa: E402
from harness.results import load_runs  # noqa: E402

COMMAND = ["imagebench", "--results", "results", "run"]


def problems(runs: list[dict], *, n_boot: int = analysis.N_BOOT, cutoff: str | None = None) -> list[str]:
    """Every rule of a reference that `runs` break, one line each (empty: a reference); with `cutoff`,
    every run must have been served by the lab index with that package cutoff."""
    out: list[str] = []
    if not runs:
        return ["no run files"]
    commits = {str((r.get("fingerprint") or {}).get("harness", {}).get("git_commit")) for r in runs}
    if len(commits) > 1:
        out.append(f"{len(commits)} harness commits: {', '.join(sorted(c[:12] for c in commits))}")
    for r in runs:
        rid = r["run_id"]
        harness = (r.get("fingerprint") or {}).get("harness") or {}
        if harness.get("git_dirty") is not False:
            out.append(f"run {rid}: not from a clean tree (git_dirty {harness.get('git_dirty')})")
        if r.get("status") != "complete":
            out.append(f"run {rid}: status {r.get('status')}, not complete")
        if list(r.get("command") or [])[: len(COMMAND)] != COMMAND:
            out.append(
                f"run {rid}: command {' '.join(r.get('command') or [])!r} is not one reference-run.sh runs"
            )
        if cutoff is not None and index_cutoff_of(r) != cutoff:
            out.append(
                f"run {rid}: lab index cutoff {index_cutoff_of(r)}, not experiments/index.toml's {cutoff}"
            )
        cal = analysis.run_calibration(r, n_boot=n_boot)
        if cal["passed"] is False:
            bad = next(c for c in cal["claims"] if c["verdict"] != "supported")
            out.append(f"run {rid}: its calibration failed ({bad['figure']}: {bad['verdict']})")
    selection = analysis.select_runs(runs)
    out += [f"run {rid}: not judged with the others: {why}" for rid, why in selection.left_out]
    ordered = sorted(runs, key=lambda r: str(r.get("created_at")))
    for a, b in pairwise(ordered):
        if str(b.get("created_at")) < str(a.get("updated_at")):
            out.append(f"runs {a['run_id']} and {b['run_id']} overlap in time")
    return out


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "results")
    runs = [r for r in load_runs(folder) if not str(r.get("machine", "")).startswith("reference-")]
    found = problems(runs, cutoff=uploaded_before())
    for line in found:
        print(f"reference-check: {line}", file=sys.stderr)
    if not found:
        print(f"reference-check: {len(runs)} run(s) under {folder} form one reference")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
