"""Helpers shared by test modules (importable as `helpers`; pyproject sets pythonpath = tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE_EXPERIMENTS = REPO / "tests" / "fixtures" / "experiments"


def imagebench(
    *args: str,
    results: Path,
    timeout: float = 900,
    env: dict | None = None,
    experiments: Path | None = FIXTURE_EXPERIMENTS,
) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (the way users run it)."""
    cmd = [sys.executable, "-m", "harness", "--results", str(results), *args]
    if experiments is not None and args and args[0] in ("run", "list"):
        cmd += ["--experiments", str(experiments)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO
    )
