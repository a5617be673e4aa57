#!/usr/bin/env python3
"""Repeat `imagebench run calibration` at its default n and count how often each claim passes.

Each repeat runs under its own `flock /tmp/imagebench-docker.lock` (the lock is released between
runs so other users of the daemon get their turn); the load average is read just before and after
each run, because on a shared machine other processes' CPU use is part of the noise. The summary
judges every run with the same code as the report (`harness.analysis.evaluate_claims`) and is
rewritten after every run, so an interrupted repeat still leaves an honest partial summary.

    .venv/bin/python scripts/calibration_repeat.py --runs 20 --scratch /tmp/cal-repeat \
        --out results/perf/calibration-repeat.json
    .venv/bin/python scripts/calibration_repeat.py --summarize-only --scratch /tmp/cal-repeat --out ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LOCK = "/tmp/imagebench-docker.lock"
BUILDKIT_ROOT = Path("/var/lib/docker/buildkit")


def buildkit_state(root: Path = BUILDKIT_ROOT) -> dict | None:
    """Files and bytes under the local engine's BuildKit root (None when it is not readable here).

    BuildKit's build history lives there; an engine whose history is unbounded grows it by a few
    blobs per build, and a long repeat slowed down as it grew (README: "The engine's own state")."""
    try:
        files = [f for f in root.rglob("*") if f.is_file()]
        return {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    except OSError:
        return None


def run_once(scratch: Path, i: int) -> dict:
    results = scratch / f"run-{i:02d}"
    cmd = ["flock", LOCK, str(REPO / ".venv/bin/imagebench"), "run", "calibration", "--results", str(results)]
    rec: dict = {
        "index": i,
        "results": str(results),
        "loadavg_before": list(os.getloadavg()),
        "buildkit_before": buildkit_state(),
    }
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    rec.update(
        returncode=proc.returncode,
        wall_seconds=round(time.time() - t0, 1),
        loadavg_after=list(os.getloadavg()),
        buildkit_after=buildkit_state(),
        stderr_tail=proc.stderr.strip().splitlines()[-1:] if proc.returncode else [],
    )
    return rec


def summarize(_scratch: Path, records: list[dict], command: str) -> dict:
    from harness import analysis
    from harness.results import load_runs

    per_run = []
    counts: dict[str, dict[str, int]] = {}
    for rec in records:
        runs = load_runs(Path(rec["results"])) if Path(rec["results"]).is_dir() else []
        row = {**rec, "run_id": runs[0]["run_id"] if runs else None, "claims": []}
        if runs:
            row["loadavg_recorded"] = ((runs[0].get("fingerprint") or {}).get("host") or {}).get("loadavg")
            for c in analysis.evaluate_claims(runs):
                if c["experiment"] != "calibration":
                    continue
                row["claims"].append(
                    {
                        "label": c["label"],
                        "metric": c["metric"],
                        "n": [c["n_baseline"], c["n_candidate"]],
                        "delta": c["delta"],
                        "low": c["low"],
                        "high": c["high"],
                        "expected": c["value"],
                        "tolerance": c.get("tolerance_abs"),
                        "paired": c.get("paired"),
                        "verdict": c["verdict"],
                    }
                )
                k = counts.setdefault(c["label"], {"supported": 0, "runs": 0})
                k["runs"] += 1
                k["supported"] += c["verdict"] == "supported"
        per_run.append(row)
    time_labels = [lbl for lbl in counts if "seconds" in lbl]
    all_time = sum(
        1
        for r in per_run
        if r["claims"] and all(c["verdict"] == "supported" for c in r["claims"] if c["label"] in time_labels)
    )
    return {
        "what": "imagebench run calibration at its default n, repeated; every claim judged as the report does",
        "command": command,
        "per_run_command": f"flock {LOCK} .venv/bin/imagebench run calibration --results <scratch>/run-NN",
        "runs_completed": sum(1 for r in per_run if r["claims"]),
        "runs_with_all_time_claims_supported": all_time,
        "pass_count_per_claim": counts,
        "runs": per_run,
    }


def _relative_paths(text: str) -> str:
    """Absolute paths to a checkout's results/ (this one or a worktree the repeat ran from) as results/..."""
    return re.sub(r"(?<![\w.])/\S*?/(results/perf/)", r"\1", text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--scratch", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=REPO / "results/perf/calibration-repeat.json")
    ap.add_argument("--summarize-only", action="store_true")
    a = ap.parse_args(argv)
    command = "python scripts/calibration_repeat.py " + " ".join(
        shlex.quote(_relative_paths(x)) for x in (argv or sys.argv[1:])
    )
    if a.summarize_only and a.out.is_file():  # keep the command that measured, not this re-summary
        with contextlib.suppress(ValueError, KeyError, TypeError):
            command = _relative_paths(json.loads(a.out.read_text())["command"])
    a.scratch.mkdir(parents=True, exist_ok=True)
    log = a.scratch / "records.json"
    records = json.loads(log.read_text()) if log.is_file() else []
    if not a.summarize_only:
        for i in range(len(records), a.runs):
            records.append(run_once(a.scratch, i))
            log.write_text(json.dumps(records, indent=1))
            a.out.write_text(json.dumps(summarize(a.scratch, records, command), indent=1) + "\n")
            print(f"run {i}: rc {records[-1]['returncode']} in {records[-1]['wall_seconds']} s", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summarize(a.scratch, records, command), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
