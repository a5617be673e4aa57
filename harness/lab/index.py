"""The lab's Python package index: PEP 503 simple API over a wheelhouse, counting bytes served.

    python -m harness.lab.index --root DIR --port 13141 [--upstream URL | --offline]
                                [--uploaded-before 2026-12-01T00:00:00Z]

Routes
  GET  /simple/                    project list (PEP 503 HTML)
  GET  /simple/<project>/          links to files, with #sha256= and data-requires-python
  GET  /files/<filename>           a file (fetched from the upstream index and kept, if missing)
  GET  /-/stats                    {"bytes_served", "requests", "files": {name: {requests, bytes}}, ...}
  POST /-/stats/reset
  GET  /-/blob?bytes=N             N incompressible bytes (to measure the network profile)
  GET  /-/health

Caching mirror: a project page lists the wheelhouse's files plus, when an upstream index is
set, the upstream's files (listing cached on disk for --ttl seconds, stale copy used when the
upstream is unreachable).  A file not in the wheelhouse is fetched from upstream once and kept.

Pinned in time: with `--uploaded-before T` (the lab's `experiments/index.toml`), a project page lists
no file the upstream says was uploaded at or after T (PEP 700 `upload-time`, from the upstream's PEP 691
JSON pages), whether it is in the wheelhouse or only upstream, and such a file is never fetched. So an
unpinned dependency (`requests` pulling `idna`) resolves to the same version on every machine and on
every day, as long as T stays the same. A file the upstream gives no time for (an HTML-only upstream,
or a wheelhouse file the upstream does not list) is listed as before.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import html
import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from email.parser import HeaderParser
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypedDict, cast

DEFAULT_UPSTREAM = "https://pypi.org/simple/"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
CHUNK = 64 * 1024
_BLOB_BLOCK = os.urandom(CHUNK)
_SDIST_EXT = (".tar.gz", ".zip", ".tar.bz2", ".tgz")
#: the upstream listing cache's format; a cache of another version is refetched (older ones lack upload-time)
CACHE_VERSION = 2


def parse_instant(text: str) -> dt.datetime:
    """Pure: an ISO 8601 instant with a time zone ('2026-12-01T00:00:00Z') -> aware datetime; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an ISO 8601 date and time")
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (end it with Z or +00:00)")
    return value


def uploaded_too_late(upload_time: str | None, before: dt.datetime | None) -> bool:
    """Pure: True when a file's upload-time is at or after the cutoff; unknown or unreadable times pass."""
    if before is None or not upload_time:
        return False
    try:
        return parse_instant(upload_time) >= before
    except ValueError:
        return False


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str | None:
    """Pure: the normalized project name of a wheel or sdist file name, or None."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-", 1)[0])
    for ext in _SDIST_EXT:
        if filename.endswith(ext):
            stem = filename[: -len(ext)]
            name, sep, _version = stem.rpartition("-")
            return normalize(name) if sep else None
    return None


UpstreamFile = TypedDict(
    "UpstreamFile",
    {
        "filename": str,
        "url": str,
        "hashes": dict[str, str],
        "requires-python": str | None,
        "yanked": bool,
        "upload-time": str | None,
    },
)
"""One file of an upstream project page (PEP 691 JSON or PEP 503 HTML), as `parse_upstream` gives it."""

PageEntry = TypedDict(
    "PageEntry", {"filename": str, "sha256": str | None, "requires-python": str | None, "yanked": bool}
)
"""One file the index's own project page lists."""


class FileStats(TypedDict):
    requests: int
    bytes: int


class IndexStats(TypedDict):
    """The index's counters (`/-/stats`)."""

    bytes_served: int
    requests: int
    pages: int
    files: dict[str, FileStats]
    since: float
    upstream_fetches: int
    upstream_bytes: int


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[UpstreamFile] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        a = dict(attrs)
        href = a.get("href")
        if not href:
            return
        url, _, frag = href.partition("#")
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        hashes: dict[str, str] = {}
        if "=" in frag:
            k, v = frag.split("=", 1)
            hashes[k] = v
        self.files.append(
            {
                "filename": filename,
                "url": url,
                "hashes": hashes,
                "requires-python": a.get("data-requires-python"),
                "yanked": a.get("data-yanked") is not None,
                "upload-time": None,
            }
        )


