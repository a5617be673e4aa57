"""experiment.toml loading: every catalog entry validates; every error names file, line and key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError, SchemaError, UsageError
from harness.experiment import discover, load_experiment, select

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
practice = "p"
claim = "c"
trials = 3

[[variants]]
name = "a"
dockerfile = "Dockerfile.a"

[[variants]]
name = "b"
dockerfile = "Dockerfile.b"

[[claims]]
metric = "image_bytes"
expect = "lower"
baseline = "a"
candidate = "b"
article_section = "dockerfiles.3"
"""


def make(tmp_path: Path, text: str, name: str = "demo") -> Path:
    folder = tmp_path / name
    (folder / "context").mkdir(parents=True)
    (folder / "Dockerfile.a").write_text("FROM debian:trixie-slim\n")
    (folder / "Dockerfile.b").write_text("FROM debian:trixie-slim\n")
    (folder / "experiment.toml").write_text(text)
    return folder


def test_catalog_validates():
    """Every experiment shipped in experiments/ loads without error and has a claim."""
    exps = discover(REPO / "experiments")
    assert len(exps) >= 4
    assert exps[0].name == "calibration"
    for e in exps:
        assert e.claim and e.practice
        assert e.variants


def test_good_definition(tmp_path):
    """A valid experiment.toml loads its variants and claims and has a sha256 definition hash."""
    e = load_experiment(make(tmp_path, GOOD))
    assert [v.name for v in e.variants] == ["a", "b"]
    assert e.claims[0].expect == "lower"
    assert e.definition_hash().startswith("sha256:")


@pytest.mark.parametrize(
    ("mutation", "key", "line"),
    [
        (lambda t: t.replace("trials = 3", 'trials = "three"'), "trials", 3),
        (
            lambda t: t.replace('dockerfile = "Dockerfile.b"', 'dockerfile = "Dockerfile.missing"'),
            "variants[1].dockerfile",
            11,
        ),
        (lambda t: t.replace('candidate = "b"', 'candidate = "zzz"'), "claims[0].candidate", 17),
        (lambda t: t.replace('practice = "p"\n', ""), "practice", None),
        (lambda t: 'colour = "red"\n' + t, "colour", 1),
        (
            lambda t: t.replace('dockerfile = "Dockerfile.a"', 'dockerfile = "../../etc/passwd"'),
            "variants[0].dockerfile",
            7,
        ),
    ],
)
def test_errors_name_file_line_key(tmp_path, mutation, key, line):
    """A schema error names the file, the line where it can be found, and the key."""
    folder = make(tmp_path, mutation(GOOD))
    with pytest.raises(SchemaError) as exc:
        load_experiment(folder)
    msg = str(exc.value)
    assert str(folder / "experiment.toml") in msg
    assert f"key '{key}'" in msg
    if line is not None:
        assert f"experiment.toml:{line}:" in msg


def test_path_escape_refused(tmp_path):
    """A context outside the experiment folder is refused, even when it exists."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    folder = make(
        tmp_path,
        GOOD.replace('dockerfile = "Dockerfile.a"', 'dockerfile = "Dockerfile.a"\ncontext = "../elsewhere"'),
    )
    with pytest.raises(SchemaError, match="escapes the experiment folder"):
        load_experiment(folder)


def test_syntax_error_names_line(tmp_path):
    """A TOML syntax error names the file and line."""
    folder = make(tmp_path, GOOD.replace('claim = "c"', 'claim = "c'))
    with pytest.raises(SchemaError, match=r"experiment.toml:2: key '\(syntax\)'"):
        load_experiment(folder)


def test_unknown_experiment_name():
    """Selecting an unknown experiment name is a usage error naming it."""
    with pytest.raises(UsageError, match="unknown experiment 'nope'"):
        select(["nope"], root=REPO / "experiments")


toml_values = st.recursive(
    st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=8), st.floats(allow_nan=False, width=16)),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["name", "dockerfile", "metric", "expect", "op", "value", "context", "scenarios", "x"]
            ),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    [
        "practice",
        "claim",
        "trials",
        "scenarios",
        "variants",
        "claims",
        "edits",
        "section",
        "requires",
        "probes",
        "name",
        "default",
        "compressed",
        "bogus",
    ]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.dictionaries(keys, toml_values, max_size=6))
def test_fuzzed_definitions_never_traceback(tmp_path, data):
    """Any TOML document gives either a valid experiment or a HarnessError naming file and key."""
    import tomli_w

    folder = tmp_path / "fuzz"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "context").mkdir(parents=True)
    (folder / "Dockerfile.a").write_text("FROM scratch\n")
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        return
    (folder / "experiment.toml").write_text(text)
    try:
        load_experiment(folder)
    except SchemaError as exc:
        assert re.search(r"experiment\.toml(:\d+)?: key '[^']+'", str(exc)), str(exc)
    except HarnessError:
        pass


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_fuzzed_text_never_traceback(tmp_path, text):
    """Arbitrary text (usually invalid TOML) is a one-line schema error, never a traceback."""
    folder = tmp_path / "fuzz2"
    (folder / "context").mkdir(parents=True, exist_ok=True)
    (folder / "experiment.toml").write_text(text)
    with pytest.raises(HarnessError):
        load_experiment(folder)
