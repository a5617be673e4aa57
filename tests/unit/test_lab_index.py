"""The lab index: PEP 503 pages over a temp wheelhouse, byte counting, stats reset, blob, pip."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from harness.lab import index
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
