"""The default substitution rule: the tag's Debian release first, then the measured failure rates; the
explicit rules stay minor-only; the committed evidence agrees with the default it drives."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness import pyversions as pv
from harness.errors import LabError
from harness.lab.basedefs import load_bases

EVIDENCE = {
    "label": "pinned requirement sets",
    "results": {"glibc": {"3.12": {"3.11": {"failed": 1, "sets": 20}, "3.13": {"failed": 9, "sets": 20}}}},
}


@pytest.fixture(scope="module")
def catalog():
    return load_bases()


def _avail(catalog, public):
    return pv.stand_ins(catalog)[pv.flavour(public)]


@pytest.mark.parametrize(
    ("public", "rel"),
    [
        ("python:3.12-slim-bookworm", "bookworm"),
        ("python:3.12.2-bookworm", "bookworm"),
        ("docker.io/library/python:3.11-trixie", "trixie"),
        ("python:slim-trixie", "trixie"),
        ("python:3.12-slim", None),
        ("python:3.12-alpine3.19", None),
        ("debian:bookworm-slim", None),
    ],
)
def test_release_from_the_tag(public, rel):
    """The Debian code name a python tag carries, wherever it sits in the tag."""
    assert pv.release(public) == rel


@pytest.mark.parametrize(
    ("public", "minor", "words"),
    [
        ("python:3.12-slim-bookworm", (3, 11), "Debian bookworm"),
        ("python:3.12-bookworm", (3, 11), "Debian bookworm"),
        ("python:3.13-slim-bookworm", (3, 11), "Debian bookworm"),
        ("python:3.12-slim-trixie", (3, 13), "Debian trixie"),
        ("python:3.14-slim-trixie", (3, 13), "Debian trixie"),
        ("python:3.11-slim-bookworm", (3, 11), "Debian bookworm"),
    ],
)
def test_a_tag_naming_a_release_gets_that_release(catalog, public, minor, words):
    """-bookworm gets the bookworm stand-in (3.11), -trixie the trixie one (3.13), whatever minor the tag names."""
    pick, why = pv.decide(public, _avail(catalog, public), "compatible", EVIDENCE)
    assert pick == minor and words in why


def test_a_bare_minor_follows_the_measurement(catalog):
    """python:3.12-slim gets the minor with the lower measured failure rate, and the reason gives both rates."""
    pick, why = pv.decide("python:3.12-slim", _avail(catalog, "python:3.12-slim"), "compatible", EVIDENCE)
    assert pick == (3, 11)
    assert why.startswith("1 of 20 pinned requirement sets failed on 3.11, 9 of 20 on 3.13")
    flipped = {
        "results": {"glibc": {"3.12": {"3.11": {"failed": 9, "sets": 20}, "3.13": {"failed": 2, "sets": 20}}}}
    }
    assert pv.decide("python:3.12", _avail(catalog, "python:3.12"), "compatible", flipped)[0] == (3, 13)


def test_without_a_measurement_compatible_takes_the_older_minor(catalog):
    """No evidence for the minor (or none at all): the newest older stand-in, else the nearest newer one."""
    assert pv.decide("python:3.12-slim", _avail(catalog, "python:3.12-slim"), "compatible", {})[0] == (3, 11)
    assert pv.decide("python:3.15-slim", _avail(catalog, "python:3.15-slim"), "compatible", {})[0] == (3, 14)
    pick, why = pv.decide("python:3.9-slim", _avail(catalog, "python:3.9-slim"), "compatible", {})
    assert pick == (3, 11) and "nearest" in why


def test_musl_uses_the_musl_measurement(catalog):
    """An alpine tag reads the musl rates, not the glibc ones."""
    ev = {
        "results": {"musl": {"3.12": {"3.11": {"failed": 6, "sets": 10}, "3.13": {"failed": 1, "sets": 10}}}}
    }
    assert pv.decide("python:3.12-alpine", _avail(catalog, "python:3.12-alpine"), "compatible", ev)[0] == (
        3,
        13,
    )
    assert pv.decide("python:3.11-alpine", _avail(catalog, "python:3.11-alpine"), "compatible", ev)[0] == (
        3,
        11,
    )


@pytest.mark.parametrize(("rule", "minor"), [("nearest", (3, 13)), ("older", (3, 11)), ("refuse", None)])
def test_explicit_rules_ignore_the_release(catalog, rule, minor):
    """--python-substitute nearest|older|refuse choose by minor only, as before."""
    assert (
        pv.decide("python:3.12-slim-bookworm", _avail(catalog, "python:3.12-slim"), rule, EVIDENCE)[0]
        == minor
    )


class _Lab:
    """The two things pyversions.resolve uses of a lab: its catalog and resolve_base (recorded)."""

    bases_mode = "lab"

    def __init__(self):
        self.catalog = load_bases()
        self.asked: list[str] = []

    def resolve_base(self, public):
        self.asked.append(public)
        defn = self.catalog.resolve(public)[0]
        return SimpleNamespace(public=public, lab_tag=defn.tag)


def test_resolve_says_the_release_and_records_the_rule():
    """python:3.12-slim-bookworm: the bookworm stand-in, the minor difference said with the reason and the alternative."""
    lab = _Lab()
    ref, note = pv.resolve(lab, "python:3.12-slim-bookworm")
    assert ref.lab_tag == "imagebench-lab/python:3.11-slim-bookworm"
    assert note is not None and (note["requested"], note["used"], note["rule"]) == (
        "3.12",
        "3.11",
        "compatible",
    )
    assert note["release"] == "bookworm"
    assert "asks for Python 3.12 on Debian bookworm" in note["message"]
    assert "--python-substitute nearest picks 3.13" in note["message"]


def test_resolve_builds_only_the_picked_base():
    """The mapping's own stand-in is not resolved (an on-demand base would be built) when the rule picks another."""
    lab = _Lab()
    ref, note = pv.resolve(lab, "python:3.12-alpine", "older")
    assert lab.asked == ["python:3.11-alpine"] and ref.lab_tag == "imagebench-lab/python:3.11-musl"
    assert note and note["used"] == "3.11"
    ref, note = pv.resolve(lab, "python:3.11-alpine")
    assert ref.lab_tag == "imagebench-lab/python:3.11-musl" and note is None


def test_refuse_names_every_rule():
    """refuse stops with the rules that would pick another minor."""
    with pytest.raises(LabError, match="allows no other") as exc:
        pv.resolve(_Lab(), "python:3.12-slim", "refuse")
    assert "compatible|nearest|older" in str(exc.value)


def test_committed_evidence_drives_the_default(catalog):
    """harness/data/substitution-evidence.json has glibc rates for 3.12 on 3.11 and 3.13, and the default picks
    the lower failure rate of the two (what the README and the printed reason say)."""
    ev = pv.load_evidence()
    rates = pv.measured(ev, (3, 12), "glibc")
    assert {(3, 11), (3, 13)} <= set(rates)
    best = min(rates, key=lambda v: rates[v][0] / rates[v][1])
    pick, why = pv.decide("python:3.12-slim", _avail(catalog, "python:3.12-slim"), "compatible")
    assert pick == best
    failed, sets = rates[best]
    assert why.startswith(f"{failed} of {sets} ")
