"""One ci trial: a fresh runner (an empty containerd-store engine) imports the cache the previous
pipeline run exported, builds after the scenario's change, pushes the image and exports the cache.

ci       after a source edit (the experiment's edits.source)
ci-deps  after a dependency edit (edits.deps)
ci-none  nothing changed

The previous pipeline run is built (untimed) on the same engine from an empty state without any
import; then the engine is emptied again (build cache pruned, every image removed, verified), the
change is made, and the job is one timed `docker buildx build`. The base reaches the engine from the
lab registry (`docker-image://<registry>/<lab tag>`, checked to be the run's pinned base).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from harness.ci import accounting, strategy
from harness.ci.engine import CacheEngine, base_layers, delete_repos, image_layers, repo_blobs
from harness.engine.buildx import BuildResult, BuildSpec, build_command
from harness.engine.events import parse_stream
from harness.errors import LabError, UsageError
from harness.records import TrialRecord
from harness.runner import cache_state
from harness.runner.failures import TrialFailed
from harness.runner.records import scrub
from harness.smoke import run_smoke

CHANGE = {"ci": "source", "ci-deps": "deps", "ci-none": "none"}


class CiRecord(TypedDict):
    """A ci trial record's `ci` part (results/README.md): the pipeline, its cache, the steps reused."""

    strategy: str
    change: str
    image_ref: str
    cache_ref: str | None
    cache_dir_bytes: int | None
    cached_steps: list[str]
    reused_steps: list[str]
    previous_layers: list[str]
    layers: list[str]
    split_from: str


class CiTrialRecord(TrialRecord):
    """A ci trial's record: a trial record with its `ci` part."""

    ci: CiRecord


def run_job(spec: BuildSpec, env: dict[str, str]) -> tuple[BuildResult, str]:
    """One buildx build on the ci engine: (its result, the raw rawjson text for the byte accounting)."""
    with tempfile.TemporaryDirectory(prefix="imagebench-ci-") as tmp:
        meta, iid = Path(tmp) / "metadata.json", Path(tmp) / "iid"
        cmd = build_command(spec, meta, iid)
        t0 = time.perf_counter()
        try:
            cp = subprocess.run(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
                errors="replace",
                timeout=spec.timeout,
                check=False,
            )
            rc, text = cp.returncode, cp.stderr
        except subprocess.TimeoutExpired as exc:
            rc, text = 124, exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        seconds = time.perf_counter() - t0
        image_id = iid.read_text().strip() if iid.is_file() else None
    events = parse_stream(text)
    ok = rc == 0
    error = "" if ok else (events.error_summary() or f"docker buildx build exited with {rc}")
    result = BuildResult(
        ok=ok,
        returncode=rc,
        seconds=seconds,
        events=events,
        image_id=image_id,
        metadata={},
        error=error,
        error_text=events.error_text,
        command=cmd,
    )
    return result, text


