"""Unit tests of the rawjson event parser on streams recorded from a real daemon.

The fixtures under tests/fixtures/rawjson were written by scripts/record-fixtures.sh
(Docker Engine 26.1.5, buildx 0.13.1). Expected values are computed from the raw JSON
objects by the small, independent helpers below, or follow from the Dockerfiles the
script builds (e.g. "RUN sleep 0.3" takes at least 0.3 s).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.engine.events import (
    BuildEvents,
    EventParser,
    parse_step_name,
    parse_stream,
    parse_timestamp,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rawjson"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def parse(name: str) -> BuildEvents:
    return parse_stream(text(name))


def objects(stream: str) -> tuple[list[dict], str]:
    """Oracle: the JSON objects of a stream and the text after them."""
    dec, i, objs = json.JSONDecoder(), 0, []
    while True:
        while i < len(stream) and stream[i] in " \t\r\n":
            i += 1
        if i >= len(stream) or stream[i] != "{":
            return objs, stream[i:]
        obj, i = dec.raw_decode(stream, i)
        objs.append(obj)


def iso(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def by_name(ev: BuildEvents, fragment: str):
    (step,) = [s for s in ev.steps if fragment in s.name]
    return step


def dumps(objs: list[dict], tail: str = "") -> str:
    return "".join(json.dumps(o, indent=2) + "\n" for o in objs) + tail


# ---- framing ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["multistage-cold", "fail-run"])
def test_both_framings_give_the_same_result(name):
    """One-object-per-line (buildx >= 0.15) parses exactly like indented JSON (0.13)."""
    indented, lines = text(f"{name}.rawjson"), text(f"{name}.jsonl")
    assert indented.startswith("{\n  ")  # really pretty-printed
    assert all(line.startswith("{") for line in lines.splitlines()[: parse(f"{name}.jsonl").events])
    assert parse(f"{name}.rawjson") == parse(f"{name}.jsonl")


@pytest.mark.parametrize(
    "name", ["multistage-cold.rawjson", "multistage-warm.rawjson", "fail-run.rawjson", "context-1mib.rawjson"]
)
def test_event_count_matches_the_objects_in_the_stream(name):
    """`events` counts every SolveStatus object, however it is framed."""
    objs, _ = objects(text(name))
    assert parse(name).events == len(objs) == text(name).count("\n}\n") + text(name).endswith("\n}")


def test_file_object_and_bytes_inputs_parse_like_a_string():
    """An open file (iterates lines), bytes and a str give the same result."""
    path = FIXTURES / "fail-run.rawjson"
    with path.open() as fh:
        from_file = parse_stream(fh)
    assert from_file == parse_stream(path.read_text()) == parse_stream(path.read_bytes())


def test_steps_are_in_first_seen_order():
    """Steps keep the order in which their digests first appeared."""
    objs, _ = objects(text("multistage-cold.rawjson"))
    seen: list[str] = []
    for o in objs:
        for v in o.get("vertexes") or []:
            if v["digest"] not in seen:
                seen.append(v["digest"])
    assert [s.digest for s in parse("multistage-cold.rawjson").steps] == seen


# ---- chunk boundaries ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(["fail-run.rawjson", "multistage-cold.jsonl", "restart-vertex.rawjson"]),
)
def test_splitting_the_stream_anywhere_changes_nothing(data, name):
    """Objects, lines and the error tail split at random points parse identically."""
    stream = text(name)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=40)))
    as_bytes = data.draw(st.booleans())
    parser = EventParser()
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        parser.feed(stream[a:b].encode() if as_bytes else stream[a:b])
    assert parser.close() == parse_stream(stream)


def test_every_single_split_around_the_error_tail():
    """A cut at any position near the JSON/plain-text border changes nothing."""
    stream = text("fail-run.rawjson")
    border = len(stream) - len(objects(stream)[1])
    expected = parse_stream(stream)
    for k in range(border - 400, len(stream) + 1):
        parser = EventParser()
        parser.feed(stream[:k])
        parser.feed(stream[k:])
        assert parser.close() == expected, k


def test_split_inside_a_multibyte_character():
    """UTF-8 bytes split in the middle of a character are decoded correctly."""
    stream = text("fail-run.rawjson") + "\n→ détail"
    raw = stream.encode()
    cut = raw.index("→".encode()) + 1
    parser = EventParser()
    parser.feed(raw[:cut])
    parser.feed(raw[cut:])
    assert parser.close().error_text.endswith("→ détail")


def test_one_character_chunks():
    """The degenerate chunking (one character at a time) still parses."""
    stream = text("cachemount.rawjson")
    assert parse_stream(iter(stream)) == parse_stream(stream)


# ---- failure and the error tail --------------------------------------------------


def test_failed_build_keeps_the_plain_text_tail():
    """After the last object, the plain text is the error; the failing step has `error`."""
    ev = parse("fail-run.rawjson")
    _, tail = objects(text("fail-run.rawjson"))
    assert ev.error_text == tail.strip()
    assert ev.error_text.startswith("Dockerfile:4")
    assert ev.error_summary().startswith("ERROR: failed to solve:")
    assert "exit code: 3" in ev.error_summary()
    failing = by_name(ev, "RUN echo about to fail")
    assert failing.error is not None and "exit code: 3" in failing.error
    assert failing.index == 4 and failing.total == 5
    assert ev.image_id is None


def test_a_step_that_never_ran_has_no_times():
    """Steps after the failure have no start, no completion and zero seconds."""
    never = by_name(parse("fail-run.rawjson"), "RUN echo never runs")
    assert (never.started, never.completed, never.seconds, never.intervals) == (None, None, 0.0, ())
    assert not never.cached


def test_cached_is_not_trusted_on_failure():
    """counts(succeeded=False) gives the total but no cached/executed numbers."""
    ev = parse("fail-run.rawjson")
    assert ev.counts(False) == {"steps_total": 5, "steps_cached": None, "steps_executed": None}


def test_successful_build_has_no_error_text():
    """A successful stream has an empty error tail and an image id."""
    ev = parse("multistage-cold.rawjson")
    assert ev.error_text == "" and ev.error_summary() == ""
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", ev.image_id)


def test_truncated_stream_keeps_the_complete_objects():
    """A stream cut inside an object (killed build): the partial object becomes error text."""
    stream = text("multistage-cold.rawjson")
    cut = stream.index('"started"', len(stream) // 2)
    ev = parse_stream(stream[:cut])
    objs, _ = objects(stream[: stream.rindex("\n}\n", 0, cut) + 3])
    assert ev.events == len(objs)
    assert ev.error_text.startswith("{")


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        ("", ""),
        ("\n  \n", ""),
        ("ERROR: Cannot connect to the Docker daemon\n", "ERROR: Cannot connect to the Docker daemon"),
        (
            '#0 building with "default" instance\n#1 DONE 0.0s\n',
            '#0 building with "default" instance\n#1 DONE 0.0s',
        ),
        ('{"vertexes": []}\n{"vertexes": [', '{"vertexes": ['),
        ('{"a": 1}\n[1, 2]\n', "[1, 2]"),
    ],
)
def test_streams_without_usable_json(stream, error):
    """Empty input, plain text only and broken JSON end up in error_text."""
    ev = parse_stream(stream)
    assert ev.error_text == error
    assert ev.steps == ()


def test_feed_after_close_is_an_error():
    """The parser cannot be reused after close()."""
    parser = EventParser()
    parser.close()
    with pytest.raises(ValueError):
        parser.feed("{}")


# ---- timing: intervals, restarts, span -------------------------------------------


def oracle_seconds(stream: str, digest: str) -> float:
    """Merged-interval seconds of one vertex, computed straight from the objects."""
    intervals: dict[str, str] = {}
    for o in objects(stream)[0]:
        for v in o.get("vertexes") or []:
            if v["digest"] == digest and v.get("completed"):
                intervals[v["started"]] = v["completed"]
    spans = sorted((iso(a), iso(b)) for a, b in intervals.items())
    total, end = 0.0, float("-inf")
    for a, b in spans:
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def test_run_sleep_takes_at_least_its_sleep():
    """RUN sleep 0.3 executes (not cached) and lasts at least 0.3 s on a cold build."""
    step = by_name(parse("multistage-cold.rawjson"), "RUN sleep 0.3")
    assert not step.cached
    assert 0.3 <= step.seconds < 5
    assert step.stage == "builder" and step.instruction == "RUN"


def test_a_real_vertex_that_started_twice():
    """The recorded FROM vertex has two start/complete intervals; both are summed."""
    stream = text("multistage-cold.rawjson")
    step = by_name(parse_stream(stream), "FROM")
    starts = {
        v["started"]
        for o in objects(stream)[0]
        for v in o.get("vertexes") or []
        if v["digest"] == step.digest and "started" in v
    }
    assert len(starts) == 2
    assert step.seconds == pytest.approx(oracle_seconds(stream, step.digest), abs=1e-9)
    assert step.started == min(iso(s) for s in starts)


def test_restarted_vertex_merges_intervals_like_progressui():
    """restart-vertex: a duplicate announcement is ignored, a restart adds time, an overlap merges."""
    cold = by_name(parse("multistage-cold.rawjson"), "RUN sleep 0.3")
    again = by_name(parse("restart-vertex.rawjson"), "RUN sleep 0.3")
    assert again.digest == cold.digest
    assert len(again.intervals) == 2
    assert again.intervals[0] == cold.intervals[0]
    s2, e2 = again.intervals[1]
    assert s2 == int(s2)  # the whole-second timestamp without a fraction
    assert e2 - s2 == pytest.approx(0.3, abs=1e-6)  # [s2, s2+.25] and [s2+.1, s2+.3] merged
    assert again.seconds == pytest.approx(cold.seconds + 0.3, abs=1e-6)
    assert again.started == cold.started and again.completed == e2
    assert not again.cached


def test_update_without_started_does_not_reset_a_started_vertex():
    """A later copy of a vertex with only digest and name keeps its cached flag and times."""
    objs, _ = objects(text("multistage-warm.rawjson"))
    before = parse_stream(dumps(objs))
    cached = [s for s in before.dockerfile_steps() if s.cached]
    assert cached
    objs.append({"vertexes": [{"digest": s.digest, "name": s.name} for s in cached]})
    after = parse_stream(dumps(objs))
    assert after.steps == before.steps


def test_span_is_first_start_to_last_completion():
    """span_seconds = max(completed) - min(started) over all vertices."""
    stream = text("multistage-cold.rawjson")
    starts, ends = [], []
    for o in objects(stream)[0]:
        for v in o.get("vertexes") or []:
            if "started" in v:
                starts.append(iso(v["started"]))
            if "completed" in v:
                ends.append(iso(v["completed"]))
    assert parse_stream(stream).span_seconds == pytest.approx(max(ends) - min(starts), abs=1e-9)


def test_push_vertex_is_excluded_from_the_span():
    """A 'pushing ... with docker' vertex (docker driver --push) does not extend the span."""
    objs, _ = objects(text("multistage-cold.rawjson"))
    plain = parse_stream(dumps(objs))
    end = max(s.completed for s in plain.steps if s.completed)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    start, stop = (datetime.fromtimestamp(end + d, UTC).strftime(fmt) for d in (5, 6))
    push = {"digest": "sha256:" + "ab" * 32, "name": "pushing 127.0.0.1:5000/x:1 with docker"}
    objs.append({"vertexes": [{**push, "started": start, "completed": stop}]})
    pushed = parse_stream(dumps(objs))
    assert pushed.span_seconds == plain.span_seconds
    assert pushed.steps[-1].seconds > 0 and not pushed.steps[-1].is_dockerfile_step


# ---- cache, counts, context, logs ------------------------------------------------


def test_cold_build_counts():
    """Cold multi-stage: 6 Dockerfile step vertices; RUN and COPY steps executed."""
    ev = parse("multistage-cold.rawjson")
    counts = ev.counts(True)
    assert counts["steps_total"] == 6
    assert counts["steps_cached"] + counts["steps_executed"] == 6
    for s in ev.dockerfile_steps():
        if s.instruction in ("RUN", "COPY"):
            assert not s.cached, s.name
    assert counts["steps_executed"] >= 4


def test_warm_build_has_every_run_and_copy_cached():
    """The identical rebuild: every RUN/COPY/WORKDIR step cached and about 0 s; same image."""
    warm, cold = parse("multistage-warm.rawjson"), parse("multistage-cold.rawjson")
    for s in warm.dockerfile_steps():
        if s.instruction != "FROM":
            assert s.cached and s.seconds < 0.01, s.name
    assert warm.counts(True)["steps_cached"] >= 5
    assert warm.image_id == cold.image_id


def test_cached_from_on_a_cold_build_is_reported_as_is():
    """A FROM of a local image shows cached=true even with --no-cache; the parser keeps it."""
    ev = parse("context-1mib.rawjson")
    frm = by_name(ev, "FROM")
    assert frm.cached and frm.instruction == "FROM" and frm.index == 1
    assert not by_name(ev, "RUN wc").cached
    assert ev.counts(True) == {"steps_total": 3, "steps_cached": 1, "steps_executed": 2}


def test_counts_exclude_internal_vertices():
    """[internal] and exporting vertices are steps but not Dockerfile steps."""
    ev = parse("context-1mib.rawjson")
    others = [s for s in ev.steps if not s.is_dockerfile_step]
    assert {s.name.split(" ")[0] for s in others} == {"[internal]", "exporting"}
    assert all(s.instruction is None and s.index is None for s in others)
    assert len(ev.steps) == len(others) + ev.counts(True)["steps_total"]


def context_status(stream: str) -> dict[str, int]:
    """Oracle: max 'transferring context:' bytes per vertex name."""
    names: dict[str, str] = {}
    best: dict[str, int] = {}
    objs = objects(stream)[0]
    for o in objs:
        for v in o.get("vertexes") or []:
            names[v["digest"]] = v.get("name", "")
    for o in objs:
        for s in o.get("statuses") or []:
            if s["id"] == "transferring context:":
                n = names[s["vertex"]]
                best[n] = max(best.get(n, 0), s.get("current", 0))
    return best


def test_context_bytes_come_from_the_build_context_vertex():
    """1 MiB file sent; the .dockerignore vertex's own 'transferring context:' is not counted."""
    stream = text("context-1mib.rawjson")
    oracle = context_status(stream)
    assert set(oracle) == {"[internal] load .dockerignore", "[internal] load build context"}
    sent = parse_stream(stream).context_sent_bytes
    assert sent == oracle["[internal] load build context"]
    assert 1_048_576 <= sent < 1_048_576 + 4096


