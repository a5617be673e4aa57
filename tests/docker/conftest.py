"""Docker tests: a real engine and the lab. They fail (not skip) when the lab is not up, so CI
cannot pass without them; set IMAGEBENCH_SKIP_DOCKER=1 to skip them on a machine without Docker."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from harness.errors import HarnessError, LockBusy
from harness.lab import load_lab
from harness.lock import daemon_lock

REPO = Path(__file__).resolve().parents[2]
TEST_LABEL = "imagebench.test"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.docker)
            if os.environ.get("IMAGEBENCH_SKIP_DOCKER") == "1":
                item.add_marker(pytest.mark.skip(reason="IMAGEBENCH_SKIP_DOCKER=1"))


@pytest.fixture(scope="session")
def lab():
    """The running lab (`make lab`); a lab that is down fails the test (never skips)."""
    try:
        lab = load_lab()
        lab.check_alive()
    except HarnessError as exc:
        pytest.fail(f"docker tests need the lab: {exc} (run `make lab`)")
    return lab


@pytest.fixture(scope="session")
def client() -> Iterator[docker.DockerClient]:
    """The one Docker client of the docker tests; no engine answering fails the test (never skips)."""
    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        pytest.fail(f"docker tests need a Docker Engine: {exc} (run `make lab`)")
    yield c
    c.close()


@pytest.fixture
def daemon_to_ourselves() -> Iterator[None]:
    """Hold the daemon lock for one test, as a run does: every build-cache prune (a run's cold state)
    happens under this lock, so no run can empty the cache or reset the lab index's counters between
    the builds of a test that measures cache reuse or downloads."""
    try:
        with daemon_lock(owner="pytest (a docker test measuring the build cache)", timeout=3600):
            yield
    except LockBusy as exc:
        pytest.fail(f"{exc} (a run held the daemon for over an hour)")


@pytest.fixture(scope="session")
def busybox_base() -> Iterator[str]:
    """The tiny offline base (tests/fixtures/make_busybox_base.sh); removed afterwards when this session
    imported it (a tag that was there before, the user's, stays)."""
    tag = os.environ.get("IMAGEBENCH_TEST_BASE", "imagebench-test/busybox:latest")
    existed = subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0
    out = subprocess.run(
        ["bash", str(REPO / "tests/fixtures/make_busybox_base.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    yield out.stdout.strip().splitlines()[-1]
    if not existed:
        subprocess.run(["docker", "rmi", tag], capture_output=True)
