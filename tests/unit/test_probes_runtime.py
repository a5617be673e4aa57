"""Pure parts of the runtime probes (no daemon): event arithmetic, /proc parsing, option handling,
the experiments' definitions."""

from __future__ import annotations

import importlib
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import metrics
from harness.experiment import load_experiment
from harness.probes import get_probe, known_probes
from harness.probes._containers import (
    compose_document,
    event_seconds,
    options,
    parse_bytes,
    parse_cmdline,
    parse_proc_status,
    parse_top,
    percentile,
)
from harness.probes.argv import cli_line, default_cases, overridden
from harness.probes.health import compose_healthcheck, duration_ns, engine_healthcheck, health_window
from harness.probes.heartbeat import parse_result
from harness.probes.limits import fill, parse_hog_output, throughput_ratio
from harness.probes.stop import is_shell, marker_after_stop, stop_measurement
from harness.probes.supervise import app_restarted, restart_policy, worker_pids, zombie_count
from harness.probes.user import has_login_shell, parse_passwd_line, parse_write_test, write_test_script

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {
    "exec-vs-shell": "stop",
    "healthcheck": "health",
    "non-root": "user",
    "entrypoint-vs-cmd": "argv",
    "one-process": "supervise",
    "resource-limits": "limits",
    "logging": "logs",
    "gunicorn-heartbeat": "heartbeat",
}


def ev(action: str, t: float, **attrs: str) -> dict:
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"Attributes": attrs},
        "time": int(t),
        "timeNano": int(t * 1e9),
    }


# --------------------------------------------------------------------------- stop


def test_stop_measurement_graceful():
    """A stop that exits on SIGTERM measures kill-to-die seconds, not forced, exit 0."""
    m = stop_measurement(
        [ev("kill", 100.0, signal="15"), ev("die", 100.074, exitCode="0"), ev("stop", 100.08)]
    )
    assert m["seconds"] == pytest.approx(0.074, abs=1e-6)
    assert m["forced"] is False
    assert m["exit_code"] == 0
    assert m["signals"] == ["15"]


def test_stop_measurement_forced():
    """A stop that needed SIGKILL is forced, exit 137, timed from the first kill."""
    evs = [
        ev("kill", 10.0, signal="15"),
        ev("kill", 13.0, signal="9"),
        ev("die", 13.08, exitCode="137"),
        ev("stop", 13.1),
    ]
    m = stop_measurement(evs)
    assert m["seconds"] == pytest.approx(3.08, abs=1e-6)
    assert m["forced"] is True
    assert m["exit_code"] == 137


def test_stop_measurement_ignores_an_earlier_die():
    """A die event before the stop's kill is ignored."""
    evs = [ev("die", 5.0, exitCode="1"), ev("kill", 10.0, signal="15"), ev("die", 10.5, exitCode="0")]
    assert stop_measurement(evs)["seconds"] == pytest.approx(0.5)


def test_stop_measurement_without_events():
    """No events gives no stop seconds and not forced."""
    m = stop_measurement([])
    assert "seconds" not in m and m["forced"] is False


def test_is_shell():
    """is_shell tells a shell PID 1 (sh -c, bash) from the app itself."""
    assert is_shell(["/bin/sh", "-c", "python app.py"])
    assert is_shell(["bash", "start.sh"])
    assert not is_shell(["python", "app.py"])
    assert not is_shell(None)


def test_event_seconds_falls_back_to_time():
    """event_seconds uses the whole-second time field when timeNano is missing."""
    assert event_seconds({"time": 1}, {"time": 3}) == 2


# --------------------------------------------------------------------------- helpers


def test_parse_proc_status():
    """parse_proc_status reads name, effective uid/gid and groups from /proc/PID/status."""
    text = "Name:\tpython\nUid:\t10001\t10001\t10001\t10001\nGid:\t0\t10\t0\t0\nGroups:\t10001 27\n"
    st = parse_proc_status(text)
    assert st["uid"] == 10001 and st["gid"] == 10
    assert st["uids"] == [10001] * 4 and st["groups"] == [10001, 27] and st["name"] == "python"


def test_parse_cmdline():
    """parse_cmdline splits /proc/PID/cmdline on NUL bytes."""
    assert parse_cmdline(b"python\0/app/app.py\0--serve\0") == ["python", "/app/app.py", "--serve"]
    assert parse_cmdline(b"sh\0-c\0a b\0") == ["sh", "-c", "a b"]


