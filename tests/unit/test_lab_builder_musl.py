"""The musl base's build command, its facts parser and its provenance (pure parts, no daemon)."""

from __future__ import annotations

from harness.lab import builder, core
from harness.lab.basedefs import load_bases


def _musl():
    return load_bases().bases["python-3.13-musl"]


def test_docker_build_argv_is_offline_and_labelled():
    """The build uses the host network, the lab's apt proxy, the lab builder base and carries the lab labels."""
    argv = builder.docker_build_argv(
        _musl(), "abc123", "tmp:tag", "http://127.0.0.1:13142", "http://127.0.0.1:3141/simple/", "b:tag"
    )
    assert argv[:2] == ["build", "--network=host"]
    assert "BUILDER=b:tag" in argv and "INDEX_URL=http://127.0.0.1:3141/simple/" in argv
    assert "http_proxy=http://127.0.0.1:13142" in argv and "no_proxy=127.0.0.1,localhost" in argv
    assert f"{builder.LABEL_DEF}=abc123" in argv and f"{builder.LABEL_FOR}=python:3.13-alpine" in argv
    assert argv[-1].endswith("harness/lab/musl") and argv[-3:-1] == ["-t", "tmp:tag"]
    assert "--pull" not in argv


def test_parse_facts():
    """The in-image facts (python, pip, musl, busybox, file count) parse from the probe's five lines."""
    out = (
        '{"python": "3.13.5", "libc": ["", ""], "openssl": "OpenSSL 3.5.7", "sqlite": "3.46.1", '
        '"zlib": "1.3.1", "soabi": "cpython-313-x86_64-linux-musl", "modules": {"ssl": true}}\n'
        "25.1.1\n1.2.5\nv1.37.0\n2345\n"
    )
    f = builder.parse_facts(out)
    assert (f["python"], f["pip"], f["musl"], f["busybox"], f["files"]) == (
        "3.13.5",
        "25.1.1",
        "1.2.5",
        "1.37.0",
        2345,
    )


def test_parse_sources_lists_every_tarball():
    """sources.txt names each upstream tarball with its sha256; CPython's comes from Debian's pool."""
    src = builder.recipe_sources(_musl())
    names = [s["name"] for s in src]
    assert {"python", "zlib", "libffi", "sqlite3", "openssl"} <= set(names)
    py = next(s for s in src if s["name"] == "python")
    assert py["path"].startswith("pool/main/p/python3.13/") and len(py["sha256"]) == 64


def test_provenance_is_honest():
    """The musl base's provenance says: no package manager, musl and busybox, and what was left out."""
    rec = {"facts": {"musl": "1.2.5", "busybox": "1.37.0", "files": 10}, "python": "3.13.5", "sources": []}
    p = core.provenance(_musl(), rec)
    assert p["package_manager"] is None and "no apk" in p["package_database"]
    assert p["libc"] == "musl 1.2.5" and p["userland"].startswith("busybox 1.37.0")
    assert p["stands_in_for"] == "python:3.13-alpine" and p["python"] == "3.13.5"
    assert any("PGO" in x for x in p["left_out"])
