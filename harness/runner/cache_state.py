"""Cache-state preparation: establish the state a scenario names before its timed build.

cold         the output image removed, the builder's cache pruned and verified empty
warm         cold, then one identical build
edit-source  warm, then the experiment's source files edited (a comment appended)
edit-deps    warm, then its dependency file edited
base-bump    warm, then every base replaced by a one-layer child (a new base image id)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.engine import inspect as dinspect
from harness.engine.buildx import BuildResult, BuildSpec, run_build
from harness.errors import UsageError
from harness.experiment import Experiment
from harness.runner.failures import TrialFailed


def make_cold(tag: str, builder: str | None) -> None:
    """The cold state: no image under the trial's tag, no build cache (pruned and verified)."""
    dinspect.remove_image(tag)
    dinspect.prune_build_cache(builder)


def prepare(
    exp: Experiment,
    scen: str,
    spec: BuildSpec,
    build: Callable[[], BuildResult],
    nonce: str,
    work: Path,
    track: Callable[[str, str], None],
) -> None:
    """From the cold state to the scenario's: the preparation build, then the scenario's change."""
    if scen == "cold":
        return
    prep = build()
    if not prep.ok:
        raise TrialFailed(f"preparation build for {scen} failed: {prep.error}", prep)
    if scen == "edit-source":
        edit_source(exp, spec.context, nonce)
    elif scen == "edit-deps":
        edit_deps(exp, spec.context, nonce)
    elif scen == "base-bump":
        bump_bases(spec, nonce, work, track)


def edit_source(exp: Experiment, context: Path, nonce: str) -> None:
    for rel in exp.edits.get("source", []):
        target = context / rel
        if not target.is_file():
            raise UsageError(
                f"{exp.path}/experiment.toml: edits.source names {rel!r}, which is not in the context"
            )
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(f"\n# imagebench edit-source {nonce}\n")


def edit_deps(exp: Experiment, context: Path, nonce: str) -> None:
    target = context / exp.edits["deps"]
    line = exp.edits.get("deps_append") or f"# imagebench edit-deps {nonce}"
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(f"\n{line}\n")


def bump_bases(spec: BuildSpec, nonce: str, work: Path, track: Callable[[str, str], None]) -> None:
    """Replace every named base context with a child image one layer above it (built untimed)."""
    bumped: dict[str, str] = {}
    for name, ctxref in spec.build_contexts.items():
        lab_tag = ctxref.removeprefix("docker-image://")
        btag = f"imagebench-run/bump:{nonce}-{len(bumped)}"
        bdir = work / f"bump-{len(bumped)}"
        bdir.mkdir()
        (bdir / "Dockerfile").write_text(f"FROM {lab_tag}\nRUN echo {nonce} > /etc/imagebench-bump\n")
        bump = BuildSpec(
            context=bdir,
            dockerfile=bdir / "Dockerfile",
            tag=btag,
            labels=spec.labels,
            builder=spec.builder,
            network=None,
        )
        res = run_build(bump)
        if not res.ok:
            raise TrialFailed(f"base-bump preparation failed: {res.error}", res)
        track("image", btag)
        bumped[name] = f"docker-image://{btag}"
    spec.build_contexts = {**spec.build_contexts, **bumped}