class CiJob:
    """The ci part of a Trial: `run()` fills trial.metrics and returns (result, extra record fields)."""

    def __init__(self, trial: Any) -> None:  # a harness.runner.trial.Trial
        self.t = trial
        self.strategy = strategy.check(trial.v.cache)
        reg = getattr(trial.h.lab, "registry", None)
        if not reg:
            raise UsageError("the ci scenarios need the lab registry", hint="run `imagebench lab up`")
        self.where = strategy.Where(
            registry=reg,
            repo=f"imagebench-ci/{trial.exp.name}-{trial.v.name}-{trial.nonce}",
            local_dir=trial.work / "ci-cache" if self.strategy == "local" else None,
        )
        self.engine: CacheEngine | None = None

    def _contexts(self) -> tuple[dict[str, str], list[str]]:
        """Every base as the lab registry's copy of its pinned lab tag; (contexts, base layer digests)."""
        t, reg = self.t, self.where.registry
        contexts, layers = {}, []
        for name, image_id in t.base_ids.items():
            lab_tag = t.h.pins.pins[name]["lab_tag"]
            config, lyr = base_layers(reg, lab_tag)
            if config != image_id:
                raise LabError(
                    f"the lab registry's {lab_tag} ({config[:19]}) is not the run's pinned base ({image_id[:19]})",
                    hint="run `imagebench lab up` to push the current bases",
                )
            contexts[name] = f"docker-image://{reg}/{lab_tag}"
            layers += lyr
        return contexts, layers

    def _blobs(self) -> dict[str, int]:
        """The pipeline's blobs: its registry repositories (image, cache) and the local cache directory."""
        blobs = repo_blobs(self.where.registry, self.where.repos())
        if self.where.local_dir is not None:
            blobs.update(accounting.dir_blobs(self.where.local_dir))
        return blobs

    def run(self) -> tuple[BuildResult, CiRecord]:
        t, ph, where = self.t, self.t.phases, self.where
        contexts, layers = self._contexts()
        spec = t.spec.with_overrides(
            tag=None,
            builder=None,
            build_contexts=contexts,
            flags=[*t.spec.flags, *strategy.output_flags(where)],
        )
        with ph("ci_engine"):
            self.engine = CacheEngine(where.registry)
            self.engine.start()
        with ph("prepare"):
            prev_layers = self._previous_run(spec)
        with ph("cold_state"):  # a fresh runner
            self.engine.reset()
            before = self._blobs()
        job = spec.with_overrides(flags=[*spec.flags, *strategy.cache_flags(self.strategy, where)])
        with ph("settle"):
            t.h.before_timed_build()
        with ph("build"):
            result, text = run_job(job, self.engine.env())
        if not result.ok:
            raise TrialFailed(f"ci job failed: {result.error}", result)
        with ph("accounting"):
            after = self._blobs()
            t.metrics.update(
                accounting.job_metrics(result.events, result.seconds, text, layers, before, after)
            )
            ci = self._record(result, text, layers, prev_layers)
        if t.v.smoke:
            with ph("smoke"):
                self._smoke()
        return result, ci

    def _record(self, result: BuildResult, text: str, base: list[str], prev_layers: list[str]) -> CiRecord:
        """The trial record's `ci` part: strategy, change, where the cache lives, which steps were reused."""
        where = self.where
        return {
            "strategy": self.strategy,
            "change": CHANGE[self.t.scen],
            "image_ref": where.image_ref,
            "cache_ref": where.cache_location(self.strategy),
            "cache_dir_bytes": accounting.dir_bytes(where.local_dir) if where.local_dir is not None else None,
            "cached_steps": accounting.cached_steps(result.events),
            "reused_steps": accounting.reused_steps(result.events, text, base),
            # the pushed image's layers before and after: a layer kept is output reused, whatever
            # BuildKit's flags say
            "previous_layers": prev_layers,
            "layers": image_layers(where.registry, where.image_ref),
            "split_from": "rawjson vertices: one buildx build does import, build, export and push",
        }

    def _smoke(self) -> None:
        """The variant's smoke check on the job's image, in the ci engine (harness/smoke.py)."""
        import docker  # lazy: the docker SDK costs ~0.8 s to import

        assert self.engine is not None
        t = self.t
        client = docker.DockerClient(base_url=self.engine.host, timeout=120, version="auto")
        try:
            t.smoke = run_smoke(client, self.where.image_ref, t.v.smoke, labels=t.labels)
        finally:
            client.close()
        t.metrics["smoke_ok"] = 1 if t.smoke.ok else 0
        if t.record and not t.smoke.ok:
            failures = t.h.run.data["experiments"][t.exp.name].setdefault("smoke_failures", {})
            failures[t.v.name] = scrub(t.smoke.record()["last_line"], t.redact)

    def _previous_run(self, spec: BuildSpec) -> list[str]:
        """The previous pipeline run (from empty, nothing to import), then the scenario's change;
        the layers of the image it pushed."""
        assert self.engine is not None
        t, where = self.t, self.where
        self.engine.reset()
        seed = spec.with_overrides(
            flags=[*spec.flags, *strategy.cache_flags(self.strategy, where, import_cache=False)]
        )
        prev, _ = run_job(seed, self.engine.env())
        if not prev.ok:
            raise TrialFailed(f"the previous pipeline run failed: {prev.error}", prev)
        change = CHANGE[t.scen]
        if change == "source":
            cache_state.edit_source(t.exp, t.ctx_dir, t.nonce)
        elif change == "deps":
            cache_state.edit_deps(t.exp, t.ctx_dir, t.nonce)
        return image_layers(where.registry, where.image_ref)

    def cleanup(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        delete_repos(self.where.registry, self.where.repos())
