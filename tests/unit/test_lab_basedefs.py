"""bases.toml: validation, definition hashes, public-name mapping (first match wins)."""

from __future__ import annotations

import copy
import tomllib

import pytest

from harness.errors import LabError, SchemaError
from harness.lab.basedefs import BASES_TOML, load_bases, normalize_name, parse_bases


@pytest.fixture(scope="module")
def raw() -> dict:
    return tomllib.loads(BASES_TOML.read_text())


@pytest.fixture(scope="module")
def catalog():
    return load_bases()


@pytest.mark.parametrize(
    ("public", "lab_tag"),
    [
        ("python:3.13-slim", "imagebench-lab/python:3.13-slim-trixie"),
        ("python:3.12.2-slim", "imagebench-lab/python:3.13-slim-trixie"),
        ("python:3.14-slim-trixie", "imagebench-lab/python:3.13-slim-trixie"),
        ("python:3.14-slim", "imagebench-lab/python:3.14-slim-forky"),
        ("python:3.12-slim-bookworm", "imagebench-lab/python:3.11-slim-bookworm"),
        ("python:3.12-bookworm", "imagebench-lab/python:3.11-bookworm"),
        ("python:3.11", "imagebench-lab/python:3.11-bookworm"),
        ("python:3.11-alpine", "imagebench-lab/python:3.11-musl"),
        ("python:3.12-slim", "imagebench-lab/python:3.13-slim-trixie"),
        ("python:3.13", "imagebench-lab/python:3.13-trixie"),
        ("python:3.12-trixie", "imagebench-lab/python:3.13-trixie"),
        ("python:3.12.2", "imagebench-lab/python:3.13-trixie"),
        ("python:3.11-slim", "imagebench-lab/python:3.11-slim-bookworm"),
        ("python:3.11-slim-bookworm", "imagebench-lab/python:3.11-slim-bookworm"),
        ("debian:trixie-slim", "imagebench-lab/debian:trixie-slim"),
        ("debian:bookworm-slim", "imagebench-lab/debian:bookworm-slim"),
        ("docker.io/library/python:3.13-slim@sha256:" + "0" * 64, "imagebench-lab/python:3.13-slim-trixie"),
        ("python", "imagebench-lab/python:3.13-trixie"),
    ],
)
def test_mapping(catalog, public, lab_tag):
    """A public base name maps to its lab base by the catalog's rules."""
    base, rule = catalog.resolve(public)
    assert base.tag == lab_tag
    assert rule.base == base.key


def test_first_match_wins(raw):
    """The first mapping rule that matches a name wins."""
    data = copy.deepcopy(raw)
    data["map"].insert(0, {"pattern": "python:3.13-slim", "base": "debian-trixie-slim"})
    cat = parse_bases(data)
    assert cat.resolve("python:3.13-slim")[0].key == "debian-trixie-slim"
    assert cat.resolve("python:3.12-slim")[0].key == "python-3.13-slim-trixie"


def test_alpine_maps_to_the_musl_base(catalog):
    """python:*alpine* resolves to the musl stand-in built from source (no longer refused in lab mode)."""
    for name in ("python:3.13-alpine", "python:3.12-alpine3.20", "python:alpine"):
        base, rule = catalog.resolve(name)
        assert base.tag == "imagebench-lab/python:3.13-musl" and rule.pattern == "python:*alpine*"
    assert base.kind == "dockerfile" and base.libc == "musl" and base.builder_base == "debian-trixie-slim"
    assert any("apk" in x for x in base.left_out)


def test_musl_definition_hash_follows_its_recipe_files(catalog, tmp_path, monkeypatch):
    """Editing a file of the musl recipe changes its definition hash; the glibc bases' hashes do not move."""
    import harness.lab.basedefs as cat

    musl = catalog.bases["python-3.13-musl"]
    assert set(musl.recipe_files()) >= {"Dockerfile", "sources.txt", "fetch.sh"}
    before = {k: b.definition_hash() for k, b in catalog.bases.items()}
    recipe = tmp_path / "musl"
    recipe.mkdir()
    for name in musl.recipe_files():
        (recipe / name).write_bytes((musl.recipe_dir() / name).read_bytes())
    monkeypatch.setattr(cat, "LAB_DIR", tmp_path)
    assert musl.definition_hash() == before["python-3.13-musl"]
    (recipe / "Dockerfile").write_text((recipe / "Dockerfile").read_text() + "# changed\n")
    assert musl.definition_hash() != before["python-3.13-musl"]
    assert all(b.definition_hash() == before[k] for k, b in catalog.bases.items() if b.kind == "mmdebstrap")


def test_unmapped_name_lists_the_mapping(catalog):
    """An unmapped name is a one-line LabError listing every mapping rule."""
    with pytest.raises(LabError) as exc:
        catalog.resolve("ubuntu:24.04")
    text = str(exc.value)
    assert "no lab base maps ubuntu:24.04" in text
    assert "\n" not in text
    for rule in catalog.rules:
        assert rule.pattern in text
    assert "imagebench-lab/python:3.13-slim-trixie" in text


