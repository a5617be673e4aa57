#!/usr/bin/env python3
"""A newcomer's first hour, timed: the README's two commands in a fresh clone of this checkout's HEAD.

    python scripts/first_hour.py [--with-test] [--out results/perf/first-hour.json]

Clones HEAD into a temporary directory, runs `make setup` (system packages, engine, .venv), then
`make run` (lab up, the short tour, its report) and, with --with-test, `make test`, each timed, and
`git status --porcelain` after each (a user's run must not change a tracked file). The lab's state
lives outside the checkout, so on a machine whose lab is already up `make run` measures the tour
and the report, not the lab's first build (its per-base build times are in `imagebench lab status`).
The clone is removed afterwards; the record (commit, exit codes, seconds, load averages, whether
the report exists, what git status printed) is written to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def step(name: str, argv: list[str], cwd: Path, log: Path) -> dict:
    """Run one command in the clone, timed; its output goes to log."""
    rec: dict = {"step": name, "command": " ".join(argv), "loadavg_before": list(os.getloadavg())}
    t0 = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(
            argv, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        ).returncode
    rec.update(
        returncode=rc,
        seconds=round(time.perf_counter() - t0, 1),
        loadavg_after=list(os.getloadavg()),
        git_status_porcelain=_git("status", "--porcelain", cwd=cwd),
        log_tail=log.read_text(errors="replace").splitlines()[-3:],
    )
    print(f"{name}: exit {rc} in {rec['seconds']} s", flush=True)
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--with-test", action="store_true", help="also run `make test` after `make run`")
    ap.add_argument("--out", type=Path, default=REPO / "results/perf/first-hour.json")
    ap.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    a = ap.parse_args(argv)
    if _git("status", "--porcelain", "--untracked-files=no", cwd=REPO):
        print(
            "first_hour: the checkout has uncommitted changes; commit them first (HEAD is cloned)",
            file=sys.stderr,
        )
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="ib-first-hour-"))
    clone = tmp / "imagebench"
    steps = []
    try:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        plan = [("make setup", ["make", "setup"]), ("make run", ["make", "run"])]
        if a.with_test:
            plan.append(("make test", ["make", "test"]))
        for name, cmd in plan:
            steps.append(step(name, cmd, clone, tmp / f"{name.replace(' ', '-')}.log"))
            if steps[-1]["returncode"] != 0:
                break
        report = clone / "runs" / "report" / "index.html"
        record = {
            "what": "the README's quickstart in a fresh clone of HEAD, each make target timed",
            "command": "python scripts/first_hour.py" + (" --with-test" if a.with_test else ""),
            "commit": _git("rev-parse", "HEAD", cwd=clone),
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cpus": os.cpu_count(),
            "steps": steps,
            "report_written": report.is_file(),
            "tracked_files_unchanged": all(s["git_status_porcelain"] == "" for s in steps),
        }
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {a.out}")
        return 0 if all(s["returncode"] == 0 for s in steps) and record["tracked_files_unchanged"] else 1
    finally:
        if a.keep:
            print(f"clone kept at {clone}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
