"""The regression gate on synthetic runs (harness.results.Run.create into tmp dirs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import gate as gate_mod
from harness.errors import SchemaError, UsageError
from harness.gate import gate, render_markdown, run_gate
from harness.results import Run

MULTI = {
    "name": "multi-stage",
    "practice": "multi-stage builds",
    "section": "size",
    "claim": "smaller",
    "variants": [{"name": "single"}, {"name": "multi"}],
    "claims": [
        {
            "metric": "image_bytes",
            "scenario": "cold",
            "baseline": "single",
            "candidate": "multi",
            "expect": "lower",
            "primary": True,
            "label": "multi-stage image is smaller",
        }
    ],
}
ORDER = {
    "name": "instruction-order",
    "practice": "order",
    "section": "cache",
    "claim": "faster rebuilds",
    "variants": [{"name": "bad"}, {"name": "good"}],
    "claims": [],
}

SIZES = {"single": 541_000_000, "multi": 133_000_000}
TIMES = {"single": 30.0, "multi": 20.0}


def make_run(
    results,
    *,
    sizes=None,
    times=None,
    noise=0.01,
    seed=0,
    trials=6,
    machine="ci-box",
    monkeypatch=None,
    experiments=None,
    layers=None,
    extra=None,
):
    """One run of multi-stage (single, multi) with exact sizes and noisy build times."""
    monkeypatch.setenv("IMAGEBENCH_MACHINE", machine)
    sizes = {**SIZES, **(sizes or {})}
    times = {**TIMES, **(times or {})}
    layers = {"single": 9, "multi": 11, **(layers or {})}
    rng = np.random.default_rng(seed)
    run = Run.create(
        results,
        command=["imagebench", "run"],
        seed=seed,
        fingerprint={},
        experiments=experiments or {"multi-stage": MULTI},
        plan=[],
        options={},
    )
    for t in range(trials):
        for variant in ("single", "multi"):
            metrics = {
                "build_seconds": float(times[variant] * (1 + rng.normal(0, noise))),
                "image_bytes": sizes[variant],
                "image_bytes_compressed": sizes[variant] // 3,
                "layers": layers[variant],
                "steps_total": 7,
            }
            metrics.update((extra or {}).get(variant, {}))
            run.record_trial(
                {
                    "experiment": "multi-stage",
                    "variant": variant,
                    "scenario": "cold",
                    "trial": t,
                    "status": "ok",
                    "metrics": metrics,
                }
            )
    run.finish("complete")
    return run


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "baseline", tmp_path / "current"


def test_noise_only_passes(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert result.passed and result.exit_code == 0, [c.message for c in result.failures]
    kinds = {c.kind for c in result.checks}
    assert {"size", "layers", "time", "verdict"} <= kinds
    assert result.machines["compared"] == ["ci-box"]
    assert "passed" in render_markdown(result)


def test_one_byte_over_the_threshold_fails_and_names_the_variant(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, sizes={"multi": SIZES["multi"] + 1001}, monkeypatch=monkeypatch)
    result = gate(base, cur, size_bytes=1000)
    assert not result.passed and result.exit_code == 1
    (fail,) = [c for c in result.failures if c.metric == "image_bytes"]
    assert fail.variant == "multi" and fail.delta == 1001
    assert "multi (multi-stage, cold)" in fail.message and "grew by more than 1,000 B" in fail.message
    md = render_markdown(result)
    assert "failed: 1 regression" in md and "**multi-stage / multi**" in md
    # exactly at the threshold passes
    assert gate(base, cur, size_bytes=1001).passed
    # a percentage threshold on top of the byte floor: 1001 B of 133 MB is far below 1 %
    assert gate(base, cur, size_bytes=0, size_pct=1.0).passed


def test_layer_threshold(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, layers={"single": 10}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert [(c.kind, c.variant) for c in result.failures] == [("layers", "single")]
    assert gate(base, cur, layers=1).passed


def test_shrinking_is_an_improvement_not_a_failure(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, sizes={"multi": SIZES["multi"] - 5_000_000}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert result.passed
    assert any(c.metric == "image_bytes" and c.variant == "multi" for c in result.improvements)


def test_verdict_flip_fails(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    # the single-stage image shrank below the multi-stage one: no size regression, but the claim flips
    make_run(cur, seed=2, sizes={"single": 100_000_000}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert [c.kind for c in result.failures] == ["verdict"]
    flip = result.failures[0]
    assert flip.baseline == "supported" and flip.current == "not supported"
    assert "multi-stage image is smaller" in flip.message


def test_time_regression_only_when_the_interval_lower_bound_exceeds_the_threshold(
    dirs, monkeypatch, tmp_path
):
    base, cur = dirs
    make_run(base, seed=1, noise=0.01, monkeypatch=monkeypatch)
    # 1.5x slower, tight: the whole interval is above 1.10
    make_run(cur, seed=2, noise=0.01, times={"single": 45.0}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    (slow,) = result.failures
    assert slow.kind == "time" and slow.variant == "single" and slow.low > 1.10

    # 1.15x slower in the point estimate but noisy: the lower bound is below 1.10, so no failure
    noisy_base, noisy_cur = tmp_path / "nb", tmp_path / "nc"
    make_run(noisy_base, seed=3, noise=0.15, trials=5, monkeypatch=monkeypatch)
    make_run(noisy_cur, seed=4, noise=0.15, trials=5, times={"single": 34.5}, monkeypatch=monkeypatch)
    result = gate(noisy_base, noisy_cur)
    check = next(c for c in result.checks if c.kind == "time" and c.variant == "single")
    assert check.ratio > 1.10 and check.low <= 1.10 and check.status == "pass"
    assert result.passed
    # and a stricter threshold turns the tight 1.5x into a pass only if above it
    assert gate(base, cur, time_ratio=1.6).passed


def test_single_trial_is_not_judged(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, trials=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, trials=1, times={"single": 90.0}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    check = next(c for c in result.checks if c.kind == "time" and c.variant == "single")
    assert check.status == "skipped" and "not judged" in check.message


def test_different_machines_are_pooled_with_a_note(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, machine="laptop", monkeypatch=monkeypatch)
    make_run(cur, seed=2, machine="ci-runner", monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert result.passed
    assert result.machines["compared"] == [gate_mod.POOLED]
    assert any("pooled across machines" in n for n in result.notes)


def test_one_sided_cells_are_notes_not_failures(dirs, monkeypatch):
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    monkeypatch.setenv("IMAGEBENCH_MACHINE", "ci-box")
    run = Run.create(
        cur,
        command=["x"],
        seed=0,
        fingerprint={},
        experiments={"instruction-order": ORDER},
        plan=[],
        options={},
    )
    for t in range(3):
        run.record_trial(
            {
                "experiment": "instruction-order",
                "variant": "good",
                "scenario": "edit-source",
                "trial": t,
                "status": "ok",
                "metrics": {"build_seconds": 2.0 + t / 10},
            }
        )
    result = gate(base, cur)
    assert result.passed and not result.checks
    assert any("baseline only" in n and "multi-stage" in n for n in result.notes)
    assert any(
        "new in the current" in n and "instruction-order (good/edit-source)" in n for n in result.notes
    )


def test_unreadable_results_and_bad_thresholds(dirs, monkeypatch, tmp_path):
    base, _ = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    with pytest.raises(SchemaError) as exc:
        gate(base, tmp_path / "missing")
    assert exc.value.exit_status == 4
    (tmp_path / "junk" / "m").mkdir(parents=True)
    (tmp_path / "junk" / "m" / "r.json").write_text("{not json")
    with pytest.raises(SchemaError, match="no readable run file"):
        gate(base, tmp_path / "junk")
    with pytest.raises(UsageError) as exc:
        gate(base, base, size_bytes=-1)
    assert exc.value.exit_status == 2
    with pytest.raises(UsageError):
        gate(base, base, conf=1.5)


def test_run_gate_writes_the_summary_and_json(dirs, monkeypatch, tmp_path):
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, sizes={"single": SIZES["single"] + 1}, monkeypatch=monkeypatch)
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    code, text = run_gate(base, cur, summary=summary)
    assert code == 1 and "FAIL" in text and "single (multi-stage, cold)" in text
    md = summary.read_text()
    assert md.startswith("# earlier step\n") and "## imagebench gate: failed: 1 regression" in md
    assert "<details>" in md and "| status | kind |" in md
    code, text = run_gate(base, cur, json_out=True, size_bytes=1)
    data = json.loads(text)
    assert code == 0 and data["passed"] is True and data["thresholds"]["size_bytes"] == 1
