"""`imagebench compare` on real Dockerfiles: the edit-source question, and Python version fidelity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.compare import render_compare

from helpers import REPO, imagebench

IO = REPO / "experiments" / "instruction-order"


@pytest.mark.usefixtures("lab")
def test_edit_source_copy_before_install_pair(tmp_path: Path) -> None:
    """After a source edit the reordered Dockerfile re-runs fewer steps and rebuilds faster, with an
    interval, and no verdict column because no claim was stated."""
    res = tmp_path / "results"
    args = [
        "compare",
        str(IO / "Dockerfile.bad"),
        str(IO / "Dockerfile.good"),
        "--context",
        str(IO / "context"),
        "--scenario",
        "edit-source",
        "--trials",
        "3",
        "--seed",
        "1",
    ]
    p = imagebench(*args, "--json", results=res)
    assert p.returncode == 0, p.stderr[-2000:] + p.stdout[-2000:]
    assert "edit-source edits: ['app.py']" in p.stderr
    summary = json.loads(p.stdout)
    rows = {r["metric"]: r for r in summary["rows"] if r["scenario"] == "edit-source"}
    assert rows["steps_executed"]["b_median"] < rows["steps_executed"]["a_median"]
    assert rows["build_seconds"]["high"] < 1, rows["build_seconds"]  # B faster: the whole interval below 1
    assert rows["build_seconds"]["difference"].startswith("B smaller by")
    text = render_compare(summary)
    assert "B against A" in text and "95 % CI" in text and "supported" not in text
    assert summary["claims"] == []


@pytest.mark.usefixtures("lab")
def test_python_substitution_is_said_before_the_first_build(tmp_path: Path) -> None:
    """FROM python:3.12-slim: the substitute is printed before the first trial, kept in the run file,
    and a build that fails after it names the substitution as the likely cause."""
    (tmp_path / "ok.Dockerfile").write_text("FROM python:3.12-slim\nRUN python -c 'print(1)'\n")
    (tmp_path / "bad.Dockerfile").write_text(
        "FROM python:3.12-slim\nRUN python -c 'import sys; sys.exit(3)'\n"
    )
    res = tmp_path / "results"
    p = imagebench(
        "compare",
        str(tmp_path / "ok.Dockerfile"),
        str(tmp_path / "bad.Dockerfile"),
        "--trials",
        "1",
        results=res,
    )
    err = p.stderr
    assert "Python version changed: python:3.12-slim asks for Python 3.12" in err, err[-2000:]
    first_trial = min(i for i in (err.find("[1/"), err.find("compare ·")) if i >= 0)
    assert err.index("Python version changed") < first_trial
    assert "likely cause: the Python substitution" in p.stdout + err
    run = json.loads(next(res.glob("*/*.json")).read_text())
    # the default rule's pick: the minor measured to fail fewer pinned requirement sets (3.11)
    assert run["python_substitutions"]["python:3.12-slim"]["used"] == "3.11"
    assert any("Python version changed" in w for w in run["warnings"])
    refused = imagebench(
        "compare",
        str(tmp_path / "ok.Dockerfile"),
        str(tmp_path / "ok.Dockerfile"),
        "--trials",
        "1",
        "--python-substitute",
        "refuse",
        results=tmp_path / "r3",
    )
    assert refused.returncode != 0
    assert "no Python 3.12 stand-in" in refused.stderr and "Traceback" not in refused.stderr
