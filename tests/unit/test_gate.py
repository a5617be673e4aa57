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
    """Two runs that differ only by noise pass the gate with size, layer, time and verdict checks."""
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
    """A size growth one byte over the threshold fails and names the variant; exactly at it passes."""
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
    """More layers than the threshold allows fail the gate for that variant."""
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, layers={"single": 10}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert [(c.kind, c.variant) for c in result.failures] == [("layers", "single")]
    assert gate(base, cur, layers=1).passed


def test_shrinking_is_an_improvement_not_a_failure(dirs, monkeypatch):
    """A smaller image is listed as an improvement, never a failure."""
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, sizes={"multi": SIZES["multi"] - 5_000_000}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert result.passed
    assert any(c.metric == "image_bytes" and c.variant == "multi" for c in result.improvements)


def test_verdict_flip_fails(dirs, monkeypatch):
    """A claim whose verdict flips from supported to not supported fails the gate."""
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
    """A time regression fails only when the ratio interval's lower bound exceeds the threshold."""
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
    """A time with a single trial per side is skipped as not judged."""
    base, cur = dirs
    make_run(base, seed=1, trials=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, trials=1, times={"single": 90.0}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    check = next(c for c in result.checks if c.kind == "time" and c.variant == "single")
    assert check.status == "skipped" and "not judged" in check.message


def test_different_machines_are_refused_unless_across_machines(dirs, monkeypatch):
    """Runs of two machines are refused with one line; --across-machines compares no absolute times."""
    base, cur = dirs
    make_run(base, seed=1, machine="laptop", monkeypatch=monkeypatch)
    make_run(cur, seed=2, machine="ci-runner", times={"single": 90.0}, monkeypatch=monkeypatch)
    with pytest.raises(gate_mod.GateRefused) as exc:
        gate(base, cur)
    assert exc.value.exit_status == 2 and "\n" not in str(exc.value)
    assert (
        "laptop" in str(exc.value) and "ci-runner" in str(exc.value) and "--across-machines" in str(exc.value)
    )
    result = gate(base, cur, across_machines=True)
    assert result.passed  # 3x slower build times on another machine are not a regression
    assert result.machines["compared"] == [gate_mod.POOLED]
    assert not [c for c in result.checks if c.kind == "time"]
    assert {"size", "verdict"} <= {c.kind for c in result.checks}
    assert any("absolute times are not compared" in n for n in result.notes)


def test_runs_without_machine_identity_are_told_apart_by_fingerprint(dirs, monkeypatch):
    """Two legacy runs in folders of the same name but with different hardware count as two machines."""
    base, cur = dirs
    for d, mem in ((base, 8 * 2**30), (cur, 16 * 2**30)):
        run = make_run(d, seed=1, machine="vm", monkeypatch=monkeypatch)
        data = json.loads(run.path.read_text())
        data.pop("machine_identity", None)
        data["fingerprint"] = {
            "engine": {"cpus": 2, "mem_bytes": mem, "kernel": "6.1", "engine_version": "26.1.5"}
        }
        run.path.write_text(json.dumps(data))
    with pytest.raises(gate_mod.GateRefused, match=r"8 GiB.*16 GiB"):
        gate(base, cur)


def test_base_rebuild_is_attributed_to_the_base_and_own_layers_are_gated(dirs, monkeypatch):
    """A base 32 B bigger is drift reported with both base ids; only own-layer growth fails."""
    base, cur = dirs
    own = {"single": 1_000_000, "multi": 200_000}
    base_b = {v: SIZES[v] - own[v] for v in own}

    def extra(delta_base=0, delta_own=0):
        return {
            v: {
                "own_bytes": own[v] + delta_own,
                "base_bytes": base_b[v] + delta_base,
                "own_bytes_compressed": own[v] // 3,
                "base_bytes_compressed": SIZES[v] // 3 - own[v] // 3,
            }
            for v in own
        }

    make_run(base, seed=1, extra=extra(), monkeypatch=monkeypatch)
    make_run(cur, seed=2, sizes={v: SIZES[v] + 32 for v in SIZES}, extra=extra(32), monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert result.passed, [c.message for c in result.failures]
    moved = [c for c in result.base_changes if c.kind == "attributed" and c.metric == "image_bytes"]
    assert {c.variant for c in moved} == {"single", "multi"}
    assert (
        "the base grew by 32 B" in moved[0].message and "our layers did not change size" in moved[0].message
    )
    assert any(c.kind == "base" and c.delta == 32 for c in result.base_changes)
    assert "base  [attributed]" in gate_mod.render_text(result)
    # the same totals gated whole fail, as before
    assert not gate(base, cur, whole_image=True).passed
    # our layers growing by 1.2 MB fails on own_bytes, whatever the base did
    grown = dirs[1].parent / "grown"
    make_run(
        grown,
        seed=3,
        sizes={"multi": SIZES["multi"] + 1_200_000},
        monkeypatch=monkeypatch,
        extra={**extra(), "multi": {**extra()["multi"], "own_bytes": own["multi"] + 1_200_000}},
    )
    result = gate(base, grown)
    assert [(c.metric, c.variant) for c in result.failures] == [("own_bytes", "multi")]
    moved = next(
        c
        for c in result.checks
        if c.kind == "attributed" and c.variant == "multi" and c.metric == "image_bytes"
    )
    assert "our layers grew by 1.20 MB (+1,200,000 B)" in moved.message


def test_attribution_is_derived_for_runs_recorded_before_own_metrics():
    """A legacy trial gets own/base bytes from its layer list and the pinned base whose bytes match."""
    run = {
        "bases": {"python:3.13-slim": {"image_id": "sha256:" + "a" * 64, "bytes": 1000}},
        "trials": [],
    }
    trial = {
        "status": "ok",
        "metrics": {"image_bytes": 1234, "image_bytes_compressed": 600},
        "image": {"layer_bytes": [1000, 200, 34], "layer_compressed_bytes": [400, 150, 50]},
        "bases": {"python:3.13-slim": "sha256:" + "a" * 64},
    }
    gate_mod.derive_attribution(run, trial)
    m = trial["metrics"]
    assert (m["own_bytes"], m["base_bytes"]) == (234, 1000)
    assert (m["own_bytes_compressed"], m["base_bytes_compressed"]) == (200, 400)
    # no base whose bytes match a layer prefix: nothing is invented
    odd = {"status": "ok", "metrics": {"image_bytes": 5}, "image": {"layer_bytes": [5]}, "bases": {"x": "y"}}
    gate_mod.derive_attribution({"bases": {"x": {"bytes": 3}}}, odd)
    assert "own_bytes" not in odd["metrics"]


def test_supported_claim_lost_has_its_own_exit_code(dirs, monkeypatch):
    """A supported claim that flips or goes missing fails with exit 6, not 1."""
    base, cur = dirs
    make_run(base, seed=1, monkeypatch=monkeypatch)
    make_run(cur, seed=2, sizes={"single": 100_000_000}, monkeypatch=monkeypatch)
    result = gate(base, cur)
    assert result.exit_code == gate_mod.EXIT_CLAIM_LOST == 6 and result.claims_lost
    # the experiment ran but the claim's metric was not recorded: missing is a failure too
    missing = dirs[1].parent / "missing"
    run = make_run(missing, seed=2, monkeypatch=monkeypatch)
    data = json.loads(run.path.read_text())
    for t in data["trials"]:
        t["metrics"].pop("image_bytes")
    run.path.write_text(json.dumps(data))
    result = gate(base, missing)
    (lost,) = result.claims_lost
    assert "missing from the current results" in lost.message and result.exit_code == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size_bytes": float("nan")},
        {"size_bytes": 1.5},
        {"size_pct": float("inf")},
        {"size_pct": -1},
        {"layers": -1},
        {"time_ratio": float("nan")},
        {"time_ratio": 0},
        {"conf": float("nan")},
        {"conf": 1.0},
    ],
)
def test_thresholds_must_be_finite_and_in_range(dirs, monkeypatch, kwargs):
    """Non-finite or out-of-range thresholds are usage errors (exit 2) naming the flag."""
    base, _ = dirs
    make_run(base, seed=1, trials=1, monkeypatch=monkeypatch)
    with pytest.raises(UsageError, match="--") as exc:
        gate(base, base, **kwargs)
    assert exc.value.exit_status == 2


def test_one_sided_cells_are_notes_not_failures(dirs, monkeypatch):
    """A cell present in only one of the runs is a note, not a failure."""
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
    """Missing or unreadable results are schema errors (exit 4); bad thresholds are usage errors (exit 2)."""
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
    """run_gate appends a Markdown summary and prints JSON with the thresholds used."""
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


def test_a_base_with_one_more_layer_is_not_a_layer_regression(dirs, monkeypatch):
    """With own_layers on both sides, only our layer count is gated; --whole-image gates the total."""
    base, cur = dirs
    make_run(base, seed=1, extra={v: {"own_layers": 2} for v in SIZES}, monkeypatch=monkeypatch)
    make_run(
        cur,
        seed=2,
        layers={"single": 10, "multi": 12},
        extra={v: {"own_layers": 2} for v in SIZES},
        monkeypatch=monkeypatch,
    )
    assert gate(base, cur).passed
    assert {c.metric for c in gate(base, cur, whole_image=True).failures} == {"layers"}
