"""Docker tests of `imagebench advise` on projects whose own app fails: real builds through the runner, the
original retried on the other Python stand-in, the rewrites judged against the original's outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.experiment import NAME_RE
from harness.results import load_runs

from helpers import imagebench

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
IMPORTFAIL = FIXTURES / "advise-importfail"
REMOVED = FIXTURES / "advise-removedmodule"


def _summary(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


@pytest.mark.usefixtures("lab")
def test_app_whose_import_fails_everywhere_still_gets_the_reorder_first(tmp_path):
    """python:3.12-slim, COPY . . before pip install, app.py imports a name Werkzeug 3 lacks: the original fails
    its smoke check under every stand-in (the other one tried in a run of its own), the reorder fails the same
    way, is 'as the original' (not broken), ranks first and is recommended for its rebuild after an edit."""
    res = tmp_path / "results"
    p = imagebench(
        "advise",
        str(IMPORTFAIL / "Dockerfile"),
        "--smoke",
        'python -c "import app"',
        "--only",
        "order",
        "--trials",
        "2",
        "--seed",
        "3",
        "--json",
        results=res,
    )
    assert p.returncode == 1, p.stderr[
        -3000:
    ]  # the user's own check fails: advise says so in its exit status
    s = _summary(p.stdout)
    o = s["original"]
    assert o["status"] == "fails" and o["outcome"]["kind"] == "smoke", o
    assert "cannot import name 'url_quote'" in o["outcome"]["line"]
    si = o["stand_ins"]
    assert si["verdict"] == "every", si
    assert [t["kind"] for t in si["tried"]] == ["smoke"] and si["tried"][0]["python"] != si["used"]
    assert "trying it on" in p.stderr
    first = s["rewrites"][0]
    assert first["variant"] == "order" and first["rank"] == 1 and first["status"] == "as the original"
    assert first["recommended"] and first["effect"] == "rebuild after edit"
    assert first["cells"]["rebuild after edit"]["high"] < 1
    # the retry is a run file of its own, under its own experiment name (never pooled with the main run)
    runs = load_runs(res)
    names = sorted(next(iter(r["experiments"])) for r in runs)
    assert len(runs) == 2 and names[1] == f"{names[0]}-py{si['tried'][0]['python'].replace('.', '')}", names
    assert all(NAME_RE.match(n) for n in names)


@pytest.mark.usefixtures("lab")
def test_app_that_needs_an_older_python_is_told_which_substitute_passes(tmp_path):
    """app.py imports cgi (gone in Python 3.13): run on the 3.13 stand-in for python:3.12, the original fails;
    tried on 3.11 it passes, and advise names the --python-substitute that gets there."""
    res = tmp_path / "results"
    p = imagebench(
        "advise",
        str(REMOVED / "Dockerfile"),
        "--smoke",
        "python -c \"import app; assert app.app.test_client().get('/').status_code == 200\"",
        "--only",
        "order",
        "--trials",
        "1",
        "--python-substitute",
        "nearest",
        "--json",
        results=res,
    )
    assert p.returncode == 1, p.stderr[-3000:]
    s = _summary(p.stdout)
    si = s["original"]["stand_ins"]
    assert s["original"]["outcome"]["line"] == "ModuleNotFoundError: No module named 'cgi'"
    assert si["used"] == "3.13" and si["verdict"] == "substitution", si
    assert si["message"] == f"fails on 3.13, passes on 3.11: pass --python-substitute {si['passes_with']}"
    assert s["rewrites"][0]["status"] == "as the original"
