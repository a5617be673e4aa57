"""Live progress of a run on the terminal, with an ETA from measured trial times.

`Progress` is what the runner calls while it measures:

    progress = Progress(console=None)      # rich bar with ETA on a TTY, plain lines otherwise
    progress.start(total_trials)
    progress.trial_started(experiment, variant, scenario, trial)
    progress.trial_finished(status, seconds)
    ...
    progress.finish(summary_rows)           # the rich summary table (harness.tables)

On a terminal it draws a rich progress bar (experiment, variant, scenario, trial, ETA); when
stdout is not a terminal (CI logs) it prints one plain line per event, so a log stays
readable. `trial_priors(results_dirs)` gives the trial times of earlier runs the ETA starts from
(per cell, from the newest run that measured it).
The tables themselves (the run summary, the tidy table as text) are harness.tables.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from harness import fmt
from harness.tables import SummaryRow, summary_table


class Progress:
    """Run progress: a rich bar with ETA on a TTY, one plain line per event elsewhere."""

    def __init__(
        self, console: Console | None = None, *, plain: bool | None = None, stream: TextIO | None = None
    ) -> None:
        self.console = console or Console(file=stream or sys.stderr)
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self.total = 0
        self.done = 0
        self.counts: dict[str, int] = {}
        self.current: tuple[str, str, str, int] | None = None
        self._bar: RichProgress | None = None
        self._task = TaskID(0)  # the bar's task: set by start() when there is a bar
        self._t0 = 0.0
        self._durations: list[float] = []
        self._plan: list[tuple[str, str, str]] = []
        self._priors = TrialPriors()
        self._measured: dict[tuple[str, ...], list[float]] = {}
        self._eta_at: tuple[float, float] | None = None  # (eta seconds, monotonic time it was computed)

    # -- the runner's calls ------------------------------------------------------------
    def set_plan(
        self, plan: Iterable[Mapping[str, object]], priors: TrialPriors | dict[Key, float] | None = None
    ) -> None:
        """The trials still to run, in order, and prior trial seconds (from earlier run files) for the ETA.

        A plain dict of priors counts as one source (one earlier run)."""
        self._plan = [(str(e["experiment"]), str(e["variant"]), str(e["scenario"])) for e in plan]
        self._priors = priors if isinstance(priors, TrialPriors) else TrialPriors(seconds=dict(priors or {}))

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

    def finish(self, summary_rows: Iterable[SummaryRow] | None = None) -> None:
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

        With the plan known (`set_plan`), each remaining trial is estimated on its own: the mean of its
        cell (experiment, variant, scenario) measured so far; else its prior (from the newest earlier
        run that measured that cell) times a speed; else its experiment's mean so far (or scaled
        prior); else the mean of every trial so far. Without a plan: remaining trials times the mean.

        The speed is how this run compares with the earlier run a prior came from: measured seconds
        over prior seconds, summed over the cells measured so far whose priors came from that same
        run (time-weighted, so a long cell counts for what it costs). Earlier runs differ in harness
        version and load, so each source gets its own speed; a source none of whose cells has been
        measured yet gets the speed of all measured cells pooled."""
        if not self._durations or not self.total:
            return None
        overall = sum(self._durations) / len(self._durations)
        remaining = max(0, self.total - self.done)
        todo = self._plan[self.done :] if self._plan else []
        if not todo:
            return remaining * overall
        speed = self._speeds()
        seconds = self._priors.seconds
        total = 0.0
        for exp, var, scen in todo:
            cell, whole = (exp, var, scen), (exp,)
            if cell in self._measured:
                v = self._measured[cell]
                total += sum(v) / len(v)
            elif cell in seconds:
                total += seconds[cell] * speed(cell)
            elif whole in self._measured:
                v = self._measured[whole]
                total += sum(v) / len(v)
            elif seconds.get(whole):
                total += seconds[whole] * speed(whole)
            else:
                total += overall
        return total + max(0, remaining - len(todo)) * overall

    def _speeds(self) -> Callable[[Key], float]:
        """key -> speed factor for its prior: per source run, time-weighted; pooled for unseen sources."""
        measured: dict[str, float] = {}
        prior: dict[str, float] = {}
        for k, v in self._measured.items():
            p = self._priors.seconds.get(k, 0.0)
            if len(k) != 3 or p <= 0.5:  # near-zero priors (skipped cells) say nothing about speed
                continue
            src = self._priors.source.get(k, "")
            measured[src] = measured.get(src, 0.0) + sum(v)
            prior[src] = prior.get(src, 0.0) + p * len(v)
        pooled = sum(measured.values()) / sum(prior.values()) if prior else 1.0

        def speed(key: Key) -> float:
            src = self._priors.source.get(key, "")
            return measured[src] / prior[src] if prior.get(src) else pooled

        return speed

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

    def render(self, _task: Task) -> Text:
        eta = self.progress.eta_now()
        return Text("ETA –" if eta is None else f"ETA {fmt.human_seconds(eta)}", style="progress.remaining")


