"""ignore: what a .dockerignore changes for a `COPY . .` build.

before_build adds what a real working tree carries and a repository cannot hold: a `.git`
directory (pack file of IGNORED_GIT_BYTES deterministic bytes) and `logs/debug.log`
(IGNORED_LOG_BYTES). The runner measures context_bytes and context_sent_bytes of the timed
(cold) build after this. `.env` (a fake credential) comes from the experiment's context.

after_build
  env_file_in_image  1 when `.env` is in the image's working directory
  git_dir_in_image   1 when `.git` is there
  cache_busted       1 when, after appending to logs/debug.log (a file .dockerignore lists), a
                     rebuild executed a step again (the `COPY . .` and everything after it)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.errors import ProbeFailed
from harness.probes import BuildExtras, Probe, ProbeContext, register
from harness.probes._containers import files_in_image

IGNORED_GIT_BYTES = 4 * 1024 * 1024
IGNORED_LOG_BYTES = 1024 * 1024
LOG_FILE = "logs/debug.log"


def filler(n: int, seed: str) -> bytes:
    """Deterministic incompressible bytes."""
    out = bytearray()
    block = seed.encode()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def make_working_tree(ctx_dir: Path) -> dict[str, int]:
    """Add .git and logs/ to a context copy; returns {relative path: bytes}."""
    made: dict[str, int] = {}
    git = ctx_dir / ".git"
    (git / "objects" / "pack").mkdir(parents=True, exist_ok=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
    pack = git / "objects" / "pack" / "pack-imagebench.pack"
    pack.write_bytes(filler(IGNORED_GIT_BYTES, "git"))
    log = ctx_dir / LOG_FILE
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(filler(IGNORED_LOG_BYTES, "log").hex().encode()[:IGNORED_LOG_BYTES])
    for p in (git / "HEAD", git / "config", pack, log):
        made[p.relative_to(ctx_dir).as_posix()] = p.stat().st_size
    return made


def steps_rerun(events: Any) -> list[str]:
    """Names of Dockerfile steps (other than FROM) that executed."""
    return [s.name for s in events.dockerfile_steps() if not s.cached and s.instruction != "FROM"]


@register
class IgnoreProbe(Probe):
    name = "ignore"

    def before_build(self, ctx: ProbeContext) -> BuildExtras:
        self._made = make_working_tree(ctx.context)
        return BuildExtras()

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        if not ctx.image:
            return {}
        cfg = ctx.client.api.inspect_image(ctx.image).get("Config") or {}
        workdir = cfg.get("WorkingDir") or "/"
        env_files = files_in_image(ctx.client, ctx.image, str(Path(workdir) / ".env"), ctx.labels, ctx.track)
        git_files = files_in_image(
            ctx.client, ctx.image, str(Path(workdir) / ".git" / "HEAD"), ctx.labels, ctx.track
        )
        out = {"env_file_in_image": 1.0 if env_files else 0.0, "git_dir_in_image": 1.0 if git_files else 0.0}
        details: dict[str, object] = {"generated": getattr(self, "_made", {}), "workdir": workdir}
        if ctx.build is not None:
            with open(ctx.context / LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write("\nGET /health 200 (a new log line)\n")
            res = ctx.build()
            if not res.ok:
                raise ProbeFailed(f"rebuild after touching {LOG_FILE} failed: {res.error}")
            rerun = steps_rerun(res.events)
            out["cache_busted"] = 1.0 if rerun else 0.0
            details.update(rerun_steps=rerun, rebuild_context_sent_bytes=res.events.context_sent_bytes)
        ctx.details[self.name] = details
        return out
