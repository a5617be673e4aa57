"""One trial: a private copy of the context, the scenario's cache state, the timed build, and what is
measured about its image. Returns the trial's record (results/README.md); removes what it created."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.clock import utcnow
from harness.engine import inspect as dinspect
from harness.engine import repro
from harness.engine.buildx import BuildResult, BuildSpec, run_build
from harness.engine.inspect import BaseSplit
from harness.engine.repro import ReproSupport
from harness.errors import HarnessError, UsageError
from harness.experiment import CI_SCENARIOS, Experiment, Variant, discover
from harness.paths import results_dir as default_results_dir
from harness.paths import state_dir
from harness.probes import ProbeContext, collect_extras, get_probe
from harness.records import LabHandle, PlanEntry, TrialRecord
from harness.results import Run
from harness.runner import cache_state
from harness.runner.bases import BasePins
from harness.runner.ci import CiJob, CiTrialRecord
from harness.runner.cleanup import LABEL, Tracker
from harness.runner.failures import TrialFailed, diagnose_failure
from harness.runner.measure import PACKAGE_METRICS, ImageMeasurer
from harness.runner.phases import Phases
from harness.runner.records import (
    MeasuredImage,
    MeasuredRepro,
    build_metrics,
    clean_metrics,
    image_record,
    record_from,
    scrub,
    steps_record,
)
from harness.smoke import SmokeResult


@dataclass
class RunHandles:
    """What every trial of a run shares: the run file, the lab, the engine, caches and the tracker."""

    run: Run
    lab: LabHandle
    client: Any
    builder: str | None  # the buildx builder every build uses (None: the current one)
    repro: ReproSupport  # what the builder does for reproducibility (harness/engine/repro.py support())
    pins: BasePins
    images: ImageMeasurer
    tracker: Tracker
    keep_images: bool
    workroot: Path
    # called right before each timed build: the run's background work (its fingerprint) must not
    # share the machine with a measurement
    before_timed_build: Callable[[], None] = lambda: None


def copy_context(src: Path, dst: Path) -> None:
    """Copy an experiment's context into the trial's private directory (never results/ or the lab's data)."""
    src = src.resolve()
    forbidden = [default_results_dir().resolve(), state_dir().resolve(), Path.home().resolve(), Path("/")]
    for bad in forbidden:
        if src == bad or (bad != Path("/") and bad.is_relative_to(src)):
            raise UsageError(f"refusing build context {src}: it contains {bad} (results, lab data or home)")
    shutil.copytree(src, dst, symlinks=True)


class Trial:
    """One plan entry measured: `run()` returns its record (ok or failed) or raises HarnessError."""

    def __init__(
        self, h: RunHandles, exp: Experiment, v: Variant, entry: PlanEntry, *, record: bool = True
    ) -> None:
        self.h, self.exp, self.v, self.entry, self.record = h, exp, v, entry, record
        self.scen: str = entry["scenario"]
        self.phases = Phases()
        self.redact: set[str] = set()
        self.metrics: dict[str, float] = {}
        self.smoke: SmokeResult | None = None
        self.nonce = os.urandom(6).hex()
        self.ci: CiJob | None = None  # the ci scenarios' job (harness/runner/ci.py)
        self.split: BaseSplit = {}  # the image's size split at its base (set by _measure_image)
        self.measured: MeasuredRepro  # the image measured: the build's own or its re-pack (_measure_image)

    def run(self) -> TrialRecord:
        with self.phases("workspace"):
            self._workspace()
            self._spec()
        started = utcnow()
        try:
            if self.scen in CI_SCENARIOS:
                return self._ci_record(started)
            result = self._build()
            image = self._measure(result)
            return self._ok_record(started, result, image)
        except TrialFailed as exc:
            return self._failed_record(started, exc)
        except HarnessError as exc:
            exc.message = scrub(exc.message, self.redact)
            raise
        finally:
            with self.phases("cleanup"):
                self._cleanup()

    # -- set-up ---------------------------------------------------------------------------------
    def _workspace(self) -> None:
        """The trial's private directory: the context, the Dockerfile and its .dockerignore copied."""
        exp, v, entry = self.exp, self.v, self.entry
        self.work = self.h.workroot / f"{exp.name}-{v.name}-{self.scen}-{entry['trial']}-{self.nonce}"
        self.work.mkdir(parents=True)
        self.ctx_dir = self.work / "context"
        copy_context(exp.path / v.context, self.ctx_dir)
        self.dockerfile = self.work / "Dockerfile"
        shutil.copyfile(exp.file(v.dockerfile), self.dockerfile)
        di = exp.path / (v.dockerfile + ".dockerignore")
        if di.is_file():
            shutil.copyfile(di, self.work / "Dockerfile.dockerignore")
        self.labels = {
            LABEL: self.h.run.run_id,
            "imagebench.experiment": exp.name,
            "imagebench.variant": v.name,
        }
        self.tag = f"imagebench-run/{exp.name}:{v.name}-{self.scen}-{entry['trial']}-{self.nonce}".replace(
            "--", "-"
        )

    def _spec(self) -> None:
        """The build spec (pinned bases as named contexts) and the probes' context."""
        text = self.dockerfile.read_text(encoding="utf-8", errors="replace")
        build_args = {**self.h.lab.build_args(), **self.v.build_args}
        contexts, self.base_ids = self.h.pins.build_contexts(text, build_args)
        self.spec = BuildSpec(
            context=self.ctx_dir,
            dockerfile=self.dockerfile,
            tag=self.tag,
            target=self.v.target,
            build_args=build_args,
            build_contexts=contexts,
            labels=self.labels,
            builder=self.h.builder,
            source_date_epoch=repro.DEFAULT_EPOCH,
            rewrite_timestamp=self.h.repro["rewrite_timestamp_honoured"],
        )
        self.probes = [get_probe(p) for p in self.exp.probes]
        self.pctx = ProbeContext(
            client=self.h.client,
            experiment=self.exp,
            variant=self.v,
            scenario=self.scen,
            trial=self.entry["trial"],
            nonce=self.nonce,
            workdir=self.work,
            context=self.ctx_dir,
            dockerfile=self.dockerfile,
            labels=self.labels,
            lab=self.h.lab,
            tag=self.tag,
            build=self.untimed_build,
            track=self.h.tracker.track,
            redact=self.redact,
            catalog=discover,
        )

    def untimed_build(self, **overrides: Any) -> BuildResult:
        """A build of this trial's spec with overrides (preparation builds, probes' rebuilds)."""
        res = run_build(self.spec.with_overrides(**overrides), redact=self.redact)
        if res.image_id:
            self.h.tracker.track("image", res.image_id)
        return res

    # -- the timed build ------------------------------------------------------------------------
    def _build(self) -> BuildResult:
        """The probes' build extras, the scenario's cache state, then the timed build."""
        with self.phases("probes"):
            extras = collect_extras(self.probes, self.pctx)
        self.spec.build_args.update(extras.build_args)
        self.spec.secrets = extras.secrets
        self.spec.flags = extras.flags
        with self.phases("cold_state"):
            cache_state.make_cold(self.tag, self.h.builder)
        with self.phases("prepare"):
            cache_state.prepare(
                self.exp,
                self.scen,
                self.spec,
                self.untimed_build,
                self.nonce,
                self.work,
                self.h.tracker.track,
            )
        if hasattr(self.h.lab, "reset_index_stats"):
            with contextlib.suppress(Exception):
                self.h.lab.reset_index_stats()
        with self.phases("settle"):
            self.h.before_timed_build()
        with self.phases("build"):
            result = run_build(self.spec, redact=self.redact)
        if result.image_id:
            self.h.tracker.track("image", result.image_id)
        if not result.ok:
            diagnose_failure(self.h.client, self.h.lab, result)
            raise TrialFailed(
                f"build failed: {result.error}{self.h.pins.substitution_hint(self.base_ids)}", result
            )
        return result

    # -- measurement ----------------------------------------------------------------------------
    def _measure(self, result: BuildResult) -> MeasuredImage:
        """Every metric of the built image; returns the image facts for the record."""
        assert result.image_id is not None  # a successful build names its image (--iidfile)
        self.metrics.update(build_metrics(result, self.ctx_dir, self.dockerfile, self.exp.deps_step))
        image = self._measure_image(result.image_id)
        compressed = self.exp.compressed and self.h.lab is not None
        if compressed:
            with self.phases("push"):
                pushed_ref = self._push(image)
        self.pctx.image = result.image_id
        with self.phases("probes"):
            for p in self.probes:
                values = p.after_build(self.pctx)
                self.metrics.update({k: val for k, val in values.items() if val is not None})
        with self.phases("smoke"):
            self.smoke = self._smoke(result.image_id) if self.v.smoke else None
        if self.smoke is not None:
            self.metrics["smoke_ok"] = 1 if self.smoke.ok else 0
        if compressed:
            with self.phases("pull"):
                self.metrics["pull_seconds"] = self.h.images.pull_back(pushed_ref, self.measured["image_id"])
        return image

    def _measure_image(self, image_id: str) -> MeasuredImage:
        """Size split at the base, the reproducible image, its facts and package counts."""
        m = self.metrics
        with self.phases("attribution"):
            try:
                self.split = dinspect.split_layers(image_id, self.base_ids)
            except Exception:  # noqa: BLE001 - attribution is an extra: never lose the trial over it
                self.split = {}
        with self.phases("repro"):
            self.measured = self.h.images.reproducible(image_id, self.split, self.tag)
        with self.phases("inspect"):
            # the facts, to which the split, the re-pack and (after a push) the registry's sizes are added
            facts = dinspect.image_facts(self.measured["image_id"])
        image = cast(MeasuredImage, {**facts, **self.split, "repro": self.measured})
        m["image_bytes"] = image["bytes"]
        m["layers"] = image["layers"]
        s = self.split
        if "own_bytes" in s:
            m["own_bytes"] = s["own_bytes"]
        if "base_bytes" in s:
            m["base_bytes"] = s["base_bytes"]
        if "own_layers" in s:
            m["own_layers"] = s["own_layers"]
        with self.phases("packages"):  # the measured image: same content, same counts, once per id
            pkgs = self.h.images.packages(image["id"], self.labels)
        m.update({k: pkgs[k] for k in PACKAGE_METRICS if k in pkgs})
        if "gcc_present" in self.exp.metrics and "gcc_present" in pkgs:
            m["gcc_present"] = pkgs["gcc_present"]
        return image

    def _push(self, image: MeasuredImage) -> str:
        """Push to the lab registry: compressed sizes (whole, base and own) and the push time; the pushed ref."""
        pushed = self.h.lab.push(self.measured["image_id"], f"imagebench-run/{self.exp.name}-{self.v.name}")
        image["manifest_digest"] = pushed.get("manifest_digest")
        image["layer_compressed_bytes"] = pushed.get("layer_sizes")
        self.metrics["image_bytes_compressed"] = pushed["compressed_bytes"]
        if self.split and pushed.get("layer_sizes"):
            self.metrics.update(dinspect.split_compressed(pushed["layer_sizes"], self.split["base_layers"]))
        if pushed.get("push_seconds") is not None:
            self.metrics["push_seconds"] = pushed["push_seconds"]
        ref: str = pushed["ref"]
        return ref

    def _smoke(self, image_id: str) -> SmokeResult:
        """The smoke check (cached per image); a failure's last line is noted in the run's experiment
        record, where the claims' verdicts read it ("smaller but broken")."""
        res = self.h.images.smoke(image_id, self.v.smoke, self.labels, self.h.tracker.track)
        if self.record and not res.ok:
            failures = self.h.run.data["experiments"][self.exp.name].setdefault("smoke_failures", {})
            failures[self.v.name] = scrub(res.record()["last_line"], self.redact)
        return res

    # -- records and cleanup --------------------------------------------------------------------
    def _ok_record(
        self, started: str, result: BuildResult, image: MeasuredImage | dict[str, str | None]
    ) -> TrialRecord:
        trial = record_from(self.entry, "ok", None)
        trial["started_at"] = started
        trial["ended_at"] = utcnow()
        trial["metrics"] = clean_metrics(self.metrics)
        trial["image"] = image_record(image, self.tag)
        trial["bases"] = self.base_ids
        trial["steps"] = scrub(steps_record(result), self.redact)
        trial["probe_data"] = scrub(self.pctx.details, self.redact)
        if self.smoke is not None:
            trial["smoke"] = scrub(self.smoke.record(), self.redact)
        if result.events.error_text.strip():
            trial["build_warnings"] = scrub(result.events.error_text.strip(), self.redact)[-2000:]
        return trial

    def _failed_record(self, started: str, exc: TrialFailed) -> TrialRecord:
        trial = record_from(self.entry, "failed", scrub(str(exc), self.redact))
        trial["started_at"] = started
        trial["ended_at"] = utcnow()
        trial["metrics"] = clean_metrics(self.metrics)
        trial["bases"] = self.base_ids
        trial["error_text"] = scrub(exc.result.error_text, self.redact)[-4000:]
        trial["steps"] = scrub(steps_record(exc.result), self.redact)
        return trial

    def _ci_record(self, started: str) -> CiTrialRecord:
        """A ci trial: the job on a fresh runner (harness/runner/ci.py); no image measured here."""
        self.ci = CiJob(self)
        result, ci = self.ci.run()
        rec = cast(CiTrialRecord, self._ok_record(started, result, {"id": result.image_id}))
        rec["ci"] = ci
        return rec

    def _cleanup(self) -> None:
        if self.ci is not None:
            with contextlib.suppress(Exception):
                self.ci.cleanup()
        for p in self.probes:
            with contextlib.suppress(Exception):
                p.cleanup(self.pctx)
        self.h.tracker.remove_all(keep_images=self.h.keep_images)
        shutil.rmtree(self.work, ignore_errors=True)
