"""`--results DIR` is accepted before or after the command name, for every command."""

from __future__ import annotations

import argparse

import pytest

from harness.cli import build_parser, main


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out.extend(_leaf_commands(sub, (*prefix, name)))
    return out


def _required_args(parser: argparse.ArgumentParser, cmd: tuple[str, ...]) -> list[str]:
    """Values for the command's required positionals and options (any value of the right kind)."""
    sub = parser
    for name in cmd:
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    out: list[str] = []
    for a in sub._actions:
        value = str(next(iter(a.choices))) if a.choices else "x"
        if (
            not a.option_strings
            and not isinstance(a, argparse._SubParsersAction)
            and a.nargs not in ("*", "?")
        ):
            out.append(value)
        elif a.option_strings and a.required:
            out += [a.option_strings[0], value]
    return out


def test_every_command_takes_results_after_its_name() -> None:
    """Each command and subcommand parses `--results DIR` placed after its name."""
    parser = build_parser()
    commands = _leaf_commands(parser)
    assert ("table",) in commands and ("lab", "status") in commands
    for cmd in commands:
        ns = parser.parse_args([*cmd, *_required_args(parser, cmd), "--results", "/tmp/after"])
        assert ns.results == "/tmp/after", cmd


def test_results_before_command_is_kept() -> None:
    """`--results` before the command name is not overwritten by the subcommand's unset option."""
    ns = build_parser().parse_args(["--results", "/tmp/before", "table", "--format", "csv"])
    assert ns.results == "/tmp/before"


def test_results_after_wins_over_before() -> None:
    """Given in both places, the value after the command name (the more specific one) is used."""
    ns = build_parser().parse_args(["--results", "/tmp/before", "report", "--results", "/tmp/after"])
    assert ns.results == "/tmp/after"


def test_default_results_without_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the flag the default results directory applies."""
    monkeypatch.setenv("IMAGEBENCH_RESULTS", "/tmp/default-results")
    ns = build_parser().parse_args(["table"])
    assert ns.results == "/tmp/default-results"


def test_table_reads_results_given_after_command(tmp_path, capsys) -> None:
    """`imagebench table --results DIR --format csv` reads DIR (an empty folder: header-only csv, exit 0)."""
    code = main(["table", "--results", str(tmp_path), "--format", "csv"])
    assert code == 0
    assert "unrecognized" not in capsys.readouterr().err
