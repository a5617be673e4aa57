"""Engine checks: version parsing and gates (pure), builder inspection, an absent daemon."""

from __future__ import annotations

import shutil

import pytest

from harness.engine import check
from harness.errors import EngineUnavailable, LabError
from harness.lab import builder, prereqs, registry

INSPECT = """Name:          default
Driver:        docker
Last Activity: 2026-11-27 06:28:02 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.13.2
Platforms:        linux/amd64
"""


def test_parse_version():
    """parse_version reads engine and buildx version strings into tuples."""
    assert check.parse_version("26.1.5+dfsg1") == (26, 1, 5)
    assert check.parse_version("v0.13.1") == (0, 13, 1)
    assert check.parse_version("0.12") == (0, 12)
    assert check.parse_version("") == ()


def test_parse_buildx_inspect():
    """parse_buildx_inspect reads name, driver, BuildKit version and status."""
    out = check.parse_buildx_inspect(INSPECT)
    assert out == {"name": "default", "driver": "docker", "buildkit_version": "v0.13.2", "status": "running"}


def test_image_store():
    """image_store tells the containerd snapshotter from the classic store."""
    assert (
        check.image_store({"DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}) == "containerd"
    )
    assert check.image_store({"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}) == (
        "classic"
    )


@pytest.mark.parametrize(
    ("engine", "buildx", "message"),
    [
        ("19.03.1", "0.13.1", "too old"),
        ("26.1.5", None, "buildx is missing"),
        ("26.1.5", "0.11.2", "older than 0.12 \\(no rawjson progress\\)"),
    ],
)
def test_version_gates(engine, buildx, message):
    """Too old an engine or buildx, or no buildx, is EngineUnavailable with the reason."""
    with pytest.raises(EngineUnavailable, match=message):
        check.check_versions(engine, buildx)


def test_version_gate_passes():
    """A recent engine and buildx pass the version gate."""
    check.check_versions("26.1.5+dfsg1", "0.13.1+ds1")


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_bogus_docker_host(monkeypatch):
    """An unreachable DOCKER_HOST is a one-line EngineUnavailable naming it."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    with pytest.raises(EngineUnavailable) as exc:
        check.require_engine()
    msg = str(exc.value)
    assert "tcp://127.0.0.1:1 is not answering" in msg and "\n" not in msg


def test_disk_nearly_full(monkeypatch, tmp_path):
    """check_disk fails below the free-space floor and skips paths that do not exist."""
    monkeypatch.setenv("IMAGEBENCH_MIN_FREE_GIB", "1000000")
    with pytest.raises(LabError, match=r"disk nearly full: .* GiB free in .*state dir"):
        prereqs.check_disk({"state dir": tmp_path})
    monkeypatch.setenv("IMAGEBENCH_MIN_FREE_GIB", "0")
    assert prereqs.check_disk({"state dir": tmp_path, "missing": tmp_path / "nope"}).keys() == {"state dir"}


def test_missing_tools_without_root(monkeypatch):
    """Missing lab tools without root is a LabError saying installing needs root."""
    monkeypatch.setattr(prereqs, "missing_tools", lambda: ["mmdebstrap"])
    monkeypatch.setattr(prereqs.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="mmdebstrap missing and installing needs root"):
        prereqs.ensure_tools(progress=lambda _m: None)


def test_mmdebstrap_argv_and_import_changes():
    """The base builder's mmdebstrap argv uses minbase, the apt proxy and security suite; import sets ENV and CMD."""
    from harness.lab.basedefs import load_bases

    defn = load_bases().bases["python-3.13-slim-trixie"]
    argv = builder.mmdebstrap_argv(
        defn, builder.Path("/tmp/x"), "http://127.0.0.1:13142", "http://127.0.0.1:3141/simple/"
    )
    assert argv[0] == "mmdebstrap" and "--variant=minbase" in argv
    assert any(a.startswith("--include=python3,python3-venv") for a in argv)
    assert any("venv --system-site-packages /usr/local" in a for a in argv)
    assert any('Acquire::http::Proxy "http://127.0.0.1:13142"' in a for a in argv)
    assert "deb http://deb.debian.org/debian-security trixie-security main" in argv
    changes = builder.import_changes(defn, "abc", "3.13.5")
    assert "ENV PIP_DISABLE_PIP_VERSION_CHECK=1" in changes
    assert 'CMD ["python3"]' in changes
    assert any('org.imagebench.lab.definition="abc"' in c for c in changes)
    conf = builder.pip_conf("http://127.0.0.1:3141/simple/")
    assert "index-url = http://127.0.0.1:3141/simple/" in conf and "trusted-host = 127.0.0.1" in conf


def test_registry_split_ref():
    """split_ref splits a lab registry reference into host, repository and tag or digest."""
    assert registry.split_ref("127.0.0.1:5000/a/b:t") == ("127.0.0.1:5000", "a/b", "t")
    assert registry.split_ref("127.0.0.1:5000/a/b") == ("127.0.0.1:5000", "a/b", "latest")
    assert registry.split_ref("localhost/a@sha256:00") == ("localhost", "a", "sha256:00")
    with pytest.raises(LabError, match="names no registry host"):
        registry.split_ref("python:3.13")
