"""The README stays true: its generated blocks match the committed results, every command is
documented and answers --help, the quickstart's test command is what CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_generated_blocks_are_current():
    """The README's generated blocks equal what scripts/readme_figures.py renders from the committed results."""
    p = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "readme_figures.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr


def test_quickstart_test_command_is_ci():
    """The README's quickstart is make run + make test, and CI runs make test."""
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "```sh\nmake run\nmake test\n```" in README


@pytest.mark.parametrize(
    "command", ["lab", "list", "run", "compare", "advise", "table", "report", "drift", "gate", "export"]
)
def test_every_command_is_documented_and_has_help(command, capsys):
    """Every CLI command is named in the README and its --help exits 0 with usage."""
    assert f"`imagebench {command}" in README
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: imagebench" in capsys.readouterr().out


def test_bad_command_line_is_one_line(capsys):
    """A bad command line exits 2 with one 'imagebench:' error line."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "--trials", "zero"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "imagebench:" in err


def test_parser_builds():
    """The CLI parser builds with prog 'imagebench'."""
    assert build_parser().prog == "imagebench"
