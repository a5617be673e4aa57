"""Python version fidelity: the substitute is chosen by a stated rule, and failures name it."""

from __future__ import annotations

import pytest

from harness.lab.basedefs import load_bases
from harness.pyversions import choose, failure_hint, flavour, requested_minor, stand_ins


def test_requested_minor_from_public_names() -> None:
    """The minor comes from python:3.X tags (any patch, suffix or registry prefix); none for python:3."""
    assert requested_minor("python:3.12-slim") == (3, 12)
    assert requested_minor("python:3.12.2-slim") == (3, 12)
    assert requested_minor("docker.io/library/python:3.11") == (3, 11)
    assert requested_minor("python:3-slim") is None
    assert requested_minor("debian:trixie-slim") is None


def test_flavour() -> None:
    """slim, alpine or full from the tag."""
    assert [flavour(n) for n in ("python:3.12-slim", "python:3.13-alpine", "python:3.12")] == [
        "slim",
        "alpine",
        "full",
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("nearest", (3, 13)), ("older", (3, 11)), ("refuse", None)],
)
def test_rules_for_a_missing_minor(rule: str, expected) -> None:
    """3.12 with stand-ins 3.11 and 3.13: nearest (tie to the newer) 3.13, older 3.11, refuse none."""
    assert choose((3, 12), [(3, 11), (3, 13)], rule) == expected


def test_exact_minor_is_never_substituted() -> None:
    """A minor the lab has is used under every rule."""
    for rule in ("nearest", "older", "refuse"):
        assert choose((3, 11), [(3, 11), (3, 13)], rule) == (3, 11)


def test_older_has_nothing_older() -> None:
    """`older` for a minor below every stand-in finds nothing (the run stops, it does not go newer)."""
    assert choose((3, 9), [(3, 11), (3, 13)], "older") is None
    assert choose((3, 9), [(3, 11), (3, 13)], "nearest") == (3, 11)


def test_lab_catalog_has_slim_stand_ins_for_311_and_313() -> None:
    """The lab's catalog offers slim Python stand-ins for 3.11 (bookworm) and 3.13 (trixie)."""
    slim = stand_ins(load_bases())["slim"]
    assert {(3, 11), (3, 13)} <= set(slim)


def test_failure_hint_names_the_substitution() -> None:
    """A failed build after a substitution names it as the likely cause; none without one."""
    hint = failure_hint([{"public": "python:3.12-slim", "used": "3.13", "requested": "3.12"}])
    assert "likely cause" in hint and "python:3.12-slim ran on Python 3.13 instead of 3.12" in hint
    assert failure_hint([]) == ""