def parse_upstream(body: bytes, content_type: str, base_url: str) -> list[UpstreamFile]:
    """Pure: upstream project page (PEP 691 JSON or PEP 503 HTML) -> [{filename,url,hashes,...}]."""
    if "json" in content_type:
        data = json.loads(body)
        # PEP 691's file entries carry these keys (`yanked` may be a reason string: bool() below)
        files = cast(list[UpstreamFile], data.get("files", []))
    else:
        p = _Anchors()
        p.feed(body.decode("utf-8", "replace"))
        files = p.files
    out: list[UpstreamFile] = []
    for f in files:
        url = urllib.parse.urljoin(base_url, f["url"])
        out.append(
            {
                "filename": f["filename"],
                "url": url,
                "hashes": f.get("hashes") or {},
                "requires-python": f.get("requires-python"),
                "yanked": bool(f.get("yanked")),
                "upload-time": f.get("upload-time"),
            }
        )
    return out


def render_project_page(project: str, files: list[PageEntry]) -> bytes:
    """Pure: PEP 503 HTML for one project; files: [{filename, sha256, requires-python, yanked}]."""
    rows = []
    for f in sorted(files, key=lambda f: f["filename"]):
        href = f"/files/{urllib.parse.quote(f['filename'])}"
        if f.get("sha256"):
            href += f"#sha256={f['sha256']}"
        attrs = f'href="{html.escape(href)}"'
        if requires := f.get("requires-python"):
            attrs += f' data-requires-python="{html.escape(requires)}"'
        if f.get("yanked"):
            attrs += ' data-yanked=""'
        rows.append(f"    <a {attrs}>{html.escape(f['filename'])}</a><br/>")
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
        f"<title>Links for {html.escape(project)}</title></head><body>\n"
        f"<h1>Links for {html.escape(project)}</h1>\n" + "\n".join(rows) + "\n</body></html>\n"
    ).encode()


def render_root_page(projects: list[str]) -> bytes:
    rows = "\n".join(f'<a href="/simple/{p}/">{p}</a><br/>' for p in sorted(projects))
    return f"<!DOCTYPE html>\n<html><body>\n{rows}\n</body></html>\n".encode()


