"""The stand-ins behind the Python a tag asks for: musl bases for every minor Debian has the source of,
built on demand from the shared recipe, and the lab up that leaves them out (pure parts, no daemon)."""

from __future__ import annotations

import copy
import dataclasses
import tomllib

import pytest

from harness.errors import SchemaError
from harness.lab import builder
from harness.lab.basedefs import BASES_TOML, load_bases, parse_bases


@pytest.fixture(scope="module")
def catalog():
    return load_bases()


def test_a_musl_stand_in_for_each_minor_with_debian_source(catalog):
    """3.11 (bookworm's source) and 3.13 (trixie's) each have a musl stand-in (the mirror serves no 3.14
    source); only 3.13 is built by `lab up`, 3.11 on demand."""
    musl = {b.stands_in_for: b for b in catalog.bases.values() if b.libc == "musl"}
    assert set(musl) == {"python:3.11-alpine", "python:3.13-alpine"}
    assert [b.on_demand for b in (musl["python:3.11-alpine"], musl["python:3.13-alpine"])] == [True, False]
    assert {b.recipe for b in musl.values()} == {
        "musl"
    }  # one recipe: the toolchain and library stages are shared


def test_every_recipe_python_source_is_listed_with_its_checksum(catalog):
    """Each PYTHON_SOURCE a base names is a sources-python.txt line (pool path of that minor, sha256)."""
    for b in catalog.bases.values():
        args = dict(b.recipe_args)
        if "PYTHON_SOURCE" not in args:
            continue
        lines = builder.parse_sources((b.recipe_dir() / "sources-python.txt").read_text())
        entry = next(x for x in lines if x["name"] == args["PYTHON_SOURCE"])
        minor = b.stands_in_for.split(":")[1].split("-")[0]
        assert f"/python{minor}_{args['PYTHON_VERSION']}.orig." in entry["path"]
        assert len(entry["sha256"]) == 64


def test_on_demand_base_build_passes_its_source(catalog):
    """The 3.11 musl build is the shared recipe with its source and version as build arguments."""
    argv = builder.docker_build_argv(
        catalog.bases["python-3.11-musl"], "h", "tmp:t", "http://127.0.0.1:13142", "http://i/simple/", "b:t"
    )
    assert "PYTHON_SOURCE=python3.11" in argv and "PYTHON_VERSION=3.11.2" in argv
    assert f"{builder.LABEL_FOR}=python:3.11-alpine" in argv
    plain = builder.docker_build_argv(
        catalog.bases["python-3.13-musl"], "h", "tmp:t", None, "http://i/simple/", "b:t"
    )
    assert not any(a.startswith("PYTHON_SOURCE=") for a in plain)


def test_recipe_args_are_part_of_the_definition_and_on_demand_is_not(catalog):
    """Two bases differing only in their source hash apart; building on demand does not change the image."""
    a = catalog.bases["python-3.11-musl"]
    assert a.definition()["recipe_args"] == {"PYTHON_SOURCE": "python3.11", "PYTHON_VERSION": "3.11.2"}
    other = dataclasses.replace(
        a, recipe_args=(("PYTHON_SOURCE", "python3.12"), ("PYTHON_VERSION", "3.12.0"))
    )
    assert a.definition_hash() != other.definition_hash()
    assert "on_demand" not in a.definition()
    assert "recipe_args" not in catalog.bases["python-3.13-musl"].definition()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["bases"]["python-3.11-musl"].update(recipe_args={"lower": "x"}), "UPPER_CASE"),
        (
            lambda d: d["bases"]["python-3.11-slim-bookworm"].update(recipe_args={"A": "x"}),
            "kind dockerfile only",
        ),
        (lambda d: d["bases"]["python-3.11-musl"].update(on_demand="yes"), "on_demand"),
    ],
)
def test_new_fields_are_validated(mutate, message):
    """recipe_args and on_demand are checked like every other field."""
    data = copy.deepcopy(tomllib.loads(BASES_TOML.read_text()))
    mutate(data)
    with pytest.raises(SchemaError, match=message):
        parse_bases(data)


def test_release_tags_map_to_their_release(catalog):
    """The catalog's own mapping agrees with the default rule: -bookworm tags to bookworm, -trixie to trixie."""
    for public, suite in [
        ("python:3.12-slim-bookworm", "bookworm"),
        ("python:3.13-slim-bookworm", "bookworm"),
        ("python:3.12-bookworm", "bookworm"),
        ("python:3.12-slim-trixie", "trixie"),
        ("python:3.11-trixie", "trixie"),
    ]:
        assert catalog.resolve(public)[0].suite == suite, public


def test_lab_up_leaves_on_demand_bases_out(catalog):
    """`lab up` builds every base but the on-demand ones (and fills no wheels for them)."""
    from harness.lab.core import built_by_lab_up

    keys = {b.key for b in built_by_lab_up(catalog)}
    assert "python-3.13-musl" in keys and "python-3.13-slim-trixie" in keys
    assert not keys & {"python-3.11-musl", "python-3.11-bookworm"}