def test_normalize_name():
    """normalize_name drops docker.io/library and digests and adds :latest."""
    assert normalize_name("python") == "python:latest"
    assert normalize_name("docker.io/library/python:3.13") == "python:3.13"
    assert normalize_name("localhost:5000/x/y") == "localhost:5000/x/y:latest"
    assert normalize_name("python:3.13@sha256:abc") == "python:3.13"


def test_catalog_has_the_four_kinds(catalog):
    """The shipped bases cover slim, full, Debian, older Python and musl kinds; full has the build tools."""
    tags = {b.tag for b in catalog.bases.values()}
    assert {
        "imagebench-lab/python:3.13-slim-trixie",
        "imagebench-lab/python:3.13-trixie",
        "imagebench-lab/debian:trixie-slim",
        "imagebench-lab/python:3.11-slim-bookworm",
        "imagebench-lab/python:3.13-musl",
    } <= tags
    full = catalog.bases["python-3.13-trixie"]
    assert {"build-essential", "python3-dev", "curl", "wget", "git", "gnupg"} <= set(full.packages)
    assert sum(p.endswith("-dev") for p in full.packages) >= 12


def test_definition_hash_changes_with_packages(catalog):
    """A base's definition hash changes with its packages, not with documented official sizes."""
    base = catalog.bases["python-3.13-slim-trixie"]
    other = type(base)(**{**base.__dict__, "packages": (*base.packages, "curl")})
    assert base.definition_hash() != other.definition_hash()
    # the official sizes are documentation, not part of the definition
    same = type(base)(**{**base.__dict__, "official_disk_bytes": 1})
    assert base.definition_hash() == same.definition_hash()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("schema"), "schema = 1"),
        (lambda d: d["bases"]["debian-trixie-slim"].update(tag="debian:trixie-slim"), "imagebench-lab/"),
        (lambda d: d["bases"]["debian-trixie-slim"].update(suite="sid"), "suite"),
        (lambda d: d["bases"]["debian-trixie-slim"].update(packages=["Bad Name"]), "invalid package"),
        (lambda d: d["bases"]["debian-trixie-slim"].update(colour="red"), "unknown field"),
        (
            lambda d: d["bases"]["python-3.13-slim-trixie"].update(
                packages=["python3", "python3-pip", "python3-venv"]
            ),
            "python3-pip",
        ),
        (lambda d: d["bases"]["python-3.13-slim-trixie"].update(packages=["python3"]), "python3-venv"),
        (lambda d: d["map"].append({"pattern": "x:*", "base": "nope"}), "not defined"),
        (lambda d: d["map"].append({"pattern": "x:*", "base": ""}), "reason"),
        (
            lambda d: d["bases"]["debian-bookworm-slim"].update(tag="imagebench-lab/debian:trixie-slim"),
            "twice",
        ),
        (lambda d: d["bases"]["debian-trixie-slim"].update(python="yes"), "must be bool"),
        (lambda d: d["bases"]["python-3.13-musl"].update(kind="nix"), "kind"),
        (lambda d: d["bases"]["python-3.13-musl"].update(libc="bionic"), "libc"),
        (lambda d: d["bases"]["python-3.13-musl"].pop("recipe"), "needs `recipe`"),
        (lambda d: d["bases"]["python-3.13-musl"].update(recipe="../x"), "needs `recipe`"),
        (lambda d: d["bases"]["python-3.13-musl"].update(builder_base="python-3.13-musl"), "builder_base"),
        (lambda d: d["bases"]["python-3.13-musl"].update(packages=["curl"]), "takes no `packages`"),
    ],
)
def test_validation_errors(raw, mutate, message):
    """Each malformed bases file is a SchemaError naming what is wrong."""
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(SchemaError, match=message):
        parse_bases(data)


def test_a_testing_suite_base_accepts_its_expired_release_at_build_and_in_the_image(tmp_path):
    """check_valid_until = false adds apt's option to mmdebstrap and writes it into the image; it counts in the hash."""
    from dataclasses import replace

    from harness.lab import builder

    bases = load_bases().bases
    forky = bases["python-3.14-slim-forky"]
    assert forky.suite == "forky" and forky.check_valid_until is False
    argv = builder.mmdebstrap_argv(forky, tmp_path, None, "http://127.0.0.1:3141/simple/")
    assert '--aptopt=Acquire::Check-Valid-Until "false";' in argv
    assert any("99imagebench-snapshot" in a for a in argv)
    trixie = bases["python-3.13-slim-trixie"]
    assert not any("Check-Valid-Until" in a for a in builder.mmdebstrap_argv(trixie, tmp_path, None, "x"))
    assert replace(forky, check_valid_until=True).definition_hash() != forky.definition_hash()
    for key in ("python-3.13-slim-trixie", "python-3.13-musl"):  # old bases keep their hashes
        assert "check_valid_until" not in bases[key].definition()


def test_every_suite_has_its_python():
    """The wheelhouse needs each suite's Python minor: every suite a base may name has one."""
    from harness.lab import builder
    from harness.lab.basedefs import SUITES

    assert set(SUITES) <= set(builder.SUITE_PYTHON)