class IndexFiles:
    """The index's files on disk (the wheelhouse), their hashes and metadata, and the upstream mirror."""

    def __init__(
        self,
        root: Path,
        upstream: str | None,
        ttl: float = 86400.0,
        timeout: float = 60.0,
        uploaded_before: dt.datetime | None = None,
    ):
        self.root = Path(root)
        self.uploaded_before = uploaded_before
        self.files_dir = self.root / "files"
        self.meta_dir = self.root / ".upstream"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        self.upstream = upstream.rstrip("/") + "/" if upstream else None
        self.ttl = ttl
        self.timeout = timeout
        self._lock = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._hashes: dict[tuple[str, int, float], str] = {}
        self._rp: dict[tuple[str, int, float], str | None] = {}
        self.upstream_fetches = 0
        self.upstream_bytes = 0

    # ---- local files -------------------------------------------------------------------
    def local(self) -> dict[str, list[Path]]:
        by_project: dict[str, list[Path]] = {}
        for p in self.files_dir.iterdir():
            if p.name.startswith(".") or not p.is_file():
                continue
            proj = project_of(p.name)
            if proj:
                by_project.setdefault(proj, []).append(p)
        return by_project

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = (path.name, st.st_size, st.st_mtime)
        h = self._hashes.get(key)
        if h is None:
            d = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    d.update(block)
            h = self._hashes[key] = d.hexdigest()
        return h

    def requires_python(self, path: Path) -> str | None:
        if not path.name.endswith(".whl"):
            return None
        st = path.stat()
        key = (path.name, st.st_size, st.st_mtime)
        if key not in self._rp:
            value = None
            with contextlib.suppress(Exception), zipfile.ZipFile(path) as z:
                meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
                headers = HeaderParser().parsestr(z.read(meta).decode("utf-8", "replace"))
                value = headers.get("Requires-Python")
            self._rp[key] = value
        return self._rp[key]

    # ---- upstream ----------------------------------------------------------------------
    def upstream_files(self, project: str) -> list[UpstreamFile]:
        if not self.upstream:
            return []
        cache = self.meta_dir / f"{project}.json"
        cached = None
        if cache.exists():
            with contextlib.suppress(ValueError, OSError):
                cached = json.loads(cache.read_text())
        if (
            cached is not None
            and cached.get("v") == CACHE_VERSION
            and time.time() - cached.get("fetched_at", 0) < self.ttl
        ):
            return cast(list[UpstreamFile], cached["files"])
        url = f"{self.upstream}{project}/"
        try:
            req = urllib.request.Request(url, headers={"Accept": JSON_ACCEPT, "User-Agent": "imagebench-lab"})
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                body = r.read()
                files = parse_upstream(body, r.headers.get("Content-Type", ""), r.geturl())
        except Exception:  # noqa: BLE001 - upstream unreachable or unreadable: serve what is cached
            return cast(list[UpstreamFile], cached["files"]) if cached else []
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"v": CACHE_VERSION, "fetched_at": time.time(), "url": url, "files": files})
        )
        tmp.replace(cache)
        return files

    def fetch(self, filename: str) -> Path | None:
        """Fetch a file named on an upstream page into the wheelhouse; None if unknown."""
        project = project_of(filename)
        if not project or not self.upstream:
            return None
        with self._lock:
            lock = self._fetch_locks.setdefault(filename, threading.Lock())
        with lock:
            dest = self.files_dir / filename
            if dest.exists():
                return dest
            entry = next((f for f in self.upstream_files(project) if f["filename"] == filename), None)
            if entry is None or uploaded_too_late(entry.get("upload-time"), self.uploaded_before):
                return None
            tmp = self.files_dir / f".{filename}.part"
            d = hashlib.sha256()
            n = 0
            req = urllib.request.Request(entry["url"], headers={"User-Agent": "imagebench-lab"})
            with urllib.request.urlopen(req, timeout=self.timeout) as r, open(tmp, "wb") as fh:
                for block in iter(lambda: r.read(1 << 20), b""):
                    fh.write(block)
                    d.update(block)
                    n += len(block)
            want = (entry.get("hashes") or {}).get("sha256")
            if want and want != d.hexdigest():
                tmp.unlink(missing_ok=True)
                raise OSError(f"sha256 mismatch for {filename} from {entry['url']}")
            tmp.replace(dest)
            with self._lock:
                self.upstream_fetches += 1
                self.upstream_bytes += n
            return dest

    # ---- pages -------------------------------------------------------------------------
    def project_entries(self, project: str) -> list[PageEntry]:
        """The files a project page lists: upstream's and the wheelhouse's, none uploaded after the cutoff."""
        entries: dict[str, PageEntry] = {}
        late = set()
        for f in self.upstream_files(project):
            if uploaded_too_late(f.get("upload-time"), self.uploaded_before):
                late.add(f["filename"])
                continue
            entries[f["filename"]] = {
                "filename": f["filename"],
                "sha256": (f.get("hashes") or {}).get("sha256"),
                "requires-python": f.get("requires-python"),
                "yanked": f.get("yanked", False),
            }
        for p in self.local().get(project, []):
            if p.name in late:
                continue
            entries[p.name] = {
                "filename": p.name,
                "sha256": self.sha256(p),
                "requires-python": self.requires_python(p),
                "yanked": False,
            }
        return list(entries.values())


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.bytes_served = 0
            self.requests = 0
            self.pages = 0
            self.files: dict[str, FileStats] = {}
            self.since = time.time()

    def page(self, nbytes: int) -> None:
        with self._lock:
            self.requests += 1
            self.pages += 1
            self.bytes_served += nbytes

    def file(self, name: str, nbytes: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_served += nbytes
            f = self.files.setdefault(name, {"requests": 0, "bytes": 0})
            f["requests"] += 1
            f["bytes"] += nbytes

    def snapshot(self, house: IndexFiles) -> IndexStats:
        with self._lock:
            return {
                "bytes_served": self.bytes_served,
                "requests": self.requests,
                "pages": self.pages,
                "files": {
                    k: FileStats(requests=v["requests"], bytes=v["bytes"]) for k, v in self.files.items()
                },
                "since": self.since,
                "upstream_fetches": house.upstream_fetches,
                "upstream_bytes": house.upstream_bytes,
            }


class IndexServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], house: IndexFiles) -> None:
        super().__init__(addr, Handler)
        self.house = house
        self.stats = Stats()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: IndexServer
    server_version = "imagebench-index/1"

    def log_message(self, format: str, *args: object) -> None:  # quiet: one short line per request
        if os.environ.get("IMAGEBENCH_INDEX_LOG"):
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, ctype: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, obj: object, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.rstrip("/") == "/-/stats/reset":
            self.server.stats.reset()
            self._json({"reset": True})
        else:
            self._json({"error": "not found"}, 404)

    def do_GET(self, head: bool = False) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        try:
            if path in ("/", "/simple", "/simple/"):
                body = render_root_page(list(self.server.house.local()))
                self.server.stats.page(len(body))
                return self._send(200, body, "text/html; charset=utf-8", head)
            if path.startswith("/simple/"):
                raw = path[len("/simple/") :].strip("/")
                project = normalize(raw)
                if raw != project:
                    self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                    self.send_header("Location", f"/simple/{project}/")
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                files = self.server.house.project_entries(project)
                if not files:
                    return self._send(404, b"not found\n", "text/plain", head)
                body = render_project_page(project, files)
                self.server.stats.page(len(body))
                return self._send(200, body, "text/html; charset=utf-8", head)
            if path.startswith("/files/"):
                return self._file(path[len("/files/") :], head)
            if path == "/-/stats":
                return self._json(self.server.stats.snapshot(self.server.house))
            if path == "/-/health":
                before = self.server.house.uploaded_before
                return self._json(
                    {
                        "ok": True,
                        "projects": len(self.server.house.local()),
                        "uploaded_before": before.isoformat() if before else None,
                    }
                )
            if path == "/-/blob":
                q = urllib.parse.parse_qs(url.query)
                return self._blob(int(q.get("bytes", ["1048576"])[0]), head)
            return self._send(404, b"not found\n", "text/plain", head)
        except (BrokenPipeError, ConnectionResetError):
            return None
        except Exception as exc:  # noqa: BLE001 - one line to the client, keep serving
            with contextlib.suppress(Exception):
                self._send(502, f"imagebench index error: {exc}\n".encode(), "text/plain", head)

    def _file(self, name: str, head: bool) -> None:
        if "/" in name or name.startswith("."):
            return self._send(404, b"not found\n", "text/plain", head)
        path = self.server.house.files_dir / name
        if not path.exists():
            fetched = self.server.house.fetch(name)
            if fetched is None:
                return self._send(404, b"not found\n", "text/plain", head)
            path = fetched
        size = path.stat().st_size
        self.send_response(200)
        ctype = "application/zip" if name.endswith((".whl", ".zip")) else "application/octet-stream"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        # distribution files never change under one name: let pip's HTTP cache keep them, as PyPI does
        self.send_header("Cache-Control", "max-age=365000000, immutable, public")
        self.end_headers()
        if head:
            return None
        sent = 0
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(CHUNK), b""):
                    self.wfile.write(block)
                    sent += len(block)
        finally:
            self.server.stats.file(name, sent)

    def _blob(self, nbytes: int, head: bool) -> None:
        nbytes = max(0, min(nbytes, 1 << 31))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(nbytes))
        self.end_headers()
        if head:
            return
        left = nbytes
        while left > 0:
            block = _BLOB_BLOCK[: min(CHUNK, left)]
            self.wfile.write(block)
            left -= len(block)


