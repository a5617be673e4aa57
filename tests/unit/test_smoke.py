"""Smoke checks: the `smoke` key of a variant, the argv it runs, what a trial keeps of a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SchemaError
from harness.experiment import discover, load_experiment
from harness.smoke import SmokeResult, command_text, last_line, smoke_argv

REPO = Path(__file__).resolve().parents[2]

BASE = """\
practice = "p"
claim = "c"

[[variants]]
name = "a"
dockerfile = "Dockerfile.a"
{smoke}
"""


def make(tmp_path: Path, smoke_line: str) -> Path:
    folder = tmp_path / "demo"
    (folder / "context").mkdir(parents=True)
    (folder / "Dockerfile.a").write_text("FROM debian:trixie-slim\n")
    (folder / "experiment.toml").write_text(BASE.format(smoke=smoke_line))
    return folder


def test_smoke_string_and_list_load(tmp_path):
    """A string smoke is kept as the shell command, a list as an exec-form tuple; both reach the record."""
    e = load_experiment(make(tmp_path, "smoke = \"python -c 'import flask'\""))
    assert e.variants[0].smoke == "python -c 'import flask'"
    assert e.to_dict()["variants"][0]["smoke"] == "python -c 'import flask'"
    e2 = load_experiment(make(tmp_path / "x", 'smoke = ["/app/bin", "--version"]'))
    assert e2.variants[0].smoke == ("/app/bin", "--version")
    assert e2.to_dict()["variants"][0]["smoke"] == ["/app/bin", "--version"]


def test_no_smoke_is_none_and_absent_from_record(tmp_path):
    """A variant without smoke has None and its recorded definition carries no smoke key."""
    e = load_experiment(make(tmp_path, ""))
    assert e.variants[0].smoke is None
    assert "smoke" not in e.to_dict()["variants"][0]


@pytest.mark.parametrize("line", ['smoke = ""', "smoke = []", "smoke = [1]", "smoke = 3"])
def test_bad_smoke_names_line_and_key(tmp_path, line):
    """An empty, non-string or numeric smoke fails with the file, the line and the key."""
    with pytest.raises(SchemaError) as err:
        load_experiment(make(tmp_path, line))
    assert "variants[0].smoke" in str(err.value)
    assert "experiment.toml:7" in str(err.value)


def test_argv_and_text():
    """A string runs through /bin/sh -c; a list is the argv as given; text joins a list with spaces."""
    assert smoke_argv("a && b") == ["/bin/sh", "-c", "a && b"]
    assert smoke_argv(("prog", "x")) == ["prog", "x"]
    assert command_text(("prog", "x")) == "prog x"
    assert command_text("a && b") == "a && b"


def test_last_line_skips_blank_and_truncates():
    """The row quotes the last non-empty line, cut at 200 characters; no output says so."""
    assert last_line("one\nModuleNotFoundError: No module named 'x'\n\n  \n") == (
        "ModuleNotFoundError: No module named 'x'"
    )
    assert last_line("") == "(no output)"
    assert len(last_line("y" * 500)) == 200


def test_record_keeps_output_only_on_failure():
    """A passing smoke keeps the outcome only; a failing one keeps the output's tail and last line."""
    ok = SmokeResult("true", True, 0, 0.1234, "lots of output").record()
    assert ok == {"command": "true", "ok": True, "exit_code": 0, "seconds": 0.123}
    bad = SmokeResult(("x",), False, 1, 0.5, "a" * 5000 + "\nboom").record()
    assert bad["command"] == ["x"] and bad["last_line"] == "boom"
    assert len(bad["output_tail"]) == 2000 and bad["output_tail"].endswith("boom")


def test_every_catalog_variant_has_a_smoke_check():
    """Every variant of every shipped experiment declares the command its image must pass."""
    missing = [
        f"{e.name}/{v.name}" for e in discover(REPO / "experiments") for v in e.variants if not v.smoke
    ]
    assert missing == []


def test_run_summary_shows_smoke_checks_passed_per_variant():
    """The end-of-run summary has 'passed/total' smoke checks per variant, '–' for a variant without any."""
    from harness.tables import summary_rows

    def trial(variant: str, n: int, smoke: int | None) -> dict:
        m = {"build_seconds": 1.0, "image_bytes": 10.0} | ({} if smoke is None else {"smoke_ok": smoke})
        return {
            "experiment": "e",
            "variant": variant,
            "scenario": "cold",
            "trial": n,
            "status": "ok",
            "metrics": m,
        }

    run = {"trials": [trial("a", 0, 1), trial("a", 1, 0), trial("b", 0, None)], "experiments": {"e": {}}}
    rows = {r["variant"]: r["smoke"] for r in summary_rows([run], verdicts=[])}
    assert rows == {"a": "1/2", "b": None}
