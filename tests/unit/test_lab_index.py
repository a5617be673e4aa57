"""The lab index: PEP 503 pages over a temp wheelhouse, byte counting, stats reset, blob, pip; pinned in time.

Pinned in time: files uploaded at or after `uploaded_before` are neither listed nor fetched. The upstream
there is a real HTTP server answering PEP 691 JSON with PEP 700 `upload-time`, as PyPI does, over
generated wheels; pip itself resolves through the lab index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from harness.errors import LabError
from harness.lab import index, wheelhouse
from harness.lab.procs import port_bindable


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_wheel(dest: Path, name: str, version: str, requires_python: str | None = None) -> Path:
    """A minimal valid pure-Python wheel."""
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        meta += f"Requires-Python: {requires_python}\n"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": meta,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record
    path = dest / f"{name}-{version}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "wh"
    (root / "files").mkdir(parents=True)
    make_wheel(root / "files", "demo_pkg", "1.0", ">=3.8")
    make_wheel(root / "files", "demo_pkg", "1.1")
    (root / "files" / "other-2.0.tar.gz").write_bytes(b"x" * 1000)
    port = _free_port()
    srv = index.make_server(root, port, upstream=None)
    index.serve_in_thread(srv)
    yield f"http://127.0.0.1:{port}", root
    srv.shutdown()
    srv.server_close()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_project_of():
    """project_of gives the normalised project name of a wheel or sdist file name, None otherwise."""
    assert index.project_of("Flask-3.0.0-py3-none-any.whl") == "flask"
    assert index.project_of("charset_normalizer-3.5.3-cp313-cp313-manylinux_2_28_x86_64.whl") == (
        "charset-normalizer"
    )
    assert index.project_of("zope.interface-6.0.tar.gz") == "zope-interface"
    assert index.project_of("README.txt") is None


def test_parse_upstream_json_and_html():
    """parse_upstream reads PEP 691 JSON and PEP 503 HTML pages with URLs, hashes and requires-python."""
    body = json.dumps(
        {
            "files": [
                {
                    "filename": "a-1.0.tar.gz",
                    "url": "../../p/a-1.0.tar.gz",
                    "hashes": {"sha256": "ab"},
                    "requires-python": ">=3.9",
                }
            ]
        }
    ).encode()
    files = index.parse_upstream(body, "application/vnd.pypi.simple.v1+json", "https://x/simple/a/")
    assert files[0]["url"] == "https://x/p/a-1.0.tar.gz" and files[0]["hashes"] == {"sha256": "ab"}
    html = b'<a href="https://f/a-1.0-py3-none-any.whl#sha256=cd" data-requires-python="&gt;=3.8">a</a>'
    files = index.parse_upstream(html, "text/html", "https://x/simple/a/")
    assert files[0]["filename"] == "a-1.0-py3-none-any.whl"
    assert files[0]["hashes"] == {"sha256": "cd"} and files[0]["requires-python"] == ">=3.8"


def test_pages_and_byte_counting(server):
    """The index serves PEP 503 pages, redirects to normalised names and counts bytes per file until reset."""
    url, _root = server
    assert b"demo-pkg" in get(f"{url}/simple/")
    page = get(f"{url}/simple/demo-pkg/").decode()
    assert "demo_pkg-1.0-py3-none-any.whl#sha256=" in page
    assert 'data-requires-python="&gt;=3.8"' in page
    # non-normalized names redirect to the normalized page (urllib follows)
    assert b"demo_pkg-1.1" in get(f"{url}/simple/Demo_Pkg/")
    urllib.request.urlopen(urllib.request.Request(f"{url}/-/stats/reset", data=b"", method="POST")).close()
    data = get(f"{url}/files/other-2.0.tar.gz")
    assert len(data) == 1000
    get(f"{url}/files/other-2.0.tar.gz")
    stats = json.loads(get(f"{url}/-/stats"))
    assert stats["files"]["other-2.0.tar.gz"] == {"requests": 2, "bytes": 2000}
    assert stats["bytes_served"] == 2000 and stats["requests"] == 2
    urllib.request.urlopen(urllib.request.Request(f"{url}/-/stats/reset", data=b"", method="POST")).close()
    assert json.loads(get(f"{url}/-/stats"))["bytes_served"] == 0


def test_missing_project_and_file_404(server):
    """Unknown projects, unknown files and path escapes are 404."""
    url, _ = server
    for path in ("/simple/nope/", "/files/nope-1.0.tar.gz", "/files/..%2Fetc"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(url + path)
        assert exc.value.code == 404


def test_files_are_cacheable_pages_are_not(server):
    """Distribution files carry a long immutable Cache-Control (pip's HTTP cache keeps them, as from
    PyPI), so a cache mount can save downloads; index pages are revalidated (no-cache)."""
    url, _ = server
    with urllib.request.urlopen(f"{url}/files/other-2.0.tar.gz", timeout=10) as r:
        cc = r.headers["Cache-Control"]
    assert "max-age=" in cc and "immutable" in cc and "no-cache" not in cc
    with urllib.request.urlopen(f"{url}/simple/demo-pkg/", timeout=10) as r:
        assert r.headers["Cache-Control"] == "no-cache"


def test_blob(server):
    """/-/blob serves exactly the bytes asked for."""
    url, _ = server
    assert len(get(f"{url}/-/blob?bytes=300000")) == 300000


def test_real_pip_download(server, tmp_path):
    """A real pip download through the index picks the newest compatible wheel."""
    url, _ = server
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    cp = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-d",
            str(tmp_path / "out"),
            "--index-url",
            f"{url}/simple/",
            "demo-pkg",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "out" / "demo_pkg-1.1-py3-none-any.whl").exists()
    stats = json.loads(get(f"{url}/-/stats"))
    assert stats["files"]["demo_pkg-1.1-py3-none-any.whl"]["requests"] == 1


def test_mirror_fetches_and_keeps(tmp_path):
    """Upstream = a second local index: a file missing here is fetched once, then served locally."""
    up_root = tmp_path / "up"
    (up_root / "files").mkdir(parents=True)
    make_wheel(up_root / "files", "remote_pkg", "2.0")
    up_port, port = _free_port(), _free_port()
    up = index.make_server(up_root, up_port, upstream=None)
    index.serve_in_thread(up)
    mine_root = tmp_path / "mine"
    mine = index.make_server(mine_root, port, upstream=f"http://127.0.0.1:{up_port}/simple/")
    index.serve_in_thread(mine)
    try:
        page = get(f"http://127.0.0.1:{port}/simple/remote-pkg/").decode()
        assert "remote_pkg-2.0-py3-none-any.whl" in page
        body = get(f"http://127.0.0.1:{port}/files/remote_pkg-2.0-py3-none-any.whl")
        assert (mine_root / "files" / "remote_pkg-2.0-py3-none-any.whl").read_bytes() == body
        stats = json.loads(get(f"http://127.0.0.1:{port}/-/stats"))
        assert stats["upstream_fetches"] == 1 and stats["upstream_bytes"] == len(body)
        get(f"http://127.0.0.1:{port}/files/remote_pkg-2.0-py3-none-any.whl")
        assert json.loads(get(f"http://127.0.0.1:{port}/-/stats"))["upstream_fetches"] == 1
    finally:
        for s in (up, mine):
            s.shutdown()
            s.server_close()
    assert port_bindable(port)


# ---- pinned in time ---------------------------------------------------------------------------

CUTOFF = index.parse_instant("2026-12-01T00:00:00Z")
TIMES = {"1.0": "2026-09-17T14:11:03.168153Z", "2.0": "2026-12-04T01:41:55Z"}


class _Upstream(BaseHTTPRequestHandler):
    """PEP 691 JSON pages for `dep` (1.0 before the cutoff, 2.0 after it) and its files."""

    pages: ClassVar[dict[str, bytes]] = {}
    files: ClassVar[dict[str, bytes]] = {}

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        body = self.pages.get(self.path) or self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        ctype = "application/vnd.pypi.simple.v1+json" if self.path in self.pages else "application/zip"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def lab_index(tmp_path):
    """(lab index URL, its wheelhouse root): upstream lists dep 1.0 and 2.0; the wheelhouse already holds 2.0."""
    made = tmp_path / "made"
    made.mkdir()
    up_port, port = _free_port(), _free_port()
    files, entries = {}, []
    for version, when in TIMES.items():
        wheel = make_wheel(made, "dep", version)
        data = wheel.read_bytes()
        files[f"/files/{wheel.name}"] = data
        entries.append(
            {
                "filename": wheel.name,
                "url": f"http://127.0.0.1:{up_port}/files/{wheel.name}",
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "requires-python": None,
                "upload-time": when,
                "yanked": False,
            }
        )
    page = {"meta": {"api-version": "1.1"}, "name": "dep", "files": entries}
    handler = type("Up", (_Upstream,), {"pages": {"/simple/dep/": json.dumps(page).encode()}, "files": files})
    up = ThreadingHTTPServer(("127.0.0.1", up_port), handler)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    root = tmp_path / "wh"
    (root / "files").mkdir(parents=True)
    (root / "files" / "dep-2.0-py3-none-any.whl").write_bytes(files["/files/dep-2.0-py3-none-any.whl"])
    srv = index.make_server(
        root, port, upstream=f"http://127.0.0.1:{up_port}/simple/", uploaded_before=CUTOFF
    )
    index.serve_in_thread(srv)
    yield f"http://127.0.0.1:{port}", root
    for s in (srv, up):
        s.shutdown()
        s.server_close()


def test_parse_instant_needs_a_time_zone():
    """An instant without a time zone, or not a date, is refused (a cutoff must mean one moment everywhere)."""
    assert index.parse_instant("2026-12-01T00:00:00Z") == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert index.parse_instant("2026-12-01T01:00:00+01:00") == CUTOFF
    for bad in ("2026-12-01T00:00:00", "yesterday", "", 20261201):
        with pytest.raises(ValueError):
            index.parse_instant(bad)  # type: ignore[arg-type]


def test_uploaded_too_late_at_and_after_the_cutoff_only():
    """At or after the cutoff is too late; before it, no cutoff, or an unknown time is served."""
    assert index.uploaded_too_late("2026-12-01T00:00:00Z", CUTOFF)
    assert index.uploaded_too_late("2026-12-04T01:41:55Z", CUTOFF)
    assert not index.uploaded_too_late("2026-11-30T23:59:59.999999Z", CUTOFF)
    assert not index.uploaded_too_late("2026-12-04T01:41:55Z", None)
    assert not index.uploaded_too_late(None, CUTOFF)  # an upstream without times: listed as before
    assert not index.uploaded_too_late("garbage", CUTOFF)


def test_a_file_uploaded_after_the_cutoff_is_not_listed_even_from_the_wheelhouse(lab_index):
    """dep 2.0 (uploaded 2026-12-04) is listed neither from upstream nor from the wheelhouse; /-/health says the cutoff."""
    url, _root = lab_index
    page = get(f"{url}/simple/dep/").decode()
    assert "dep-1.0-py3-none-any.whl" in page
    assert "dep-2.0-py3-none-any.whl" not in page
    assert json.loads(get(f"{url}/-/health"))["uploaded_before"] == "2026-12-01T00:00:00+00:00"


def test_a_file_uploaded_after_the_cutoff_is_never_fetched(lab_index):
    """Asking for dep 2.0 by name gets 404 and nothing is fetched into the wheelhouse."""
    url, root = lab_index
    (root / "files" / "dep-2.0-py3-none-any.whl").unlink()
    with pytest.raises(urllib.error.HTTPError) as err:
        get(f"{url}/files/dep-2.0-py3-none-any.whl")
    assert err.value.code == 404
    assert not (root / "files" / "dep-2.0-py3-none-any.whl").exists()


def test_pip_resolves_an_unpinned_dependency_to_the_version_before_the_cutoff(lab_index, tmp_path):
    """What keeps two machines' builds identical: pip, asked for `dep` unpinned, gets 1.0, not the newer 2.0."""
    url, _root = lab_index
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "out")]
    cp = subprocess.run(
        [*argv, "--index-url", f"{url}/simple/", "dep"], capture_output=True, text=True, env=env, timeout=120
    )
    assert cp.returncode == 0, cp.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dep-1.0-py3-none-any.whl"]


