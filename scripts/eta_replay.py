#!/usr/bin/env python3
"""Replay a finished run through the progress display's ETA and compare it with the time actually left.

    python scripts/eta_replay.py RUN.json PRIORS_DIR [PRIORS_DIR ...] [--every 5]

RUN.json is a run file (its trials, in the order they started); the PRIORS_DIRs are what `imagebench
run` reads priors from (a results directory: `<machine>/<run-id>.json`), as they were before the run,
so RUN.json itself must not be under them. After each finished trial the ETA is computed exactly as
the live display computes it (harness.progress.Progress), and compared with the wall time from that
trial's end to the last trial's end. Prints one line per `--every` trials from the first tenth on
and the worst error with a minute or more left and in the last minute.

    python scripts/eta_replay.py tests/fixtures/eta_tour/run.json tests/fixtures/eta_tour/reference
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def replay(run_path: Path, prior_dirs: list[Path]) -> list[dict]:
    from harness.progress import Progress, trial_priors

    trials = [
        t for t in json.loads(run_path.read_text())["trials"] if t.get("started_at") and t.get("ended_at")
    ]
    trials.sort(key=lambda t: _ts(t["started_at"]))
    cells = {(t["experiment"], t["variant"], t["scenario"]) for t in trials}
    with open("/dev/null", "w") as null:
        progress = Progress(plain=True, stream=null)
        progress.set_plan(trials, trial_priors(prior_dirs, cells=cells))
        progress.start(len(trials))
        end = _ts(trials[-1]["ended_at"])
        points = []
        for i, t in enumerate(trials, 1):
            progress.trial_started(t["experiment"], t["variant"], t["scenario"], t["trial"])
            progress.trial_finished(t["status"], _ts(t["ended_at"]) - _ts(t["started_at"]))
            left = end - _ts(t["ended_at"])
            points.append({"done": i, "of": len(trials), "eta": progress.eta_seconds() or 0.0, "left": left})
    return points


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("priors", type=Path, nargs="+")
    ap.add_argument("--every", type=int, default=5)
    args = ap.parse_args()
    if not args.run.is_file():
        print(f"eta_replay: no run file {args.run}", file=sys.stderr)
        return 2
    points = replay(args.run, args.priors)
    late = [p for p in points if p["done"] >= p["of"] / 10 and p["left"] > 0]
    print("trials done   ETA (s)   left (s)   error")
    for p in late:
        if p["done"] % args.every == 0 or p is late[0]:
            err = (p["eta"] - p["left"]) / p["left"]
            print(f"{p['done']:>4}/{p['of']:<6} {p['eta']:>9.0f} {p['left']:>10.0f} {100 * err:>+7.0f} %")
    long = [abs(p["eta"] - p["left"]) / p["left"] for p in late if p["left"] >= 60]
    short = [abs(p["eta"] - p["left"]) for p in late if p["left"] < 60]
    if long:
        print(f"worst error from the first tenth on, with a minute or more left: {100 * max(long):.0f} %")
    if short:
        print(f"worst error in the last minute: {max(short):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
