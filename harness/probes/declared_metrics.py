"""The metrics probes record beyond the core vocabulary, declared where harness.metrics reads them.

Plain data (name, unit, kind, meaning) grouped by the probe that records them: harness.metrics
builds its `Metric` records from this table at import time, so a metric's unit and kind never
depend on which probe modules happen to be imported, and no probe imports the vocabulary to
register itself. A probe that records a new metric declares it here.
"""

from __future__ import annotations

Declared = tuple[str, str, str, str]  # name, unit, kind (time | exact | count | flag | rate), meaning

TLS_CASES = ("no_cert", "wrong_ca", "right_cert", "plain_http")  # the clients the tls probe tries

BY_PROBE: dict[str, tuple[Declared, ...]] = {
    "addsource": (
        (
            "add_change_detected",
            "flag",
            "flag",
            "1 when a rebuild after the remote file changed executed the ADD step again",
        ),
        (
            "add_refetch_bytes",
            "B",
            "count",
            "bytes the URL's server sent during a rebuild with the file unchanged",
        ),
        ("added_bytes", "B", "exact", "size of the layer the ADD/COPY step produced"),
    ),
    "downloads": (
        ("download_files", "count", "count", "package files the lab's index served during the build"),
        ("pip_cache_in_image", "B", "exact", "bytes of pip's cache directory left in the final image"),
    ),
    "ignore": (("git_dir_in_image", "flag", "flag", "1 when a .git directory ended up in the image"),),
    "health": (
        ("app_hung", "flag", "flag", "1 when the app really stopped answering after the hang request"),
    ),
    "limits": (
        (
            "neighbour_ops_per_second",
            "1/s",
            "rate",
            "iterations per second of the neighbour container's CPU-bound loop beside the hog",
        ),
        (
            "neighbour_cpu_alone",
            "ratio",
            "rate",
            "CPU seconds per wall second the neighbour got alone, per CPU it asked for (1 = a free host)",
        ),
        (
            "neighbour_throughput_ratio",
            "ratio",
            "rate",
            "the neighbour's iterations per second beside the hog over its rate alone",
        ),
    ),
    "lint": (("lint_errors", "count", "count", "hadolint findings at level error"),),
    "secrets": (
        (
            "secret_in_build_output",
            "flag",
            "flag",
            "1 when BuildKit's progress output (a CI log) shows the canary",
        ),
        ("secret_delivered", "flag", "flag", "1 when the build step or container really received the secret"),
    ),
    "stop": (
        (
            "sigterm_received",
            "flag",
            "flag",
            "1 when the app's own SIGTERM handler ran on docker stop (its line in the container log)",
        ),
    ),
    "supervise": (
        (
            "app_restarted",
            "flag",
            "flag",
            "1 when the app process that ran before the worker was killed is gone at the end",
        ),
    ),
    "tls": tuple(
        (
            f"client_admitted_{case}",
            "flag",
            "flag",
            f"1 when the {case.replace('_', ' ')} client could call the second daemon's API",
        )
        for case in TLS_CASES
    ),
}
