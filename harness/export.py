"""Results in formats that CI benchmark trackers read.

`export_pytest_benchmark(results_dir)` writes pytest-benchmark's JSON (the file `pytest
--benchmark-json` and `--benchmark-save` produce), so `pytest-benchmark compare`,
github-action-benchmark (`tool: pytest`) and Bencher (`python_pytest` adapter) chart imagebench
results over time:

- one benchmark per experiment x variant x scenario x time metric (`build_seconds`, and every
  other metric of kind `time`), each trial one round: `stats` are computed exactly as
  pytest-benchmark computes them (quartiles, Tukey fences, outlier counts), `stats.data` keeps the
  trial values, `iterations` is 1;
- `name` is `<experiment>:<metric>[<variant>-<scenario>]`, `group` `<experiment>/<scenario>/<metric>`,
  `params` `{variant, scenario}`, `fullname` `experiments/<experiment>::<metric>[<variant>-<scenario>]`;
- sizes and counts of the same cell (`image_bytes`, `image_bytes_compressed`, `layers`, ...) go to
  `extra_info` as medians in base units, with the unit of the timing and the run ids;
- `machine_info` describes the measuring machine from the run's fingerprint (never the exporting
  host), `commit_info` the harness commit that measured.

A pytest-benchmark file describes one machine: with several machines in `results_dir` the one with
the most recent run is exported unless `machine` is given. Per experiment, only the latest run of
that machine counts (as in the report).
"""

from __future__ import annotations

import json
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from harness.analysis import select_latest
from harness.errors import SchemaError, UsageError
from harness.metrics import kind_of, unit_of
from harness.records import JSONObject, RunRecord
from harness.results import atomic_write_json, load_runs

if TYPE_CHECKING:
    import pandas as pd

#: The pytest-benchmark JSON layout this module writes (checked against pytest-benchmark 5.x; 4.x reads it).
PYTEST_BENCHMARK_FORMAT_VERSION = "5.1.0"
FORMATS = ("pytest-benchmark",)


class BenchmarkStats(TypedDict):
    """A benchmark's `stats` object, as pytest_benchmark.stats.Stats computes it."""

    min: float
    max: float
    mean: float
    stddev: float
    rounds: int
    median: float
    iqr: float
    q1: float
    q3: float
    iqr_outliers: int
    stddev_outliers: int
    outliers: str
    ld15iqr: float
    hd15iqr: float
    ops: float
    total: float
    data: list[float]
    iterations: int


class Benchmark(TypedDict):
    """One benchmark entry of the document: a timed metric of one experiment x variant x scenario cell."""

    group: str
    name: str
    fullname: str
    params: dict[str, str]
    param: str
    extra_info: JSONObject
    options: JSONObject
    stats: BenchmarkStats


class BenchmarkDocument(TypedDict):
    """The pytest-benchmark JSON document `export_pytest_benchmark` returns."""

    machine_info: JSONObject
    commit_info: JSONObject
    benchmarks: list[Benchmark]
    datetime: str | None
    version: str


# --------------------------------------------------------------------------- pytest-benchmark's statistics