def test_an_old_listing_cache_without_upload_times_is_refetched(lab_index):
    """A listing cached before upload-times were kept would let 2.0 through: it is refetched, not trusted."""
    url, root = lab_index
    cache = root / ".upstream" / "dep.json"
    old = {"fetched_at": 9e18, "files": [{"filename": "dep-2.0-py3-none-any.whl", "url": "x", "hashes": {}}]}
    cache.write_text(json.dumps(old))
    assert "dep-2.0" not in get(f"{url}/simple/dep/").decode()
    assert json.loads(cache.read_text())["v"] == index.CACHE_VERSION


def test_the_cutoff_file_is_read_and_refused_in_one_line(tmp_path: Path):
    """experiments/index.toml: absent is no cutoff; a bad value or key is a one-line LabError naming the file."""
    f = tmp_path / "index.toml"
    assert wheelhouse.uploaded_before(f) is None  # absent: no cutoff
    f.write_text('uploaded_before = "2026-12-01T00:00:00Z"\n')
    assert wheelhouse.uploaded_before(f) == "2026-12-01T00:00:00+00:00"
    for text, says in (
        ('uploaded_before = "2026-12-01"\n', "no time zone"),
        ('uploaded_before = "soon"\n', "uploaded_before"),
        ("uploaded_before = 3\n", "not an ISO 8601"),
        ('upload_before = "2026-12-01T00:00:00Z"\n', "unknown key 'upload_before'"),
        ("uploaded_before = \n", "not valid TOML"),
    ):
        f.write_text(text)
        with pytest.raises(LabError) as err:
            wheelhouse.uploaded_before(f)
        assert says in err.value.message and "\n" not in err.value.message


def test_the_committed_cutoff_reaches_the_stamp_and_pip():
    """experiments/index.toml holds a cutoff, and the wheelhouse stamp and pip's download follow it."""
    cutoff = wheelhouse.uploaded_before()
    assert cutoff is not None
    assert wheelhouse.stamp("a==1\n", "", ["3.13"], cutoff=cutoff) != wheelhouse.stamp("a==1\n", "", ["3.13"])
    argv = wheelhouse.download_argv(Path("/d"), Path("/l"), "3.13", None, cutoff)
    assert argv[argv.index("--uploaded-prior-to") + 1] == cutoff
