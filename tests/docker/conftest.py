"""Docker tests: a real engine and the lab. They fail (not skip) when the lab is not up, so CI
cannot pass without them; set IMAGEBENCH_SKIP_DOCKER=1 to skip them on a machine without Docker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_LABEL = "imagebench.test"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.docker)
            if os.environ.get("IMAGEBENCH_SKIP_DOCKER") == "1":
                item.add_marker(pytest.mark.skip(reason="IMAGEBENCH_SKIP_DOCKER=1"))


@pytest.fixture(scope="session")
def lab():
    from harness.errors import HarnessError
    from harness.lab import load_lab

    try:
        lab = load_lab()
        lab.check_alive()
    except HarnessError as exc:
        pytest.fail(f"docker tests need the lab: {exc} (run `make lab`)")
    return lab


@pytest.fixture(scope="session")
def busybox_base() -> str:
    out = subprocess.run(
        ["bash", str(REPO / "tests/fixtures/make_busybox_base.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]
