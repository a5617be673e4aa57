"""A handful of hostile inputs through the real `imagebench` process: no traceback reaches stderr,
usage errors exit 2 on stderr, a dead engine is exit 3, a broken experiment is reported and skipped."""

from __future__ import annotations

import os
import subprocess
import sys

import hostile as H

from harness.errors import SchemaError


def _run(*argv, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/imagebench-hostile.sock", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
        cwd=H.REPO,
        stdin=subprocess.DEVNULL,
    )


def _clean(cp: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in cp.stderr, cp.stderr
    assert all(line.startswith("imagebench") for line in cp.stderr.splitlines() if line), cp.stderr


def test_fifo_and_corrupt_files_do_not_stop_table(tmp_path):
    """A FIFO and a corrupt file beside a good run: `table` ends at once, names both, prints the good run."""
    H.write_results(tmp_path, "{ not json")
    os.mkfifo(tmp_path / H.MACHINE / "pipe.json")
    cp = _run("table", "--results", tmp_path, timeout=60)
    _clean(cp)
    assert cp.returncode == 0
    assert H.GOOD_ID in cp.stdout
    assert "pipe.json" in cp.stderr and f"{H.BAD_ID}.json" in cp.stderr


def test_nan_thresholds_are_usage_errors():
    """`gate --time-ratio nan` and `--size-pct inf`: exit 2, one line on stderr, nothing on stdout."""
    good = H.GOOD_RUN_FILE.parent.parent
    for flag, value in (("--time-ratio", "nan"), ("--size-pct", "inf"), ("--layers", "-1")):
        cp = _run("gate", "--baseline", good, "--current", good, flag, value)
        _clean(cp)
        assert cp.returncode == 2 and cp.stdout == "" and len(cp.stderr.splitlines()) == 1, cp.stderr


def test_gate_does_not_pass_on_a_skipped_baseline_file(tmp_path):
    """A corrupt file in the baseline: gate names it and exits 4 instead of passing."""
    H.write_results(tmp_path / "base", '{"schema": "imagebench.run"')
    H.write_results(tmp_path / "cur", None)
    cp = _run("gate", "--baseline", tmp_path / "base", "--current", tmp_path / "cur")
    _clean(cp)
    assert cp.returncode == 4 and f"{H.BAD_ID}.json" in cp.stderr


def test_bad_image_references_are_usage_errors():
    """`drift --images` with a malformed reference: exit 2 on stderr (not 3 on stdout)."""
    cp = _run("drift", "--images", "Not A Ref")
    _clean(cp)
    assert cp.returncode == 2 and cp.stdout == "" and "image reference" in cp.stderr


def test_lab_status_with_the_engine_down_exits_3():
    """`lab status` when the engine does not answer: says so and exits 3."""
    cp = _run("lab", "status")
    _clean(cp)
    assert cp.returncode == 3
    assert "engine" in (cp.stdout + cp.stderr).lower()


def test_a_broken_experiment_is_listed_as_broken_and_the_others_shown(tmp_path):
    """`list` with one broken experiment.toml: the others listed, the broken one named on stderr, exit 4."""
    H.write_experiment(tmp_path, None, name="fine")
    H.write_experiment(tmp_path, None, name="broken", text='practice = "x"\nclaim = nan\n')
    cp = _run("list", "--experiments", tmp_path)
    _clean(cp)
    assert cp.returncode == 4
    assert "fine" in cp.stdout and "broken" in cp.stderr


def test_select_skips_a_broken_experiment_when_asked(tmp_path):
    """select(on_error=...) (what `run` uses) reports a broken experiment and returns the others; naming it fails."""
    from harness.experiment import select

    H.write_experiment(tmp_path, dict(H.GOOD_TOML, default=True), name="fine")
    H.write_experiment(tmp_path, None, name="broken", text="trials = " + "[" * 600 + "]" * 600 + "\n")
    seen: list[str] = []
    got = select([], all_=True, root=tmp_path, on_error=lambda name, _exc: seen.append(name))
    assert [e.name for e in got] == ["fine"] and seen == ["broken"]
    try:
        select(["broken"], root=tmp_path, on_error=lambda _name, _exc: None)
    except SchemaError as exc:
        assert "broken" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("naming a broken experiment must fail")
