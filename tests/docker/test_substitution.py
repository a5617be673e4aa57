"""The Python a project asks for, through `imagebench compare` with the default options: a 3.12 tag whose pin
has a cp311 wheel but no cp313 one builds (on the measured default, 3.11), a -slim-bookworm tag runs on
bookworm's stand-in, and a 3.11-alpine tag runs on the 3.11 musl stand-in (built on demand), each passing
an import smoke check.  The fixtures are generated here, in the shape of the projects of issue 27."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import pyversions
from harness.results import load_runs

from helpers import imagebench

# psycopg2-binary 2.9.9: manylinux wheels for cp37-cp312, none for cp313 (2.9.10 added them), and its sdist
# needs pg_config and a compiler, which a slim image lacks.  2.9.6: cp36-cp311 (musllinux too), no cp312/cp313.
GLIBC_PIN = "psycopg2-binary==2.9.9"
MUSL_PIN = "psycopg2-binary==2.9.6"
SMOKE = "python -c 'import sys, psycopg2; print(sys.version_info[:2], psycopg2.__version__)'"


def _project(folder: Path, base: str, pin: str) -> Path:
    """A Dockerfile in the shape of a small web project: requirements first, then the app."""
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text(pin + "\n")
    (folder / "app.py").write_text("import psycopg2\nprint('app', psycopg2.__version__)\n")
    (folder / "Dockerfile").write_text(
        f"FROM {base}\nWORKDIR /app\nCOPY requirements.txt .\n"
        'RUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\nCMD ["python", "app.py"]\n'
    )
    return folder / "Dockerfile"


def _compare(a: Path, b: Path, res: Path, *extra: str):
    return imagebench(
        "compare",
        str(a),
        str(b),
        "--context",
        str(a.parent),
        "--trials",
        "1",
        "--smoke",
        SMOKE,
        *extra,
        results=res,
        timeout=3600,
    )


def _trials(res: Path) -> tuple[dict, list[dict]]:
    (run,) = load_runs(res)
    return run, [t for t in run["trials"] if t["status"] != "skipped"]


@pytest.mark.usefixtures("lab")
def test_a_312_pin_without_a_313_wheel_builds_with_the_default(tmp_path: Path) -> None:
    """FROM python:3.12-slim and FROM python:3.12-slim-bookworm with a pin that has no cp313 wheel: both build
    and import it on the 3.11 stand-in, each substitution said with its reason; --python-substitute nearest
    (3.13) fails the build, as the default did before it was measured."""
    bare = _project(tmp_path / "bare", "python:3.12-slim", GLIBC_PIN)
    bookworm = _project(tmp_path / "bookworm", "python:3.12-slim-bookworm", GLIBC_PIN)
    res = tmp_path / "results"
    p = _compare(bare, bookworm, res)
    assert p.returncode == 0, p.stderr[-3000:] + p.stdout[-2000:]
    run, trials = _trials(res)
    assert [t["status"] for t in trials] == ["ok", "ok"]
    assert all(t["metrics"]["smoke_ok"] == 1 for t in trials), [t.get("smoke") for t in trials]
    subs = run["python_substitutions"]
    assert subs["python:3.12-slim"]["used"] == "3.11" and subs["python:3.12-slim"]["rule"] == "compatible"
    assert subs["python:3.12-slim-bookworm"]["used"] == "3.11"
    assert "Debian bookworm" in subs["python:3.12-slim-bookworm"]["reason"]
    rates = pyversions.measured(pyversions.load_evidence(), (3, 12), "glibc")
    failed, sets = rates[(3, 11)]
    assert f"{failed} of {sets} pinned requirement sets failed on 3.11" in p.stderr  # the reason, printed
    assert "asks for Python 3.12 on Debian bookworm" in p.stderr

    nearest = _compare(bare, bare, tmp_path / "r-nearest", "--python-substitute", "nearest")
    run, trials = _trials(tmp_path / "r-nearest")
    assert run["python_substitutions"]["python:3.12-slim"]["used"] == "3.13"
    assert trials and all(t["status"] == "failed" for t in trials), nearest.stderr[-2000:]
    assert "likely cause: the Python substitution" in nearest.stdout + nearest.stderr


@pytest.mark.usefixtures("lab")
def test_a_311_alpine_project_runs_on_the_311_musl_stand_in(tmp_path: Path) -> None:
    """FROM python:3.11-alpine with psycopg2-binary 2.9.6 (a cp311 musllinux wheel, no cp313 one): no
    substitution, the 3.11 musl stand-in (built on demand if missing), the import smoke check passes."""
    df = _project(tmp_path / "alpine", "python:3.11-alpine", MUSL_PIN)
    res = tmp_path / "results"
    p = _compare(df, df, res)
    assert p.returncode == 0, p.stderr[-3000:] + p.stdout[-2000:]
    run, trials = _trials(res)
    assert [t["status"] for t in trials] == ["ok", "ok"]
    assert all(t["metrics"]["smoke_ok"] == 1 for t in trials), [t.get("smoke") for t in trials]
    assert not run.get("python_substitutions")
    pin = run["bases"]["python:3.11-alpine"]
    assert pin["lab_tag"] == "imagebench-lab/python:3.11-musl"
    assert pin["provenance"]["python"].startswith("3.11.")
    assert "musl" in pin["provenance"]["libc"]
    json.dumps(run)  # the run file stays plain JSON
