"""Faults: the daemon dies mid-run, the lab's index dies mid-run, shards merge like one run."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.results import load_runs

from helpers import FIXTURE_EXPERIMENTS, REPO, imagebench


@pytest.fixture
def second_daemon(tmp_path_factory, busybox_base):
    """A throw-away dockerd on its own socket and data root (no bridge, no iptables), with the busybox base."""
    root = Path(tmp_path_factory.mktemp("d2"))
    sock = root / "docker.sock"
    # Its own bridge: `--bridge=none` would delete the host's docker0 and break the main engine.
    bridge = "ibtest0"
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.231.77.1/24", "dev", bridge], check=True)
    log = open(root / "dockerd.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "docker.pid"),
            "-H",
            f"unix://{sock}",
            f"--bridge={bridge}",
            "--iptables=false",
            "--ip6tables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    try:
        for _ in range(60):
            if subprocess.run(["docker", "info"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail("second dockerd did not start")
        save = subprocess.Popen(["docker", "save", busybox_base], stdout=subprocess.PIPE)
        subprocess.run(["docker", "load", "-q"], stdin=save.stdout, env=env, check=True, capture_output=True)
        save.wait()
        yield proc, env
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-KILL", "-f", str(root)], capture_output=True)  # its containerd, if left
        time.sleep(0.5)
        with open("/proc/mounts") as fh:
            mounts = [line.split()[1] for line in fh if line.split()[1].startswith(str(root))]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        log.close()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.usefixtures("lab")
def test_daemon_dies_mid_run(second_daemon, tmp_path):
    """The engine stops during a build: a one-line error names the trial; finished trials stay on disk."""
    proc, env = second_daemon
    res = tmp_path / "results"
    cmd = [
        "python",
        "-m",
        "harness",
        "--results",
        str(res),
        "run",
        "sleepy",
        "--experiments",
        str(FIXTURE_EXPERIMENTS),
    ]
    run = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = load_runs(res, on_skip=lambda _m: None) if res.exists() else []
        if runs and len(runs[0]["trials"]) >= 1:
            break
        time.sleep(0.2)
    time.sleep(1.5)  # the second trial's build is sleeping now
    os.killpg(proc.pid, signal.SIGKILL)
    _out, err = run.communicate(timeout=180)
    assert run.returncode == 3, err
    errors = [ln for ln in err.splitlines() if ln.startswith("imagebench:")]
    assert len(errors) == 1, err
    assert "trial sleepy/slow/cold/#1" in errors[0]
    assert "results so far kept" in errors[0]
    final = load_runs(res)[0]
    assert final["trials"][0]["status"] == "ok"
    assert final["status"] in ("failed", "interrupted")


@pytest.mark.usefixtures("lab")
def test_lab_index_dies_mid_run(tmp_path):
    """The index dies: the trial fails naming it, `lab status` says it is down, `lab up` restarts it."""
    from harness.lab import lab_status

    procs = lab_status().get("processes") or {}
    index = next((v for k, v in procs.items() if "index" in k and isinstance(v, dict) and v.get("pid")), None)
    assert index, f"no index process in lab status: {procs}"
    os.kill(index["pid"], signal.SIGKILL)
    time.sleep(0.5)
    try:
        res = tmp_path / "results"
        p = imagebench("run", "pip-tiny", results=res)
        assert p.returncode in (1, 3), p.stderr
        assert "index" in (p.stderr + p.stdout)
        runs = load_runs(res) if res.exists() else []
        if runs and runs[0]["trials"]:
            assert runs[0]["trials"][0]["status"] == "failed"
            assert "index" in runs[0]["trials"][0]["error"]
        st = imagebench("lab", "status", results=res)
        assert st.returncode == 3
        assert "DOWN" in st.stdout
    finally:
        up = imagebench("lab", "up", results=tmp_path / "r2", timeout=600)
        assert up.returncode == 0, up.stderr
    assert imagebench("lab", "status", results=tmp_path / "r2").returncode == 0


@pytest.mark.usefixtures("lab", "busybox_base")
def test_shards_merge_like_one_run(tmp_path):
    """Two shards run separately and merged give the same tidy table shape as one unsharded run."""
    exps = ["--experiments", str(FIXTURE_EXPERIMENTS)]
    whole, split = tmp_path / "whole", tmp_path / "split"
    names = ["tiny", "sleepy"]

    def run(results, *extra):
        p = imagebench("run", *names, "--trials", "1", *extra, results=results, experiments=None)
        assert p.returncode == 0, p.stderr

    run(whole, *exps)
    run(split, "--shard", "1/2", *exps)
    run(split, "--shard", "2/2", *exps)

    def shape(results):
        df = pd.read_csv(io.StringIO(imagebench("table", "--format", "csv", results=results).stdout))
        return sorted(
            map(tuple, df[["experiment", "variant", "scenario", "trial", "metric"]].values.tolist())
        )

    assert len(load_runs(split)) == 2
    assert shape(whole) == shape(split)
