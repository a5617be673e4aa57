"""The metric vocabulary: every metric imagebench records, its unit and what it means.

Values are stored in base units (seconds, bytes, counts); `human_value` and `exact_value` turn
one into text with the metric's unit (the words themselves come from harness.fmt).
`kind` tells analysis how to treat a metric: `time` varies between trials and is compared
statistically; `exact` must be identical across trials (a difference is a finding); `count` and
`flag` are small integers (flags are 0/1).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import fmt
from harness.probes.declared_metrics import BY_PROBE


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: str  # time | exact | count | flag | rate
    meaning: str


_CORE = [
    Metric("build_seconds", "s", "time", "wall time of the build command"),
    Metric("build_span_seconds", "s", "time", "first step start to last step end, from BuildKit's events"),
    Metric("steps_total", "count", "count", "Dockerfile step vertices"),
    Metric("steps_cached", "count", "count", "Dockerfile step vertices BuildKit reported cached"),
    Metric("steps_executed", "count", "count", "Dockerfile step vertices that ran"),
    Metric("image_bytes", "B", "exact", "uncompressed image size as the engine reports it"),
    Metric("image_bytes_compressed", "B", "exact", "sum of layer sizes in the registry manifest after push"),
    Metric("layers", "count", "exact", "RootFS layers"),
    Metric("own_bytes", "B", "exact", "uncompressed bytes of our own layers (image_bytes minus the base's)"),
    Metric(
        "own_bytes_compressed",
        "B",
        "exact",
        "registry (compressed) bytes of our own layers, after the base's",
    ),
    Metric(
        "base_bytes", "B", "exact", "uncompressed bytes of the base layers the final stage was built FROM"
    ),
    Metric("base_bytes_compressed", "B", "exact", "registry (compressed) bytes of those base layers"),
    Metric("own_layers", "count", "exact", "RootFS layers after the base's (our own)"),
    Metric("context_bytes", "B", "exact", "build context after .dockerignore"),
    Metric("context_sent_bytes", "B", "count", "bytes BuildKit actually sent for the context"),
    Metric("pull_seconds", "s", "time", "pull from the lab registry"),
    Metric("push_seconds", "s", "time", "push to the lab registry"),
    Metric("packages_os", "count", "exact", "installed OS (dpkg/apk) packages in the final image"),
    Metric("packages_python", "count", "exact", "installed Python distributions in the final image"),
    Metric("os_files", "count", "exact", "files and links in an image without a package database (dpkg/apk)"),
]

_EXPERIMENT = [
    Metric("gcc_present", "flag", "flag", "1 when a gcc binary is on PATH in the final image"),
    Metric("smoke_ok", "flag", "flag", "1 when the variant's smoke command succeeded in the built image"),
    Metric("step_seconds_deps", "s", "time", "seconds of the dependency-install step (0 when cached)"),
    Metric("deps_step_cached", "flag", "flag", "1 when the dependency-install step was cached"),
    Metric(
        "wasted_bytes", "B", "exact", "bytes of files written in one layer and deleted or overwritten later"
    ),
    Metric("download_bytes", "B", "count", "bytes served by the lab's package index during the build"),
    Metric("stop_seconds", "s", "time", "daemon kill event to die event on docker stop"),
    Metric("stop_forced", "flag", "flag", "1 when docker stop had to send SIGKILL"),
    Metric("exit_code", "code", "exact", "exit code of the container"),
    Metric("unhealthy_detect_seconds", "s", "time", "app hang to the health_status: unhealthy event"),
    Metric("uid", "id", "exact", "effective uid of PID 1"),
    Metric("gid", "id", "exact", "effective gid of PID 1"),
    Metric("writable_system_paths", "count", "count", "system paths PID 1's user can write to"),
    Metric("secret_leaks", "count", "count", "places where the canary secret was found"),
    Metric("lint_findings", "count", "count", "hadolint findings"),
    Metric("restart_count", "count", "count", "restarts by the restart policy"),
    Metric("recovery_seconds", "s", "time", "worker crash to service answering again"),
    Metric("peak_memory_bytes", "B", "count", "peak memory of the container"),
    Metric("oom_killed", "flag", "flag", "1 when the container was OOM-killed"),
    Metric("cpu_throughput_ratio", "ratio", "rate", "work done relative to an unlimited container"),
    Metric("log_lines_visible", "count", "count", "lines docker logs shows"),
    Metric("log_bytes_in_layer", "B", "count", "bytes of log files in the container's writable layer"),
    Metric("heartbeat_p99_seconds", "s", "time", "99th percentile of fchmod heartbeat latency"),
    Metric("heartbeat_max_seconds", "s", "time", "maximum fchmod heartbeat latency"),
    Metric("verify_ok", "flag", "flag", "1 when cosign verify accepted the image"),
    Metric("client_admitted", "flag", "flag", "1 when the client could call the daemon API"),
    Metric("output_changed", "flag", "flag", "1 when the output image changed between two builds"),
    Metric("rollback_possible", "flag", "flag", "1 when the previous image can still be pulled by its tag"),
    Metric("cache_busted", "flag", "flag", "1 when a rebuild executed a step that should have been cached"),
    Metric("env_file_in_image", "flag", "flag", "1 when .env ended up in the image"),
    Metric("auto_extracted", "flag", "flag", "1 when ADD extracted an archive"),
    Metric("argv_overridden", "flag", "flag", "1 when `docker run IMAGE ARGS` replaced the program"),
    # runtime probes (harness/probes: stop, health, user, supervise, limits, logs, heartbeat)
    Metric("pid1_is_shell", "flag", "flag", "1 when PID 1 is a shell (sh, bash, dash, ash)"),
    Metric("reported_unhealthy", "flag", "flag", "1 when the engine reported the hung app unhealthy in time"),
    Metric(
        "running_while_hung", "flag", "flag", "1 when State.Status was still 'running' after the app hung"
    ),
    Metric("login_shell", "flag", "flag", "1 when PID 1's user has a login shell (not nologin/false)"),
    Metric("home_exists", "flag", "flag", "1 when PID 1's user has an existing home directory"),
    Metric("recovered", "flag", "flag", "1 when a killed worker came back within the cap"),
    Metric("running_while_broken", "flag", "flag", "1 when the container said running with its worker dead"),
    Metric("zombies", "count", "count", "defunct processes left in the containers"),
    Metric("allocated_bytes", "B", "count", "memory the hog reported allocated before it stopped"),
    Metric("cpu_ops_per_second", "1/s", "rate", "iterations per second of the CPU-bound loop"),
    Metric("cpu_share", "ratio", "rate", "CPU seconds the busy loop got per wall-clock second"),
    Metric("engine_log_bytes", "B", "count", "bytes in the engine's log file for the container"),
    Metric("heartbeat_p50_seconds", "s", "time", "median heartbeat (fchmod) latency"),
    Metric("heartbeat_samples", "count", "count", "heartbeats measured"),
    Metric("writer_bytes", "B", "count", "bytes the concurrent disk writer wrote (O_DSYNC)"),
    # the ci scenarios (harness/runner/ci.py, harness/ci/accounting.py): one job on an empty builder
    Metric("ci_job_seconds", "s", "time", "ci job: wall time of its one buildx build (import to push)"),
    Metric("ci_import_seconds", "s", "time", "ci job: the 'importing cache manifest' vertices"),
    Metric("ci_build_seconds", "s", "time", "ci job: job time minus import, cache export and image push"),
    Metric("ci_export_seconds", "s", "time", "ci job: the 'exporting cache to ...' vertices"),
    Metric("ci_push_seconds", "s", "time", "ci job: exporting and pushing the image"),
    Metric("ci_pulled_bytes", "B", "count", "ci job: blob bytes downloaded (base layers and cache blobs)"),
    Metric("ci_base_pulled_bytes", "B", "count", "ci job: bytes of the base image's layers downloaded"),
    Metric("ci_cache_pulled_bytes", "B", "count", "ci job: downloaded bytes that were not base layers"),
    Metric("ci_pushed_bytes", "B", "count", "ci job: bytes of blobs new in the registry (or cache dir)"),
    Metric("ci_cache_bytes", "B", "count", "ci job: blob bytes of the pipeline's image and cache afterwards"),
    Metric(
        "ci_steps_reused", "count", "count", "ci job: steps reported cached or loaded from the imported cache"
    ),
    Metric("ci_steps_rebuilt", "count", "count", "ci job: steps (FROM left out) that ran"),
]

# Probe metrics are declared in harness/probes/declared_metrics.py (plain data, read here).
_PROBE = [Metric(*declared) for decls in BY_PROBE.values() for declared in decls]

METRICS: dict[str, Metric] = {m.name: m for m in _CORE + _EXPERIMENT + _PROBE}
CORE_METRICS: tuple[str, ...] = tuple(m.name for m in _CORE)
TIMED_KINDS = ("time", "rate")  # vary between trials: judged on intervals, never on one trial


def get(name: str) -> Metric | None:
    """The Metric for `name` (probe metrics included), or None."""
    return METRICS.get(name)


def unit_of(name: str) -> str:
    m = METRICS.get(name)
    return m.unit if m else ""


def kind_of(name: str) -> str:
    m = METRICS.get(name)
    return m.kind if m else "count"


def human_value(name: str, value: float) -> str:
    """A metric's value with its unit, the way a person reads it (156 MB, 4.21 s, yes)."""
    return fmt.human_in_unit(value, unit_of(name), kind_of(name)) if fmt.finite(value) else "–"


def human_interval(name: str, low: float, high: float) -> str:
    """`156 MB – 160 MB`: both ends of an interval in the metric's unit."""
    return f"{human_value(name, low)} – {human_value(name, high)}"


def exact_value(name: str, value: float) -> str:
    """A metric's full value, digits grouped: for differences that rounding would hide (310,004,096 B)."""
    return fmt.exact_in_unit(value, unit_of(name)) if fmt.finite(value) else "–"
