"""Planning without a daemon: interleaving, seeded shuffles, quick mode, deterministic shards."""

from pathlib import Path

from harness.experiment import discover
from harness.runner import RunOptions, make_plan, shard_experiments

REPO = Path(__file__).resolve().parents[2]


def catalog():
    return discover(REPO / "experiments")


def test_plan_is_trial_major_and_seeded():
    """The plan is trial-major, reproducible from its seed and shuffles variant order between rounds."""
    exps = [e for e in catalog() if e.name == "calibration"]
    a = make_plan(exps, RunOptions(trials=3), seed=7)
    b = make_plan(exps, RunOptions(trials=3), seed=7)
    c = make_plan(exps, RunOptions(trials=3), seed=8)
    assert a == b and a != c
    assert [p["trial"] for p in a] == sorted(p["trial"] for p in a)  # trial-major: variants interleave
    per_trial = [[p["variant"] for p in a if p["trial"] == t] for t in range(3)]
    assert all(sorted(v) == sorted(per_trial[0]) for v in per_trial)
    assert len({tuple(v) for v in per_trial}) > 1  # the order is shuffled between rounds


def test_quick_plan_keeps_claimed_scenarios():
    """A quick plan runs one trial of the scenarios the claims need."""
    exp = next(e for e in catalog() if e.name == "instruction-order")
    plan = make_plan([exp], RunOptions(quick=True), seed=1)
    assert {p["scenario"] for p in plan} == {"edit-source"}
    assert {p["trial"] for p in plan} == {0}


def test_shards_partition_the_catalog():
    """Shards partition the catalog: every experiment in exactly one shard, deterministically."""
    exps = catalog()
    shards = [shard_experiments(exps, (i, 3)) for i in (1, 2, 3)]
    names = [e.name for s in shards for e in s]
    assert sorted(names) == sorted(e.name for e in exps)
    assert len(names) == len(set(names))
    assert shard_experiments(exps, (2, 3)) == shards[1]


def test_contexts_never_include_results_home_or_lab_data(tmp_path, monkeypatch):
    """A context that contains results/, the lab's state or the home directory is refused."""
    import pytest

    from harness.errors import UsageError
    from harness.runner.trial import copy_context as _copy_context

    results = tmp_path / "proj" / "results"
    results.mkdir(parents=True)
    monkeypatch.setenv("IMAGEBENCH_RESULTS", str(results))
    monkeypatch.setenv("IMAGEBENCH_STATE", str(tmp_path / "state"))
    with pytest.raises(UsageError, match="refusing build context"):
        _copy_context(tmp_path / "proj", tmp_path / "copy1")
    with pytest.raises(UsageError, match="refusing build context"):
        _copy_context(tmp_path, tmp_path / "copy2")  # contains the lab state dir
    with pytest.raises(UsageError, match="refusing build context"):
        _copy_context(Path.home(), tmp_path / "copy3")
    ok = tmp_path / "ok"
    ok.mkdir()
    (ok / "a").write_text("x")
    _copy_context(ok, tmp_path / "copy4")
    assert (tmp_path / "copy4" / "a").read_text() == "x"
