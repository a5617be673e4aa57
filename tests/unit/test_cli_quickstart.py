"""The newcomer's path: `make run` writes only to git-ignored runs/, the README names real files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()
GENERATED = ("runs/",)  # what `make run` produces; described, not committed
GENERIC = {"REPORT.md", "experiment.toml", "daemon.json"}  # names of a kind of file, not a path
SYSTEM = ("/etc/",)  # the machine's own files the README names (read, never written by the harness)


def _make_n(target: str) -> str:
    return subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_run_writes_runs_not_the_reference() -> None:
    """Every imagebench command of `make run` takes --results runs; none names results/."""
    lines = [ln for ln in _make_n("run").splitlines() if "imagebench" in ln and " lab " not in ln]
    assert lines and all("--results runs" in ln for ln in lines if "echo" not in ln)
    assert not any(re.search(r"--results\s+results\b", ln) for ln in lines)


def test_runs_dir_is_git_ignored() -> None:
    """runs/ (a user's own runs and report) is ignored by git."""
    p = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", "runs/vm-0/x.json"], capture_output=True
    )
    assert p.returncode == 0


def test_only_make_reference_writes_results() -> None:
    """In the Makefile only the `reference` target's script writes the committed results/."""
    assert "reference-run.sh" in MAKEFILE.split("reference:", 1)[1].split("\n\n", 1)[0]
    for target in ("run", "test", "lab"):
        assert "--results results" not in _make_n(target)


def test_readme_names_only_files_in_the_repository() -> None:
    """Every file path the README names exists in the checkout (generated runs/ and the machine's /etc aside)."""
    found = set(
        re.findall(r"`([A-Za-z0-9_./-]+\.(?:md|py|sh|toml|json|yml|ipynb|txt|lock))(?:::[^`]*)?`", README)
    )
    found |= {m for m in re.findall(r"\]\(([^)#\s]+)", README) if not m.startswith("http")}
    missing = [
        f
        for f in sorted(found)
        if f not in GENERIC and not f.startswith(GENERATED + SYSTEM) and not (REPO / f).exists()
    ]
    assert missing == []
    assert "design.md" not in README
