"""buildx flags of a ci job per cache strategy (pure).

Every job pushes its image to `<registry>/<repo>/app:ci` (what a pipeline does), so `inline` has
something to import from next time. Strategies (harness.experiment.CACHE_STRATEGIES):

none          no import, no export
inline        cache metadata in the pushed image (final stage only: BuildKit's inline is mode=min)
registry-min  a cache manifest at `<repo>/cache:ci`, mode=min (the final stage's layers)
registry-max  the same with mode=max (every stage's layers, builder stages included)
local         an OCI layout directory, mode=max (what a CI cache action restores and saves)

With buildx's `docker` driver, all but `none` need the containerd image store (registry and local
exporters; inline with push); harness/ci/engine.py starts an engine that has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.experiment import CACHE_STRATEGIES


@dataclass(frozen=True)
class Where:
    """Where one pipeline keeps its image and cache."""

    registry: str  # host:port of the lab registry
    repo: str  # a repository prefix unique to this pipeline, e.g. imagebench-ci/exp-v-1a2b3c
    local_dir: Path | None = None  # the `local` strategy's cache directory

    @property
    def image_ref(self) -> str:
        return f"{self.registry}/{self.repo}/app:ci"

    @property
    def cache_ref(self) -> str:
        return f"{self.registry}/{self.repo}/cache:ci"

    def cache_location(self, strategy: str) -> str | None:
        """Where the strategy keeps the cache: a registry reference, the directory, or None."""
        if strategy == "local":
            return str(self.local_dir)
        if strategy == "inline":
            return self.image_ref
        return self.cache_ref if strategy.startswith("registry-") else None

    def repos(self) -> tuple[str, ...]:
        """The registry repositories the pipeline writes (for byte accounting and cleanup)."""
        return (f"{self.repo}/app", f"{self.repo}/cache")


def check(strategy: str) -> str:
    if strategy not in CACHE_STRATEGIES:
        raise UsageError(f"unknown cache strategy {strategy!r} (allowed: {', '.join(CACHE_STRATEGIES)})")
    return strategy


def cache_flags(strategy: str, where: Where, *, import_cache: bool = True) -> list[str]:
    """--cache-from (unless import_cache is False: the first pipeline has nothing to import) and --cache-to."""
    check(strategy)
    if strategy == "none":
        return []
    if strategy == "local":
        if where.local_dir is None:
            raise UsageError("the local cache strategy needs a cache directory")
        src = [f"type=local,src={where.local_dir}"]
        # BuildKit writes a new OCI layout (index.json replaced, blobs kept): what a cache action saves
        dst = f"type=local,dest={where.local_dir},mode=max"
    elif strategy == "inline":
        src = [f"type=registry,ref={where.image_ref}"]
        dst = "type=inline"
    else:
        mode = strategy.removeprefix("registry-")
        src = [f"type=registry,ref={where.cache_ref}"]
        dst = f"type=registry,ref={where.cache_ref},mode={mode}"
    flags: list[str] = []
    if import_cache:
        for s in src:
            flags += ["--cache-from", s]
    return [*flags, "--cache-to", dst]


def output_flags(where: Where) -> list[str]:
    """The job's image output: pushed to the lab registry (no tar, no load step to time)."""
    return ["--output", f"type=image,name={where.image_ref},push=true"]
