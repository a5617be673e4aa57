"""Shared fixtures. Docker tests are marked `docker` and need the lab (`imagebench lab up`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tmp_results(tmp_path: Path) -> Path:
    d = tmp_path / "results"
    d.mkdir()
    return d


@pytest.fixture(autouse=True)
def _isolated_machine_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBENCH_MACHINE", os.environ.get("IMAGEBENCH_MACHINE", "testhost"))