def pb_stats(values: list[float]) -> BenchmarkStats:
    """The `stats` object of a pytest-benchmark benchmark, computed as pytest_benchmark.stats.Stats does."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("no values")
    try:  # the installed pytest-benchmark's own statistics, so `compare` agrees with it exactly
        from pytest_benchmark.stats import Stats  # optional: the `test` extra installs it
    except ImportError:
        Stats = None  # type: ignore[misc, assignment]  # pytest-benchmark not installed
    if Stats is not None:
        make: Any = Stats  # pytest-benchmark ships no type hints
        st = make()
        for v in data:
            st.update(v)
        fields = {f: getattr(st, f) for f in Stats.fields}
        return cast(BenchmarkStats, {**fields, "data": data, "iterations": 1})  # Stats.fields: the keys above
    s = sorted(data)
    n = len(s)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if n > 1 else 0
    q1, q3 = _quartiles(s)
    iqr = q3 - q1
    if n == 1:
        ld15iqr = hd15iqr = data[0]
    else:
        ld15iqr = s[bisect_left(s, q1 - 1.5 * iqr)]
        pos = bisect_right(s, q3 + 1.5 * iqr)
        hd15iqr = s[-1] if pos == n else s[pos]
    stddev_outliers = sum(1 for v in data if v < mean - stddev or v > mean + stddev)
    iqr_outliers = sum(1 for v in data if v < q1 - 1.5 * iqr or v > q3 + 1.5 * iqr)
    total = sum(data)
    return {
        "min": s[0],
        "max": s[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(data),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": ld15iqr,
        "hd15iqr": hd15iqr,
        "ops": (n / total) if total else 0,
        "total": total,
        "data": data,
        "iterations": 1,
    }


def _quartiles(s: list[float]) -> tuple[float, float]:
    """pytest-benchmark's quartiles (Wikipedia's methods 3 for odd n and 2 for even n)."""
    n = len(s)
    if n == 1:
        return s[0], s[0]
    if n % 2:
        k, r = n // 4, n % 4
        if r == 1:
            return 0.25 * s[k - 1] + 0.75 * s[k], 0.75 * s[3 * k] + 0.25 * s[3 * k + 1]
        return 0.75 * s[k] + 0.25 * s[k + 1], 0.25 * s[3 * k + 1] + 0.75 * s[3 * k + 2]
    return statistics.median(s[: n // 2]), statistics.median(s[n // 2 :])


# --------------------------------------------------------------------------- export


def _iso(ts: str | None) -> str | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return ts


def _choose_machine(runs: list[RunRecord], machine: str | None) -> str:
    machines = sorted({r["machine"] for r in runs})
    if machine is not None:
        if machine not in machines:
            raise UsageError(f"no runs of machine {machine!r} (machines: {', '.join(machines)})")
        return machine
    return max(runs, key=lambda r: (r.get("updated_at") or "", r["run_id"]))["machine"]


def _object(value: object) -> JSONObject:
    """A part of the run file's open JSON (the fingerprint) that should be an object, else {}."""
    return value if isinstance(value, dict) else {}


def _machine_info(machine: str, runs: list[RunRecord]) -> JSONObject:
    latest = max(runs, key=lambda r: r["run_id"])
    fp = _object(latest.get("fingerprint"))
    engine = _object(fp.get("engine"))
    harness = _object(fp.get("harness"))
    host = _object(fp.get("host"))
    python = harness.get("python") or ""
    return {
        "node": machine,
        "processor": engine.get("architecture") or "",
        "machine": engine.get("architecture") or "",
        "python_compiler": "",
        "python_implementation": "CPython",
        "python_implementation_version": python,
        "python_version": python,
        "python_build": ["", ""],
        "release": engine.get("kernel") or "",
        "system": "Linux",
        "cpu": {
            "count": engine.get("cpus") or host.get("cpus"),
            "arch_string_raw": engine.get("architecture"),
        },
        "imagebench": {
            "machine": machine,
            "engine_version": engine.get("engine_version"),
            "buildx_version": engine.get("buildx_version"),
            "buildkit_version": engine.get("buildkit_version"),
            "storage_driver": engine.get("storage_driver"),
            "image_store": engine.get("image_store"),
            "mem_bytes": engine.get("mem_bytes"),
            "network_profile": _object(_object(fp.get("lab")).get("profile")).get("name"),
        },
    }


def _commit_info(runs: list[RunRecord]) -> JSONObject:
    latest = max(runs, key=lambda r: r["run_id"])
    harness = _object(_object(latest.get("fingerprint")).get("harness"))
    return {
        "id": harness.get("git_commit") or "unversioned",
        "time": _iso(latest.get("created_at")),
        "author_time": None,
        "dirty": bool(harness.get("git_dirty")),
        "project": "imagebench",
        "branch": harness.get("git_branch") or "(unknown)",
    }


