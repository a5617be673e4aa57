"""The runner: experiments x variants x scenarios x trials under established cache states.

A run holds the daemon lock for its whole duration, interleaves variants in a seeded shuffled
order per trial round (plan.py), establishes every cache state itself and verifies it
(cache_state.py), measures one trial at a time (trial.py, measure.py) and records it into the run
file (atomically), and removes everything it created (cleanup.py).
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.clock import utcnow
from harness.engine import inspect as dinspect
from harness.engine import repro
from harness.errors import EngineUnavailable, HarnessError, Interrupted, UsageError
from harness.experiment import Experiment, Variant, select
from harness.lab.engine2 import builder_host
from harness.lock import daemon_lock
from harness.probes import get_probe
from harness.records import ExperimentDef, LabHandle, PlanEntry, RunRecord, RunStatus, TrialRecord
from harness.results import Run
from harness.runner.bases import BasePins
from harness.runner.cleanup import Tracker, cleanup_run
from harness.runner.environment import (
    Background,
    capability_missing,
    fingerprint,
    load_lab_or_none,
    sigterm_as_interrupt,
)
from harness.runner.measure import ImageMeasurer
from harness.runner.phases import log_phases
from harness.runner.plan import (
    RunOptions,
    auto_round,
    make_plan,
    options_record,
    shard_experiments,
    with_calibration,
)
from harness.runner.records import record_from
from harness.runner.trial import RunHandles, Trial


@dataclass
class RunOutcome:
    run: Run
    failed: int
    ok: int
    skipped: int

    @property
    def path(self) -> Path:
        return self.run.path

    @classmethod
    def of(cls, run: Run) -> RunOutcome:
        trials = run.trials
        return cls(
            run=run,
            failed=sum(t["status"] == "failed" for t in trials),
            ok=sum(t["status"] == "ok" for t in trials),
            skipped=sum(t["status"] == "skipped" for t in trials),
        )


class Reporter(Protocol):
    """Progress callbacks the runner makes; the CLI's reporter (harness.progress.Progress for terminals
    and CI logs) has them without importing the runner. `QuietReporter` says nothing."""

    def message(self, text: str) -> None: ...
    def plan(self, todo: list[PlanEntry]) -> None: ...  # the remaining plan, for an ETA
    def start(self, total: int) -> None: ...
    def trial_started(self, experiment: str, variant: str, scenario: str, trial: int) -> None: ...
    def trial_finished(self, status: str, seconds: float, error: str | None = None) -> None: ...
    def finish(self, run: RunRecord) -> None: ...


class QuietReporter:
    """A Reporter that says nothing: the runner's default, and a base for one that overrides a few."""

    def message(self, text: str) -> None:
        pass

    def plan(self, todo: list[PlanEntry]) -> None:
        pass

    def start(self, total: int) -> None:
        pass

    def trial_started(self, experiment: str, variant: str, scenario: str, trial: int) -> None:
        pass

    def trial_finished(self, status: str, seconds: float, error: str | None = None) -> None:
        pass

    def finish(self, run: RunRecord) -> None:
        pass


