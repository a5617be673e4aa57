"""The runner's parts without a daemon: auto rounds, per-image caches, cache-state preparation, records, phases."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.engine.events import Step
from harness.errors import UsageError
from harness.runner import cache_state, measure
from harness.runner.cleanup import Tracker
from harness.runner.failures import TrialFailed
from harness.runner.measure import ImageMeasurer
from harness.runner.phases import PHASE_LOG_ENV, Phases, log_phases
from harness.runner.plan import RunOptions, auto_round
from harness.runner.records import clean_metrics, scrub, step_counts

RUNNER = Path(__file__).resolve().parents[2] / "harness" / "runner"


def _exp(*variants: str, name: str = "e") -> SimpleNamespace:
    vs = tuple(SimpleNamespace(name=v, scenarios=("cold",)) for v in variants)
    return SimpleNamespace(name=name, variants=vs, claims=())


def _trials(variant: str, values: list[float]) -> list[dict]:
    return [
        {
            "experiment": "e",
            "variant": variant,
            "scenario": "cold",
            "status": "ok",
            "metrics": {"build_seconds": x},
        }
        for x in values
    ]


def test_auto_round_adds_only_imprecise_pairs_in_a_seeded_order():
    """--trials auto plans another round only for pairs whose median is not within 3 %, shuffled by seed + round."""
    exp = _exp("steady", "noisy", "other-noisy")
    trials = (
        _trials("steady", [10.0] * 8)
        + _trials("noisy", [5, 15, 9, 21, 7, 13])
        + _trials("other-noisy", [1, 3, 2, 5, 1, 4])
    )
    precision, entries = auto_round(exp, trials, RunOptions(auto=True), seed=7, t=6)
    assert precision["e/steady/cold"] == {"n": 8, "within_3pct": True, "stopped_by": "precision"}
    assert precision["e/noisy/cold"]["stopped_by"] == "running"
    assert sorted(e["variant"] for e in entries) == ["noisy", "other-noisy"]
    assert {e["trial"] for e in entries} == {6} and [e["order"] for e in entries] == [0, 1]
    assert auto_round(exp, trials, RunOptions(auto=True), seed=7, t=6)[1] == entries


def test_auto_round_stops_at_the_cap():
    """At the cap an imprecise pair is marked stopped_by 'cap' and no more trials are planned."""
    exp = _exp("noisy")
    precision, entries = auto_round(
        exp, _trials("noisy", [5, 15, 9, 21, 7, 13]), RunOptions(auto=True, auto_cap=6), 1, 6
    )
    assert precision["e/noisy/cold"]["stopped_by"] == "cap" and entries == []


def test_package_counts_run_once_per_image_id(monkeypatch):
    """Identical images (same id) across trials cost one package-count container per run."""
    calls = []
    monkeypatch.setattr(
        measure.dinspect, "package_counts", lambda image, _labels: calls.append(image) or {"packages_os": 3}
    )
    m = ImageMeasurer(client=None, repro_support={}, track=lambda _kind, _ident: None)
    assert m.packages("sha256:a", {}) == {"packages_os": 3}
    assert m.packages("sha256:a", {"other": "label"}) == {"packages_os": 3}
    m.packages("sha256:b", {})
    assert calls == ["sha256:a", "sha256:b"]


def test_smoke_runs_once_per_image_and_command(monkeypatch):
    """The smoke check is cached by (image id, command text): a list and its joined string are one command."""
    calls = []

    def fake_smoke(_client, image, command, **_kw):
        calls.append((image, command))
        return SimpleNamespace(ok=True)

    monkeypatch.setattr(measure, "run_smoke", fake_smoke)
    m = ImageMeasurer(client=None, repro_support={}, track=lambda _kind, _ident: None)
    m.smoke("sha256:a", ["app", "--version"], {}, lambda _k, _i: None)
    m.smoke("sha256:a", "app --version", {}, lambda _k, _i: None)
    m.smoke("sha256:b", "app --version", {}, lambda _k, _i: None)
    assert [c[0] for c in calls] == ["sha256:a", "sha256:b"]


def test_reproducible_image_is_the_builds_own_when_the_exporter_rewrites_timestamps(monkeypatch):
    """No re-pack when the exporter honours rewrite-timestamp; a failed re-pack keeps the build's image and says why."""
    support = {"rewrite_timestamp_honoured": True, "method": "exporter rewrite-timestamp"}
    assert ImageMeasurer(None, support, lambda _k, _i: None).reproducible("sha256:a", {}, "t") == {
        "image_id": "sha256:a",
        "method": "exporter rewrite-timestamp",
    }

    def boom(*_args):
        raise OSError("no save")

    monkeypatch.setattr(measure.repro, "repack", boom)
    tracked = []
    out = ImageMeasurer(
        None, {"rewrite_timestamp_honoured": False, "method": "m"}, lambda _k, i: tracked.append(i)
    )
    rec = out.reproducible("sha256:a", {"base_layers": 1}, "t")
    assert rec["image_id"] == "sha256:a" and rec["method"] is None and "no save" in rec["why"] and not tracked


def _prep_exp(tmp_path: Path, edits: dict) -> SimpleNamespace:
    return SimpleNamespace(path=tmp_path, edits=edits)


def _spec(ctx: Path) -> SimpleNamespace:
    return SimpleNamespace(context=ctx, build_contexts={})