def export_pytest_benchmark(
    results_dir: Path | None = None, *, runs: list[RunRecord] | None = None, machine: str | None = None
) -> BenchmarkDocument:
    """The results as one pytest-benchmark JSON document (see the module docstring)."""
    if runs is None:
        if results_dir is None or not Path(results_dir).is_dir():
            raise SchemaError(f"results {results_dir} is not a readable directory")
        runs = load_runs(results_dir, on_skip=lambda _msg: None)
    if not runs:
        raise SchemaError(f"no readable run file under {results_dir}")
    chosen = _choose_machine(runs, machine)
    mine = [r for r in runs if r["machine"] == chosen]
    _, df = select_latest(mine)

    benchmarks = _benchmarks(df, chosen) if not df.empty else []
    used = {r for r in df["run_id"]} if not df.empty else set()
    used_runs = [r for r in mine if r["run_id"] in used] or mine
    return {
        "machine_info": _machine_info(chosen, used_runs),
        "commit_info": _commit_info(used_runs),
        "benchmarks": benchmarks,
        "datetime": _iso(max(r.get("updated_at") or r.get("created_at") or "" for r in used_runs)),
        "version": PYTEST_BENCHMARK_FORMAT_VERSION,
    }


def _benchmarks(df: pd.DataFrame, machine: str) -> list[Benchmark]:
    """One pytest-benchmark entry per timed metric of every experiment x variant x scenario cell; the
    cell's other metrics (medians) ride along in extra_info."""
    df = df.sort_values(["experiment", "variant", "scenario", "metric", "run_id", "trial"], kind="stable")
    out: list[Benchmark] = []
    for key, cell in df.groupby(["experiment", "variant", "scenario"], sort=True):
        experiment, variant, scenario = (str(k) for k in key)
        extra_metrics: dict[str, int | float] = {}
        for name, g in cell.groupby("metric", sort=True):
            if kind_of(metric := str(name)) != "time":
                value = float(g["value"].median())
                extra_metrics[metric] = int(value) if value == int(value) else value
        for name, g in cell.groupby("metric", sort=True):
            if kind_of(metric := str(name)) == "time":
                extra: JSONObject = {
                    "experiment": experiment,
                    "variant": variant,
                    "scenario": scenario,
                    "metric": metric,
                    "unit": unit_of(metric) or "s",
                    "machine": machine,
                    "run_ids": sorted(set(g["run_id"])),
                    **extra_metrics,
                }
                out.append(_benchmark(experiment, variant, scenario, metric, g["value"].tolist(), extra))
    return out


def _benchmark(
    experiment: str, variant: str, scenario: str, metric: str, values: list[float], extra: JSONObject
) -> Benchmark:
    """One benchmark entry in pytest-benchmark's shape."""
    param = f"{variant}-{scenario}"
    return {
        "group": f"{experiment}/{scenario}/{metric}",
        "name": f"{experiment}:{metric}[{param}]",
        "fullname": f"experiments/{experiment}::{metric}[{param}]",
        "params": {"variant": variant, "scenario": scenario},
        "param": param,
        "extra_info": extra,
        "options": {
            "disable_gc": False,
            "timer": "imagebench",
            "min_rounds": len(values),
            "max_time": 0.0,
            "min_time": 0.0,
            "warmup": False,
        },
        "stats": pb_stats(values),
    }


def run_export(
    results_dir: Path, *, fmt: str = "pytest-benchmark", out: Path | None = None, machine: str | None = None
) -> BenchmarkDocument:
    """What `imagebench export` does: the document, also written to `out` when given (atomically)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (formats: {', '.join(FORMATS)})")
    doc = export_pytest_benchmark(results_dir, machine=machine)
    if out is not None:
        out = Path(out)
        if out.parent and not out.parent.is_dir():
            raise UsageError(f"cannot write {out}: {out.parent} is not a directory")
        atomic_write_json(out, doc)
    return doc


def dumps(doc: Mapping[str, object]) -> str:
    return json.dumps(doc, indent=4)