class Runner:
    """One run: the lock, the run file (new or resumed), the plan measured trial by trial, the cleanup."""

    def __init__(
        self, opts: RunOptions, reporter: Reporter | None = None, lab: LabHandle | None = None
    ) -> None:
        self.opts = opts
        self.reporter: Reporter = reporter or QuietReporter()
        self.lab = lab
        self.builder = opts.builder
        if opts.builder:  # a docker-driver builder on another engine: images land there, inspect them there
            host = builder_host(opts.builder)
            if host:
                os.environ["DOCKER_HOST"] = host
                # buildx uses another context's docker driver only as the current context, and with
                # DOCKER_HOST set the current one is "default": that engine's own builder
                self.builder = "default"
        self.client = dinspect.client()
        self.h: RunHandles  # the run's shared handles, from its first trial on
        self.tracker = Tracker()
        self._fp_thread: Background | None = None
        self._unmet_cache: dict[tuple[str, str], str | None] = {}
        # default builder = docker driver (exporter ignores rewrite-timestamp); others are asked for it
        driver = "docker" if opts.builder in (None, "", "default") else "other"
        self.repro = repro.support(driver, "v0.13")
        self.images = ImageMeasurer(self.client, self.repro, self.tracker.track)

    # -- public ---------------------------------------------------------------------------
    def execute(self, experiments: list[Experiment], *, resume: str | None = None) -> RunOutcome:
        experiments = shard_experiments(experiments, self.opts.shard)
        if not resume and not self.opts.quick:
            experiments = with_calibration(experiments)
        if not experiments and not resume:
            raise UsageError(
                "nothing to run: no experiment selected"
                + (f" for shard {self.opts.shard[0]}/{self.opts.shard[1]}" if self.opts.shard else "")
            )
        owner = " ".join(self.opts.command) or "imagebench run"
        with (
            daemon_lock(wait=self.opts.wait_for_lock, owner=owner, on_wait=self.reporter.message),
            sigterm_as_interrupt(),
        ):
            if self.lab is None:
                self.lab = load_lab_or_none(self.opts.bases)
            self.lab.check_alive()
            if resume:
                run, experiments, todo = self._resume(experiments, resume)
            else:
                run, todo = self._create(experiments)
            self._measure_all(run, experiments, todo)
        return RunOutcome.of(run)

    # -- the run file ---------------------------------------------------------------------
    def _create(self, experiments: list[Experiment]) -> tuple[Run, list[PlanEntry]]:
        """A new run file with its plan; the fingerprint is taken while the first trial prepares."""
        seed = self.opts.seed if self.opts.seed is not None else random.SystemRandom().randrange(2**31)
        plan = make_plan(experiments, self.opts, seed, rounds=self.opts.auto_min if self.opts.auto else None)
        exps = {e.name: self._experiment_record(e) for e in experiments}
        # several docker/buildx calls, taken while the first trial prepares (done before its timed build)
        self._fp_thread = Background(fingerprint, self.lab, self.opts.builder)
        run = Run.create(
            self.opts.results_dir,
            command=self.opts.command,
            seed=seed,
            fingerprint={},
            experiments=exps,
            plan=plan,
            options=options_record(self.opts),
        )
        return run, plan

    def _resume(
        self, experiments: list[Experiment], run_id: str
    ) -> tuple[Run, list[Experiment], list[PlanEntry]]:
        """The run, its own experiments (unchanged definitions) and the plan entries it has not finished."""
        run = Run.open(self.opts.results_dir, run_id)
        by_name = {e.name: e for e in experiments}
        wanted = sorted(run.data["experiments"])
        missing_defs = [n for n in wanted if n not in by_name]
        if missing_defs:
            by_name.update({e.name: e for e in select(missing_defs)})
        experiments = [by_name[n] for n in wanted]
        self._check_definitions(run, experiments)
        run.data["status"] = "running"
        run.data.setdefault("resumed", []).append({"at": utcnow(), "command": self.opts.command})
        return run, experiments, run.missing()

    def _experiment_record(self, exp: Experiment) -> ExperimentDef:
        rec = exp.to_dict()
        rec["not_measured"] = {v.name: r for v in exp.variants if (r := self._unmet(exp, v))}
        return rec

    def _check_definitions(self, run: Run, experiments: list[Experiment]) -> None:
        for e in experiments:
            recorded = run.data["experiments"][e.name].get("definition_hash")
            if recorded and recorded != e.definition_hash():
                raise UsageError(
                    f"experiment {e.name!r} changed since run {run.run_id} started; "
                    "resume would mix definitions",
                    hint="start a new run",
                )

    def _unmet(self, exp: Experiment, v: Variant) -> str | None:
        """Why this host cannot measure the variant (None when it can); asked once per run."""
        key = (exp.name, v.name)
        if key not in self._unmet_cache:
            self._unmet_cache[key] = self._missing_capability(exp, v)
        return self._unmet_cache[key]

    def _missing_capability(self, exp: Experiment, v: Variant) -> str | None:
        needs = list(exp.requires) + list(v.requires)
        for p in exp.probes:
            with contextlib.suppress(HarnessError):
                needs += list(get_probe(p).needs)
        return next((r for need in needs if (r := capability_missing(need, self.opts, self.lab))), None)

    def _flush_fingerprint(self) -> None:
        """The fingerprint into the run file once its thread is done (waits for it)."""
        if self._fp_thread is not None:
            self.h.run.data["fingerprint"] = self._fp_thread.result()
            self._fp_thread = None

    def _record(self, trial: TrialRecord) -> None:
        self._flush_fingerprint()
        self.h.run.record_trial(trial)

    # -- the loop -------------------------------------------------------------------------
    def _measure_all(self, run: Run, experiments: list[Experiment], todo: list[PlanEntry]) -> None:
        """Pin the bases, measure the plan (then --trials auto's rounds); however it ends, clean up."""
        workroot = Path(tempfile.mkdtemp(prefix=f"imagebench-{run.run_id}-"))
        assert self.lab is not None  # the run's setup loaded it
        pins = BasePins(self.lab, self.client, run, self.opts.python_substitute, self.reporter.message)
        self.h = RunHandles(
            run, self.lab, self.client, self.builder, self.repro, pins, self.images, self.tracker,
            self.opts.keep_images, workroot, self._flush_fingerprint,
        )  # fmt: skip
        status: RunStatus = "failed"
        try:
            pins.pin_all(experiments, self._unmet)
            self._loop(experiments, todo)
            if self.opts.auto:
                self._auto_rounds(experiments)
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise Interrupted(
                f"interrupted; results so far kept in {run.path}",
                hint=f"imagebench run --resume {run.run_id}",
            ) from None
        finally:
            self._flush_fingerprint()
            cleanup_run(
                self.tracker,
                self.client,
                run.run_id,
                keep_images=self.opts.keep_images,
                workroot=workroot,
            )
            run.finish(status)
            self.reporter.finish(run.data)

    def _loop(self, experiments: list[Experiment], todo: list[PlanEntry]) -> None:
        by_name = {e.name: e for e in experiments}
        if hasattr(self.reporter, "plan"):  # the ETA estimates each planned trial
            self.reporter.plan(todo)
        self.reporter.start(len(todo))
        if self.opts.warmup:
            self._warmup(by_name, todo)
        for entry in todo:
            exp = by_name[entry["experiment"]]
            self._one(exp, exp.variant(entry["variant"]), entry)

    def _warmup(self, by_name: dict[str, Experiment], todo: list[PlanEntry]) -> None:
        """One untimed, unrecorded cold build of each planned variant."""
        seen = set()
        for entry in todo:
            key = (entry["experiment"], entry["variant"])
            if key in seen:
                continue
            seen.add(key)
            exp = by_name[entry["experiment"]]
            v = exp.variant(entry["variant"])
            if self._unmet(exp, v):
                continue
            self.reporter.message(f"warm-up (not counted): {exp.name}/{v.name}")
            with contextlib.suppress(HarnessError):
                Trial(self.h, exp, v, {**entry, "scenario": "cold", "trial": -1}, record=False).run()

    def _auto_rounds(self, experiments: list[Experiment]) -> None:
        """--trials auto: add rounds for (variant, scenario) pairs whose median is not yet within +/-3 %."""
        run = self.h.run
        precision = run.data.setdefault("precision", {})
        for exp in experiments:
            t = self.opts.auto_min
            while True:
                trials = run.trials
                status, entries = auto_round(exp, trials, self.opts, run.data["seed"], t)
                precision.update(status)
                if not entries:
                    break
                for entry in entries:
                    run.data["plan"].append(entry)
                    self._one(exp, exp.variant(entry["variant"]), entry)
                t += 1

    def _one(self, exp: Experiment, v: Variant, entry: PlanEntry) -> None:
        """Measure and record one plan entry (skipped when this host cannot run it)."""
        self.reporter.trial_started(exp.name, v.name, entry["scenario"], entry["trial"])
        t0 = time.perf_counter()
        reason = self._unmet(exp, v)
        if reason:
            skipped = record_from(entry, "skipped", reason)
            skipped["metrics"] = {}
            self._record(skipped)
            self.reporter.trial_finished("skipped", 0.0, reason)
            return
        trial = Trial(self.h, exp, v, entry)
        try:
            rec = trial.run()
        except KeyboardInterrupt:
            interrupted = record_from(entry, "interrupted", "interrupted")
            interrupted["metrics"] = {}
            interrupted["ended_at"] = utcnow()
            self._record(interrupted)
            self.reporter.trial_finished("interrupted", time.perf_counter() - t0, "interrupted")
            raise
        except EngineUnavailable as exc:
            failed = record_from(entry, "failed", str(exc))
            failed["metrics"] = {}
            self._record(failed)
            raise EngineUnavailable(
                f"trial {exp.name}/{v.name}/{entry['scenario']}/#{entry['trial']}: {exc}; "
                f"results so far kept in {self.h.run.path}"
            ) from None
        except HarnessError as exc:
            rec = record_from(entry, "failed", str(exc))
            rec["metrics"] = {}
        with trial.phases("record"):
            self._record(rec)
        log_phases(entry, rec["status"], trial.phases, time.perf_counter() - t0)
        self.reporter.trial_finished(rec["status"], time.perf_counter() - t0, rec.get("error"))


def run_experiments(
    experiments: list[Experiment],
    opts: RunOptions,
    reporter: Reporter | None = None,
    *,
    resume: str | None = None,
    lab: LabHandle | None = None,
) -> RunOutcome:
    return Runner(opts, reporter, lab=lab).execute(experiments, resume=resume)
