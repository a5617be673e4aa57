"""Shared fixtures. Docker tests are marked `docker` and need the lab (`imagebench lab up`)."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest
import requests

from harness.engine.inspect import labelled_leftovers
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tmp_results(tmp_path: Path) -> Path:
    d = tmp_path / "results"
    d.mkdir()
    return d


@pytest.fixture(autouse=True)
def _isolated_machine_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBENCH_MACHINE", os.environ.get("IMAGEBENCH_MACHINE", "testhost"))
    # every test draws its plots (a cached plot would make the determinism tests vacuous) and leaves
    # ~/.cache alone; tests of the plot cache point it at a directory of their own
    monkeypatch.setenv("IMAGEBENCH_PLOT_CACHE", "off")


_DOCKER_TESTS = "tests/docker/"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under `pytest -n N --dist loadscope` (make test): every docker test in one scope, so one worker
    runs them one after another (one engine, one lab, one daemon lock), while the other workers take
    the unit tests file by file. (xdist's own loadgroup marks do not reach the scheduler under pytest 9,
    which ignores the node id xdist rewrites.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class DockerTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _DOCKER_TESTS if nodeid.startswith(_DOCKER_TESTS) else nodeid.split("::", 1)[0]

    return DockerTestsTogether(config, log)


_ran_docker_tests_on_workers = False


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(ids):
    """pytest-xdist's controller collects nothing itself: it learns here whether docker tests run."""
    global _ran_docker_tests_on_workers
    if any(i.startswith(_DOCKER_TESTS) for i in ids):
        _ran_docker_tests_on_workers = True


def pytest_sessionfinish(session):
    """After the suite: nothing labelled by the harness or the tests may remain on the daemon.

    Under pytest-xdist the controller checks, once every worker has finished (a worker's own exit
    status does not reach the controller, and a worker ends while another may still build)."""
    if os.environ.get("IMAGEBENCH_SKIP_DOCKER") == "1" or session.config.option.collectonly:
        return
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks
        return
    ran_docker = _ran_docker_tests_on_workers or any(
        item.get_closest_marker("docker") for item in getattr(session, "items", [])
    )
    if not ran_docker:
        return
    try:
        left = {}
        for key in ("imagebench.run", "imagebench.test"):
            for kind, ids in labelled_leftovers(key).items():
                if ids:
                    left.setdefault(kind, []).extend(ids)
    except (HarnessError, docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        # the daemon is gone: nothing to check
        print(f"\nleftover check skipped: {exc}")
        return
    if left:
        print(f"\nLEFTOVERS on the daemon after the test suite: {left}")
        session.exitstatus = 1
