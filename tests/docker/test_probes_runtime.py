"""Runtime probes against real containers: stop, health, user, argv, supervise, limits, logs, heartbeat.

Each test runs a probe the way the runner does (after_build -> cleanup) on the experiment's own
Dockerfiles, built once per session with `python:3.13-slim` mapped to the lab's stand-in, and
asserts the measured value. Every image and container the tests create carries the
`imagebench.test=runtime` label and is removed.
"""

from __future__ import annotations

import dataclasses
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest

from harness.experiment import load_experiment
from harness.probes import ProbeContext, get_probe
from harness.probes._containers import compose_command

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
LAB_SLIM = "imagebench-lab/python:3.13-slim-trixie"
LABEL = "imagebench.test=runtime"

IMAGES = {
    ("exec-vs-shell", "exec"),
    ("exec-vs-shell", "shell"),
    ("healthcheck", "none"),
    ("healthcheck", "healthcheck"),
    ("non-root", "root"),
    ("non-root", "user"),
    ("non-root", "nologin"),
    ("entrypoint-vs-cmd", "cmd"),
    ("entrypoint-vs-cmd", "entrypoint"),
    ("entrypoint-vs-cmd", "both"),
    ("one-process", "one"),
    ("one-process", "one-waitn"),
    ("one-process", "split"),
    ("resource-limits", "unlimited"),
    ("logging", "stdout"),
    ("logging", "file"),
    ("gunicorn-heartbeat", "tmp"),
}


