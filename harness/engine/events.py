"""Streaming parser of `docker buildx build --progress=rawjson` output (stderr).

Pure: no Docker, no I/O. Feed it text as it arrives and close it to get a
`BuildEvents` summary.

Stream facts it relies on (``buildkit-facts.md`` §1):

* Each message is one ``client.SolveStatus`` JSON object. buildx 0.13 pretty-prints
  them over several lines; buildx 0.15 and later write one per line. Objects are
  decoded with ``json.JSONDecoder.raw_decode`` over a buffer, so both framings and
  objects split anywhere across chunks parse the same way.
* When a build fails, buildx appends plain text (``Dockerfile:4 ... ERROR: failed to
  solve: ...``) after the last object. Parsing stops at the first byte that cannot
  start or continue a JSON object, and the rest is kept as `BuildEvents.error_text`.
* A vertex (one digest) appears in many messages and can start more than once. Its
  time is the sum of its merged ``started``/``completed`` intervals, as BuildKit's
  progressui computes it (``mergeIntervals``). An update without ``started`` that
  arrives after the vertex started is ignored ("a duplicate initial vertex that
  shouldn't reset state").
* ``cached`` is reported as BuildKit sends it. A ``FROM`` of a local image can be
  cached on a cold build, and on failed builds skipped steps can show up as cached,
  so `BuildEvents.counts` only trusts it for successful builds.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

__all__ = ["BuildEvents", "EventParser", "Step", "parse_step_name", "parse_stream", "parse_timestamp"]

# "[" [platform " "] [stage " "] "%*d/%d] " INSTRUCTION args  (convert.go prefixCommand)
_STEP_NAME = re.compile(
    r"\[(?:(?P<plat>[^\s\]/]+/[^\s\]]+) )?(?:(?P<stage>[^\s\]]+) )?\s*(?P<i>\d+)/(?P<n>\d+)\] "
    r"(?P<instr>[A-Za-z]+)\b"
)
_WS = re.compile(r"[ \t\n\r]*")
_CONTEXT_VERTEX = "[internal] load build context"
_CONTEXT_STATUS = "transferring context:"
_IMAGE_STATUS = "writing image "
# JSONDecodeError positions this close to the end of the buffer mean "truncated, need
# more input" (e.g. a chunk that ends inside "\u0026").
_TRUNCATION_SLACK = 8


class _RawVertex(TypedDict, total=False):
    """A vertex of a rawjson status, as far as the parser reads it (BuildKit's client.Vertex)."""

    digest: str
    name: str
    started: str | None
    completed: str | None
    cached: bool
    error: str


class _RawStatus(TypedDict, total=False):
    """A progress status of a vertex (client.VertexStatus): transferred bytes, the image written."""

    id: str
    vertex: str
    current: int


class _RawLog(TypedDict, total=False):
    """A chunk of a vertex's output (client.VertexLog; `data` is base64)."""

    vertex: str
    data: str


class _SolveStatus(TypedDict, total=False):
    """One object of `docker buildx build --progress=rawjson` (client.SolveStatus)."""

    vertexes: list[_RawVertex]
    statuses: list[_RawStatus]
    logs: list[_RawLog]
    warnings: list[object]


@dataclass(frozen=True)
class Step:
    """One BuildKit vertex, with its Dockerfile step coordinates when it has them."""

    digest: str
    name: str
    stage: str | None  # "builder", "stage-0"; None when the name has no stage part
    index: int | None  # i of "[i/n]"
    total: int | None  # n of "[i/n]"
    instruction: str | None  # "RUN", "COPY", "FROM", ...; None for [internal] and exporting
    is_dockerfile_step: bool  # the name matches "[stage i/n] INSTR ..."
    cached: bool
    error: str | None
    started: float | None  # epoch seconds of the first start
    completed: float | None  # epoch seconds of the last completion
    seconds: float  # sum of the merged start/complete intervals
    intervals: tuple[tuple[float, float], ...]  # merged, sorted
    platform: str | None = None  # "linux/amd64" when several platforms were built


@dataclass(frozen=True)
class BuildEvents:
    """What one rawjson stream says about a build."""

    steps: tuple[Step, ...]  # every vertex, in first-seen order
    error_text: str  # plain-text tail after the JSON ('' on success), stripped
    events: int  # SolveStatus objects parsed
    context_sent_bytes: int | None  # bytes of "transferring context:" on the build-context vertex
    image_id: str | None  # "sha256:..." from the "writing image" status
    span_seconds: float | None  # first start .. last completion, push vertices excluded
    log_bytes: int  # decoded bytes of all vertex logs (RUN output)
    warnings: int = 0  # VertexWarning objects seen (Dockerfile frontend >= 1.8 only)
    failed_log: str = ""  # last output lines of the vertices that failed (decoded), '' on success

    def dockerfile_steps(self) -> tuple[Step, ...]:
        """The vertices that are Dockerfile instructions (``[stage i/n] INSTR``)."""
        return tuple(s for s in self.steps if s.is_dockerfile_step)

    def counts(self, succeeded: bool) -> dict[str, int | None]:
        """Step counts over Dockerfile step vertices only.

        Args:
            succeeded: whether the build exited 0. On failure ``cached`` also means
                "skipped", so ``steps_cached`` and ``steps_executed`` are None.

        Returns:
            ``{"steps_total", "steps_cached", "steps_executed"}``.
        """
        steps = self.dockerfile_steps()
        if not succeeded:
            return {"steps_total": len(steps), "steps_cached": None, "steps_executed": None}
        cached = sum(1 for s in steps if s.cached)
        return {"steps_total": len(steps), "steps_cached": cached, "steps_executed": len(steps) - cached}

    def error_summary(self) -> str:
        """The last ``ERROR:`` line of the error tail (else its last line), '' if none."""
        lines = [line.strip() for line in self.error_text.splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith("ERROR"):
                return line
        return lines[-1] if lines else ""


def parse_step_name(name: str) -> tuple[str | None, str | None, int | None, int | None, str | None]:
    """Split a vertex name into (platform, stage, index, total, instruction).

    All None when the name is not a Dockerfile step (``[internal] ...``, ``exporting to
    image``).
    """
    m = _STEP_NAME.match(name)
    if m is None:
        return None, None, None, None, None
    return m["plat"], m["stage"], int(m["i"]), int(m["n"]), m["instr"].upper()


def parse_timestamp(ts: str) -> float:
    """RFC3339Nano (as Go writes it) to epoch seconds, truncated to microseconds.

    Python >= 3.11's C ``datetime.fromisoformat`` takes the ``Z`` suffix, a trimmed or
    missing fraction and up to 9 digits (truncating beyond 6); at about 0.8 us a call
    it is faster than any pure-Python slicing parser. Parsers also memoise per string.
    """
    return _fromisoformat(ts).timestamp()


_fromisoformat = datetime.fromisoformat


@dataclass(slots=True)
class _Vertex:
    digest: str
    order: int
    name: str = ""
    cached: bool = False
    error: str | None = None
    started: bool = False
    # started timestamp string -> completed timestamp string (None while running)
    intervals: dict[str, str | None] = field(default_factory=dict)
    context_bytes: int | None = None


class EventParser:
    """Incremental parser: ``feed()`` chunks as they arrive, then ``close()``.

    Chunks may be ``str`` or ``bytes`` (UTF-8, decoded incrementally) and may split
    objects, lines or multi-byte characters anywhere.
    """

    def __init__(self) -> None:
        self._decoder = json.JSONDecoder()
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._tail: list[str] | None = None  # set once plain text has started
        self._waiting = False  # the buffer holds a truncated object
        self._vertices: dict[str, _Vertex] = {}
        self._ts: dict[str, float] = {}
        self._events = 0
        self._image_id: str | None = None
        self._log_bytes = 0
        self._log_tail: dict[
            str, list[str]
        ] = {}  # vertex -> last base64 log chunks (decoded only on failure)
        self._warnings = 0
        self._closed = False

    # ---- input -------------------------------------------------------------------

    def feed(self, chunk: str | bytes) -> None:
        """Consume the next piece of the stream."""
        if self._closed:
            raise ValueError("feed() after close()")
        if isinstance(chunk, bytes | bytearray):
            chunk = self._utf8.decode(chunk)
        if not chunk:
            return
        if self._tail is not None:
            self._tail.append(chunk)
            return
        if self._waiting and "}" not in chunk:
            self._buf += chunk  # an object cannot end in this chunk
            return
        self._buf += chunk
        self._drain(final=False)

    def close(self) -> BuildEvents:
        """End of stream: return the summary. A truncated object becomes error text."""
        if not self._closed:
            rest = self._utf8.decode(b"", final=True)
            if rest:
                if self._tail is not None:
                    self._tail.append(rest)
                else:
                    self._buf += rest
            if self._tail is None:
                self._drain(final=True)
            self._closed = True
        return self._summary()

    def _drain(self, *, final: bool) -> None:
        buf, pos, n = self._buf, 0, len(self._buf)
        # scan_once: JSONDecoder sets it in __init__ (typeshed does not declare it)
        scan, ws, handle = self._decoder.scan_once, _WS.match, self._handle  # type: ignore[attr-defined]
        self._waiting = False
        while True:
            if buf.startswith("\n{", pos):  # the usual gap between two objects
                pos += 1
            else:
                pos = ws(buf, pos).end()  # type: ignore[union-attr]  # r"\s*" always matches
                if pos >= n:
                    self._buf = ""
                    return
                if buf[pos] != "{":
                    break
            try:
                obj, pos2 = scan(buf, pos)
            except (json.JSONDecodeError, StopIteration) as exc:
                # the C scanner raises StopIteration(index) for "Expecting value"
                where, msg = (exc.pos, exc.msg) if isinstance(exc, json.JSONDecodeError) else (exc.value, "")
                if not final and (where >= n - _TRUNCATION_SLACK or msg.startswith("Unterminated")):
                    self._buf = buf[pos:]
                    self._waiting = True
                    return
                break
            handle(obj)
            pos = pos2
        self._buf = ""
        self._tail = [buf[pos:]]

    # ---- semantics ---------------------------------------------------------------

    def _handle(self, status: _SolveStatus) -> None:
        self._events += 1
        vertices = self._vertices
        for v in status.get("vertexes") or ():
            digest = v.get("digest")
            if not digest:
                continue
            vx = vertices.get(digest)
            if vx is None:
                vx = vertices[digest] = _Vertex(digest, len(vertices))
            started = v.get("started")
            if started is None:
                if vx.started:
                    continue  # duplicate initial vertex: must not reset state
            else:
                vx.started = True
                completed = v.get("completed")
                if completed is not None or started not in vx.intervals:
                    vx.intervals[started] = completed
            vx.name = v.get("name") or vx.name
            vx.cached = bool(v.get("cached"))
            vx.error = v.get("error") or None
        for st in status.get("statuses") or ():
            sid = st.get("id") or ""
            if sid == _CONTEXT_STATUS:
                digest = st.get("vertex")
                vx = vertices.get(digest) if digest else None
                if vx is None and digest:
                    vx = vertices[digest] = _Vertex(digest, len(vertices))
                if vx is not None:
                    current = int(st.get("current") or 0)
                    if vx.context_bytes is None or current > vx.context_bytes:
                        vx.context_bytes = current
            elif sid.startswith(_IMAGE_STATUS):
                image = sid[len(_IMAGE_STATUS) :].strip()
                if image.startswith("sha256:"):
                    self._image_id = image
        for log in status.get("logs") or ():
            data = log.get("data") or ""
            self._log_bytes += len(data) * 3 // 4 - data[-2:].count("=")
            tail = self._log_tail.setdefault(log.get("vertex", ""), [])
            tail.append(data)
            if len(tail) > 40:
                del tail[:-20]
        self._warnings += len(status.get("warnings") or ())

    def _time(self, ts: str) -> float:
        t = self._ts.get(ts)
        if t is None:
            t = self._ts[ts] = parse_timestamp(ts)
        return t

    def _step(self, vx: _Vertex) -> Step:
        t = self._time
        raw = sorted([(t(s), t(c)) for s, c in vx.intervals.items() if c is not None])
        merged: list[list[float]] = []
        for start, stop in raw:
            if merged and start <= merged[-1][1]:
                if stop > merged[-1][1]:
                    merged[-1][1] = stop
            else:
                merged.append([start, stop])
        starts = [t(s) for s in vx.intervals]
        plat, stage, index, total, instr = parse_step_name(vx.name)
        return Step(
            digest=vx.digest,
            name=vx.name,
            stage=stage,
            index=index,
            total=total,
            instruction=instr,
            is_dockerfile_step=index is not None,
            cached=vx.cached,
            error=vx.error,
            started=min(starts) if starts else None,
            completed=max(stop for _, stop in raw) if raw else None,
            seconds=sum(b - a for a, b in merged),
            intervals=tuple((a, b) for a, b in merged),
            platform=plat,
        )

    def _summary(self) -> BuildEvents:
        ordered = sorted(self._vertices.values(), key=lambda vx: vx.order)
        steps = tuple(self._step(vx) for vx in ordered if vx.name)
        sent = [vx.context_bytes for vx in ordered if vx.name == _CONTEXT_VERTEX]
        sent_bytes = sum(b for b in sent if b is not None) if any(b is not None for b in sent) else None
        timed = [s for s in steps if not _is_push(s.name)]
        starts = [s.started for s in timed if s.started is not None]
        ends = [s.completed for s in timed if s.completed is not None]
        span = max(ends) - min(starts) if starts and ends else None
        tail = "".join(self._tail).strip() if self._tail is not None else ""
        failed = []
        for vx in ordered:
            if vx.error and vx.digest in self._log_tail:
                text = b"".join(base64.b64decode(d) for d in self._log_tail[vx.digest]).decode(
                    "utf-8", "replace"
                )
                failed.append(text[-3000:])
        return BuildEvents(
            steps=steps,
            error_text=tail,
            events=self._events,
            context_sent_bytes=sent_bytes,
            image_id=self._image_id,
            span_seconds=span,
            log_bytes=self._log_bytes,
            warnings=self._warnings,
            failed_log="\n".join(failed).strip(),
        )


def _is_push(name: str) -> bool:
    return name.startswith("pushing ") and name.endswith(" with docker")


def parse_stream(chunks: Iterable[str | bytes] | str | bytes) -> BuildEvents:
    """Parse a whole stream: an iterable of chunks, an open file, or one string."""
    parser = EventParser()
    if isinstance(chunks, str | bytes | bytearray):
        parser.feed(chunks)
    else:
        for chunk in chunks:
            parser.feed(chunk)
    return parser.close()
