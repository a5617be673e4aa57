"""Where imagebench keeps its state (lab data, locks, logs), a user's runs and the reference run."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """The lab's state directory: $IMAGEBENCH_STATE, else /var/lib/imagebench as root, else ~/.cache."""
    env = os.environ.get("IMAGEBENCH_STATE")
    if env:
        path = Path(env)
    elif os.geteuid() == 0:
        path = Path("/var/lib/imagebench")
    else:
        path = Path.home() / ".cache" / "imagebench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def experiments_dir() -> Path:
    return Path(os.environ.get("IMAGEBENCH_EXPERIMENTS", REPO_ROOT / "experiments"))


def results_dir() -> Path:
    """Where a user's own runs go: $IMAGEBENCH_RESULTS, else runs/ of the checkout (git-ignored)."""
    return Path(os.environ.get("IMAGEBENCH_RESULTS", REPO_ROOT / "runs"))


def reference_dir() -> Path:
    """The committed reference run (results/ of the checkout); only `make reference` writes it."""
    return Path(os.environ.get("IMAGEBENCH_REFERENCE", REPO_ROOT / "results"))