def make_server(
    root: Path,
    port: int,
    host: str = "127.0.0.1",
    upstream: str | None = None,
    ttl: float = 86400.0,
    uploaded_before: dt.datetime | None = None,
) -> IndexServer:
    return IndexServer((host, port), IndexFiles(root, upstream, ttl=ttl, uploaded_before=uploaded_before))


def serve_in_thread(server: IndexServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="imagebench-index", daemon=True)
    t.start()
    return t


def upstream_default() -> str | None:
    value = os.environ.get("IMAGEBENCH_UPSTREAM_INDEX", DEFAULT_UPSTREAM)
    return None if value in ("", "none", "off") else value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.lab.index", description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="wheelhouse directory (files/ inside)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--upstream", default=upstream_default(), help="upstream simple index to mirror")
    ap.add_argument("--offline", action="store_true", help="serve the wheelhouse only")
    ap.add_argument("--ttl", type=float, default=86400.0, help="seconds an upstream listing is reused")
    ap.add_argument(
        "--uploaded-before",
        type=parse_instant,
        default=None,
        metavar="ISO8601",
        help="list no file uploaded at or after this instant (e.g. 2026-12-01T00:00:00Z)",
    )
    args = ap.parse_args(argv)
    upstream = None if args.offline else args.upstream
    server = make_server(args.root, args.port, args.host, upstream, args.ttl, args.uploaded_before)
    print(f"imagebench index on http://{args.host}:{args.port}/simple/ over {args.root}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
