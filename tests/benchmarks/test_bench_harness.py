"""The harness's own cost: loading 10,000 trials into the tidy table, and rendering a report."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from harness.report import render_report
from harness.results import Run, load_table

REPO = Path(__file__).resolve().parents[2]
METRICS = {
    "build_seconds": 1.0,
    "build_span_seconds": 0.8,
    "steps_total": 5,
    "steps_cached": 0,
    "steps_executed": 5,
    "image_bytes": 1.3e8,
    "image_bytes_compressed": 4.5e7,
    "layers": 6,
    "context_bytes": 2048,
    "packages_os": 90,
    "packages_python": 12,
}


@pytest.fixture(scope="module")
def big_results(tmp_path_factory) -> Path:
    """One run file holding 10,000 ok trials with the core metrics (seeded numbers, not measurements)."""
    results = tmp_path_factory.mktemp("bench") / "results"
    rng = random.Random(0)
    plan = [
        {"experiment": f"e{t % 10}", "variant": f"v{t % 4}", "scenario": "cold", "trial": t, "order": 0}
        for t in range(10_000)
    ]
    run = Run.create(
        results, command=["bench"], seed=0, fingerprint={}, experiments={}, plan=plan, options={}
    )
    run.data["trials"] = [
        {**p, "status": "ok", "metrics": {k: v * (1 + rng.random() / 10) for k, v in METRICS.items()}}
        for p in plan
    ]
    run.save()
    return results


def test_bench_load_10k_trials(benchmark, big_results):
    """load_table turns 10,000 trials into one tidy row per trial and metric (rows per second recorded)."""
    df = benchmark(load_table, big_results)
    assert len(df) == 10_000 * len(METRICS)
    benchmark.extra_info["rows_per_second"] = (
        len(df) / benchmark.stats.stats.median if benchmark.stats else None
    )


def test_bench_render_report(benchmark, tmp_path):
    """Rendering the committed fixture results (synthetic) end to end: HTML, Markdown, plots."""
    src = REPO / "tests" / "fixtures" / "results"
    out = tmp_path / "out"

    def render():
        shutil.rmtree(out, ignore_errors=True)
        return render_report(src, out)

    paths = benchmark.pedantic(render, rounds=2, iterations=1)
    assert paths["html"].is_file()
