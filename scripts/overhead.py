#!/usr/bin/env python3
"""Measure imagebench's own cost: trials through `imagebench run` against bare `docker buildx build`s
of the same Dockerfile, interleaved, cold cache for both.

    python scripts/overhead.py [--rounds 5] [--trials 5] [--out results/perf/overhead.json]

Two figures, medians over the rounds:
  per trial      what each trial of a run costs beyond its build: (one run of N trials - one run of
                 1 trial) / (N - 1) - the bare build. Establishing the cold state (image removal,
                 cache prune and its verification), inspection, package counts, the results file.
  one-trial run  `imagebench run` with a single trial - the bare build: the above plus start-up
                 (interpreter, imports, lab check, daemon lock, fingerprint, summary).
The bare build is timed without its prune (a user would not prune); the harness's prune is counted.
The trivial experiment has `compressed = false`, so no registry push is included (pushes are
reported separately as push_seconds in every run).

Where the harness's time goes: every harness trial logs its phases (harness/runner/phases.py,
$IMAGEBENCH_PHASE_LOG); the medians per phase over the multi-trial runs' trials are in the JSON
(`phases_median_seconds`, `build` is the timed build itself) and printed as a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXP = REPO / "tests" / "fixtures" / "experiments"
sys.path.insert(0, str(REPO))  # the harness without an installed package

from harness.lab import load_lab  # noqa: E402
from harness.runner.phases import PHASE_LOG_ENV  # noqa: E402


def prune() -> None:
    subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True)


def bare(ctx: Path, lab_tag: str) -> float:
    prune()
    t0 = time.perf_counter()
    subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--progress=quiet",
            "-f",
            str(EXP / "overhead" / "Dockerfile"),
            "--build-context",
            f"debian:trixie-slim=docker-image://{lab_tag}",
            "--network",
            "host",
            "-t",
            "imagebench-overhead:bare",
            str(ctx),
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - t0
    subprocess.run(["docker", "rmi", "-f", "imagebench-overhead:bare"], capture_output=True)
    return seconds


def harness(results: Path, trials: int = 1, phase_log: Path | None = None) -> float:
    env = dict(os.environ)
    env.pop(PHASE_LOG_ENV, None)
    if phase_log is not None:
        env[PHASE_LOG_ENV] = str(phase_log)
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "--results",
            str(results),
            "run",
            "overhead",
            "--trials",
            str(trials),
            "--experiments",
            str(EXP),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
        env=env,
    )
    return time.perf_counter() - t0


def phase_medians(log: Path) -> dict[str, float]:
    """Median seconds per phase over the logged trials; `unlogged` is the trial's time outside them."""
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []
    names = sorted({k for x in lines for k in x["phases"]})
    out = {k: statistics.median(x["phases"].get(k, 0.0) for x in lines) for k in names}
    if lines:
        out["unlogged"] = statistics.median(x["seconds"] - sum(x["phases"].values()) for x in lines)
        out["trial_total"] = statistics.median(x["seconds"] for x in lines)
        out["harness_total"] = statistics.median(x["seconds"] - x["phases"].get("build", 0.0) for x in lines)
    return {k: round(v, 4) for k, v in out.items()}


def print_phases(phases: dict[str, float]) -> None:
    """Where each trial's harness time goes, largest first (stderr: stdout stays the JSON)."""
    if not phases:
        return
    print("median seconds per trial, by phase (multi-trial runs):", file=sys.stderr)
    rest = {k: v for k, v in phases.items() if k not in ("build", "trial_total", "harness_total")}
    for k, v in sorted(rest.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<12} {v:8.4f}", file=sys.stderr)
    print(
        f"  {'= harness':<12} {phases.get('harness_total', 0.0):8.4f}  (trial minus its timed build)",
        file=sys.stderr,
    )
    print(f"  {'build':<12} {phases.get('build', 0.0):8.4f}  (the timed build)", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=5, help="trials of the multi-trial run (>= 2)")
    ap.add_argument("--out", default=None, help="write the JSON here (default: print it)")
    args = ap.parse_args()
    if args.trials < 2:
        ap.error("--trials must be >= 2")
    lab_tag = load_lab().resolve_base("debian:trixie-slim").lab_tag
    bare_s, one_s, many_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = EXP / "overhead" / "context"
        for i in range(args.rounds):
            steps = ["bare", "one", "many"]
            if i % 2:
                steps.reverse()
            for step in steps:
                if step == "bare":
                    bare_s.append(bare(ctx, lab_tag))
                elif step == "one":
                    one_s.append(harness(Path(tmp) / "results", 1))
                else:
                    many_s.append(harness(Path(tmp) / "results", args.trials, Path(tmp) / "phases.jsonl"))
        phases = phase_medians(Path(tmp) / "phases.jsonl")
    b, one, many = statistics.median(bare_s), statistics.median(one_s), statistics.median(many_s)
    per_trial = (many - one) / (args.trials - 1)
    doc = {
        "rounds": args.rounds,
        "trials": args.trials,
        "bare_seconds": bare_s,
        "one_trial_run_seconds": one_s,
        "multi_trial_run_seconds": many_s,
        "bare_median": round(b, 3),
        "per_trial_seconds": round(per_trial, 3),
        "overhead_seconds": round(per_trial - b, 3),
        "ratio": round(per_trial / b, 3),
        "one_trial_run_median": round(one, 3),
        "one_trial_run_overhead_seconds": round(one - b, 3),
        "one_trial_run_ratio": round(one / b, 3),
        # kept for readers of the first version of this file
        "imagebench_median": round(one, 3),
        "phases_median_seconds": phases,
    }
    text = json.dumps(doc, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(
            f"wrote {args.out}: {doc['overhead_seconds']} s per trial (ratio {doc['ratio']}), "
            f"one-trial run {doc['one_trial_run_overhead_seconds']} s"
        )
    else:
        print(text)
    print_phases(phases)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
