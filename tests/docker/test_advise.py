"""Docker tests of `imagebench advise`: real builds of the rewrites through the runner, smoke-checked."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.results import load_runs

from helpers import imagebench

REPO = Path(__file__).resolve().parents[2]
FLASK = REPO / "experiments" / "instruction-order"
CEXT = REPO / "tests" / "fixtures" / "advise" / "cext"
FLASK_SMOKE = "python -c \"import app; assert app.app.test_client().get('/').status_code == 200\""


def test_advise_ranks_reorder_first_on_the_bad_flask_app(lab, tmp_path):
    """On the Flask app written the bad way, the reorder ranks first on rebuild-after-edit, with an interval,
    every recommended rewrite passed the smoke check, and --write saves what buildx builds."""
    res, out = tmp_path / "results", tmp_path / "written"
    p = imagebench(
        "advise",
        str(FLASK / "Dockerfile.bad"),
        "--context",
        str(FLASK / "context"),
        "--smoke",
        FLASK_SMOKE,
        "--only",
        "order",
        "--trials",
        "2",
        "--seed",
        "5",
        "--write",
        str(out),
        "--json",
        results=res,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout[p.stdout.index("{") :])
    first = summary["rewrites"][0]
    assert first["variant"] == "order" and first["rank"] == 1 and first["effect"] == "rebuild after edit"
    cell = first["cells"]["rebuild after edit"]
    assert cell["ratio"] < 0.5 and cell["low"] is not None and cell["high"] < 1
    assert summary["original"]["status"] == "ok" and summary["original"]["root"] is True
    for r in summary["rewrites"]:
        if r["recommended"]:
            assert r["status"] == "ok"
    run = load_runs(res)[0]
    assert {t.get("metrics", {}).get("smoke_ok") for t in run["trials"]} == {1}
    # written like any run: the tidy table has the advised project
    table = imagebench("table", "--format", "csv", results=res)
    assert table.returncode == 0 and "advise-context,order,edit-source" in table.stdout
    # what --write saved is what was measured, and buildx builds it
    assert (out / "order.diff").read_text().startswith("--- Dockerfile.bad\n")
    ctx = tmp_path / "ctx"
    shutil.copytree(FLASK / "context", ctx)
    base = lab.resolve_base("python:3.13-slim").lab_tag
    args = [f"--build-arg={k}={v}" for k, v in lab.build_args().items()]
    cmd = ["docker", "buildx", "build", "--network", "host", "-q", "-f", str(out / "order.Dockerfile")]
    cmd += ["--build-context", f"python:3.13-slim=docker-image://{base}", *args]
    cmd += ["--iidfile", str(tmp_path / "iid"), str(ctx)]
    b = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert b.returncode == 0, b.stderr[-2000:]
    subprocess.run(["docker", "rmi", "-f", (tmp_path / "iid").read_text().strip()], capture_output=True)


@pytest.mark.usefixtures("lab")
def test_slim_rewrite_that_breaks_the_build_is_reported_broken(tmp_path):
    """A project whose install compiles: slim-base (no gcc added) is broken with gcc's error line and never
    recommended; multi-stage (compiles in the builder) passes the smoke check and is smaller."""
    res = tmp_path / "results"
    p = imagebench(
        "advise",
        str(CEXT / "Dockerfile"),
        "--smoke",
        'python -c "import fastsum; assert fastsum.add(2, 3) == 5"',
        "--only",
        "slim-base,multi-stage",
        "--trials",
        "1",
        "--seed",
        "2",
        "--json",
        results=res,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout[p.stdout.index("{") :])
    by = {r["variant"]: r for r in summary["rewrites"]}
    slim = by["slim-base"]
    assert slim["status"] == "broken" and not slim["recommended"]
    assert "gcc" in slim["failure"], slim["failure"]
    # one trial: it works (smoke passed), but no interval yet, so not recommended on one trial
    assert by["multi-stage"]["status"] == "ok" and by["multi-stage"]["cells"]["image"]["ratio"] < 1
    assert not by["multi-stage"]["recommended"]
    assert summary["rewrites"][-1]["variant"] == "slim-base"  # broken rewrites rank last
    text = imagebench(
        "advise", str(CEXT / "Dockerfile"), "--only", "slim-base", "--dry-run", results=res
    ).stdout
    assert "unsure" in text