def test_parse_top():
    """parse_top reads pid, ppid and command from docker top; worker_pids finds the live worker."""
    top = {
        "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "Processes": [
            ["root", "123", "100", "0", "10:00", "?", "00:00:00", "python /app/worker.py"],
            ["root", "124", "123", "0", "10:00", "?", "00:00:00", "[python] <defunct>"],
        ],
    }
    procs = parse_top(top)
    assert procs[0] == {"pid": 123, "ppid": 100, "cmd": "python /app/worker.py"}
    assert worker_pids(procs, "worker.py") == [123]
    assert zombie_count(procs) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64m", 64 * 1024**2),
        ("1g", 1024**3),
        ("512k", 512 * 1024),
        (1000, 1000),
        ("64MiB", 64 * 1024**2),
        ("64M", 64 * 1024**2),
    ],
)
def test_parse_bytes(text, expected):
    """parse_bytes reads docker's size strings (B, kB, MiB, GB ...) into bytes."""
    assert parse_bytes(text) == expected


def test_parse_bytes_rejects_garbage():
    """parse_bytes gives None for None and ValueError for text that is no size."""
    assert parse_bytes(None) is None
    with pytest.raises(ValueError):
        parse_bytes("lots")


def test_percentile_nearest_rank():
    """percentile uses the nearest rank; no values gives None."""
    vals = [float(i) for i in range(1, 101)]
    assert percentile(vals, 50) == 50 and percentile(vals, 99) == 99 and percentile(vals, 100) == 100
    assert percentile([], 99) is None


def test_options_merge_probe_table():
    """A probe's options are the variant's run table with the probe's own table merged over it."""
    ctx = SimpleNamespace(
        variant=SimpleNamespace(
            run={"stop_timeout": 3, "stop": {"stop_timeout": 5}, "health": {"observe": 9}}
        )
    )
    assert options(ctx, "stop") == {"stop_timeout": 5, "health": {"observe": 9}}
    assert options(ctx, "health")["observe"] == 9


def test_compose_document_labels_everything():
    """compose_document adds the run labels to every service and the default network."""
    doc = compose_document({"app": {"image": "x", "labels": {"own": "1"}}}, {"imagebench.run": "r1"})
    assert doc["services"]["app"]["labels"] == {"imagebench.run": "r1", "own": "1"}
    assert doc["networks"]["default"]["labels"] == {"imagebench.run": "r1"}


# --------------------------------------------------------------------------- health


def test_duration_ns():
    """duration_ns reads Go durations and seconds into nanoseconds; junk is a ValueError."""
    assert duration_ns("1s") == 1_000_000_000
    assert duration_ns("500ms") == 500_000_000
    assert duration_ns("1m30s") == 90_000_000_000
    assert duration_ns(2) == 2_000_000_000
    with pytest.raises(ValueError):
        duration_ns("soon")


