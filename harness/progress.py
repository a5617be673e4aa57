"""Progress of a run on the terminal, and the text forms of the tidy table.

`Progress` is what the runner calls while it measures:

    progress = Progress(console=None)      # rich bar with ETA on a TTY, plain lines otherwise
    progress.start(total_trials)
    progress.trial_started(experiment, variant, scenario, trial)
    progress.trial_finished(status, seconds)
    ...
    progress.finish(summary_rows)           # the rich summary table

On a terminal it draws a rich progress bar (experiment, variant, scenario, trial, ETA); when
stdout is not a terminal (CI logs) it prints one plain line per event, so a log stays
readable. `summary_rows(runs_or_df, verdicts)` builds what `finish` shows.

`table_text(df, fmt)` renders the tidy table for `imagebench table --format csv|md|json`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from harness.report import format as fmt

SUMMARY_FIELDS = ("experiment", "variant", "scenario", "n", "median_build_seconds", "image_bytes", "verdict")


class Progress:
    """Run progress: a rich bar with ETA on a TTY, one plain line per event elsewhere."""

    def __init__(self, console: Console | None = None, *, plain: bool | None = None, stream=None) -> None:
        self.console = console or Console(file=stream or sys.stderr)
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self.total = 0
        self.done = 0
        self.counts: dict[str, int] = {}
        self.current: tuple[str, str, str, int] | None = None
        self._bar: RichProgress | None = None
        self._task = None
        self._t0 = 0.0
        self._durations: list[float] = []
        self._plan: list[tuple[str, str, str]] = []
        self._priors: dict[tuple[str, ...], float] = {}
        self._measured: dict[tuple[str, ...], list[float]] = {}
        self._eta_at: tuple[float, float] | None = None  # (eta seconds, monotonic time it was computed)

    # -- the runner's calls ------------------------------------------------------------
    def set_plan(self, plan: Iterable[dict], priors: dict[tuple[str, ...], float] | None = None) -> None:
        """The trials still to run, in order, and prior trial seconds (from earlier run files) for the ETA."""
        self._plan = [(str(e["experiment"]), str(e["variant"]), str(e["scenario"])) for e in plan]
        self._priors = dict(priors or {})

    def start(self, total_trials: int) -> None:
        self.total, self.done, self.counts = int(total_trials), 0, {}
        self._t0 = time.monotonic()
        if self.plain:
            self._line(f"run: {self.total} trial(s) planned")
            return
        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            _EtaColumn(self),
            console=self.console,
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("starting", total=self.total or None)

    def trial_started(self, experiment: str, variant: str, scenario: str, trial: int) -> None:
        self.current = (experiment, variant, scenario, int(trial))
        label = self._label(*self.current)
        if self.plain:
            self._line(f"[{self.done + 1}/{self.total}] {label} ...")
        elif self._bar is not None:
            self._bar.update(self._task, description=label)

    def trial_finished(self, status: str, seconds: float | None = None) -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if seconds is not None and math.isfinite(seconds):
            self._durations.append(float(seconds))
            if self.current:  # a skipped cell stays skipped: its time (about 0) is its estimate
                exp, var, scen, _ = self.current
                for key in ((exp, var, scen),) if status == "skipped" else ((exp, var, scen), (exp,)):
                    self._measured.setdefault(key, []).append(float(seconds))
        self._eta_at = None
        label = self._label(*self.current) if self.current else "trial"
        took = f" in {fmt.human_seconds(seconds)}" if seconds is not None else ""
        if self.plain:
            self._line(f"[{self.done}/{self.total}] {label}: {status}{took}{self._eta_text()}")
        elif self._bar is not None:
            self._bar.advance(self._task)
            if status != "ok":
                self._bar.console.print(
                    f"{label}: {status}{took}", style="yellow", markup=False, highlight=False
                )
        self.current = None

    def message(self, text: str) -> None:
        """A line of its own (warm-up notes, a trial's error), printed above the bar on a terminal."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            self._line(text)

    def finish(self, summary_rows: Iterable[dict] | None = None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description="done")
            self._bar.stop()
            self._bar = None
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "no trials"
        elapsed = fmt.human_seconds(time.monotonic() - self._t0) if self._t0 else "–"
        self._line(f"run finished: {self.done}/{self.total} trial(s) ({counts}) in {elapsed}")
        rows = list(summary_rows or [])
        if rows:
            self.console.print(summary_table(rows))

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def _label(experiment: str, variant: str, scenario: str, trial: int) -> str:
        return f"{experiment} · {variant} · {scenario} · trial {trial}"

    def eta_seconds(self) -> float | None:
        """Seconds still to go, from the trial times measured in this run (None before the first trial).

        With the plan known (`set_plan`), each remaining trial is estimated on its own: the mean of
        its cell (experiment, variant, scenario) measured so far; else its prior from earlier run
        files scaled by how fast this machine ran the cells measured so far against their priors;
        else its experiment's mean so far (or scaled prior); else the mean of every trial so far.
        Without a plan: remaining trials times the mean trial so far."""
        if not self._durations or not self.total:
            return None
        overall = sum(self._durations) / len(self._durations)
        remaining = max(0, self.total - self.done)
        todo = self._plan[self.done :] if self._plan else []
        if not todo:
            return remaining * overall
        ratios = [
            (sum(v) / len(v)) / self._priors[k]
            for k, v in self._measured.items()
            if len(k) == 3 and self._priors.get(k, 0) > 0.5
        ]
        speed = sorted(ratios)[len(ratios) // 2] if ratios else 1.0
        total = 0.0
        for exp, var, scen in todo:
            cell, whole = (exp, var, scen), (exp,)
            if cell in self._measured:
                v = self._measured[cell]
                total += sum(v) / len(v)
            elif cell in self._priors:
                total += self._priors[cell] * speed
            elif whole in self._measured:
                v = self._measured[whole]
                total += sum(v) / len(v)
            elif self._priors.get(whole):
                total += self._priors[whole] * speed
            else:
                total += overall
        return total + max(0, remaining - len(todo)) * overall

    def eta_now(self) -> float | None:
        """The ETA counted down since the last finished trial (what the bar shows between trials)."""
        if self._eta_at is None:
            eta = self.eta_seconds()
            if eta is None:
                return None
            self._eta_at = (eta, time.monotonic())
        eta, at = self._eta_at
        return max(0.0, eta - (time.monotonic() - at))

    def _eta_text(self) -> str:
        eta = self.eta_seconds()
        return f" (ETA {fmt.human_seconds(eta)})" if eta and self.done < self.total else ""

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=self.plain)


class _EtaColumn(ProgressColumn):
    """`ETA 4 m 10 s` from `Progress.eta_now` (measured trial times), not rich's speed guess."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task) -> Text:
        eta = self.progress.eta_now()
        return Text("ETA –" if eta is None else f"ETA {fmt.human_seconds(eta)}", style="progress.remaining")


def trial_priors(results_dirs: Iterable, *, max_files: int = 4) -> dict[tuple[str, ...], float]:
    """Mean seconds per (experiment, variant, scenario) and per (experiment,) of ok trials in the newest
    run files under `results_dirs` (started_at to ended_at); what the ETA assumes before it measures."""
    from datetime import datetime
    from pathlib import Path

    files = []
    for d in results_dirs:
        root = Path(d)
        if root.is_dir():
            files += [p for p in root.glob("*/*.json") if p.parent.name not in ("drift", "report", "perf")]
    files.sort(key=lambda p: p.name, reverse=True)
    sums: dict[tuple[str, ...], list[float]] = {}
    for path in files[:max_files]:
        try:
            trials = json.loads(path.read_text()).get("trials") or []
        except (OSError, ValueError, AttributeError):
            continue
        for t in trials:
            if not isinstance(t, dict) or t.get("status") not in ("ok", "skipped"):
                continue
            if t.get("status") == "skipped":  # not measurable here: takes no time
                with contextlib.suppress(KeyError):
                    sums.setdefault((str(t["experiment"]), str(t["variant"]), str(t["scenario"])), []).append(
                        0.0
                    )
                continue
            try:
                a = datetime.fromisoformat(str(t["started_at"]).replace("Z", "+00:00"))
                b = datetime.fromisoformat(str(t["ended_at"]).replace("Z", "+00:00"))
                key = (str(t["experiment"]), str(t["variant"]), str(t["scenario"]))
            except (KeyError, ValueError):
                continue
            sec = (b - a).total_seconds()
            if sec >= 0:
                for k in (key, key[:1]):
                    sums.setdefault(k, []).append(sec)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def summary_table(rows: Iterable[dict]) -> Table:
    """The rich table `Progress.finish` prints: one row per experiment, variant and scenario."""
    table = Table(title="imagebench run summary", title_justify="left")
    for name, justify in (
        ("experiment", "left"),
        ("variant", "left"),
        ("scenario", "left"),
        ("n", "right"),
        ("median build", "right"),
        ("image (uncompressed)", "right"),
        ("smoke ok", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)
    colours = {"supported": "green", "not supported": "red", "inconclusive": "yellow"}
    for r in rows:
        verdict = str(r.get("verdict") or "")
        table.add_row(
            str(r.get("experiment", "")),
            str(r.get("variant", "")),
            str(r.get("scenario", "")),
            str(r.get("n", 0)),
            fmt.human_seconds(r.get("median_build_seconds")),
            fmt.human_bytes(r.get("image_bytes")),
            str(r.get("smoke") or "–"),
            f"[{colours[verdict]}]{verdict}[/]" if verdict in colours else verdict,
        )
    return table


def summary_rows(runs: list[dict], verdicts: list[dict] | None = None) -> list[dict]:
    """Rows for `Progress.finish` from run dicts: n ok trials, median build_seconds and image_bytes per
    experiment/variant/scenario, and the experiment's verdict (from analysis.experiment_verdicts).

    Plain Python on the run dicts: the end of every run pays for no pandas import; the analysis
    module is loaded only when some experiment states claims to judge."""
    from statistics import median

    if verdicts is None:
        if any((d or {}).get("claims") for r in runs for d in r.get("experiments", {}).values()):
            from harness import analysis

            verdicts = analysis.experiment_verdicts(runs, with_p=False)  # verdicts need the intervals only
        else:
            verdicts = []
    verdict_of = {v["experiment"]: v["verdict"] for v in verdicts}
    cells: dict[tuple[str, str, str], dict[str, list]] = {}
    for r in runs:
        for t in r.get("trials", []):
            if t.get("status") != "ok":
                continue
            cell = cells.setdefault(
                (t["experiment"], t["variant"], t["scenario"]),
                {"trials": [], "build": [], "size": [], "smoke": []},
            )
            m = t.get("metrics") or {}
            cell["trials"].append(t["trial"])
            if m.get("build_seconds") is not None:
                cell["build"].append(float(m["build_seconds"]))
            if m.get("image_bytes") is not None:
                cell["size"].append(float(m["image_bytes"]))
            if m.get("smoke_ok") is not None:
                cell["smoke"].append(int(m["smoke_ok"]))
    if not cells:
        return [
            {
                "experiment": v["experiment"],
                "variant": "–",
                "scenario": "–",
                "n": 0,
                "median_build_seconds": None,
                "image_bytes": None,
                "verdict": v["verdict"],
            }
            for v in verdicts
        ]
    return [
        {
            "experiment": e,
            "variant": v,
            "scenario": sc,
            "n": len(set(c["trials"])),
            "median_build_seconds": median(c["build"]) if c["build"] else None,
            "image_bytes": median(c["size"]) if c["size"] else None,
            "smoke": f"{sum(c['smoke'])}/{len(c['smoke'])}" if c["smoke"] else None,  # smoke checks passed
            "verdict": verdict_of.get(e, ""),
        }
        for (e, v, sc), c in sorted(cells.items())
    ]


# --------------------------------------------------------------------------- imagebench table

TABLE_FORMATS = ("csv", "md", "json")


def table_text(df, fmt_name: str = "csv") -> str:
    """The tidy table as text: `csv` (RFC 4180, base units), `md` (a Markdown table with values
    in base units and a human column) or `json` (a list of records)."""
    from harness.results import TIDY_COLUMNS

    cols = [c for c in TIDY_COLUMNS if c in df.columns]
    df = df[cols].sort_values(
        [
            c
            for c in ("machine", "run_id", "experiment", "variant", "scenario", "trial", "metric")
            if c in cols
        ],
        kind="stable",
    )
    if fmt_name == "csv":
        buf = io.StringIO()
        df.to_csv(buf, index=False, lineterminator="\n")
        return buf.getvalue()
    if fmt_name == "json":
        records = [{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
        return json.dumps(records, indent=1) + "\n"
    if fmt_name == "md":
        rows = [
            [*(_plain(row[c]) for c in cols), fmt.human_value(row["metric"], row["value"])]
            for row in df.to_dict(orient="records")
        ]
        return fmt.md_table(
            [*cols, "human"], rows, ["r" if c in ("trial", "value") else "l" for c in cols] + ["r"]
        )
    raise ValueError(f"unknown format {fmt_name!r} (use one of {', '.join(TABLE_FORMATS)})")


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v
