"""Attribution: every claim tagged `article` names a section the article has, and the loader enforces it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import SchemaError
from harness.experiment import ARTICLE_SECTIONS, discover, load_experiment

REPO = Path(__file__).resolve().parents[2]
ARTICLE_CLAIMS = REPO.parent / "shared" / "article-claims.md"  # CI keeps it beside the clone

GOOD = """\
practice = "p"
claim = "c"

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
{extra}
"""


def _make(tmp_path: Path, extra: str) -> Path:
    folder = tmp_path / "demo"
    (folder / "context").mkdir(parents=True)
    for name in ("Dockerfile.a", "Dockerfile.b"):
        (folder / name).write_text("FROM debian:trixie-slim\n")
    (folder / "experiment.toml").write_text(GOOD.format(extra=extra))
    return folder


def test_every_article_claim_names_a_section_of_the_article():
    """No claim in experiments/ is the article's without naming one of its sections; extensions name
    one only when it is a real section."""
    missing, unknown, total = [], [], 0
    for e in discover(REPO / "experiments"):
        for i, c in enumerate(e.claims):
            where = f"{e.name} claims[{i}] ({c.label or c.metric})"
            if c.source == "article":
                total += 1
                if not c.article_section:
                    missing.append(where)
            if c.article_section and c.article_section not in ARTICLE_SECTIONS:
                unknown.append(f"{where}: {c.article_section}")
    assert not missing and not unknown, (missing, unknown)
    assert total >= 20  # the catalog does check the article


def test_article_figures_are_on_the_article_claims_that_print_them():
    """The figures the article prints sit on the claims that check them, as it prints them."""
    figures = {
        (e.name, c.article_figure)
        for e in discover(REPO / "experiments")
        for c in e.claims
        if c.article_figure
    }
    assert {
        ("multi-stage", "259 MB -> 156 MB"),
        ("multi-stage", "969 MB -> 357 MB"),
        ("base-image", "1.02 GB -> 130 MB"),
        ("base-image", "130 MB -> 51.8 MB"),
        ("lint-and-scan", "DL3006, DL3042, DL3059, DL3025"),
    } <= figures
    for e in discover(REPO / "experiments"):
        for c in e.claims:
            assert not c.article_figure or c.source == "article", (e.name, c.label)


def test_calibration_is_the_harness_not_the_article():
    """Calibration checks the harness against effects it plants: none of its claims is the article's."""
    (cal,) = [e for e in discover(REPO / "experiments") if e.name == "calibration"]
    assert {c.source for c in cal.claims} == {"extension"}


def test_sections_cover_the_article_list():
    """21 sections: Dockerfiles 1-11, Images 1-5, Bonus tips 1-5, in that order."""
    assert list(ARTICLE_SECTIONS) == (
        [f"dockerfiles.{n}" for n in range(1, 12)]
        + [f"images.{n}" for n in range(1, 6)]
        + [f"bonus.{n}" for n in range(1, 6)]
    )
    assert all(title and title == title.strip() for title in ARTICLE_SECTIONS.values())


