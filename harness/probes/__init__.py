"""Runtime probes: measurements taken around and after a build, usable from any experiment.

A probe is a class registered under a name; an experiment lists the probes it uses in
`probes = [...]`. For every trial the runner calls, in order:

    extras  = probe.before_build(ctx)   # extra build args / secrets / flags (optional)
    <timed build of the variant>
    values  = probe.after_build(ctx)    # {metric: number} in base units, recorded as trial metrics
    probe.cleanup(ctx)                  # always called, even after an error or an interrupt

`ctx.details[probe.name]` may hold non-numeric findings (argv tables, where a canary was found
by location name, never the canary itself); they are stored in the trial's `probe_data`.
Probes create containers/networks/volumes only with `ctx.labels` and register them with
`ctx.track(kind, id)` so an interrupted run can remove them.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.records import LabHandle


@dataclass
class BuildExtras:
    """What a probe adds to the build command of a trial."""

    build_args: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # values for `--secret`, e.g. "id=canary,src=/path"
    flags: list[str] = field(default_factory=list)  # any other buildx flags
    redact: set[str] = field(default_factory=set)  # strings that must never reach results or logs


@dataclass
class ProbeContext:
    client: Any  # docker.DockerClient
    experiment: Any  # harness.experiment.Experiment (which imports probes: not typed here, no cycle)
    variant: Any  # harness.experiment.Variant
    scenario: str
    trial: int
    nonce: str  # unique per trial
    workdir: Path  # private directory of this trial (the context copy is workdir / "context")
    context: Path
    dockerfile: Path
    labels: dict[str, str]
    lab: LabHandle | None = None
    image: str | None = None  # image id after the build
    tag: str | None = None
    build: Callable[..., Any] | None = None  # runner callback: build(**overrides) -> BuildResult
    details: dict[str, object] = field(default_factory=dict)
    track: Callable[[str, str], None] = lambda _kind, _ident: None
    redact: set[str] = field(default_factory=set)
    # the experiment catalog under a folder (harness.experiment.discover, passed in by the runner so
    # probes never import the experiments that import them); the lint probe walks it
    catalog: Callable[[Path | None], list[Any]] | None = None


class Probe:
    """Base class: override what the measurement needs."""

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()  # capabilities: "registry", "cosign", "compose", "hadolint", ...

    def before_build(self, _ctx: ProbeContext) -> BuildExtras:
        return BuildExtras()

    def after_build(self, _ctx: ProbeContext) -> dict[str, float]:
        return {}

    def cleanup(self, _ctx: ProbeContext) -> None:
        return None


def collect_extras(probes: list[Probe], ctx: ProbeContext) -> BuildExtras:
    """Every probe's before_build, merged into one BuildExtras; secrets to redact go into ctx.redact."""
    extras = BuildExtras()
    for p in probes:
        e = p.before_build(ctx)
        extras.build_args.update(e.build_args)
        extras.secrets += e.secrets
        extras.flags += e.flags
        ctx.redact |= e.redact
    extras.redact = set(ctx.redact)
    return extras


PROBES: dict[str, type[Probe]] = {}
_loaded = False
_loading = threading.RLock()  # threads loading experiments at once must not see a half-filled PROBES


def register(cls: type[Probe]) -> type[Probe]:
    """Class decorator: make a probe available to experiments by its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    PROBES[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    with _loading:
        if _loaded:
            return
        for mod in pkgutil.iter_modules(__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True  # only once every probe is registered


def get_probe(name: str) -> Probe:
    _load_all()
    if name not in PROBES:
        raise UsageError(f"unknown probe {name!r}; known: {', '.join(sorted(PROBES)) or '(none)'}")
    return PROBES[name]()


def known_probes() -> list[str]:
    _load_all()
    return sorted(PROBES)
