"""The runner: experiments x variants x scenarios x trials under established cache states.

A run holds the daemon lock for its whole duration, interleaves variants in a seeded shuffled
order per trial round, establishes every cache state itself (and verifies it), records one
trial at a time into the run file (atomically), and removes everything it created.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__, pyversions
from harness.engine import inspect as dinspect
from harness.engine import repro
from harness.engine.buildx import BuildResult, BuildSpec, run_build
from harness.engine.dockerfile import base_images, read_dockerfile
from harness.errors import (
    EngineUnavailable,
    HarnessError,
    Interrupted,
    LabError,
    UsageError,
)
from harness.experiment import Experiment, Variant
from harness.lock import daemon_lock
from harness.paths import REPO_ROOT, state_dir
from harness.paths import results_dir as default_results_dir
from harness.probes import ProbeContext, collect_extras, get_probe
from harness.results import Run, utcnow

LABEL = dinspect.LABEL
DEPS_HINTS = ("pip install", "pip3 install", "requirements", "apt-get install", "npm ci", "npm install")


@dataclass
class RunOptions:
    trials: int | None = None  # None: each experiment's own default
    auto: bool = False  # --trials auto: sample until the median's CI is within +/-3 %
    auto_cap: int = 15
    auto_min: int = 5
    quick: bool = False  # one trial each, cold scenario only where the claim allows
    seed: int | None = None
    warmup: bool = False
    keep_images: bool = False
    builder: str | None = None
    results_dir: Path = field(default_factory=default_results_dir)
    wait_for_lock: bool = True
    shard: tuple[int, int] | None = None
    bases: str = "lab"
    command: list[str] = field(default_factory=list)
    python_substitute: str = "nearest"  # harness/pyversions.py: nearest | older | refuse


@dataclass
class RunOutcome:
    run: Run
    failed: int
    ok: int
    skipped: int

    @property
    def path(self) -> Path:
        return self.run.path


class Reporter:
    """Progress callbacks; harness.progress.Progress implements these for terminals and CI logs."""

    def message(self, text: str) -> None: ...
    def start(self, total: int) -> None: ...
    def trial_started(self, experiment: str, variant: str, scenario: str, trial: int) -> None: ...
    def trial_finished(self, status: str, seconds: float, error: str | None = None) -> None: ...
    def finish(self, run: dict) -> None: ...


# --------------------------------------------------------------------------- planning


def shard_experiments(experiments: list[Experiment], shard: tuple[int, int] | None) -> list[Experiment]:
    """Deterministic split: experiments sorted by name, dealt round-robin to n shards (i is 1-based)."""
    if not shard:
        return experiments
    i, n = shard
    ordered = sorted(experiments, key=lambda e: e.name)
    mine = {e.name for k, e in enumerate(ordered) if k % n == i - 1}
    return [e for e in experiments if e.name in mine]


def scenarios_for(exp: Experiment, variant: Variant, quick: bool) -> tuple[str, ...]:
    if not quick:
        return variant.scenarios
    claimed = {c.scenario for c in exp.claims}
    keep = tuple(s for s in variant.scenarios if s in claimed) or variant.scenarios[:1]
    return keep


def make_plan(
    experiments: list[Experiment],
    opts: RunOptions,
    seed: int,
    *,
    start_trial: int = 0,
    rounds: int | None = None,
) -> list[dict]:
    """Trial-major plan: for each trial round, the variants in a shuffled (seeded) order."""
    rng = random.Random(seed)
    plan: list[dict] = []
    for exp in experiments:
        n = rounds if rounds is not None else (1 if opts.quick else (opts.trials or exp.trials))
        n = max(n, exp.min_trials)  # calibration's power: never lowered by --trials or --quick
        for t in range(start_trial, start_trial + n):
            variants = [v for v in exp.variants if v.trials is None or t < v.trials]
            rng.shuffle(variants)
            for order, v in enumerate(variants):
                for scen in scenarios_for(exp, v, opts.quick):
                    plan.append(
                        {
                            "experiment": exp.name,
                            "variant": v.name,
                            "scenario": scen,
                            "trial": t,
                            "order": order,
                        }
                    )
    return plan


SHORT_CALIBRATION = ("sleep-0", "sleep-1")  # the +1.0 s effect on both time metrics
# Rounds of the short calibration a timed run carries: enough to show this run's noise and bias
# (its interval is printed beside each section), not the full power of `imagebench run calibration`
# (50 rounds, about 4 minutes idle), which would add minutes to every run.
SHORT_CALIBRATION_ROUNDS = 10


def with_calibration(experiments: list[Experiment]) -> list[Experiment]:
    """Every run that judges build time carries its own calibration: when an experiment claims something
    about a time metric and no calibration is selected, prepend a short one (the sleep-0 and sleep-1
    variants of the catalog's `calibration` next to the selected experiments, with their claims, at
    SHORT_CALIBRATION_ROUNDS), so each section can show the calibration of the run that produced it."""
    from harness.metrics import kind_of

    if any(e.section == "calibration" for e in experiments):
        return experiments
    if not any(kind_of(c.metric) == "time" for e in experiments for c in e.claims):
        return experiments
    folder = experiments[0].path.parent / "calibration"
    if not (folder / "experiment.toml").is_file():
        return experiments
    from dataclasses import replace

    from harness.experiment import load_experiment

    cal = load_experiment(folder)
    keep = set(SHORT_CALIBRATION)
    short = replace(
        cal,
        variants=tuple(v for v in cal.variants if v.name in keep),
        claims=tuple(c for c in cal.claims if {c.baseline, c.candidate} <= keep),
        trials=SHORT_CALIBRATION_ROUNDS,
        min_trials=SHORT_CALIBRATION_ROUNDS,
    )
    return [short, *experiments]


# --------------------------------------------------------------------------- signals


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so one code path cleans up after either signal."""
    import threading

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# --------------------------------------------------------------------------- environment


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    # results/ is data the runs write, not harness code: a reference run rewriting it is not "dirty"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"git_commit": commit, "git_dirty": bool(dirty) if dirty is not None else None}