@pytest.mark.skipif(not ARTICLE_CLAIMS.is_file(), reason=f"{ARTICLE_CLAIMS} is not beside this checkout")
def test_sections_match_the_shared_article_claims():
    """The package's section list is the one ../shared/article-claims.md numbers (ids and titles)."""
    prefix = {"Dockerfiles": "dockerfiles", "Images": "images", "Bonus tips": "bonus"}
    found: dict[str, str] = {}
    group = None
    for line in ARTICLE_CLAIMS.read_text(encoding="utf-8").splitlines():
        head = re.match(r"^## (.+?)\s*$", line)
        if head:
            group = prefix.get(head.group(1))
            continue
        item = re.match(r"^(\d+)\. \*\*(.+?)\.?\*\*", line)
        if item and group:
            found[f"{group}.{item.group(1)}"] = item.group(2)
    assert found == ARTICLE_SECTIONS


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", "key 'claims[0].article_section': is required when source = \"article\""),
        ('source = "article"', "key 'claims[0].article_section': is required when source = \"article\""),
        ('article_section = "images.6"', "no section 'images.6' in the article (images.1 to .5)"),
        ('article_section = "dockerfiles.0"', "must look like dockerfiles.N, images.N or bonus.N"),
        ('article_section = "Dockerfiles 1"', "must look like dockerfiles.N, images.N or bonus.N"),
        ('article_section = "bonus.12"', "no section 'bonus.12' in the article (bonus.1 to .5)"),
        ("article_section = 3", "key 'claims[0].article_section': must be str, got int"),
        ('article_section = "images.4"\narticle_figure = 5', "key 'claims[0].article_figure': must be str"),
        (
            'article_section = "images.4"\nby_construction = "yes"',
            "key 'claims[0].by_construction': must be bool",
        ),
        ('source = "extension"\narticle_section = "images.9"', "no section 'images.9' in the article"),
    ],
)
def test_bad_attribution_is_a_one_line_schema_error(tmp_path, extra, message):
    """An article claim without a section, or a section the article does not have, does not load."""
    folder = _make(tmp_path, extra)
    with pytest.raises(SchemaError) as exc:
        load_experiment(folder)
    text = str(exc.value)
    assert message in text and "\n" not in text
    assert text.startswith(f"{folder / 'experiment.toml'}:")


def test_attribution_keys_load_and_travel_into_the_run_files_definition(tmp_path):
    """article_section, article_figure and by_construction survive Experiment.to_dict (the run file's
    "experiments"), which is what analysis.claims_of hands on."""
    from harness.analysis import claims_of

    extra = 'article_section = "dockerfiles.3"\narticle_figure = "1.02 GB -> 130 MB"\nby_construction = true'
    e = load_experiment(_make(tmp_path, extra))
    (c,) = e.claims
    assert (c.source, c.article_section, c.article_figure, c.by_construction) == (
        "article",
        "dockerfiles.3",
        "1.02 GB -> 130 MB",
        True,
    )
    ((_, d),) = claims_of(e.to_dict())
    assert d["article_section"] == "dockerfiles.3"
    assert d["article_figure"] == "1.02 GB -> 130 MB"
    assert d["by_construction"] is True
    ext = load_experiment(_make(tmp_path / "x", 'source = "extension"'))
    (d,) = ext.to_dict()["claims"]
    assert d["source"] == "extension" and "article_section" not in d and d["by_construction"] is False


def test_cli_refuses_an_unattributed_article_claim_with_exit_4(tmp_path):
    """`imagebench list` on an experiments folder with an article claim lacking its section: one line, exit 4."""
    _make(tmp_path / "exps", "")
    exps = str(tmp_path / "exps")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "--results", str(tmp_path / "res"), "list", "--experiments", exps],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 4, proc
    lines = [ln for ln in proc.stderr.splitlines() if "article_section" in ln]
    assert lines and all(ln.startswith("imagebench: ") for ln in lines), proc.stderr


def test_experiments_readme_names_the_sections_each_experiment_checks():
    """experiments/README.md's attribution table names, for every experiment, the sections its article
    claims check (and 'none' for one without article claims)."""
    text = (REPO / "experiments" / "README.md").read_text(encoding="utf-8")
    short = {f"{_GROUP_TITLES[k.split('.')[0]]} {k.split('.')[1]}": k for k in ARTICLE_SECTIONS}
    table = {}
    for line in text.splitlines():
        m = re.match(r"^\| ([a-z0-9-]+) \| (.+) \|$", line)
        if m:
            named = set(re.findall(r"(?:Dockerfiles|Images|Bonus tips) \d+", m.group(2)))
            table[m.group(1)] = {short[n] for n in named}
    for e in discover(REPO / "experiments"):
        article = {c.article_section for c in e.claims if c.source == "article"}
        assert e.name in table, f"{e.name} is missing from the README's attribution table"
        assert table[e.name] == article, (e.name, table[e.name], article)


_GROUP_TITLES = {"dockerfiles": "Dockerfiles", "images": "Images", "bonus": "Bonus tips"}
