#!/usr/bin/env python3
"""Regenerate the README's generated blocks from committed results (no number typed by hand).

    python scripts/readme_figures.py          # rewrite the blocks in README.md
    python scripts/readme_figures.py --check  # exit 1 if README.md is not current (a test runs this)

Blocks are delimited by `<!-- BEGIN name -->` / `<!-- END name -->`:
  claims    the claims table of results/report/REPORT.md
  plots     a few plots of the reference run
  perf      suite timings (from the run files' own timestamps) and the harness overhead
            (results/perf/overhead.json, written by scripts/overhead.py)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"
README = REPO / "README.md"


def _section(markdown: str, heading: str) -> str:
    lines = markdown.splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith("## "):
            if inside:
                break
            inside = line.strip() == f"## {heading}"
            continue
        if inside:
            out.append(line)
    return "\n".join(out).strip()


def claims_block() -> str:
    report = RESULTS / "report" / "REPORT.md"
    if not report.is_file():
        return "_No reference run committed yet: run `make reference`._"
    markdown = report.read_text()
    text = _section(markdown, "Claims")
    text = text.replace("](#", "](results/report/REPORT.md#").replace("](plots/", "](results/report/plots/")
    # what the report pooled or left out travels with its claims table
    banner = [ln for ln in markdown.splitlines() if ln.startswith(("> **Note:** POOLED", "> **Note:** Run "))]
    return (
        ("\n".join(banner) + "\n\n" if banner else "")
        + text
        + "\n\nThe whole report: [results/report/REPORT.md](results/report/REPORT.md) "
        "(and `results/report/index.html`)."
    )


def _runs(folder: Path) -> list[dict]:
    out = []
    for p in sorted(folder.glob("*/*.json")):
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if data.get("schema") == "imagebench.run":
            out.append(data)
    return out


def _duration(run: dict) -> float:
    def ts(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return (ts(run["updated_at"]) - ts(run["created_at"])).total_seconds()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def plots_block() -> str:
    plots = RESULTS / "report" / "plots"
    if not plots.is_dir():
        return "_No reference run committed yet._"
    wanted = ["calibration-recovery.png", "claims-forest.png"]
    wanted += sorted(p.name for p in plots.glob("*-multi-stage--image-bytes.png"))[:1]
    wanted += sorted(p.name for p in plots.glob("*-instruction-order--waterfall-edit-source.png"))[:1]
    wanted += sorted(p.name for p in plots.glob("*-exec-vs-shell--stop-seconds.png"))[:1]
    lines = [f"![{name[:-4]}](results/report/plots/{name})" for name in wanted if (plots / name).is_file()]
    return "\n\n".join(lines) if lines else "_No plots rendered yet._"


def _command(run: dict) -> str:
    """The run's command line as typed, a long list of experiments shortened to its count."""
    argv = list(run.get("command", []))
    if "--results" in argv:  # where the file was first written is not part of the measurement
        i = argv.index("--results")
        del argv[i : i + 2]
    names = [a for a in argv[2:] if not a.startswith("-") and not a.isdigit()]
    if len(names) > 3:
        argv = [a for a in argv if a not in names]
        argv.insert(2, f"<{len(names)} experiments>")
    host = ((run.get("fingerprint") or {}).get("engine") or {}).get("docker_host") or ""
    default = host in ("", "unix:///var/run/docker.sock")
    return "`" + " ".join(argv) + "`" + ("" if default else f" (engine at `{host}`)")


def perf_block() -> str:
    rows = []
    quick = _runs(RESULTS / "perf" / "quick")
    reference = sorted(_runs(RESULTS), key=lambda r: r["created_at"])
    for label, runs, cmd in (
        ("`imagebench run --all --quick`", quick[-1:], "one trial each"),
        *((_command(r), [r], "reference run") for r in reference),
    ):
        for r in runs:
            t = r["trials"]
            ok = sum(x["status"] == "ok" for x in t)
            skipped = sum(x["status"] == "skipped" for x in t)
            failed = sum(x["status"] == "failed" for x in t)
            cpus = (r["fingerprint"].get("host") or {}).get("cpus")
            rows.append(
                f"| {label} ({cmd}) | {_minutes(_duration(r))} | {len(t)} trials: {ok} ok, {failed} failed, "
                f"{skipped} not measurable here | {cpus} CPUs, run `{r['run_id']}` |"
            )
    out = (
        ["| command | wall time | trials | machine |", "| --- | ---: | --- | --- |", *rows]
        if rows
        else ["_Suite timings appear after `make reference`._"]
    )
    out += first_hour_lines()
    out += calibration_repeat_lines()
    overhead = RESULTS / "perf" / "overhead.json"
    if overhead.is_file():
        o = json.loads(overhead.read_text())
        if "per_trial_seconds" in o:  # scripts/overhead.py since the per-trial measurement
            out += [
                "",
                f"Harness overhead (`python scripts/overhead.py --rounds {o['rounds']} --trials {o['trials']}`, "
                "interleaved, cold cache both ways, trivial build of one `RUN sleep 8`): bare `docker buildx "
                f"build` median {o['bare_median']:.2f} s; each trial of a run costs {o['per_trial_seconds']:.2f} s, "
                f"**{o['overhead_seconds']:.2f} s of harness work per trial** (ratio {o['ratio']:.3f}: cold state "
                "with prune and its verification, inspection, package counts, results file); a one-trial run "
                f"takes {o['one_trial_run_median']:.2f} s ({o['one_trial_run_overhead_seconds']:.2f} s over the bare "
                "build, start-up included). No registry push is included (pushes are `push_seconds`)."
                + _phases_text(o.get("phases_median_seconds") or {}),
            ]
            return "\n".join(out)
        out += [
            "",
            f"Harness overhead (`python scripts/overhead.py --rounds {o['rounds']}`, interleaved, cold cache "
            f"both ways, trivial build of one `RUN sleep 8`): bare `docker buildx build` median "
            f"{o['bare_median']:.2f} s, one trial through `imagebench run` median {o['imagebench_median']:.2f} s: "
            f"ratio **{o['ratio']:.3f}**, {o['overhead_seconds']:.2f} s of harness work per trial "
            "(start-up, lab check, fingerprint, cache prune and verification, inspection, package counts, "
            "results file). No registry push is included (pushes are `push_seconds`, reported separately).",
        ]
    return "\n".join(out)


