"""scripts/substitution_evidence.py's pure parts: which sets count for 3.12, which method decides, why pip failed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location(
        "substitution_evidence", REPO / "scripts" / "substitution_evidence.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["substitution_evidence"] = mod
    spec.loader.exec_module(mod)
    return mod


def _rows(ok: dict[str, bool]) -> dict:
    return {name: {"ok": v} for name, v in ok.items()}


def test_only_sets_that_resolve_on_312_count_and_installs_check_the_dry_run():
    """A set that fails on 3.12 itself is not code written for 3.12; the tallies come from the dry-run for every
    minor, and the real installs that ran say where they agree with it."""
    ev = _script()
    sets = {"a": {}, "b": {}, "c": {}}
    runs = {
        "dry-run": {
            "glibc": {
                "3.12": _rows({"a": True, "b": True, "c": False}),
                "3.11": _rows({"a": True, "b": True, "c": True}),
                "3.13": _rows({"a": False, "b": False, "c": False}),
            }
        },
        "install": {
            "glibc": {"3.13": _rows({"a": True, "b": False, "c": False}), "3.11": _rows({"a": True})}
        },
    }
    out = ev.summarize(sets, runs)["glibc"]["3.12"]
    assert {k: out["3.13"][k] for k in ("failed", "sets", "failed_sets")} == {
        "failed": 2,
        "sets": 2,
        "failed_sets": ["a", "b"],
    }
    assert out["3.13"]["install_check"] == {"sets": 2, "agree": 1, "disagree": ["a"]}
    assert out["3.11"]["failed"] == 0 and out["3.11"]["install_check"] == {
        "sets": 1,
        "agree": 1,
        "disagree": [],
    }
    assert "musl" not in ev.summarize(sets, runs)


def test_first_error_names_the_missing_wheel_or_the_failed_build():
    """pip's reason: the pin with no fitting distribution, or the package whose build failed (not the
    'Ignored the following yanked versions' preamble)."""
    ev = _script()
    text = (
        "ERROR: Ignored the following yanked versions: 3.0.4\n"
        "ERROR: Could not find a version that satisfies the requirement pandas==2.2.1 (from versions: 2.2.3)\n"
        "ERROR: No matching distribution found for pandas==2.2.1\n"
    )
    assert ev.first_error(text) == "ERROR: No matching distribution found for pandas==2.2.1"
    build = "Collecting psycopg2-binary==2.9.9\n  Preparing metadata (setup.py): started\n  error: subprocess-exited-with-error\n"
    assert ev.first_error(build).startswith("error: subprocess-exited-with-error")
    assert "(Collecting psycopg2-binary==2.9.9)" in ev.first_error(build)


def test_the_sets_are_pinned_and_dated():
    """Every requirement set names its era and pins each package with ==; the held-in fixtures are read in place."""
    ev = _script()
    sets = ev.load_sets(ev.SETS)
    own = {k: v for k, v in sets.items() if not k.startswith("held-in:")}
    assert len(own) >= 20
    for name, s in own.items():
        assert s["era"][:2] == "20", name
        lines = [
            ln for ln in (REPO / s["path"]).read_text().splitlines() if ln.strip() and not ln.startswith("#")
        ]
        assert lines and all("==" in ln for ln in lines), name
    assert any(k.startswith("held-in:multi-stage") for k in sets)
