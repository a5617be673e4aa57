"""Benchmark of the rawjson event parser on a 10,000-event stream (issue 8: >= 50,000 events/s).

The stream is built deterministically from the real recorded builds in
tests/fixtures/rawjson: their SolveStatus objects are replayed as consecutive builds,
each copy with its own vertex digests and timestamps shifted by whole seconds, so the
parser does the same work as for that many distinct vertices (nothing is memoised
across copies). It is fed in 64 KiB chunks, the size the runner reads from the pipe.

    pytest tests/benchmarks --benchmark-only
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.engine.events import parse_stream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rawjson"
RECORDED = ["multistage-cold", "multistage-warm", "cachemount", "context-1mib"]
N_EVENTS = 10_000
MIN_EVENTS_PER_SECOND = 50_000
CHUNK = 65536

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z")


def _objects(text: str) -> list[dict]:
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text) or text[i] != "{":
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


def _rewrite(value, copy: int):
    """The same value in build copy `copy`: digests made unique, times shifted."""
    if isinstance(value, dict):
        return {k: _rewrite(v, copy) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, copy) for v in value]
    if isinstance(value, str):
        if _DIGEST.fullmatch(value):
            return value[:-8] + f"{copy:08x}"
        m = _TS.fullmatch(value)
        if m:
            whole = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
            shifted = (whole + timedelta(seconds=copy)).strftime("%Y-%m-%dT%H:%M:%S")
            return f"{shifted}{m[2] or ''}Z"
    return value


def make_stream(n_events: int = N_EVENTS, *, indent: int | None = 2) -> str:
    """n_events SolveStatus objects from the recorded builds, indented like buildx 0.13."""
    builds = [_objects((FIXTURES / f"{name}.rawjson").read_text()) for name in RECORDED]
    out: list[str] = []
    copy = 0
    sep = None if indent else (",", ":")
    while len(out) < n_events:
        for obj in builds[copy % len(builds)]:
            if len(out) == n_events:
                break
            out.append(json.dumps(_rewrite(obj, copy), indent=indent, separators=sep))
        copy += 1
    return "".join(o + "\n" for o in out)


@pytest.fixture(scope="module", params=["indented", "jsonl"])
def chunks(request) -> list[str]:
    stream = make_stream(indent=2 if request.param == "indented" else None)
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def test_parser_events_per_second(benchmark, chunks):
    """Parse 10,000 recorded events at 50,000 events per second or more (best round)."""
    result = benchmark(parse_stream, chunks)
    assert result.events == N_EVENTS
    assert result.error_text == ""
    assert len(result.steps) > 2000  # distinct vertices per copy, not one merged build
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing timed
        return
    # The floor is judged on the fastest round: on a shared 2-CPU machine the mean mostly
    # measures the neighbours. Mean and median rates are stored next to it.
    timing = benchmark.stats.stats
    rate = N_EVENTS / timing.min
    benchmark.extra_info["events"] = N_EVENTS
    benchmark.extra_info["events_per_second"] = round(rate)
    benchmark.extra_info["events_per_second_median"] = round(N_EVENTS / timing.median)
    benchmark.extra_info["events_per_second_mean"] = round(N_EVENTS / timing.mean)
    benchmark.extra_info["stream_bytes"] = sum(len(c) for c in chunks)
    assert rate >= MIN_EVENTS_PER_SECOND, f"{rate:,.0f} events/s"