def _phases_text(phases: dict) -> str:
    """The biggest phases of a trial's harness work (medians; `IMAGEBENCH_PHASE_LOG`)."""
    skip = {"build", "trial_total", "harness_total"}
    top = sorted(((v, k) for k, v in phases.items() if k not in skip and v > 0), reverse=True)[:4]
    if not top:
        return ""
    return " Median per phase: " + ", ".join(f"{k.replace('_', ' ')} {v:.3f} s" for v, k in top) + "."


def first_hour_lines() -> list[str]:
    """The quickstart's own timing (results/perf/first-hour.json, written by scripts/first_hour.py)."""
    path = RESULTS / "perf" / "first-hour.json"
    if not path.is_file():
        return []
    rec = json.loads(path.read_text())

    def pytest_summary(step: dict) -> str:
        lines = [ln for ln in step.get("log_tail", []) if " passed" in ln or " failed" in ln]
        return f", pytest: {lines[-1].strip()}" if lines else ""

    parts = [
        f"`{s['step']}` {_minutes(s['seconds'])} (exit {s['returncode']}{pytest_summary(s)}, load average "
        f"{s['loadavg_before'][0]:.1f} before)"
        for s in rec["steps"]
    ]
    unchanged = "no tracked file changed" if rec["tracked_files_unchanged"] else "TRACKED FILES CHANGED"
    return [
        "",
        f"Quickstart in a fresh clone (`{rec['command']}`, commit `{rec['commit'][:7]}`, {rec['cpus']} CPUs, "
        f"lab already up on this machine): " + "; ".join(parts) + f"; {unchanged}.",
    ]


REPEATS = (
    ("calibration-repeat.json", "Calibration power"),
    (
        "calibration-repeat-unbounded-history.json",
        "The same repeat earlier, on an engine that kept BuildKit's build history for its default 48 h",
    ),
)


def calibration_repeat_lines() -> list[str]:
    """The calibration's power, measured: results/perf/calibration-repeat*.json (scripts/calibration_repeat.py)."""
    out: list[str] = []
    for name, title in REPEATS:
        path = RESULTS / "perf" / name
        if path.is_file():
            out += _repeat_lines(json.loads(path.read_text()), title, name)
    return out


def _repeat_lines(rec: dict, title: str, name: str) -> list[str]:
    runs = [r for r in rec.get("runs", []) if r.get("claims")]
    if not runs:
        return []
    done = rec["runs_completed"]
    walls = sorted(r["wall_seconds"] for r in runs)
    per_claim = "; ".join(
        f"{label.split(' (')[0]}: {c['supported']}/{c['runs']}"
        for label, c in rec["pass_count_per_claim"].items()
        if "seconds" in label
    )
    tols = sorted(
        {c["tolerance"] for r in runs for c in r["claims"] if "seconds" in c["metric"] and c["tolerance"]}
    )
    loads = sorted(r["loadavg_before"][0] for r in runs)
    missed = [
        str(r["index"])
        for r in runs
        if not all(c["verdict"] == "supported" for c in r["claims"] if "seconds" in c["metric"])
    ]
    failed = f"; runs (0 to {len(runs) - 1}) that missed a time claim: {', '.join(missed)}" if missed else ""
    tol = f", interval within ±{tols[0] * 1000:.0f} ms of the injected effect" if len(tols) == 1 else ""
    states = [r["buildkit_before"] for r in runs if r.get("buildkit_before")]
    state = (
        f" BuildKit's state on disk held {states[0]['files']:,} files ({states[0]['bytes'] / 2**20:.0f} MiB) "
        f"before the first run and {states[-1]['files']:,} ({states[-1]['bytes'] / 2**20:.0f} MiB) before the last."
        if len(states) == len(runs)
        else ""
    )
    return [
        "",
        f"{title} (`{rec['command']}`; file `results/perf/{name}`): `imagebench run calibration` at its default n, "
        f"{done} runs one after another; **all time claims supported in {rec['runs_with_all_time_claims_supported']} "
        f"of {done} runs** (per claim{tol}: {per_claim}){failed}; a run took {_minutes(walls[len(walls) // 2])}, "
        f"load average {loads[len(loads) // 2]:.1f} before it (medians; the first run took "
        f"{_minutes(runs[0]['wall_seconds'])}, the last {_minutes(runs[-1]['wall_seconds'])}).{state}",
    ]


BLOCKS = {"claims": claims_block, "plots": plots_block, "perf": perf_block}


def render(text: str) -> str:
    for name, fn in BLOCKS.items():
        pat = re.compile(rf"(<!-- BEGIN {name} -->\n)(.*?)(<!-- END {name} -->)", re.S)
        text = pat.sub(lambda m, fn=fn: m.group(1) + fn() + "\n" + m.group(3), text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    current = README.read_text()
    new = render(current)
    if args.check:
        if new != current:
            print(
                "README.md generated blocks are stale: run `python scripts/readme_figures.py`",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