def fingerprint(lab: Any, builder: str | None) -> dict[str, Any]:
    from harness.engine.check import engine_info

    info = engine_info()
    if builder:
        from harness.lab.engine2 import describe_builder

        info["builder_requested"] = builder
        info["builder"] = describe_builder(builder)  # its driver, endpoint and the engine it builds on
    fp = {
        "engine": info,
        "harness": {"version": __version__, **git_info(), "python": sys.version.split()[0]},
        "host": {"cpus": os.cpu_count(), "loadavg": list(os.getloadavg())},
        "lab": lab.fingerprint() if lab is not None else None,
        "reproducibility": repro.support(info.get("builder_driver"), info.get("buildkit_version")),
    }
    return fp


def load_lab_or_none(bases: str) -> Any:
    from harness.lab import load_lab

    lab = load_lab()
    if bases == "registry" and getattr(lab, "bases_mode", "lab") != "registry":
        raise UsageError("--bases registry needs a lab started with `imagebench lab up --bases registry`")
    return lab


# --------------------------------------------------------------------------- the runner


class Runner:
    def __init__(self, opts: RunOptions, reporter: Reporter | None = None, lab: Any = None) -> None:
        self.opts = opts
        self.reporter = reporter or Reporter()
        self.lab = lab
        self._buildx_builder = opts.builder
        if opts.builder:  # a docker-driver builder on another engine: images land there, inspect them there
            from harness.lab.engine2 import builder_host

            host = builder_host(opts.builder)
            if host:
                os.environ["DOCKER_HOST"] = host
                # buildx uses another context's docker driver only as the current context, and with
                # DOCKER_HOST set the current one is "default": that engine's own builder
                self._buildx_builder = "default"
        self.client = dinspect.client()
        self.run: Run | None = None
        self.workroot: Path | None = None
        self._pkg_cache: dict[str, dict] = {}
        self._base_pins: dict[str, dict] = {}
        self._tracked: list[tuple[str, str]] = []
        self._fp_thread: _Background | None = None
        self._smoke_cache: dict[tuple[str, str], Any] = {}  # (image id, command) -> SmokeResult
        # default builder = docker driver (exporter ignores rewrite-timestamp); others are asked for it
        driver = "docker" if opts.builder in (None, "", "default") else "other"
        self._repro = repro.support(driver, "v0.13")

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
                self.run = Run.open(self.opts.results_dir, resume)
                by_name = {e.name: e for e in experiments}
                from harness.experiment import select

                wanted = sorted(self.run.data["experiments"])
                missing_defs = [n for n in wanted if n not in by_name]
                if missing_defs:
                    by_name.update({e.name: e for e in select(missing_defs)})
                experiments = [by_name[n] for n in wanted]
                self._check_definitions(experiments)
                todo = self.run.missing()
                self.run.data["status"] = "running"
                self.run.data.setdefault("resumed", []).append({"at": utcnow(), "command": self.opts.command})
            else:
                seed = (
                    self.opts.seed if self.opts.seed is not None else random.SystemRandom().randrange(2**31)
                )
                rounds = self.opts.auto_min if self.opts.auto else None
                plan = make_plan(experiments, self.opts, seed, rounds=rounds)
                exps = {e.name: self._experiment_record(e) for e in experiments}
                # The fingerprint (several docker/buildx calls) is taken while the run prepares its
                # first trial; it is in the file from the first trial on.
                self._fp_thread = _Background(fingerprint, self.lab, self.opts.builder)
                self.run = Run.create(
                    self.opts.results_dir,
                    command=self.opts.command,
                    seed=seed,
                    fingerprint={},
                    experiments=exps,
                    plan=plan,
                    options=self._options_record(),
                )
                todo = plan
            self.workroot = Path(tempfile.mkdtemp(prefix=f"imagebench-{self.run.run_id}-"))
            status = "failed"
            try:
                self._pin_bases(experiments)
                self._loop(experiments, todo)
                if self.opts.auto:
                    self._auto_rounds(experiments)
                status = "complete"
            except KeyboardInterrupt:
                status = "interrupted"
                raise Interrupted(
                    f"interrupted; results so far kept in {self.run.path}",
                    hint=f"imagebench run --resume {self.run.run_id}",
                ) from None
            finally:
                if self._fp_thread is not None:
                    self.run.data["fingerprint"] = self._fp_thread.result()
                    self._fp_thread = None
                self._cleanup_run()
                self.run.finish(status)
                self.reporter.finish(self.run.data)
        trials = self.run.trials
        return RunOutcome(
            run=self.run,
            failed=sum(t["status"] == "failed" for t in trials),
            ok=sum(t["status"] == "ok" for t in trials),
            skipped=sum(t["status"] == "skipped" for t in trials),
        )

    # -- records --------------------------------------------------------------------------
    def _options_record(self) -> dict:
        o = self.opts
        return {
            "trials": "auto" if o.auto else o.trials,
            "quick": o.quick,
            "warmup": o.warmup,
            "builder": o.builder,
            "shard": list(o.shard) if o.shard else None,
            "bases": o.bases,
            "keep_images": o.keep_images,
        }

    def _experiment_record(self, exp: Experiment) -> dict:
        rec = exp.to_dict()
        rec["not_measured"] = {v.name: r for v in exp.variants if (r := self._unmet(exp, v))}
        return rec

    def _check_definitions(self, experiments: list[Experiment]) -> None:
        for e in experiments:
            recorded = self.run.data["experiments"][e.name].get("definition_hash")
            if recorded and recorded != e.definition_hash():
                raise UsageError(
                    f"experiment {e.name!r} changed since run {self.run.run_id} started; "
                    "resume would mix definitions",
                    hint="start a new run",
                )

    def _unmet(self, exp: Experiment, v: Variant) -> str | None:
        needs = list(exp.requires) + list(v.requires)
        for p in exp.probes:
            with contextlib.suppress(HarnessError):
                needs += list(get_probe(p).needs)
        for need in needs:
            reason = capability_missing(need, self.opts, self.lab)
            if reason:
                return reason
        return None

    # -- bases ----------------------------------------------------------------------------
    def _pin_bases(self, experiments: list[Experiment]) -> None:
        """Resolve every public base name once and pin the lab image id for the whole run."""
        pins = self.run.data.setdefault("bases", {})
        for exp in experiments:
            for v in exp.variants:
                if self._unmet(exp, v):
                    continue
                text = read_dockerfile(exp.file(v.dockerfile))
                for name in base_images(text, v.build_args):
                    if name in self._base_pins:
                        continue
                    pin = self._resolve(name)
                    if name in pins and pins[name]["image_id"] != pin["image_id"]:
                        raise LabError(
                            f"base {name} moved since this run started ({pins[name]['image_id'][:19]} -> "
                            f"{pin['image_id'][:19]})",
                            hint="start a new run",
                        )
                    pins[name] = pin
                    self._base_pins[name] = pin

    def _resolve(self, name: str) -> dict:
        """A public name through the lab's mapping; an image that exists locally (a user's own base) as is."""
        try:
            ref, py_note = pyversions.resolve(self.lab, name, self.opts.python_substitute)
        except LabError as exc:
            import docker.errors

            try:
                attrs = self.client.api.inspect_image(name)
            except docker.errors.ImageNotFound:
                raise exc from None
            return {
                "public": name,
                "lab_tag": name,
                "image_id": attrs["Id"],
                "bytes": attrs.get("Size"),
                "provenance": {"source": "local image", "note": "not a lab stand-in; used as found"},
            }
        if py_note:  # said before the first build, kept in the run file and the report
            self.reporter.message(f"warning: {py_note['message']}")
            self.run.warn(py_note["message"])
            self.run.data.setdefault("python_substitutions", {})[name] = py_note
        return {
            "public": name,
            "lab_tag": ref.lab_tag,
            "image_id": ref.image_id,
            "bytes": ref.bytes,
            "provenance": {**ref.provenance, **({"python_substitution": py_note} if py_note else {})},
        }

    def _build_contexts(self, text: str, build_args: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        contexts, used = {}, {}
        for name in base_images(text, build_args):
            pin = self._base_pins.get(name)
            if pin is None:
                pin = self._base_pins[name] = self._resolve(name)
            current = self.client.api.inspect_image(pin["lab_tag"])["Id"]
            if current != pin["image_id"]:
                raise LabError(
                    f"base {name} ({pin['lab_tag']}) changed during the run; pinned {pin['image_id'][:19]}"
                )
            if pin["lab_tag"] != name:
                contexts[name] = f"docker-image://{pin['lab_tag']}"
            used[name] = pin["image_id"]
        return contexts, used

    # -- loop -----------------------------------------------------------------------------
    def _loop(self, experiments: list[Experiment], todo: list[dict]) -> None:
        by_name = {e.name: e for e in experiments}
        if hasattr(self.reporter, "plan"):  # the ETA estimates each planned trial
            self.reporter.plan(todo)
        self.reporter.start(len(todo))
        if self.opts.warmup:
            self._warmup(experiments, todo)
        for entry in todo:
            exp = by_name[entry["experiment"]]
            self._one(exp, exp.variant(entry["variant"]), entry)

    def _warmup(self, experiments: list[Experiment], todo: list[dict]) -> None:
        seen = set()
        by_name = {e.name: e for e in experiments}
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
                self._trial(exp, v, {**entry, "scenario": "cold", "trial": -1}, record=False)

    def _auto_rounds(self, experiments: list[Experiment]) -> None:
        """--trials auto: add rounds for (variant, scenario) pairs whose median is not yet within +/-3 %."""
        from harness.stats import precise_enough

        precision = self.run.data.setdefault("precision", {})
        for exp in experiments:
            t = self.opts.auto_min
            while True:
                pending = []
                for v in exp.variants:
                    for scen in scenarios_for(exp, v, self.opts.quick):
                        vals = [
                            tr["metrics"].get("build_seconds")
                            for tr in self.run.trials
                            if tr["experiment"] == exp.name
                            and tr["variant"] == v.name
                            and tr["scenario"] == scen
                            and tr["status"] == "ok"
                        ]
                        vals = [x for x in vals if x is not None]
                        key = f"{exp.name}/{v.name}/{scen}"
                        ok = len(vals) >= 2 and precise_enough(vals, 0.03)
                        precision[key] = {
                            "n": len(vals),
                            "within_3pct": bool(ok),
                            "stopped_by": "precision"
                            if ok
                            else ("cap" if t >= self.opts.auto_cap else "running"),
                        }
                        if not ok and vals and t < self.opts.auto_cap:
                            pending.append((v, scen))
                if not pending:
                    break
                rng = random.Random(self.run.data["seed"] + t)
                rng.shuffle(pending)
                for order, (v, scen) in enumerate(pending):
                    entry = {
                        "experiment": exp.name,
                        "variant": v.name,
                        "scenario": scen,
                        "trial": t,
                        "order": order,
                    }
                    self.run.data["plan"].append(entry)
                    self._one(exp, v, entry)
                t += 1

    def _record(self, trial: dict) -> None:
        if self._fp_thread is not None:
            self.run.data["fingerprint"] = self._fp_thread.result()
            self._fp_thread = None
        self.run.record_trial(trial)

    def _one(self, exp: Experiment, v: Variant, entry: dict) -> None:
        self.reporter.trial_started(exp.name, v.name, entry["scenario"], entry["trial"])
        t0 = time.perf_counter()
        reason = self._unmet(exp, v)
        if reason:
            rec = {**entry, "status": "skipped", "error": reason, "metrics": {}}
            self._record(rec)
            self.reporter.trial_finished("skipped", 0.0, reason)
            return
        try:
            rec = self._trial(exp, v, entry)
        except KeyboardInterrupt:
            self._record(
                {
                    **entry,
                    "status": "interrupted",
                    "error": "interrupted",
                    "metrics": {},
                    "ended_at": utcnow(),
                }
            )
            self.reporter.trial_finished("interrupted", time.perf_counter() - t0, "interrupted")
            raise
        except EngineUnavailable as exc:
            self._record({**entry, "status": "failed", "error": str(exc), "metrics": {}})
            raise EngineUnavailable(
                f"trial {exp.name}/{v.name}/{entry['scenario']}/#{entry['trial']}: {exc}; "
                f"results so far kept in {self.run.path}"
            ) from None
        except HarnessError as exc:
            rec = {**entry, "status": "failed", "error": str(exc), "metrics": {}}
        self._record(rec)
        self.reporter.trial_finished(rec["status"], time.perf_counter() - t0, rec.get("error"))

    # -- one trial ------------------------------------------------------------------------
    def _trial(self, exp: Experiment, v: Variant, entry: dict, *, record: bool = True) -> dict:
        scen = entry["scenario"]
        self._current_exp = exp
        nonce = os.urandom(6).hex()
        work = self.workroot / f"{exp.name}-{v.name}-{scen}-{entry['trial']}-{nonce}"
        work.mkdir(parents=True)
        ctx_dir = work / "context"
        src_ctx = exp.path / v.context
        _copy_context(src_ctx, ctx_dir)
        dockerfile = work / "Dockerfile"
        shutil.copyfile(exp.file(v.dockerfile), dockerfile)
        di = exp.path / (v.dockerfile + ".dockerignore")
        if di.is_file():
            shutil.copyfile(di, work / "Dockerfile.dockerignore")
        run_id = self.run.run_id
        labels = {LABEL: run_id, "imagebench.experiment": exp.name, "imagebench.variant": v.name}
        tag = f"imagebench-run/{exp.name}:{v.name}-{scen}-{entry['trial']}-{nonce}".replace("--", "-")
        text = dockerfile.read_text(encoding="utf-8", errors="replace")
        build_args = {**self.lab.build_args(), **v.build_args}
        contexts, base_ids = self._build_contexts(text, build_args)
        spec = BuildSpec(
            context=ctx_dir,
            dockerfile=dockerfile,
            tag=tag,
            target=v.target,
            build_args=build_args,
            build_contexts=contexts,
            labels=labels,
            builder=self._buildx_builder,
            source_date_epoch=repro.DEFAULT_EPOCH,
            rewrite_timestamp=self._repro["rewrite_timestamp_honoured"],
        )
        probes = [get_probe(p) for p in exp.probes]
        redact: set[str] = set()

        def track(kind: str, ident: str) -> None:
            self._tracked.append((kind, ident))

        def build(**overrides: Any) -> BuildResult:
            res = run_build(spec.with_overrides(**overrides), redact=redact)
            if res.image_id:
                track("image", res.image_id)
            return res

        pctx = ProbeContext(
            client=self.client,
            experiment=exp,
            variant=v,
            scenario=scen,
            trial=entry["trial"],
            nonce=nonce,
            workdir=work,
            context=ctx_dir,
            dockerfile=dockerfile,
            labels=labels,
            lab=self.lab,
            tag=tag,
            build=build,
            track=track,
            redact=redact,
        )
        started = utcnow()
        metrics: dict[str, float] = {}
        try:
            extras = collect_extras(probes, pctx)
            spec.build_args.update(extras.build_args)
            spec.secrets = extras.secrets
            spec.flags = extras.flags
            self._prepare_scenario(exp, v, scen, spec, build, nonce, work)
            if hasattr(self.lab, "reset_index_stats"):
                with contextlib.suppress(Exception):
                    self.lab.reset_index_stats()
            result = run_build(spec, redact=redact)
            if result.image_id:
                track("image", result.image_id)
            if not result.ok:
                self._diagnose_failure(result)
                subs = [self._base_pins[n]["provenance"].get("python_substitution") for n in base_ids]
                hint = pyversions.failure_hint([x for x in subs if x])
                raise _TrialFailed(f"build failed: {result.error}{hint}", result)
            metrics.update(self._build_metrics(result, ctx_dir, dockerfile))
            try:
                split = dinspect.split_layers(result.image_id, base_ids)
            except Exception:  # attribution is an extra: never lose the trial over it
                split = {}
            measured = self._reproducible(result.image_id, split, tag)
            image = dinspect.image_facts(measured["image_id"])
            image.update(split, repro=measured)
            metrics["image_bytes"] = image["bytes"]
            metrics["layers"] = image["layers"]
            metrics.update({k: split[k] for k in ("own_bytes", "base_bytes", "own_layers") if k in split})
            pkgs = self._packages(image["id"], labels)  # the measured image: same content, same counts, once
            for k in ("packages_os", "packages_python", "os_files"):
                if k in pkgs:
                    metrics[k] = pkgs[k]
            if "gcc_present" in exp.metrics and "gcc_present" in pkgs:
                metrics["gcc_present"] = pkgs["gcc_present"]
            if exp.compressed and self.lab is not None:
                pushed = self.lab.push(measured["image_id"], f"imagebench-run/{exp.name}-{v.name}")
                image["manifest_digest"] = pushed.get("manifest_digest")
                image["layer_compressed_bytes"] = pushed.get("layer_sizes")
                metrics["image_bytes_compressed"] = pushed["compressed_bytes"]
                if split and pushed.get("layer_sizes"):
                    metrics.update(dinspect.split_compressed(pushed["layer_sizes"], split["base_layers"]))
                if pushed.get("push_seconds") is not None:
                    metrics["push_seconds"] = pushed["push_seconds"]
            pctx.image = result.image_id
            for p in probes:
                values = p.after_build(pctx)
                metrics.update({k: val for k, val in values.items() if val is not None})
            smoke = self._smoke(exp, v, result.image_id, labels, track, record, redact) if v.smoke else None
            if smoke is not None:
                metrics["smoke_ok"] = 1 if smoke.ok else 0
            if exp.compressed and self.lab is not None:
                metrics["pull_seconds"] = self._pull_back(pushed["ref"], measured["image_id"])
            trial = {
                **entry,
                "status": "ok",
                "error": None,
                "started_at": started,
                "ended_at": utcnow(),
                "metrics": _clean(metrics),
                "image": _image_record(image, tag),
                "bases": base_ids,
                "steps": _scrub(_steps_record(result), redact),
                "probe_data": _scrub(pctx.details, redact),
            }
            if smoke is not None:
                trial["smoke"] = _scrub(smoke.record(), redact)
            if result.events.error_text.strip():
                trial["build_warnings"] = _scrub(result.events.error_text.strip(), redact)[-2000:]
            return trial
        except _TrialFailed as exc:
            return {
                **entry,
                "status": "failed",
                "error": _scrub(str(exc), redact),
                "started_at": started,
                "ended_at": utcnow(),
                "metrics": _clean(metrics),
                "bases": base_ids,
                "error_text": _scrub(exc.result.error_text, redact)[-4000:],
                "steps": _scrub(_steps_record(exc.result), redact),
            }
        except HarnessError as exc:
            exc.message = _scrub(exc.message, redact)
            raise
        finally:
            for p in probes:
                with contextlib.suppress(Exception):
                    p.cleanup(pctx)
            self._cleanup_trial(keep=self.opts.keep_images)
            shutil.rmtree(work, ignore_errors=True)

    def _smoke(
        self,
        exp: Experiment,
        v: Variant,
        image_id: str,
        labels: dict,
        track: Callable,
        record: bool,
        redact: set[str],
    ) -> Any:
        """The variant's smoke check, once per built image (untimed); a failure's last line is noted
        in the run's experiment record, where the claims' verdicts read it ("smaller but broken")."""
        from harness.smoke import command_text, run_smoke

        key = (image_id, command_text(v.smoke))
        if key not in self._smoke_cache:
            self._smoke_cache[key] = run_smoke(self.client, image_id, v.smoke, labels=labels, track=track)
        res = self._smoke_cache[key]
        if record and not res.ok:
            failures = self.run.data["experiments"][exp.name].setdefault("smoke_failures", {})
            failures[v.name] = _scrub(res.record()["last_line"], redact)
        return res

    def _reproducible(self, image_id: str, split: dict, tag: str) -> dict:
        """The image to measure: the build's own when the exporter rewrote timestamps, else our layers
        re-packed with mtimes clamped to SOURCE_DATE_EPOCH (harness/engine/repro.py), loaded as TAG-repro."""
        if self._repro["rewrite_timestamp_honoured"]:
            return {"image_id": image_id, "method": self._repro["method"]}
        try:
            out = repro.repack(image_id, split.get("base_layers", 0), repro.DEFAULT_EPOCH, f"{tag}-repro")
        except Exception as exc:  # the build's own image is still a valid measurement: say why not repro
            return {"image_id": image_id, "method": None, "why": f"re-pack failed: {str(exc)[:200]}"}
        self._tracked.append(("image", out["image_id"]))
        return {**out, "method": self._repro["method"], "epoch": repro.DEFAULT_EPOCH}

    def _pull_back(self, ref: str, image_id: str) -> float:
        """Seconds to pull the pushed image back from the lab registry after removing it locally.

        Layers that are still present locally (the lab base's) are not transferred: this is what a
        host that already has the base pulls for this image."""
        dinspect.remove_image(image_id)
        t0 = time.perf_counter()
        cp = subprocess.run(["docker", "pull", "-q", ref], capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - t0
        if cp.returncode != 0:
            raise LabError(
                f"pull of {ref} from the lab registry failed: {(cp.stderr or cp.stdout).strip()[-200:]}",
                hint="is the lab registry up? `imagebench lab status`",
            )
        self._tracked.append(("image", ref))
        return seconds

    def _diagnose_failure(self, result: BuildResult) -> None:
        """Turn a failed build caused by the environment into an error that stops the run clearly."""
        try:
            self.client.ping()
        except Exception:
            raise EngineUnavailable("the Docker daemon stopped answering") from None
        if self.lab is not None:
            try:
                self.lab.check_alive()
            except LabError as exc:
                raise _TrialFailed(f"build failed because the lab is down: {exc}", result) from None

    def _prepare_scenario(
        self,
        exp: Experiment,
        v: Variant,
        scen: str,
        spec: BuildSpec,
        build: Callable[..., BuildResult],
        nonce: str,
        work: Path,
    ) -> None:
        """Establish the cache state the scenario names; verify it where it can be verified."""
        dinspect.remove_image(spec.tag)
        dinspect.prune_build_cache(self._buildx_builder)
        if scen == "cold":
            return
        prep = build()
        if not prep.ok:
            raise _TrialFailed(f"preparation build for {scen} failed: {prep.error}", prep)
        if scen == "warm":
            return
        if scen == "edit-source":
            for rel in exp.edits.get("source", []):
                target = spec.context / rel
                if not target.is_file():
                    raise UsageError(
                        f"{exp.path}/experiment.toml: edits.source names {rel!r}, which is not in the context"
                    )
                with open(target, "a", encoding="utf-8") as fh:
                    fh.write(f"\n# imagebench edit-source {nonce}\n")
        elif scen == "edit-deps":
            target = spec.context / exp.edits["deps"]
            line = exp.edits.get("deps_append") or f"# imagebench edit-deps {nonce}"
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(f"\n{line}\n")
        elif scen == "base-bump":
            bumped = {}
            for name, ctxref in spec.build_contexts.items():
                lab_tag = ctxref.removeprefix("docker-image://")
                btag = f"imagebench-run/bump:{nonce}-{len(bumped)}"
                bdir = work / f"bump-{len(bumped)}"
                bdir.mkdir()
                (bdir / "Dockerfile").write_text(f"FROM {lab_tag}\nRUN echo {nonce} > /etc/imagebench-bump\n")
                res = run_build(
                    BuildSpec(
                        context=bdir,
                        dockerfile=bdir / "Dockerfile",
                        tag=btag,
                        labels=spec.labels,
                        builder=self._buildx_builder,
                        network=None,
                    )
                )
                if not res.ok:
                    raise _TrialFailed(f"base-bump preparation failed: {res.error}", res)
                self._tracked.append(("image", btag))
                bumped[name] = f"docker-image://{btag}"
            spec.build_contexts = {**spec.build_contexts, **bumped}

    def _build_metrics(self, result: BuildResult, ctx_dir: Path, dockerfile: Path) -> dict[str, float]:
        ev = result.events
        m: dict[str, float] = {"build_seconds": result.seconds}
        if ev.span_seconds is not None:
            m["build_span_seconds"] = ev.span_seconds
        m.update(step_counts(ev))
        if ev.context_sent_bytes is not None:
            m["context_sent_bytes"] = ev.context_sent_bytes
        m["context_bytes"] = context_bytes(ctx_dir, dockerfile)
        deps = _deps_step(ev, self._current_exp.deps_step)
        if deps is not None:
            m["deps_step_cached"] = 1 if deps.cached else 0
            m["step_seconds_deps"] = deps.seconds
        return m

    def _packages(self, image_id: str, labels: dict[str, str]) -> dict:
        if image_id not in self._pkg_cache:
            self._pkg_cache[image_id] = dinspect.package_counts(image_id, labels)
        return self._pkg_cache[image_id]

    # -- cleanup --------------------------------------------------------------------------
    def _cleanup_trial(self, *, keep: bool) -> None:
        dinspect.remove_tracked(self._tracked, keep_images=keep)
        self._tracked = []

    def _cleanup_run(self) -> None:
        with contextlib.suppress(Exception):
            self._cleanup_trial(keep=self.opts.keep_images)
        if not self.opts.keep_images:
            with contextlib.suppress(Exception):
                dinspect.remove_labelled(LABEL, self.run.run_id)
        else:
            with contextlib.suppress(Exception):
                for x in self.client.containers.list(
                    all=True, filters={"label": f"{LABEL}={self.run.run_id}"}
                ):
                    x.remove(force=True, v=True)
        if self.workroot:
            shutil.rmtree(self.workroot, ignore_errors=True)


class _Background:
    """Run a function in a thread; `result()` waits and returns its value (or raises its error)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        import threading

        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = fn(*args)
            except BaseException as exc:  # handed to the caller of result()
                self._error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _TrialFailed(HarnessError):
    def __init__(self, message: str, result: BuildResult) -> None:
        super().__init__(message)
        self.result = result


# --------------------------------------------------------------------------- helpers


def capability_missing(need: str, opts: RunOptions, lab: Any) -> str | None:
    """Why a requirement is not met here (None when it is)."""
    if need == "registry-bases":
        return (
            None
            if opts.bases == "registry"
            else "needs public base images (--bases registry); no registry is reachable in lab mode"
        )
    if need == "shaped-network":
        prof = getattr(lab, "profile", None)
        name = prof.get("profile") if isinstance(prof, dict) else getattr(prof, "name", None)
        return (
            None
            if name and name != "unlimited"
            else "needs a shaped network profile (imagebench lab up --profile 100mbit)"
        )
    if need == "musl-base":
        failed = ((getattr(lab, "state", None) or {}).get("bases_failed") or {}) if lab is not None else {}
        why = next((f"{k}: {v}" for k, v in failed.items() if "musl" in k), None)
        return (
            f"the lab's musl stand-in for python:*-alpine did not build in `lab up` ({why})" if why else None
        )
    if need.startswith("tool:"):
        tool = need.split(":", 1)[1]
        return None if shutil.which(tool) else f"needs the {tool!r} tool on PATH"
    if need in ("cosign", "hadolint", "docker-compose", "openssl", "dockerd"):
        return None if shutil.which(need) else f"needs the {need!r} tool on PATH"
    if need == "compose":
        return (
            None if (shutil.which("docker-compose") or _has_compose_plugin()) else "needs Docker Compose v2"
        )
    return None


def _has_compose_plugin() -> bool:
    try:
        return (
            subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=10).returncode == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def _copy_context(src: Path, dst: Path) -> None:
    """Copy an experiment's context into the trial's private directory (never results/ or the lab's data)."""
    src = src.resolve()
    forbidden = [default_results_dir().resolve(), state_dir().resolve(), Path.home().resolve(), Path("/")]
    for bad in forbidden:
        if src == bad or (bad != Path("/") and bad.is_relative_to(src)):
            raise UsageError(f"refusing build context {src}: it contains {bad} (results, lab data or home)")
    shutil.copytree(src, dst, symlinks=True)


def context_bytes(ctx_dir: Path, dockerfile: Path | None = None) -> int:
    """Bytes of regular files in the context after .dockerignore (what the context really is)."""
    from docker.utils.build import exclude_paths

    patterns: list[str] = []
    ignore = None
    if dockerfile is not None and Path(str(dockerfile) + ".dockerignore").is_file():
        ignore = Path(str(dockerfile) + ".dockerignore")
    elif (ctx_dir / ".dockerignore").is_file():
        ignore = ctx_dir / ".dockerignore"
    if ignore is not None:
        patterns = [
            ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and not ln.startswith("#")
        ]
    total = 0
    for rel in exclude_paths(str(ctx_dir), patterns):
        p = ctx_dir / rel
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def step_counts(events) -> dict[str, int]:
    """Dockerfile step vertices, FROM excluded, of a successful build.

    FROM is left out on purpose: for a base in the local image store BuildKit reports its vertex
    cached on cold builds and not cached on identical warm rebuilds (both observed on Engine 26),
    so it says nothing about the build cache.
    """
    steps = [s for s in events.dockerfile_steps() if s.instruction != "FROM"]
    cached = sum(1 for s in steps if s.cached)
    return {"steps_total": len(steps), "steps_cached": cached, "steps_executed": len(steps) - cached}


def _deps_step(events, hint: str = "") -> Any:
    hints = (hint,) if hint else DEPS_HINTS
    for s in events.dockerfile_steps():
        if s.instruction == "RUN" and any(h in s.name for h in hints):
            return s
    return None


def _steps_record(result: BuildResult) -> list[dict]:
    steps = result.events.dockerfile_steps()
    starts = [s.started for s in steps if s.started is not None]
    t0 = min(starts) if starts else None
    out = []
    for s in steps:
        out.append(
            {
                "name": s.name if len(s.name) <= 300 else s.name[:300] + "...",
                "stage": s.stage,
                "index": s.index,
                "instruction": s.instruction,
                "cached": s.cached,
                "seconds": round(s.seconds, 6),
                "start_offset": round(s.started - t0, 6)
                if (t0 is not None and s.started is not None)
                else None,
                "end_offset": round(s.completed - t0, 6)
                if (t0 is not None and s.completed is not None)
                else None,
            }
        )
    return out


def _image_record(image: dict, tag: str) -> dict:
    keys = (
        "id",
        "bytes",
        "layers",
        "layer_bytes",
        "storage_driver",
        "manifest_digest",
        "layer_compressed_bytes",
        "base",
        "base_image_id",
        "base_layers",
        "own_layers",
        "repro",
        "user",
        "healthcheck",
    )
    rec = {k: image.get(k) for k in keys if k in image}
    rec["tag"] = tag
    return rec


def _clean(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, int | float) and v == v:  # drop NaN
            out[k] = v
    return out


def _scrub(obj: Any, redact: set[str]) -> Any:
    """Remove secrets (canaries) from anything that goes to results or logs.

    Longest secrets first; a string cut short by BuildKit or by us still hides any copy of a
    secret's first 12 characters (and the rest of that token).
    """
    if not redact:
        return obj
    if isinstance(obj, str):
        for s in sorted(redact, key=len, reverse=True):
            obj = obj.replace(s, "<redacted>")
            if len(s) >= 12 and s[:12] in obj:
                obj = re.sub(re.escape(s[:12]) + r"\S*", "<redacted>", obj)
        return obj
    if isinstance(obj, dict):
        return {_scrub(k, redact): _scrub(v, redact) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrub(x, redact) for x in obj]
    return obj


def run_experiments(
    experiments: list[Experiment],
    opts: RunOptions,
    reporter: Reporter | None = None,
    *,
    resume: str | None = None,
    lab: Any = None,
) -> RunOutcome:
    return Runner(opts, reporter, lab=lab).execute(experiments, resume=resume)