def test_context_bytes_only_cover_referenced_files():
    """COPY a.txt sends a few bytes; a build without a context has None."""
    assert parse("multistage-cold.rawjson").context_sent_bytes < 1000
    assert parse("cachemount.rawjson").context_sent_bytes is None


def test_log_bytes_are_the_decoded_log_data():
    """log_bytes sums the base64-decoded size of every log message."""
    stream = text("fail-run.rawjson")
    expected = sum(
        len(base64.b64decode(log["data"])) for o in objects(stream)[0] for log in o.get("logs") or []
    )
    assert parse_stream(stream).log_bytes == expected > 0


def test_cache_mount_single_stage_has_stage_0_prefix():
    """A single-stage file with RUN --mount=type=cache names its steps [stage-0 i/n]."""
    steps = parse("cachemount.rawjson").dockerfile_steps()
    assert [(s.stage, s.index, s.total, s.instruction) for s in steps] == [
        ("stage-0", 2, 2, "RUN"),
        ("stage-0", 1, 2, "FROM"),
    ]


# ---- names and timestamps --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("[2/2] RUN echo x", (None, None, 2, 2, "RUN")),
        ("[stage-0 2/2] RUN --mount=type=cache,target=/c true", (None, "stage-0", 2, 2, "RUN")),
        ("[builder 3/5] RUN make", (None, "builder", 3, 5, "RUN")),
        ("[linux/amd64 builder 1/3] FROM docker.io/library/x", ("linux/amd64", "builder", 1, 3, "FROM")),
        ("[linux/arm/v7 2/3] COPY a b", ("linux/arm/v7", None, 2, 3, "COPY")),
        ("[builder  3/10] WORKDIR /src", (None, "builder", 3, 10, "WORKDIR")),
        ("[ 3/10] ADD x y", (None, None, 3, 10, "ADD")),
        ("[stage-2 1/1] COPY --from=b /x /x", (None, "stage-2", 1, 1, "COPY")),
        ("[internal] load build context", (None, None, None, None, None)),
        ("[internal] load metadata for docker.io/library/python:3.12", (None, None, None, None, None)),
        ("exporting to image", (None, None, None, None, None)),
        ("pushing 127.0.0.1:5000/x:1 with docker", (None, None, None, None, None)),
    ],
)
def test_step_names(name, expected):
    """The name pattern takes optional platform and stage prefixes and padded indexes."""
    assert parse_step_name(name) == expected


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-27T06:28:01.691441659Z",
        "2026-11-27T06:28:01.6914416Z",
        "2026-11-27T06:28:01.25Z",
        "2026-11-27T06:28:01Z",
        "2024-02-29T23:59:59.999999999Z",
        "1999-12-31T23:59:59.000001Z",
        "2026-11-27T07:28:01.691441659+01:00",
    ],
)
def test_timestamps_match_fromisoformat(ts):
    """The fast path gives exactly what datetime.fromisoformat gives (micro-truncated)."""
    assert parse_timestamp(ts) == datetime.fromisoformat(ts).timestamp()


def go_rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 10**9)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


@given(st.integers(0, 4_000_000_000 * 10**9))
def test_timestamps_truncate_nanoseconds(ns):
    """Any Go-formatted instant parses to its value truncated to microseconds."""
    assert parse_timestamp(go_rfc3339nano(ns)) == (ns // 1000) / 1_000_000