def test_health_window():
    """health_window is (interval + timeout) x retries + 4 s, at least the default; no healthcheck gives the default."""
    hc = {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Timeout": 1_000_000_000, "Retries": 2}
    assert health_window(hc) == 8.0
    assert health_window(None) == 6.0
    assert health_window({"Test": ["NONE"]}) == 6.0


def test_healthcheck_translations():
    """A healthcheck spec translates to the engine's and compose's forms (CMD vs CMD-SHELL, durations)."""
    spec = {"test": ["CMD", "python", "hc.py"], "interval": "1s", "timeout": "1s", "retries": 2}
    assert engine_healthcheck(spec) == {
        "Test": ["CMD", "python", "hc.py"],
        "Interval": 10**9,
        "Timeout": 10**9,
        "Retries": 2,
    }
    assert engine_healthcheck({"test": "curl -f x"})["Test"] == ["CMD-SHELL", "curl -f x"]
    assert compose_healthcheck({**spec, "interval": 1}) == {
        "test": ["CMD", "python", "hc.py"],
        "interval": "1s",
        "timeout": "1s",
        "retries": 2,
    }


# --------------------------------------------------------------------------- user


def test_write_test_script_runs(tmp_path: Path):
    """The write-test shell script reports writable, read-only and missing paths."""
    rw = tmp_path / "rw"
    rw.mkdir()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    script = write_test_script([str(rw), str(ro), str(tmp_path / "missing"), str(tmp_path / "r*")])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    res = parse_write_test(out)
    assert str(rw) in res["writable"]
    assert str(tmp_path / "missing") in res["missing"]
    assert res["writable"].count(str(rw)) == 2  # the glob r* expands to rw (and ro)
    if os.geteuid() != 0:  # root can write anywhere
        assert str(ro) in res["readonly"]
    assert not list(rw.iterdir())  # the probe file is removed


def test_passwd_and_shell():
    """parse_passwd_line reads a passwd entry (None for garbage); nologin and false are no login shells."""
    e = parse_passwd_line("app:x:10001:10001::/nonexistent:/usr/sbin/nologin")
    assert e == {
        "name": "app",
        "uid": 10001,
        "gid": 10001,
        "home": "/nonexistent",
        "shell": "/usr/sbin/nologin",
    }
    assert parse_passwd_line("garbage") is None
    assert not has_login_shell("/usr/sbin/nologin") and not has_login_shell("/bin/false")
    assert has_login_shell("/bin/bash") and not has_login_shell("")


# --------------------------------------------------------------------------- argv


def test_argv_cases_and_cli_lines():
    """The default argv cases are plain run, run with args and --entrypoint, shown as CLI lines."""
    cases = default_cases(["--port", "9000"], "sh")
    assert [cli_line(c) for c in cases] == [
        "docker run IMAGE",
        "docker run IMAGE --port 9000",
        "docker run --entrypoint sh IMAGE",
    ]


def test_overridden():
    """overridden tells whether run arguments replaced the app's argv rather than appended to it."""
    plain = {"argv": ["python", "/app/app.py", "--serve"], "app_ran": True}
    assert overridden(plain, {"argv": ["--port", "9000"], "app_ran": False}, "app argv:")
    assert not overridden(
        plain, {"argv": ["python", "/app/app.py", "--port", "9000"], "app_ran": True}, "app argv:"
    )
    assert overridden(plain, {"argv": ["--port", "9000"]}, None)
    assert not overridden(plain, {"argv": ["python", "x"]}, None)


# --------------------------------------------------------------------------- supervise, limits, heartbeat


def test_restart_policy():
    """restart_policy maps no/on-failure/always to the engine's restart policy."""
    assert restart_policy("no") is None
    assert restart_policy("on-failure") == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert restart_policy("always") == {"Name": "always"}


def test_parse_hog_output():
    """parse_hog_output reads the hog's allocated MiB and CPU rate lines; fill substitutes argv options."""
    out = parse_hog_output("allocated 8\nallocated 16\nallocated 24\n")
    assert out == {"allocated_bytes": 24 * 1024 * 1024}
    cpu = parse_hog_output("ops 2000 rate 1000.5 cpu 0.4987\n")
    assert cpu == {"ops": 2000.0, "cpu_ops_per_second": 1000.5, "cpu_share": 0.4987}
    assert parse_hog_output("ops 10 rate 5.0\n")["cpu_ops_per_second"] == 5.0
    assert fill(["hog.py", "mem", "{mem_mib}"], {"mem_mib": 64}) == ["hog.py", "mem", "64"]


def test_spin_output_and_throughput_ratio():
    """The spin workload's total line parses like the CPU loop's; the neighbour's ratio is its rate
    beside the hog over the mean of its rates alone (None without a usable rate alone)."""
    spin = parse_hog_output("spinning 2\nops 40000000 rate 13000000.5 cpu 1.9502\n")
    assert spin == {"ops": 40000000.0, "cpu_ops_per_second": 13000000.5, "cpu_share": 1.9502}
    assert throughput_ratio(5.0, [10.0, 10.0]) == 0.5
    assert throughput_ratio(6.0, [8.0, 12.0]) == pytest.approx(0.6)
    assert throughput_ratio(6.0, [0.0, 12.0]) == 0.5  # a run that printed 0 does not count
    assert throughput_ratio(6.0, []) is None
    assert throughput_ratio(6.0, [0.0]) is None


def test_hog_spin_runs_here():
    """experiments/resource-limits' hog.py spin runs its workers and prints the line the probe parses."""
    hog = ROOT / "experiments" / "resource-limits" / "context" / "hog.py"
    r = subprocess.run(
        ["python3", str(hog), "spin", "2", "0.2"], capture_output=True, text=True, timeout=30, check=True
    )
    assert r.stdout.startswith("spinning 2\n")
    out = parse_hog_output(r.stdout)
    assert out["ops"] > 0 and out["cpu_ops_per_second"] > 0
    assert 0 < out["cpu_share"] <= 2.1  # two workers: at most two CPU seconds per wall second
    bad = subprocess.run(["python3", str(hog), "nap", "1"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "unknown workload 'nap'" in bad.stderr


def test_app_restarted():
    """The app counts as restarted when none of its processes before the kill runs at the end."""
    assert not app_restarted([101], [101])
    assert not app_restarted([101, 102], [102, 205])
    assert app_restarted([101], [205])
    assert app_restarted([101], [])  # the restarted container has not started its app yet
    assert not app_restarted([], [205])  # no app seen before: nothing to tell


def test_marker_after_stop():
    """The SIGTERM marker counts only when the log after the stop has it more often than before."""
    m = "SIGTERM received"
    assert marker_after_stop("ready\n", "ready\nSIGTERM received, shutting down\n", m)
    assert not marker_after_stop("ready\n", "ready\n", m)
    assert not marker_after_stop("SIGTERM received\n", "SIGTERM received\n", m)  # an old line
    assert not marker_after_stop("", "SIGTERM received", "")  # no marker configured


def test_heartbeat_parse_result():
    """parse_result takes the last JSON line of the heartbeat output, None without one."""
    assert parse_result('noise\n{"n": 3, "p99": 0.1}\n') == {"n": 3, "p99": 0.1}
    assert parse_result("no json") is None


# --------------------------------------------------------------------------- the experiments


def test_runtime_probes_registered():
    """Every runtime probe module registers its probe under its name."""
    for mod in RUNTIME.values():
        importlib.import_module(f"harness.probes.{mod}")
    assert set(RUNTIME.values()) <= set(known_probes())
    for name in RUNTIME.values():
        assert get_probe(name).name == name


@pytest.mark.parametrize("name", sorted(RUNTIME))
def test_runtime_experiment_definitions(name: str):
    """Each runtime experiment uses its probe, declares known metrics and a primary claim on them."""
    exp = load_experiment(ROOT / "experiments" / name)
    assert RUNTIME[name] in exp.probes
    assert exp.compressed is False
    for m in exp.metrics:
        assert m in metrics.METRICS, f"{name}: unknown metric {m}"
    assert exp.claims and any(c.primary for c in exp.claims)
    for c in exp.claims:
        assert c.metric in metrics.METRICS, f"{name}: claim on unknown metric {c.metric}"
        assert c.metric in exp.metrics, f"{name}: claim metric {c.metric} not in metrics"
    for v in exp.variants:
        text = exp.file(v.dockerfile).read_text()
        assert "# syntax" not in text
        assert text.startswith("FROM python:3.13-slim")


# the observation each experiment's article claims rest on (issue 23: measured, not configured)
OBSERVED = {
    "exec-vs-shell": {"sigterm_received", "stop_forced", "pid1_is_shell"},
    "healthcheck": {"reported_unhealthy", "running_while_hung"},
    "non-root": {"writable_system_paths", "uid"},
    "one-process": {"app_restarted"},
    "resource-limits": {"neighbour_throughput_ratio", "oom_killed"},
}
CONFIGURED = {  # values the experiment's own settings fix: never an article claim that decides
    "exec-vs-shell": {("stop_seconds", "shell")},
    "healthcheck": {("unhealthy_detect_seconds", "healthcheck"), ("unhealthy_detect_seconds", "compose")},
    "non-root": {("uid", "user"), ("uid", "nologin"), ("login_shell", "nologin")},
    "resource-limits": {("peak_memory_bytes", "limited"), ("peak_memory_bytes", "compose")},
}


@pytest.mark.parametrize("name", sorted(OBSERVED))
def test_article_claims_rest_on_observations(name: str):
    """The primary claim is an article claim on an observation; every claim on a value the
    experiment's settings fix is marked by_construction; deciding article claims use only the
    observed metrics."""
    exp = load_experiment(ROOT / "experiments" / name)
    primary = next(c for c in exp.claims if c.primary)
    assert primary.source == "article" and not primary.by_construction
    assert primary.metric in OBSERVED[name]
    for c in exp.claims:
        for who in (c.variant, c.baseline, c.candidate):
            if (c.metric, who) in CONFIGURED.get(name, set()):
                assert c.by_construction, f"{name}: {c.label} is fixed by the settings"
        if c.source == "article" and not c.by_construction:
            assert c.metric in OBSERVED[name], f"{name}: article claim on {c.metric}"
            assert c.article_section, f"{name}: {c.label} names no article section"
