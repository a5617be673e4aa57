"""addsource: what ADD does that COPY does not (remote URLs, automatic tar extraction).

Variant options (`run = { source = "..." }`):

  url   the Dockerfile has `ARG PAYLOAD_URL` + `ADD ${PAYLOAD_URL} <dest>`. The probe serves a
        deterministic file on 127.0.0.1 (with ETag and Last-Modified, like a real web server),
        passes its URL as PAYLOAD_URL, then rebuilds twice: with the file unchanged, and after the
        file changed. It records whether the ADD step ran again each time and the bytes the
        server sent during the rebuilds.
  tar   the Dockerfile ADDs or COPYs `payload.tar` from the context to `dest` (a directory).
        The probe looks into the image: extracted members, or the tar file itself.

Options: `dest` (default /opt/payload), `member` (a file inside payload.tar, default "hello.txt"),
`etag` (url only, default true: the server sends an ETag and answers If-None-Match with 304;
false: Last-Modified only, like `python -m http.server`).

Metrics
  auto_extracted        1 when the tar's members appear extracted at dest
  cache_busted          1 when an unchanged-source rebuild executed the ADD/COPY step again
  add_change_detected   1 when the rebuild after the remote file changed executed ADD again
  add_refetch_bytes     bytes the server sent during the unchanged rebuild
  added_bytes           size of the layer the ADD/COPY step produced
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from harness.engine.inspect import HistoryEntry
from harness.errors import ProbeFailed, UsageError
from harness.probes import BuildExtras, Probe, ProbeContext, register
from harness.probes._containers import RunOptions, files_in_image

PAYLOAD_BYTES = 256 * 1024
URL_ARG = "PAYLOAD_URL"


def payload(n: int = PAYLOAD_BYTES, seed: bytes = b"imagebench-addsource") -> bytes:
    """Deterministic, incompressible bytes."""
    out = bytearray()
    block = seed
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: Path, etag: bool = True) -> None:
        self.path = path
        self.etag = etag
        self.bytes_sent = 0
        self.requests: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - quiet (BaseHTTPRequestHandler's signature)
        return None

    def _serve(self, body: bool) -> None:
        f = self.server.path
        if self.path.split("?")[0] != "/" + f.name or not f.is_file():
            self.send_error(404)
            return
        data = f.read_bytes()
        st = f.stat()
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"' if self.server.etag else None
        if etag and etag in (self.headers.get("If-None-Match") or ""):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            with self.server.lock:
                self.server.requests.append((self.command + " 304", 0))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(st.st_mtime, usegmt=True))
        self.end_headers()
        sent = 0
        if body:
            self.wfile.write(data)
            sent = len(data)
        with self.server.lock:
            self.server.bytes_sent += sent
            self.server.requests.append((self.command, sent))

    def do_GET(self) -> None:
        self._serve(True)

    def do_HEAD(self) -> None:
        self._serve(False)


def step_of(events: Any, instructions: tuple[str, ...] = ("ADD", "COPY")) -> Any:
    """The file-copy vertex of the last Dockerfile step with one of these instructions.

    `ADD <url>` shows up as two vertices with the same name: the HTTP source and the copy that
    depends on it. The copy is the one that started last.
    """
    steps = [s for s in events.dockerfile_steps() if s.instruction in instructions]
    if not steps:
        return None
    same = [s for s in steps if s.name == steps[-1].name]
    return max(same, key=lambda s: s.started if s.started is not None else float("-inf"))


def layer_bytes_for(history: list[HistoryEntry], instruction: str) -> int | None:
    """Pure: Size of the newest history entry whose CreatedBy starts with the instruction."""
    for h in history:  # newest first
        created = (h.get("CreatedBy") or "").strip()
        if created.upper().startswith(instruction.upper() + " "):
            return int(h.get("Size") or 0)
    return None


@register
class AddSourceProbe(Probe):
    name = "addsource"

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _opts(self, ctx: ProbeContext) -> RunOptions:
        run = cast("RunOptions", dict(ctx.variant.run or {}))  # the TOML table as the experiment gives it
        if run.get("source") not in ("url", "tar"):
            raise UsageError(
                f"experiment {ctx.experiment.name}, variant {ctx.variant.name}: "
                f"run.source must be 'url' or 'tar'"
            )
        run.setdefault("dest", "/opt/payload")
        run.setdefault("member", "hello.txt")
        return run

    def before_build(self, ctx: ProbeContext) -> BuildExtras:
        opts = self._opts(ctx)
        if opts["source"] != "url":
            return BuildExtras()
        www = ctx.workdir / "www"
        www.mkdir(exist_ok=True)
        # unique per trial, so no build cache of another trial can answer for it
        (www / "data.bin").write_bytes(payload(seed=f"imagebench-addsource-{ctx.nonce}".encode()))
        self._server = _Server(www / "data.bin", etag=bool(opts.get("etag", True)))
        self._thread = threading.Thread(target=self._server.serve_forever, name="addsource-http", daemon=True)
        self._thread.start()
        port = self._server.server_address[1]
        return BuildExtras(build_args={URL_ARG: f"http://127.0.0.1:{port}/data.bin"})

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        if not ctx.image:
            return {}
        opts = self._opts(ctx)
        history = ctx.client.api.history(ctx.image)
        instr = "ADD" if opts["source"] == "url" else None
        out: dict[str, float] = {}
        details: dict[str, object] = {"source": opts["source"]}
        if opts["source"] == "url":
            out.update(self._url(ctx, details))
        else:
            files = files_in_image(ctx.client, ctx.image, opts["dest"], ctx.labels, ctx.track)
            names = {Path(n).name: s for n, s in files}
            extracted = opts["member"] in names
            details.update(files_at_dest=sorted(names)[:20], tar_kept=any(n.endswith(".tar") for n in names))
            out["auto_extracted"] = 1.0 if extracted else 0.0
            instr = "ADD" if any((h.get("CreatedBy") or "").startswith("ADD ") for h in history) else "COPY"
            # rebuild with nothing changed: an ADD/COPY of a local file must stay cached
            if ctx.build is not None:
                res = ctx.build()
                if not res.ok:
                    raise ProbeFailed(f"rebuild failed: {res.error}")
                step = step_of(res.events)
                out["cache_busted"] = 0.0 if (step is None or step.cached) else 1.0
        size = layer_bytes_for(history, instr or "ADD")
        if size is not None:
            out["added_bytes"] = float(size)
        ctx.details[self.name] = details
        return out

    def _url(self, ctx: ProbeContext, details: dict[str, object]) -> dict[str, float]:
        if ctx.build is None or self._server is None:
            raise ProbeFailed("addsource needs the runner's rebuild callback")
        srv = self._server
        with srv.lock:
            first = srv.bytes_sent
            srv.bytes_sent = 0
            srv.requests.clear()
        res = ctx.build()
        if not res.ok:
            raise ProbeFailed(f"unchanged rebuild failed: {res.error}")
        step = step_of(res.events, ("ADD",))
        busted = step is not None and not step.cached
        with srv.lock:
            refetch = srv.bytes_sent
            reqs_unchanged = [r for r, _ in srv.requests]
            srv.bytes_sent = 0
            srv.requests.clear()
        # the remote file changes (a new upstream release under the same URL)
        srv.path.write_bytes(payload(seed=f"imagebench-addsource-{ctx.nonce}-v2".encode()))
        res2 = ctx.build()
        if not res2.ok:
            raise ProbeFailed(f"rebuild after the change failed: {res2.error}")
        step2 = step_of(res2.events, ("ADD",))
        changed = step2 is not None and not step2.cached
        details.update(
            first_build_bytes=first,
            unchanged_rebuild_requests=reqs_unchanged,
            validators="ETag + Last-Modified" if srv.etag else "Last-Modified only",
            image_changed_unchanged_source=bool(res.image_id and res.image_id != ctx.image),
            image_changed_after_edit=bool(res2.image_id and res2.image_id != ctx.image),
        )
        return {
            "cache_busted": 1.0 if busted else 0.0,
            "add_refetch_bytes": float(refetch),
            "add_change_detected": 1.0 if changed else 0.0,
        }

    def cleanup(self, _ctx: ProbeContext) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.shutdown()
                self._server.server_close()
            self._server = None
