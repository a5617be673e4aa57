"""The runner against a real engine: cache states, tidy table, failures, interrupt/resume, locking."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.engine.inspect import labelled_leftovers
from harness.results import load_runs

from helpers import FIXTURE_EXPERIMENTS, REPO, imagebench

CORE = [
    "build_seconds",
    "build_span_seconds",
    "steps_total",
    "steps_cached",
    "steps_executed",
    "image_bytes",
    "image_bytes_compressed",
    "push_seconds",
    "pull_seconds",
    "layers",
    "context_bytes",
    "context_sent_bytes",
    "packages_os",
    "packages_python",
]


def only_run(results: Path) -> dict:
    runs = load_runs(results)
    assert len(runs) == 1
    return runs[0]


@pytest.mark.usefixtures("lab", "busybox_base")
def test_tiny_run_every_scenario(tmp_path):
    """cold/warm/edit-source are established for real; the tidy table has every core metric per trial."""
    res = tmp_path / "results"
    p = imagebench("run", "tiny", "--trials", "2", "--seed", "3", results=res)
    assert p.returncode == 0, p.stderr + p.stdout
    run = only_run(res)
    assert run["status"] == "complete"
    assert len(run["trials"]) == 2 * 2 * 3
    table = imagebench("table", "--format", "csv", results=res)
    df = pd.read_csv(io.StringIO(table.stdout))
    combos = df.groupby(["variant", "scenario", "trial"]).metric.apply(set)
    assert len(combos) == 12
    for metrics in combos:
        missing = set(CORE) - metrics - {"packages_python"}  # busybox has no Python
        if "os_files" in metrics:  # no package database: files are counted instead of packages
            missing -= {"packages_os"}
        assert not missing, missing

    def metric(variant, scenario, name):
        return df[(df.variant == variant) & (df.scenario == scenario) & (df.metric == name)].value.tolist()

    # cold: nothing cached except possibly FROM; warm: every step cached
    for v in ("split", "ordered"):
        assert all(x >= 3 for x in metric(v, "cold", "steps_executed"))  # WORKDIR, COPY, RUN(s)
        assert metric(v, "warm", "steps_executed") == [0, 0]
    # after a source edit the ordered variant keeps the dependency step cached
    assert metric("ordered", "edit-source", "deps_step_cached") == [1, 1]
    assert metric("split", "edit-source", "deps_step_cached") == [0, 0]
    assert max(metric("ordered", "edit-source", "steps_executed")) < min(
        metric("split", "edit-source", "steps_executed")
    )
    # exact sizes: identical across trials of a variant
    for v in ("split", "ordered"):
        assert len(set(metric(v, "cold", "image_bytes"))) == 1
    # the step data show which steps ran
    trial = next(t for t in run["trials"] if t["variant"] == "ordered" and t["scenario"] == "edit-source")
    deps = next(s for s in trial["steps"] if "deps.installed" in s["name"])
    assert deps["cached"] is True
    assert run["fingerprint"]["engine"]
    assert run["bases"]["imagebench-test/busybox:latest"]["image_id"].startswith("sha256:")
    assert not any(labelled_leftovers("imagebench.run", run["run_id"]).values())


@pytest.mark.usefixtures("lab", "busybox_base")
def test_failures_are_recorded_and_others_go_on(tmp_path):
    """A failing build and a Dockerfile syntax error are failed trials; the good variant is measured; exit 1."""
    res = tmp_path / "results"
    p = imagebench("run", "broken-build", results=res)
    assert p.returncode == 1, p.stderr
    run = only_run(res)
    by_variant = {t["variant"]: t for t in run["trials"]}
    assert by_variant["ok"]["status"] == "ok"
    assert by_variant["fails"]["status"] == "failed"
    assert "exit code: 3" in by_variant["fails"]["error"]
    assert by_variant["syntax"]["status"] == "failed"
    assert "RUNN" in by_variant["syntax"]["error"] or "unknown instruction" in by_variant["syntax"]["error"]
    assert "1 ok, 2 failed" in p.stdout


@pytest.mark.usefixtures("lab")
def test_bad_input_is_one_line(tmp_path):
    """Unknown experiment and invalid experiment.toml: one line on stderr, documented exit code."""
    res = tmp_path / "results"
    p = imagebench("run", "no-such-experiment", results=res)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "unknown experiment 'no-such-experiment'" in p.stderr
    bad = tmp_path / "exps" / "bad"
    bad.mkdir(parents=True)
    (bad / "experiment.toml").write_text(
        'practice = "x"\nclaim = "y"\n[[variants]]\nname = "a"\ndockerfile = "Dockerfile.missing"\n'
    )
    (bad / "context").mkdir()
    p = imagebench("run", "bad", results=res, experiments=tmp_path / "exps")
    assert p.returncode == 4
    assert "experiment.toml:5: key 'variants[0].dockerfile'" in p.stderr
    assert p.stderr.count("\n") == 1
    assert not res.exists() or not list(res.glob("*/*.json"))


def _wait_for(predicate, timeout=120.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _build_in_flight() -> bool:
    out = subprocess.run(
        ["pgrep", "-f", "docker-buildx build|buildx build --progress=rawjson"], capture_output=True, text=True
    )
    return bool(out.stdout.strip())


@pytest.mark.usefixtures("lab", "busybox_base")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_then_resume(tmp_path, sig):
    """Interrupt mid-build: trial marked interrupted, file valid, nothing left, lock free; --resume completes."""
    res = tmp_path / "results"
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "--results",
        str(res),
        "run",
        "tiny",
        "--trials",
        "2",
        "--seed",
        "5",
        "--experiments",
        str(FIXTURE_EXPERIMENTS),
    ]
    # A suite started in the background (`make test &`) inherits an ignored SIGINT, and Python then
    # installs no KeyboardInterrupt handler: give the run the default disposition a terminal gives it.
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def some_trials_done():
        runs = load_runs(res, on_skip=lambda _m: None) if res.exists() else []
        return bool(runs) and len(runs[0]["trials"]) >= 3 and _build_in_flight()

    assert _wait_for(some_trials_done), "run did not reach its fourth trial"
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    run = only_run(res)
    assert run["status"] == "interrupted"
    assert run["trials"][-1]["status"] == "interrupted"
    assert not any(labelled_leftovers("imagebench.run", run["run_id"]).values())
    done_before = sum(t["status"] == "ok" for t in run["trials"])

    p = imagebench("run", "--resume", run["run_id"], "--no-wait", results=res)  # lock must be free
    assert p.returncode == 0, p.stderr
    final = only_run(res)
    assert final["status"] == "complete"
    assert len(final["trials"]) == len(final["plan"]) == 12
    assert all(t["status"] == "ok" for t in final["trials"])
    assert {(t["variant"], t["scenario"], t["trial"]) for t in final["trials"]} == {
        (p_["variant"], p_["scenario"], p_["trial"]) for p_ in final["plan"]
    }
    assert sum(t["status"] == "ok" for t in final["trials"]) > done_before
    assert not any(labelled_leftovers("imagebench.run", final["run_id"]).values())


@pytest.mark.usefixtures("lab", "busybox_base")
def test_second_run_waits_or_refuses(tmp_path):
    """While a run holds the daemon lock, --no-wait exits 5 at once and a plain run waits with a message."""
    from harness.lock import daemon_lock

    res = tmp_path / "results"
    with daemon_lock(owner="test holder"):
        p = imagebench("run", "broken-build", "--no-wait", results=res, timeout=60)
        assert p.returncode == 5
        assert "holds the daemon lock" in p.stderr and "test holder" in p.stderr
        waiting = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "--results",
                str(res),
                "run",
                "tiny",
                "--trials",
                "1",
                "--experiments",
                str(FIXTURE_EXPERIMENTS),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        time.sleep(4)
        assert waiting.poll() is None, "the second run did not wait"
    out, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, out
    assert "waiting for the daemon lock" in out
    assert json.loads(json.dumps(only_run(res)["status"])) == "complete"


@pytest.mark.usefixtures("lab")
def test_canary_never_reaches_results_or_logs(tmp_path):
    """The secrets experiment's per-trial canary appears in no results file and no output line."""
    res = tmp_path / "results"
    p = imagebench("run", "secrets", "--quick", results=res, experiments=None, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    run = only_run(res)
    leaks = {t["variant"]: t["metrics"].get("secret_leaks") for t in run["trials"]}
    assert leaks["env"] >= 1 and leaks["mount"] == 0
    text = run_text = "".join(f.read_text() for f in res.rglob("*.json"))
    assert "ibcanary" not in text
    assert "ibcanary" not in p.stdout + p.stderr
    report = imagebench("report", "--out", str(tmp_path / "report"), results=res)
    assert report.returncode == 0, report.stderr
    for f in (tmp_path / "report").rglob("*"):
        if f.is_file() and f.suffix in (".html", ".md", ".svg"):
            assert "ibcanary" not in f.read_text(errors="replace"), f
    assert run_text


@pytest.mark.usefixtures("lab", "busybox_base")
def test_trials_auto_stops_at_precision_or_cap(tmp_path):
    """--trials auto samples at least 5 rounds, then until +/-3 % or the cap, and records which stop applied."""
    res = tmp_path / "results"
    p = imagebench("run", "quickie", "--trials", "auto", "--max-trials", "7", results=res)
    assert p.returncode == 0, p.stderr
    run = only_run(res)
    assert run["options"]["trials"] == "auto"
    prec = run["precision"]
    assert set(prec) == {"quickie/one/cold", "quickie/two/cold"}
    for key, info in prec.items():
        n = sum(t["variant"] == key.split("/")[1] and t["status"] == "ok" for t in run["trials"])
        assert info["n"] == n
        assert 5 <= n <= 7
        assert info["stopped_by"] in ("precision", "cap")
        assert (info["stopped_by"] == "precision") == info["within_3pct"]
        if info["stopped_by"] == "cap":
            assert n == 7


@pytest.mark.usefixtures("lab", "busybox_base")
def test_compare_two_dockerfiles_of_your_own(tmp_path):
    """`imagebench compare` measures a user's pair through the runner and prints medians and the ratio."""
    ctx = tmp_path / "proj"
    ctx.mkdir()
    (ctx / "data.bin").write_bytes(b"\0" * 300_000)
    (ctx / "Dockerfile.fat").write_text(
        "FROM imagebench-test/busybox:latest\nCOPY data.bin /data.bin\nRUN cp /data.bin /copy.bin\n"
    )
    (ctx / "Dockerfile.lean").write_text("FROM imagebench-test/busybox:latest\nCOPY data.bin /data.bin\n")
    res = tmp_path / "results"
    p = imagebench(
        "compare",
        str(ctx / "Dockerfile.fat"),
        str(ctx / "Dockerfile.lean"),
        "--trials",
        "2",
        results=res,
        experiments=None,
    )
    assert p.returncode == 0, p.stderr
    assert "image_bytes" in p.stdout and "fat" in p.stdout and "lean" in p.stdout
    run = only_run(res)
    assert {t["variant"] for t in run["trials"]} == {"fat", "lean"}
    sizes = {t["variant"]: t["metrics"]["image_bytes"] for t in run["trials"]}
    assert sizes["fat"] - sizes["lean"] == 300_000
    js = imagebench(
        "compare",
        str(ctx / "Dockerfile.fat"),
        str(ctx / "Dockerfile.lean"),
        "--trials",
        "2",
        "--json",
        results=res,
        experiments=None,
    )
    summary = json.loads(js.stdout)
    row = next(r for r in summary["rows"] if r["metric"] == "image_bytes")
    assert row["ratio"] < 1 and row["low"] == row["high"]
