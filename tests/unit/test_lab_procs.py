"""Ports from the environment, port-in-use errors, detached processes stopped by pid."""

from __future__ import annotations

import socket
import sys

import pytest

from harness.errors import LabError
from harness.lab import core, procs


def test_ports_from_env(monkeypatch):
    """Lab ports come from IMAGEBENCH_*_PORT (backend +10000); a bad value is a LabError."""
    monkeypatch.setenv("IMAGEBENCH_INDEX_PORT", "4141")
    assert procs.port("index") == 4141
    assert procs.backend_port("index") == 14141
    monkeypatch.setenv("IMAGEBENCH_INDEX_PORT", "x")
    with pytest.raises(LabError, match="IMAGEBENCH_INDEX_PORT='x' is not a port"):
        procs.port("index")


def test_port_in_use_names_the_owner_and_the_env_var():
    """A port in use is a one-line LabError naming the owner pid and the env var to change."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LabError) as exc:
            procs.require_free(port, "index", "IMAGEBENCH_INDEX_PORT")
    msg = str(exc.value)
    assert f"port 127.0.0.1:{port} for the lab index is in use by pid" in msg
    assert "IMAGEBENCH_INDEX_PORT" in msg and "\n" not in msg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_up_checks_ports_before_building(monkeypatch, tmp_path):
    """lab up checks its ports are free before building anything."""
    monkeypatch.setenv("IMAGEBENCH_STATE", str(tmp_path))
    monkeypatch.setenv("IMAGEBENCH_INDEX_PORT", str(_free_port() % 20000 + 30000))
    monkeypatch.setenv("IMAGEBENCH_APT_PORT", str(_free_port() % 20000 + 30000))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setenv("IMAGEBENCH_REGISTRY_PORT", str(port))
        with pytest.raises(LabError, match="registry is in use"):
            core.check_ports({}, core.ports())


def test_spawn_and_stop(tmp_path):
    """spawn starts a lab process on its port; stop ends it once and then reports nothing to do."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import http.server,sys; http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), "
        "http.server.SimpleHTTPRequestHandler).serve_forever()"
    )
    p = procs.spawn("test", [sys.executable, "-c", code, str(port)], tmp_path / "log", port=port)
    rec = p.to_dict()
    assert procs.port_open(port) and procs.is_ours(rec)
    assert procs.stop(rec)
    assert not procs.alive(p.pid)
    assert not procs.stop(rec)  # already gone: nothing to do


def test_spawn_reports_early_exit(tmp_path):
    """A lab process that exits at start is a LabError."""
    with pytest.raises(LabError, match="exited at start"):
        procs.spawn("broken", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "log", port=1)


def test_load_lab_when_not_up(monkeypatch, tmp_path):
    """load_lab without a running lab is a LabError saying to run lab up."""
    monkeypatch.setenv("IMAGEBENCH_STATE", str(tmp_path))
    with pytest.raises(LabError, match=r"lab is not up: run `imagebench lab up`"):
        core.load_lab()
