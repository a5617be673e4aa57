"""The pytest-benchmark export: same statistics as pytest-benchmark, accepted by `pytest-benchmark compare`."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import SchemaError, UsageError
from harness.export import export_pytest_benchmark, pb_stats, run_export
from harness.results import Run

EXP = {
    "name": "multi-stage",
    "practice": "multi-stage builds",
    "section": "size",
    "claim": "smaller",
    "variants": [{"name": "single"}, {"name": "multi"}],
    "claims": [],
}
FINGERPRINT = {
    "engine": {
        "engine_version": "26.1.5",
        "kernel": "6.1.0",
        "cpus": 2,
        "architecture": "x86_64",
        "storage_driver": "overlay2",
    },
    "harness": {"version": "0.1.0", "git_commit": "abc123", "git_dirty": False, "python": "3.11.7"},
}


def make_run(results, monkeypatch, *, machine="ci-box", seed=0, slow=1.0, trials=5):
    monkeypatch.setenv("IMAGEBENCH_MACHINE", machine)
    rng = random.Random(seed)
    run = Run.create(
        results,
        command=["imagebench", "run"],
        seed=seed,
        fingerprint=FINGERPRINT,
        experiments={"multi-stage": EXP},
        plan=[],
        options={},
    )
    for t in range(trials):
        for variant, base in (("single", 30.0), ("multi", 20.0)):
            run.record_trial(
                {
                    "experiment": "multi-stage",
                    "variant": variant,
                    "scenario": "cold",
                    "trial": t,
                    "status": "ok",
                    "metrics": {
                        "build_seconds": base * slow * (1 + rng.gauss(0, 0.02)),
                        "push_seconds": 0.5 + rng.random() / 10,
                        "image_bytes": 541_000_000 if variant == "single" else 133_000_000,
                        "image_bytes_compressed": 180_000_000 if variant == "single" else 44_000_000,
                        "layers": 9,
                        "steps_total": 7,
                    },
                }
            )
    run.finish("complete")
    return run


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 10, 13, 20])
def test_stats_match_pytest_benchmark(n):
    """pb_stats computes the same statistics as pytest-benchmark's Stats for the same values."""
    stats_mod = pytest.importorskip("pytest_benchmark.stats")
    rng = random.Random(n)
    values = [rng.lognormvariate(0, 0.3) for _ in range(n)]
    ref = stats_mod.Stats()
    for v in values:
        ref.update(v)
    mine = pb_stats(values)
    for field in stats_mod.Stats.fields:
        assert (
            mine[field] == pytest.approx(getattr(ref, field))
            if isinstance(mine[field], float)
            else mine[field] == getattr(ref, field)
        ), field
    assert mine["data"] == values and mine["iterations"] == 1


def test_export_layout(tmp_path, monkeypatch):
    """export_pytest_benchmark writes pytest-benchmark's layout: one benchmark per metric, variant and scenario."""
    make_run(tmp_path / "results", monkeypatch)
    doc = export_pytest_benchmark(tmp_path / "results")
    assert set(doc) == {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert doc["machine_info"]["node"] == "ci-box" and doc["commit_info"]["id"] == "abc123"
    names = sorted(b["name"] for b in doc["benchmarks"])
    assert names == [
        "multi-stage:build_seconds[multi-cold]",
        "multi-stage:build_seconds[single-cold]",
        "multi-stage:push_seconds[multi-cold]",
        "multi-stage:push_seconds[single-cold]",
    ]
    b = next(b for b in doc["benchmarks"] if b["name"] == "multi-stage:build_seconds[single-cold]")
    assert set(b) == {"group", "name", "fullname", "params", "param", "extra_info", "options", "stats"}
    assert (
        b["params"] == {"variant": "single", "scenario": "cold"}
        and b["group"] == "multi-stage/cold/build_seconds"
    )
    assert b["stats"]["rounds"] == 5 and len(b["stats"]["data"]) == 5
    assert b["extra_info"]["image_bytes"] == 541_000_000 and b["extra_info"]["layers"] == 9
    assert b["extra_info"]["image_bytes_compressed"] == 180_000_000 and b["extra_info"]["unit"] == "s"
    json.dumps(doc, allow_nan=False)


def test_export_picks_one_machine(tmp_path, monkeypatch):
    """export picks the most recent run's machine unless one is named; unknown machine or format is an error."""
    make_run(tmp_path / "r", monkeypatch, machine="laptop")
    make_run(tmp_path / "r", monkeypatch, machine="ci-box")  # the most recent run
    assert export_pytest_benchmark(tmp_path / "r")["machine_info"]["node"] == "ci-box"
    assert export_pytest_benchmark(tmp_path / "r", machine="laptop")["machine_info"]["node"] == "laptop"
    with pytest.raises(UsageError):
        export_pytest_benchmark(tmp_path / "r", machine="nope")
    with pytest.raises(SchemaError):
        export_pytest_benchmark(tmp_path / "missing")
    with pytest.raises(UsageError):
        run_export(tmp_path / "r", fmt="csv")


def _compare_cli() -> list[str]:
    """The pytest-benchmark console script of the interpreter running the tests (else the one on PATH)."""
    for name in ("pytest-benchmark", "py.test-benchmark"):
        exe = Path(sys.executable).parent / name
        if exe.is_file():
            return [str(exe)]
    exe = shutil.which("pytest-benchmark") or shutil.which("py.test-benchmark")
    if exe:
        return [exe]
    pytest.importorskip("pytest_benchmark.cli")
    return [sys.executable, "-c", "from pytest_benchmark.cli import main; main()"]


def test_export_is_accepted_by_pytest_benchmark_compare(tmp_path, monkeypatch):
    """Two exported runs are accepted by pytest-benchmark compare."""
    make_run(tmp_path / "before", monkeypatch, seed=1)
    make_run(tmp_path / "after", monkeypatch, seed=2, slow=1.2)
    storage = tmp_path / "storage"
    machine_dir = storage / "Linux-imagebench-ci-box"
    machine_dir.mkdir(parents=True)
    run_export(tmp_path / "before", out=machine_dir / "0001_before.json")
    run_export(tmp_path / "after", out=machine_dir / "0002_after.json")
    cp = subprocess.run(
        [
            *_compare_cli(),
            "--storage",
            f"file://{storage}",
            "compare",
            "--group-by",
            "name",
            "--columns",
            "min,max,mean,median,rounds",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out
    assert "Failed to load" not in out
    for name in ("multi-stage:build_seconds[single-cold]", "multi-stage:build_seconds[multi-cold]"):
        assert name in out
    assert "0001_before" in out and "0002_after" in out
    # the files by path work too (what github-action-benchmark and Bencher read)
    cp = subprocess.run(
        [
            *_compare_cli(),
            "compare",
            str(machine_dir / "0001_before.json"),
            str(machine_dir / "0002_after.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert cp.returncode == 0 and "multi-stage:push_seconds[multi-cold]" in cp.stdout + cp.stderr
    assert Path(machine_dir / "0001_before.json").read_text().startswith("{")
