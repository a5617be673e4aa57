"""A compiled-from-source lab base that fails to build skips only the variants that need it."""

from types import SimpleNamespace

from harness.experiment import load_experiment
from harness.paths import experiments_dir
from harness.runner import RunOptions, capability_missing


def test_musl_base_failure_names_the_reason():
    """With the musl build recorded as failed, `musl-base` is unmet and the reason says why."""
    lab = SimpleNamespace(state={"bases_failed": {"python-3.13-musl": "compile failed: no zlib"}})
    reason = capability_missing("musl-base", RunOptions(), lab)
    assert reason is not None and "did not build" in reason and "no zlib" in reason


def test_musl_base_present_is_met():
    """A lab whose musl base built (no failure recorded) meets the requirement."""
    assert capability_missing("musl-base", RunOptions(), SimpleNamespace(state={"bases_failed": {}})) is None
    assert capability_missing("musl-base", RunOptions(), None) is None


def test_alpine_variant_requires_the_musl_base():
    """base-image's alpine variant declares the requirement, so it is skipped rather than failed."""
    exp = load_experiment(experiments_dir() / "base-image")
    alpine = next(v for v in exp.variants if v.name == "alpine")
    assert "musl-base" in alpine.requires