def test_cold_needs_no_build_and_warm_one(tmp_path):
    """cold runs no preparation build; warm and the edits run exactly one, identical to the timed build."""
    builds = []

    def build():
        builds.append(1)
        return SimpleNamespace(ok=True)

    exp = _prep_exp(tmp_path, {})
    cache_state.prepare(exp, "cold", _spec(tmp_path), build, "n1", tmp_path, lambda _k, _i: None)
    assert builds == []
    cache_state.prepare(exp, "warm", _spec(tmp_path), build, "n1", tmp_path, lambda _k, _i: None)
    assert builds == [1]


def test_edits_append_the_nonce_and_refuse_missing_files(tmp_path):
    """edit-source appends a comment with the trial's nonce to each listed file; a file not in the context is refused."""
    (tmp_path / "app.py").write_text("print(1)\n")
    ok = lambda: SimpleNamespace(ok=True)  # noqa: E731
    exp = _prep_exp(tmp_path, {"source": ["app.py"]})
    cache_state.prepare(exp, "edit-source", _spec(tmp_path), ok, "abc123", tmp_path, lambda _k, _i: None)
    assert (tmp_path / "app.py").read_text().endswith("# imagebench edit-source abc123\n")
    with pytest.raises(UsageError, match=r"edits\.source names 'gone\.py'"):
        cache_state.prepare(
            _prep_exp(tmp_path, {"source": ["gone.py"]}),
            "edit-source",
            _spec(tmp_path),
            ok,
            "x",
            tmp_path,
            print,
        )


def test_a_failed_preparation_build_fails_the_trial(tmp_path):
    """A preparation build that fails makes the trial a failed one (TrialFailed), not a timed build on a wrong state."""
    failed = SimpleNamespace(ok=False, error="exit code: 1")
    with pytest.raises(TrialFailed, match="preparation build for warm failed: exit code: 1"):
        cache_state.prepare(
            _prep_exp(tmp_path, {}), "warm", _spec(tmp_path), lambda: failed, "n", tmp_path, print
        )


def _step(instruction: str, cached: bool) -> Step:
    return Step(
        digest="sha256:x", name=f"[2/3] {instruction} x", stage=None, index=2, total=3, instruction=instruction,
        is_dockerfile_step=True, cached=cached, error=None, started=None, completed=None, seconds=0.0, intervals=(),
    )  # fmt: skip


def test_step_counts_leave_from_out():
    """Step counts exclude FROM (its cached flag says nothing about the build cache)."""
    steps = (_step("FROM", True), _step("COPY", True), _step("RUN", False))
    events = SimpleNamespace(dockerfile_steps=lambda: steps)
    assert step_counts(events) == {"steps_total": 2, "steps_cached": 1, "steps_executed": 1}


def test_metrics_are_numbers_and_secrets_are_scrubbed():
    """Booleans become 0/1 and NaN is dropped; a secret and any copy of its first 12 characters are redacted."""
    assert clean_metrics({"a": True, "b": float("nan"), "c": 2.5, "d": "x"}) == {"a": 1, "c": 2.5}
    secret = "s3cr3t-canary-0123456789"
    out = scrub({"log": f"saw {secret} and {secret[:14]}..."}, {secret})
    assert secret[:12] not in json.dumps(out) and out["log"].startswith("saw <redacted>")


def test_tracker_removes_newest_first_and_forgets(monkeypatch):
    """A trial's tracked resources go to remove_tracked once, with --keep-images passed through, then are forgotten."""
    seen = []
    monkeypatch.setattr(
        "harness.runner.cleanup.dinspect.remove_tracked",
        lambda items, keep_images: seen.append((list(items), keep_images)),
    )
    t = Tracker()
    t.track("image", "sha256:a")
    t.track("container", "c1")
    t.remove_all(keep_images=True)
    t.remove_all(keep_images=False)
    assert seen == [([("image", "sha256:a"), ("container", "c1")], True), ([], False)]


def test_phases_are_logged_only_when_asked(tmp_path, monkeypatch):
    """Per-phase seconds go to $IMAGEBENCH_PHASE_LOG as one JSON line per trial, and nowhere when it is unset."""
    phases = Phases()
    with phases("build"):
        pass
    with phases("build"):
        pass
    entry = {"experiment": "e", "variant": "v", "scenario": "cold", "trial": 0, "order": 0}
    monkeypatch.delenv(PHASE_LOG_ENV, raising=False)
    log_phases(entry, "ok", phases, 1.0)
    log = tmp_path / "phases.jsonl"
    monkeypatch.setenv(PHASE_LOG_ENV, str(log))
    log_phases(entry, "ok", phases, 1.0)
    (line,) = [json.loads(x) for x in log.read_text().splitlines()]
    assert line["status"] == "ok" and line["seconds"] == 1.0 and set(line["phases"]) == {"build"}
    assert "order" not in line


def test_runner_is_cut_small():
    """The Runner class stays under 250 lines and no function in harness/runner/ exceeds 40 lines."""
    long = []
    for path in sorted(RUNNER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef):
                continue
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if isinstance(node, ast.ClassDef) and node.name == "Runner":
                assert n < 250, f"Runner is {n} lines"
            if isinstance(node, ast.FunctionDef) and n > 40:
                long.append(f"{path.name}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long
