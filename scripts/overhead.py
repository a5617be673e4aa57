#!/usr/bin/env python3
"""Measure imagebench's own cost: one trial through `imagebench run` against a bare
`docker buildx build` of the same Dockerfile, interleaved, cold cache for both.

    python scripts/overhead.py [--rounds 5]

Prints a JSON summary: median wall seconds of each, their ratio, and the absolute overhead.
The imagebench side counts everything a user waits for (start-up, lab check, fingerprint,
establishing the cold state, the build, inspection, package counts, writing results); the
trivial experiment has `compressed = false`, so no registry push is included (pushes are
reported separately as push_seconds in every run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXP = REPO / "tests" / "fixtures" / "experiments"


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


def harness(results: Path) -> float:
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
            "--experiments",
            str(EXP),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from harness.lab import load_lab

    lab_tag = load_lab().resolve_base("debian:trixie-slim").lab_tag
    bare_s, harness_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = EXP / "overhead" / "context"
        for i in range(args.rounds):
            order = (bare, harness) if i % 2 == 0 else (harness, bare)
            for fn in order:
                if fn is bare:
                    bare_s.append(bare(ctx, lab_tag))
                else:
                    harness_s.append(harness(Path(tmp) / "results"))
    b, h = statistics.median(bare_s), statistics.median(harness_s)
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "bare_seconds": bare_s,
                "imagebench_seconds": harness_s,
                "bare_median": round(b, 3),
                "imagebench_median": round(h, 3),
                "ratio": round(h / b, 3),
                "overhead_seconds": round(h - b, 3),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
