"""Run files: versioned, atomic, never overwritten; the loader skips what it cannot read."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.errors import EnvironmentProblem, SchemaError
from harness.results import TIDY_COLUMNS, Run, atomic_write_json, load_runs, load_table, read_run_file


def new_run(results: Path) -> Run:
    plan = [
        {"experiment": "e", "variant": v, "scenario": "cold", "trial": t, "order": 0}
        for t in range(2)
        for v in ("a", "b")
    ]
    return Run.create(
        results,
        command=["imagebench", "run"],
        seed=1,
        fingerprint={"engine": {}},
        experiments={"e": {"name": "e"}},
        plan=plan,
        options={},
    )


def test_trials_are_written_after_each_record(tmp_results):
    """Each recorded trial is on disk at once; the tidy table has the documented columns and units."""
    run = new_run(tmp_results)
    run.record_trial(
        {
            "experiment": "e",
            "variant": "a",
            "scenario": "cold",
            "trial": 0,
            "status": "ok",
            "metrics": {"image_bytes": 10, "build_seconds": 1.5},
        }
    )
    on_disk = read_run_file(run.path)
    assert on_disk["trials"][0]["metrics"]["image_bytes"] == 10
    assert len(run.missing()) == 3
    df = load_table(tmp_results)
    assert list(df.columns) == TIDY_COLUMNS
    assert set(df.metric) == {"image_bytes", "build_seconds"}
    assert df.loc[df.metric == "image_bytes", "unit"].item() == "B"


def test_interrupted_trial_is_missing_until_redone(tmp_results):
    """An interrupted trial stays missing until recorded again, which replaces it."""
    run = new_run(tmp_results)
    key = {"experiment": "e", "variant": "b", "scenario": "cold", "trial": 1}
    run.record_trial({**key, "status": "interrupted", "metrics": {}})
    assert ("b", 1) in {(m["variant"], m["trial"]) for m in run.missing()}
    assert len(run.missing()) == 4
    run.record_trial({**key, "status": "ok", "metrics": {"layers": 3}})
    assert all(t["status"] == "ok" for t in run.trials)
    assert len(run.trials) == 1


def test_new_run_never_overwrites(tmp_results):
    """Two new runs get different files; an exclusive write refuses to overwrite."""
    a, b = new_run(tmp_results), new_run(tmp_results)
    assert a.path != b.path
    with pytest.raises(Exception, match="refusing to overwrite"):
        atomic_write_json(a.path, {}, exclusive=True)


def test_corrupt_and_foreign_files_are_skipped(tmp_results):
    """load_runs skips corrupt and foreign JSON with a warning; reading one directly is a SchemaError."""
    run = new_run(tmp_results)
    (run.path.parent / "broken.json").write_text('{"schema": "imagebench.run", "trials": [')
    (run.path.parent / "foreign.json").write_text(json.dumps({"hello": "world"}))
    warnings = []
    runs = load_runs(tmp_results, on_skip=warnings.append)
    assert [r["run_id"] for r in runs] == [run.run_id]
    assert len(warnings) == 2 and all("skipped" in w for w in warnings)
    with pytest.raises(SchemaError):
        read_run_file(run.path.parent / "foreign.json")


def test_newer_schema_is_refused(tmp_results):
    """A run file with a newer schema version is refused with a SchemaError."""
    run = new_run(tmp_results)
    data = json.loads(run.path.read_text())
    data["schema_version"] = 99
    run.path.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match="newer"):
        read_run_file(run.path)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
def test_disk_full_keeps_previous_file(tmp_path):
    """ENOSPC while rewriting: a clear error, and the previous file is intact (never truncated)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        target = mnt / "run.json"
        atomic_write_json(target, {"small": 1})
        with pytest.raises(EnvironmentProblem, match="no space left"):
            atomic_write_json(target, {"big": "x" * 200_000})
        assert json.loads(target.read_text()) == {"small": 1}
        assert [p.name for p in mnt.iterdir()] == ["run.json"]
    finally:
        subprocess.run(["umount", str(mnt)])