Key = tuple[str, ...]  # (experiment, variant, scenario) for a cell, (experiment,) for a whole experiment


@dataclass(frozen=True)
class TrialPriors:
    """Mean trial seconds per cell and per experiment from earlier runs, and the run each came from."""

    seconds: dict[Key, float] = field(default_factory=dict)
    source: dict[Key, str] = field(default_factory=dict)  # key -> run file stem (the run id)


def trial_priors(
    results_dirs: Iterable[Path], *, cells: Iterable[Key] | None = None, max_files: int = 30
) -> TrialPriors:
    """Mean seconds (started_at to ended_at) of the ok trials of each (experiment, variant, scenario)
    and (experiment,), from the newest run file under `results_dirs` that measured it: what the ETA
    assumes before it measures. A cell's prior is never averaged across runs, whose harness version and
    load may differ; files without a finished trial (the run being measured, an interrupted one) are
    passed over. Reading stops once every key of `cells` (with its experiment) has a prior, or after
    `max_files` files that had trials."""
    files = []
    for d in results_dirs:
        root = Path(d)
        if root.is_dir():
            files += [p for p in root.glob("*/*.json") if p.parent.name not in ("drift", "report", "perf")]
    files.sort(key=lambda p: p.name, reverse=True)
    wanted = None if cells is None else {k for c in cells for k in (tuple(c), tuple(c)[:1])}
    out = TrialPriors()
    used = 0
    for path in files:
        found = _file_cells(path)
        if not found:
            continue
        used += 1
        for key, values in found.items():
            if key not in out.seconds:
                out.seconds[key] = sum(values) / len(values)
                out.source[key] = path.stem
        if used >= max_files or (wanted is not None and wanted <= out.seconds.keys()):
            break
    return out


def _file_cells(path: Path) -> dict[Key, list[float]]:
    """Seconds of each finished trial in one run file, by cell and by experiment (skipped trials: 0 s)."""
    try:
        trials = json.loads(path.read_text()).get("trials") or []
    except (OSError, ValueError, AttributeError):
        return {}
    sums: dict[Key, list[float]] = {}
    for t in trials:
        if not isinstance(t, dict) or t.get("status") not in ("ok", "skipped"):
            continue
        try:
            key = (str(t["experiment"]), str(t["variant"]), str(t["scenario"]))
            if t.get("status") == "skipped":  # not measurable here: takes no time
                sums.setdefault(key, []).append(0.0)
                continue
            a = datetime.fromisoformat(str(t["started_at"]).replace("Z", "+00:00"))
            b = datetime.fromisoformat(str(t["ended_at"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        sec = (b - a).total_seconds()
        if sec >= 0:
            for k in (key, key[:1]):
                sums.setdefault(k, []).append(sec)
    return sums
