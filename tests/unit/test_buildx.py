"""run_build without an engine: a stand-in `docker` on PATH plays buildx (exit code, stderr, iid and metadata files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.engine.buildx import BuildSpec, run_build

FAKE_DOCKER = """#!/bin/sh
# a stand-in for `docker buildx build`: writes the files buildx writes, then exits with $FAKE_RC
while [ $# -gt 0 ]; do
  case "$1" in
    --metadata-file) shift; printf '{"containerimage.config.digest": "sha256:meta"}' > "$1" ;;
    --iidfile) shift; [ "$FAKE_RC" = 0 ] && printf 'sha256:iid\\n' > "$1" ;;
  esac
  shift
done
[ -n "$FAKE_STDERR" ] && printf '%s\\n' "$FAKE_STDERR" >&2
exit "$FAKE_RC"
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` executable first on PATH that records nothing and talks to no daemon."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker"
    exe.write_text(FAKE_DOCKER)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return exe


def _spec(tmp_path: Path) -> BuildSpec:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return BuildSpec(context=tmp_path, dockerfile=tmp_path / "Dockerfile", timeout=30)


@pytest.mark.usefixtures("fake_docker")
def test_successful_build_reads_image_id_and_metadata(tmp_path, monkeypatch):
    """A build that exits 0 is ok, takes the iid file's image id and keeps the metadata file."""
    monkeypatch.setenv("FAKE_RC", "0")
    result = run_build(_spec(tmp_path))
    assert result.ok and result.returncode == 0 and result.error == ""
    assert result.image_id == "sha256:iid"
    assert result.metadata == {"containerimage.config.digest": "sha256:meta"}
    assert result.command[:3] == ["docker", "buildx", "build"] and result.seconds >= 0


@pytest.mark.usefixtures("fake_docker")
def test_failed_build_summarises_buildkit_error_and_redacts_secrets(tmp_path, monkeypatch):
    """A failing build gives the ERROR: line as its one-line error, with secret values redacted."""
    monkeypatch.setenv("FAKE_RC", "1")
    monkeypatch.setenv("FAKE_STDERR", "ERROR: failed to solve: token hunter2 rejected")
    result = run_build(_spec(tmp_path), redact={"hunter2"})
    assert not result.ok and result.returncode == 1
    assert result.error == "failed to solve: token <redacted> rejected"
    assert "hunter2" not in result.error_text
    assert result.image_id == "sha256:meta"  # no iid file: the metadata's config digest


@pytest.mark.usefixtures("fake_docker")
def test_failed_build_without_output_names_the_exit_code(tmp_path, monkeypatch):
    """A build that fails silently still says how it exited."""
    monkeypatch.setenv("FAKE_RC", "3")
    monkeypatch.setenv("FAKE_STDERR", "")
    result = run_build(_spec(tmp_path))
    assert result.error == "docker buildx build exited with 3"
