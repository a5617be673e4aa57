"""The ci scenario on a real containerd-store engine: a trial starts from an empty builder (no cache
hit without an import), and registry cache with mode=max reuses a builder-stage step that inline
cache cannot (the step's random token survives into the job's image only with mode=max)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.ci.engine import tags
from harness.lab.basedefs import load_bases
from harness.lab.registry import compressed_bytes

from helpers import REPO, imagebench

FIXTURES = REPO / "tests" / "fixtures" / "ci-experiments"
DEPS_STEP = "[builder 2/5] RUN sleep 2"


def _engine_dirs() -> set[str]:
    return {p.name for p in Path("/tmp").glob("ib-engine2-*")}


@pytest.fixture(scope="module")
def ci_run(lab, tmp_path_factory):
    """One run of the ci-tiny fixture (no-cache, inline, registry-max; scenario ci); its trials by variant."""
    engines_before = _engine_dirs()
    results = tmp_path_factory.mktemp("ci-results")
    cp = imagebench("run", "ci-tiny", "--trials", "1", results=results, experiments=FIXTURES)
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    run = json.loads(next(results.glob("*/*.json")).read_text())
    trials = {t["variant"]: t for t in run["trials"]}
    assert {t["status"] for t in trials.values()} == {"ok"}, [t.get("error") for t in trials.values()]
    assert all(t["metrics"]["smoke_ok"] == 1 and t["smoke"]["ok"] for t in trials.values())
    return {"trials": trials, "engines_before": engines_before, "registry": lab.registry}


def _deps_layer(layers: list[str]) -> str:
    """The final image's layer that holds the builder's deps output (base layer, deps, app)."""
    assert len(layers) == 3, layers
    return layers[1]


def test_a_trial_without_import_starts_from_an_empty_builder(ci_run):
    """cache=none: nothing cached, the whole base pulled from the registry, every step run, a new token."""
    t = ci_run["trials"]["no-cache"]
    m = t["metrics"]
    assert m["steps_cached"] == 0 and m["ci_steps_reused"] == 0
    assert m["ci_steps_rebuilt"] == m["steps_total"] == 6
    assert t["ci"]["cached_steps"] == [] and t["ci"]["reused_steps"] == []
    assert m["ci_cache_pulled_bytes"] == 0 and m["ci_import_seconds"] == 0 and m["ci_export_seconds"] == 0
    tag = load_bases().bases["debian-trixie-slim"].tag
    _, sizes = compressed_bytes(f"{ci_run['registry']}/{tag}")
    assert (
        m["ci_base_pulled_bytes"] == m["ci_pulled_bytes"] == sum(sizes) > 0
    )  # every base byte, nothing else
    assert _deps_layer(t["ci"]["layers"]) != _deps_layer(t["ci"]["previous_layers"])


def test_registry_max_reuses_a_builder_step_that_inline_cannot(ci_run):
    """After a source edit: mode=max loads the builder's deps step from the registry (its layer, with
    the previous run's random token, is in the new image); inline (mode=min) has to run it again."""
    mx, inline = ci_run["trials"]["registry-max"], ci_run["trials"]["inline"]
    assert any(s.startswith(DEPS_STEP) for s in mx["ci"]["reused_steps"]), mx["ci"]["reused_steps"]
    assert _deps_layer(mx["ci"]["layers"]) == _deps_layer(mx["ci"]["previous_layers"])
    assert mx["metrics"]["ci_cache_pulled_bytes"] > 0 and mx["metrics"]["ci_export_seconds"] > 0
    assert mx["metrics"]["ci_pushed_bytes"] > 0
    assert not any(s.startswith(DEPS_STEP) for s in inline["ci"]["reused_steps"]), inline["ci"][
        "reused_steps"
    ]
    assert _deps_layer(inline["ci"]["layers"]) != _deps_layer(inline["ci"]["previous_layers"])
    deps = next(s for s in inline["steps"] if s["name"].startswith(DEPS_STEP))
    assert deps["seconds"] >= 2.0  # its `sleep 2` ran
    # the source edit rebuilt the app steps under every strategy
    for t in (mx, inline):
        assert t["metrics"]["ci_steps_rebuilt"] >= 2


def test_the_run_leaves_no_engine_and_no_tags(ci_run):
    """Every trial stopped its engine (data root removed) and deleted the tags it pushed."""
    assert _engine_dirs() <= ci_run["engines_before"]
    for t in ci_run["trials"].values():
        repo = t["ci"]["image_ref"].removeprefix(ci_run["registry"] + "/").rsplit("/", 1)[0]
        for sub in ("app", "cache"):
            assert tags(ci_run["registry"], f"{repo}/{sub}") == []
