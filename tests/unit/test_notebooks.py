"""The workshop notebooks execute top to bottom against results (never building anything), and are
committed with their outputs from the committed reference (`python scripts/notebooks.py`), kept current."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install '.[test]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install '.[test]')")

REPO = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
FIXTURE = REPO / "tests" / "fixtures" / "results"
COMMITTED = REPO / "results"
CELL_TIMEOUT = 600


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_script", REPO / "scripts" / "notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


NB_SCRIPT = _load_script()


def results_dirs() -> list:
    dirs = [pytest.param(FIXTURE, id="fixture")]
    has_runs = COMMITTED.is_dir() and any(
        p.parent.name not in ("drift", "report", "gate") for p in COMMITTED.glob("*/*.json")
    )
    dirs.append(
        pytest.param(
            COMMITTED,
            id="committed",
            marks=pytest.mark.skipif(not has_runs, reason="no committed reference run under results/ yet"),
        )
    )
    return dirs


def test_both_notebooks_exist():
    """The two shipped notebooks exist under notebooks/."""
    assert [p.name for p in NOTEBOOKS] == ["01_workshop_tour.ipynb", "02_base_image_drift.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_outputs(path):
    """Committed with outputs (a plot at least, no error), so a code host shows them; code never builds."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: run scripts/notebooks.py"
    assert not [o for o in outputs if o.output_type == "error"]
    # Outputs must not name the checkout's location: CI re-executes them in a clone elsewhere.
    assert str(REPO) not in path.read_text(), f"{path.name}: outputs name this checkout's path"
    for cell in nb.cells:
        if cell.cell_type == "code":
            src = cell.source
            forbidden = [
                "import docker",
                "subprocess",
                "harness.runner",
                "harness.engine",
                "harness.lab",
                "drift.observe",
                "drift.drift(",
                "%%bash",
                "%%sh",
            ]
            assert not any(f in src for f in forbidden), (
                f"{path.name}: notebooks read results, they never build"
            )
            assert not any(line.lstrip().startswith("!") for line in src.splitlines()), path.name


@pytest.mark.parametrize("results", results_dirs())
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, results, monkeypatch):
    """Executes against the fixture and the reference; against the reference its outputs are the committed ones."""
    monkeypatch.setenv("IMAGEBENCH_RESULTS", str(results))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = NB_SCRIPT.execute(path, results)
    if results == COMMITTED:
        committed = nbformat.read(path, as_version=4)
        assert NB_SCRIPT.fingerprint(committed) == NB_SCRIPT.fingerprint(nb), (
            f"{path.name}: committed outputs are stale; run python scripts/notebooks.py"
        )
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "display_data" and "image/png" in o.get("data", {})
    ]
    assert images, f"{path.name} showed no plot"
    assert os.environ["IMAGEBENCH_RESULTS"] == str(results)