@pytest.fixture(scope="module")
def images(client):
    """Build every test image once (two at a time); remove them all afterwards."""
    try:
        client.images.get(LAB_SLIM)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the runtime probe tests need the lab's {LAB_SLIM} (run `imagebench lab up`)")

    def build(key: tuple[str, str]) -> tuple[tuple[str, str], str]:
        exp = load_experiment(EXPERIMENTS / key[0])
        v = exp.variant(key[1])
        tag = f"imagebench-test/runtime-{key[0]}:{key[1]}"
        subprocess.run(
            [
                "docker",
                "buildx",
                "build",
                "-q",
                "--network",
                "host",
                "--build-context",
                f"python:3.13-slim=docker-image://{LAB_SLIM}",
                "--label",
                LABEL,
                "-f",
                str(exp.file(v.dockerfile)),
                "-t",
                tag,
                str(exp.file(v.context)),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return key, tag

    built: dict[tuple[str, str], str] = {}
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            built = dict(pool.map(build, sorted(IMAGES)))
        yield built
    finally:  # also when one build failed: the images the others built must not stay behind
        for c in client.containers.list(all=True, filters={"label": LABEL}):
            c.remove(force=True, v=True)
        for image in client.images.list(filters={"label": LABEL}):
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.APIError:  # already gone, or still in use: the leftover check reports it
                pass


def run_probe(client, images, experiment: str, variant: str, probe: str, **run: Any):
    """One trial of one probe; returns (values, details); asserts nothing is left behind."""
    exp = load_experiment(EXPERIMENTS / experiment)
    v = exp.variant(variant)
    v = dataclasses.replace(v, run={**v.run, **run})
    tag = images[(experiment, variant)]
    nonce = uuid.uuid4().hex
    tracked: list[tuple[str, str]] = []
    ctx = ProbeContext(
        client=client,
        experiment=exp,
        variant=v,
        scenario="cold",
        trial=0,
        nonce=nonce,
        workdir=Path("/tmp"),
        context=exp.file(v.context),
        dockerfile=exp.file(v.dockerfile),
        labels={"imagebench.run": f"test-{nonce[:8]}", "imagebench.test": "runtime"},
        image=tag,
        tag=tag,
        track=lambda kind, ident: tracked.append((kind, ident)),
    )
    p = get_probe(probe)
    try:
        values = p.after_build(ctx)
    finally:
        p.cleanup(ctx)
    details = ctx.details.get(probe, {})
    assert "cleanup_errors" not in details, details
    assert tracked, "the probe created nothing it tracked"
    left = client.containers.list(all=True, filters={"label": f"imagebench.run=test-{nonce[:8]}"})
    assert not left, f"left behind: {left}"
    for kind, ident in tracked:
        if kind == "network":
            assert not client.networks.list(ids=[ident]), f"network {ident} left behind"
    return values, details


# --------------------------------------------------------------------------- stop


def test_exec_form_stops_fast(client, images):
    """An exec-form CMD runs the app as PID 1: its SIGTERM handler runs (its line in the log) and it
    stops in under a second with exit 0, no SIGKILL."""
    values, details = run_probe(client, images, "exec-vs-shell", "exec", "stop", stop_timeout=3)
    assert values["sigterm_received"] == 1
    assert "SIGTERM received" in details["log_tail"]
    assert values["stop_seconds"] < 1.0
    assert values["stop_forced"] == 0
    assert values["exit_code"] == 0
    assert details["pid1_cmdline"] == ["python", "app.py"]
    assert values["pid1_is_shell"] == 0


def test_shell_that_execs_passes_sigterm(client, images):
    """The observations are read, not assumed: a shell command that execs the program (`sh -c "exec
    python app.py"`) leaves the program as PID 1, so its handler runs and no SIGKILL is needed."""
    values, details = run_probe(
        client,
        images,
        "exec-vs-shell",
        "shell",
        "stop",
        stop_timeout=3,
        command=["sh", "-c", "exec python app.py"],
    )
    assert details["pid1_cmdline"] == ["python", "app.py"]  # the shell replaced itself
    assert values["pid1_is_shell"] == 0
    assert values["sigterm_received"] == 1
    assert values["stop_forced"] == 0


def test_shell_form_waits_for_the_timeout(client, images):
    """A shell-form CMD leaves /bin/sh as PID 1 (read from the running container), the program's
    handler never runs, so docker stop waits for the timeout and kills (137)."""
    values, details = run_probe(client, images, "exec-vs-shell", "shell", "stop", stop_timeout=3)
    assert values["sigterm_received"] == 0
    assert "SIGTERM received" not in details["log_tail"]
    assert 2.9 <= values["stop_seconds"] < 5.0
    assert values["stop_forced"] == 1
    assert values["exit_code"] == 137
    assert details["pid1_cmdline"][:2] == ["/bin/sh", "-c"]
    assert values["pid1_is_shell"] == 1


# --------------------------------------------------------------------------- health


def test_hung_app_reported_unhealthy(client, images):
    """With a HEALTHCHECK a hung app is reported unhealthy (within (interval + timeout) x retries + 2 s) while
    the engine's container list (docker ps) still says running."""
    values, details = run_probe(client, images, "healthcheck", "healthcheck", "health")
    assert details["app_hung"] is True and values["app_hung"] == 1
    assert values["reported_unhealthy"] == 1
    assert values["running_while_hung"] == 1
    assert details["ps_state"] == "running"
    assert details["ps_status"].startswith("Up ") and details["ps_status"].endswith("(unhealthy)")
    # (interval 1 s + timeout 1 s) x retries 2 + 2 s
    assert 0 < values["unhealthy_detect_seconds"] < (1 + 1) * 2 + 2
    assert details["health_after"] == "unhealthy"


def test_no_healthcheck_stays_running(client, images):
    """Without a HEALTHCHECK a hung app is never reported unhealthy and stays running."""
    values, details = run_probe(client, images, "healthcheck", "none", "health", observe=4)
    assert details["app_hung"] is True
    assert values["reported_unhealthy"] == 0
    assert "unhealthy_detect_seconds" not in values
    assert values["running_while_hung"] == 1
    assert details["state_after"] == "running"
    assert details["ps_state"] == "running" and "health" not in details["ps_status"]


def test_app_that_does_not_hang(client, images):
    """A hang path that does not hang the app is seen as such: app_hung 0, nothing reported."""
    values, details = run_probe(
        client, images, "healthcheck", "healthcheck", "health", hang_path="/", observe=4
    )
    assert values["app_hung"] == 0 and details["app_hung"] is False
    assert values["reported_unhealthy"] == 0
    assert details["health_after"] == "healthy"


def test_healthcheck_from_compose(client, images):
    """A healthcheck declared in compose reports the hung app unhealthy like a Dockerfile HEALTHCHECK."""
    if compose_command() is None:
        pytest.skip("docker compose v2 is not installed")
    exp = load_experiment(EXPERIMENTS / "healthcheck")
    run = exp.variant("compose").run
    values, details = run_probe(client, images, "healthcheck", "none", "health", **run)
    assert details["how"] == "compose"
    assert values["reported_unhealthy"] == 1
    assert values["unhealthy_detect_seconds"] < (1 + 1) * 2 + 2


# --------------------------------------------------------------------------- user


def test_uid_root_vs_user(client, images):
    """The default image runs as root with writable system paths; USER runs as uid 10001 with none writable."""
    root, rd = run_probe(client, images, "non-root", "root", "user")
    user, ud = run_probe(client, images, "non-root", "user", "user")
    nologin, nd = run_probe(client, images, "non-root", "nologin", "user")
    assert root["uid"] == 0 and root["gid"] == 0
    assert root["writable_system_paths"] >= 10
    assert "/etc" in rd["writable"] and "/usr" in rd["writable"]
    assert rd["exec_ids"] == "0 0" and ud["exec_ids"] == "10001 10001"
    assert user["uid"] == 10001 and user["gid"] == 10001
    assert user["writable_system_paths"] == 0
    assert user["home_exists"] == 1
    assert nologin["uid"] == 10001
    assert nologin["writable_system_paths"] == 0
    assert nologin["login_shell"] == 0 and nologin["home_exists"] == 0
    assert nd["passwd"]["shell"] == "/usr/sbin/nologin"


# --------------------------------------------------------------------------- argv


def test_argv_table(client, images):
    """The argv probe's table shows how docker run arguments replace CMD or append to ENTRYPOINT per variant."""
    cmd, cd = run_probe(client, images, "entrypoint-vs-cmd", "cmd", "argv")
    ep, ed = run_probe(client, images, "entrypoint-vs-cmd", "entrypoint", "argv")
    both, bd = run_probe(client, images, "entrypoint-vs-cmd", "both", "argv")
    rows = {name: {r["case"]: r for r in d["table"]} for name, d in (("cmd", cd), ("ep", ed), ("both", bd))}
    app = ["python", "/app/app.py"]
    for name in rows:
        assert rows[name]["run"]["argv"] == [*app, "--serve"]
        assert rows[name]["run"]["pid1_cmdline"] == [*app, "--serve"]
        assert rows[name]["run"]["app_ran"]
        assert rows[name]["entrypoint"]["argv"] == ["sh"]
        assert not rows[name]["entrypoint"]["app_ran"]
    assert rows["cmd"]["run-args"]["argv"] == ["--port", "9000"]
    assert rows["cmd"]["run-args"]["started"] is False
    assert rows["ep"]["run-args"]["argv"] == [*app, "--serve", "--port", "9000"]
    assert rows["both"]["run-args"]["argv"] == [*app, "--port", "9000"]
    assert rows["both"]["run-args"]["pid1_cmdline"] == [*app, "--port", "9000"]
    assert cmd["argv_overridden"] == 1
    assert ep["argv_overridden"] == 0
    assert both["argv_overridden"] == 0


# --------------------------------------------------------------------------- supervise


def test_background_worker_is_not_recovered(client, images):
    """A worker backgrounded in one container dies unnoticed: no restart, no recovery within the cap."""
    values, _details = run_probe(client, images, "one-process", "one", "supervise", recovery_cap=4)
    assert values["recovered"] == 0
    assert values["recovery_seconds"] == 4
    assert values["restart_count"] == 0
    assert values["running_while_broken"] == 1
    assert values["app_restarted"] == 0


def test_waitn_restarts_the_app_with_the_worker(client, images):
    """The fair baseline (PID 1 exits when either process dies) gets the worker back, but only by
    restarting the container: the app process that ran before is gone."""
    values, details = run_probe(client, images, "one-process", "one-waitn", "supervise", recovery_cap=10)
    assert values["recovered"] == 1
    assert values["restart_count"] >= 1
    assert values["app_restarted"] == 1
    assert not set(details["app_pids"]["before"]) & set(details["app_pids"]["after"])


def test_split_worker_is_restarted(client, images):
    """A worker in its own container with a restart policy is restarted and recovers within 5 s; the
    app's process is the one that ran before."""
    values, details = run_probe(client, images, "one-process", "split", "supervise", recovery_cap=10)
    assert values["app_restarted"] == 0
    assert details["app_pids"]["before"] == details["app_pids"]["after"]
    assert values["recovered"] == 1
    assert values["recovery_seconds"] < 5
    assert values["restart_count"] >= 1
    assert values["running_while_broken"] == 0


# --------------------------------------------------------------------------- limits


def test_memory_limit_oom_kills(client, images):
    """A 64 MiB memory limit OOM-kills a 160 MiB allocation (exit 137) and caps peak memory."""
    values, _details = run_probe(
        client, images, "resource-limits", "unlimited", "limits", memory="64m", mem_mib=160, workloads=["mem"]
    )
    assert values["oom_killed"] == 1
    assert values["exit_code"] == 137
    assert values["peak_memory_bytes"] <= 64 * 1024 * 1024
    assert values["allocated_bytes"] < 64 * 1024 * 1024


def test_unlimited_hog_allocates_everything(client, images):
    """Without a memory limit the hog allocates all 96 MiB and exits 0."""
    values, _details = run_probe(
        client, images, "resource-limits", "unlimited", "limits", mem_mib=96, workloads=["mem"]
    )
    assert values["oom_killed"] == 0
    assert values["exit_code"] == 0
    assert values["allocated_bytes"] == 96 * 1024 * 1024
    assert values["peak_memory_bytes"] >= 96 * 1024 * 1024


def test_cpu_limit_caps_the_loop(client, images):
    """cpus=0.5 caps the busy loop at about half a CPU (nano_cpus recorded); its throughput ratio is
    recorded."""
    values, details = run_probe(
        client, images, "resource-limits", "unlimited", "limits", cpus=0.5, cpu_seconds=1.5, workloads=["cpu"]
    )
    assert values["cpu_share"] <= 0.56
    # against an unlimited run of the loop after it: below 1 on a free host, anything on a busy one
    # (at load 9 the unlimited reference got less CPU than the limited loop: ratio 1.74)
    assert values["cpu_throughput_ratio"] > 0
    assert details["cpu"]["nano_cpus"] == 500_000_000


def test_cpu_limit_on_the_hog_spares_the_neighbour(client, images):
    """An unlimited hog (4 busy processes) slows a 2-process neighbour down; the same hog under
    --cpus 0.5 leaves the neighbour more of its throughput. Each ratio comes from three neighbour
    runs (alone, beside the hog, alone) with the hog running while it is measured. On a host where
    other work leaves the neighbour under 75 % of its CPUs even alone, the comparison means
    nothing and the test says so (skip with the figure) after checking the measurement itself."""
    kw = {"workloads": ["neighbour"], "neighbour_seconds": 2}
    unl, ud = run_probe(client, images, "resource-limits", "unlimited", "limits", **kw)
    lim, ld = run_probe(client, images, "resource-limits", "unlimited", "limits", cpus=0.5, **kw)
    for d in (ud, ld):
        runs = d["neighbour"]["runs"]
        assert [r["when"] for r in runs] == ["alone", "beside the hog", "alone"]
        assert all(r["exit_code"] == 0 and r["cpu_ops_per_second"] > 0 for r in runs)
        assert d["neighbour"]["hog_status"] == "running"
    assert ud["neighbour"]["hog_nano_cpus"] is None
    assert ld["neighbour"]["hog_nano_cpus"] == 500_000_000
    assert 0 < unl["neighbour_cpu_alone"] <= 1.05 and 0 < lim["neighbour_cpu_alone"] <= 1.05
    busy = min(unl["neighbour_cpu_alone"], lim["neighbour_cpu_alone"])
    if busy < 0.75:  # other work on the host takes the CPUs: it, not the limit, decides the ratios
        pytest.skip(f"the host is busy: the neighbour alone got {busy:.0%} of the CPUs it asked for")
    assert 0 < unl["neighbour_throughput_ratio"] < 0.85
    assert lim["neighbour_throughput_ratio"] > unl["neighbour_throughput_ratio"]


# --------------------------------------------------------------------------- logs


def test_docker_logs_sees_stdout_only(client, images):
    """docker logs sees every stdout line but nothing written to a file, which grows the container layer."""
    out, _od = run_probe(client, images, "logging", "stdout", "logs", lines=500)
    fil, fd = run_probe(client, images, "logging", "file", "logs", lines=500)
    assert out["log_lines_visible"] == 500
    assert out["log_bytes_in_layer"] == 0
    assert fil["log_lines_visible"] == 0
    assert fil["log_bytes_in_layer"] >= 500 * 80
    assert "A /var/log/app/app.log" in fd["diff"]
    assert out["engine_log_bytes"] > fil["engine_log_bytes"]


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_latency_tmp_and_shm(client, images):
    """Heartbeat writes to /tmp and /dev/shm give ordered p50 <= p99 <= max latencies under 1.5 s."""
    tmp, td = run_probe(client, images, "gunicorn-heartbeat", "tmp", "heartbeat", seconds=1.5, writer_mib=16)
    shm, sd = run_probe(
        client, images, "gunicorn-heartbeat", "tmp", "heartbeat", seconds=1.5, writer_mib=16, dir="/dev/shm"
    )
    for values, details, where in ((tmp, td, "/tmp"), (shm, sd, "/dev/shm")):
        assert details["result"]["dir"] == where
        assert values["heartbeat_samples"] >= 50
        assert (
            0
            < values["heartbeat_p50_seconds"]
            <= values["heartbeat_p99_seconds"]
            <= values["heartbeat_max_seconds"]
        )
        assert values["heartbeat_max_seconds"] < 1.5
        assert values["writer_bytes"] >= 16 * 1024 * 1024
