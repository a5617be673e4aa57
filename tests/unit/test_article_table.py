"""The article-vs-measured table on recorded runs (tests/fixtures/article, trimmed from our reference):
every figure the article prints has a row, with its section, our figure, the ratio of ratios, the
bases named as the stand-ins they are, and hadolint's four rule IDs against what our hadolint found."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import analysis
from harness.report.article import (
    ARTICLE_BASES,
    ARTICLE_COMPARISONS,
    LINT_RULES,
    base_pin,
    build_article_view,
    official_size_text,
    published_official,
    ratio_of_ratios,
    section_text,
    size_agreement,
)
from harness.report.model import Table
from harness.report.published import load_published_history
from harness.results import load_runs

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "article"


@pytest.fixture(scope="module")
def view():
    runs = load_runs(FIXTURE)
    assert len(runs) == 2
    # every run pooled, as the view was first checked on (the report judges the latest run of each)
    return build_article_view(analysis.analyze(runs, latest=False, comparisons=ARTICLE_COMPARISONS), Table)


def _row(view, label: str) -> list[str]:
    (row,) = [r for r in view.tables[0].rows if r[1] == label]
    return row


def test_every_figure_the_article_prints_has_a_row(view):
    """259 -> 156 MB, 969 -> 357 MB, 1.02 GB / 130 MB / 51.8 MB and DL3006, DL3042, DL3059, DL3025 all
    stand in the one table, each under the article section it comes from."""
    table = view.tables[0]
    assert table.headers[:3] == ["article section", "the article's figure", "article"]
    article = [r[2] for r in table.rows]
    for text in (
        "259 MB → 156 MB",
        "969 MB → 357 MB",
        "1.02 GB → 130 MB",
        "1.02 GB → 51.8 MB",
        "130 MB → 51.8 MB",
    ):
        assert any(a.startswith(text) for a in article), text
    for size in ("1.02 GB", "130 MB", "51.8 MB"):
        assert size in article
    for code, _ in LINT_RULES:
        assert f"{code} printed on the article's example" in article
    sections = {r[0] for r in table.rows}
    assert sections == {
        "Dockerfiles 1: Multi-stage builds",
        "Dockerfiles 3: Small base images",
        "Images 4: Lint and scan",
    }


def test_web_row_has_our_ratio_and_the_ratio_of_ratios(view):
    """Web: single 369 MB -> the article's Dockerfile 172 MB, x0.467 against the article's x0.602:
    ratio of ratios x0.775, a larger effect here."""
    web = _row(view, "web app: multi-stage vs one stage")
    assert "single 369 MB → web-article 172 MB (×0.467" in web[4]
    assert web[5] == "×0.775: ours ×0.467 / the article's ×0.602"
    assert web[6].startswith("same direction, larger effect here")


def test_data_science_rows(view):
    """Data science: ours x0.415 against x0.368 (x1.13); the stage alone goes the other way (x2.78)."""
    ds = _row(view, "data science: multi-stage vs one stage")
    assert "ds-single 1.27 GB → ds-article 528 MB (×0.415" in ds[4]
    assert ds[5].startswith("×1.13: ")
    stage = _row(view, "data science: multi-stage vs one stage (stage only)")
    assert stage[5].startswith("×2.78: ") and stage[6].startswith("opposite direction")


def test_stand_ins_are_named_as_what_they_are(view):
    """A row about python:3.12.2-slim that ran on the 3.13 trixie stand-in says so."""
    web = _row(view, "web app: multi-stage vs one stage")
    assert (
        "python:3.12.2-slim ran on the lab's stand-in imagebench-lab/python:3.13-slim-trixie "
        "(for python:3.13-slim, Python 3.13.5), not the official image" in web[3]
    )
    slim = _row(view, "python:3.12.2-slim (`docker images`)")
    assert "python:3.13-slim ran on the lab's stand-in imagebench-lab/python:3.13-slim-trixie" in slim[3]
    assert slim[4].startswith("160 MB") and slim[5].startswith("×1.23: size")
    assert "23 % larger here" in slim[6] and "not the official python:3.12.2-slim" in slim[6]
    full = _row(view, "python:3.12.2-bookworm (`docker images`)")
    assert full[4].startswith("918 MB") and full[6].startswith("about the same size (within 10 %)")


def test_hadolint_rules_beside_what_our_hadolint_found(view):
    """Our bad variant fires DL3042, DL3059 and DL3025 in every trial; DL3006 does not fire, because its
    base is tagged; the rules the article's output does not show are listed under the table."""
    rows = {r[1].split(":")[0]: r for r in view.tables[0].rows if r[1].startswith("hadolint ")}
    assert set(rows) == {f"hadolint {c}" for c, _ in LINT_RULES}
    for code in ("DL3042", "DL3059", "DL3025"):
        assert rows[f"hadolint {code}"][4].startswith("found in 5 of 5 trial(s)")
        assert rows[f"hadolint {code}"][6] == "the same rule fires here"
    dl3006 = rows["hadolint DL3006"]
    assert dl3006[4] == "not found (0 of 5 trial(s))"
    assert dl3006[6] == "not reproduced here: the `bad` variant's base is tagged (python:3.13)"
    assert "Haskell Dockerfile Linter 2.15.1" in dl3006[3]
    (more,) = [x for x in view.lines if x.startswith("hadolint also flags")]
    assert "DL3008 (1)" in more and "DL3042" not in more


def test_one_official_size_per_base(view):
    """The official size of a base has one source (the published data): the stand-in's public name and
    the article's name read the same snapshot, and the bases table shows that one."""
    history = load_published_history()
    for public, article_name in (
        ("python:3.13-slim", "python:3.12.2-slim"),
        ("python:3.13", "python:3.12.2"),
        ("python:3.13-alpine", "python:3.12.2-alpine"),
    ):
        assert published_official(public, history) == published_official(article_name, history)
    slim = official_size_text(published_official("python:3.13-slim", history))
    assert slim == "46.2 MB (python:3.12-slim, 2026-09-01, Python 3.12.14, trixie)"
    (row,) = [r for r in view.tables[1].rows if r[0] == "python:3.12.2-slim"]
    assert row[2] == slim
    assert published_official("debian:trixie-slim", history) is None
    assert [b.name for b in ARTICLE_BASES] == [
        "python:3.12.2-bookworm",
        "python:3.12.2-slim",
        "python:3.12.2-alpine",
    ]


def test_pure_helpers():
    """Ratio of ratios divides the interval's ends too; sections read as the article numbers them."""
    assert ratio_of_ratios(0.5, 0.6, 0.55, 0.65) == "×1.20 (×1.10–×1.30): ours ×0.600 / the article's ×0.500"
    assert ratio_of_ratios(0.5, 0.6, 0.6, 0.6) == "×1.20: ours ×0.600 / the article's ×0.500"
    assert ratio_of_ratios(0.5, None, None, None) == "–"
    assert section_text("images.4") == "Images 4: Lint and scan"
    assert section_text("bonus.2") == "Bonus tips 2: Memory and CPU limits"
    assert section_text("nope.1") == "nope.1"
    assert size_agreement(95, 100).startswith("about the same size")
    assert size_agreement(50, 100) == "50 % smaller here"


def test_a_base_is_sized_from_the_pin_the_base_image_run_used():
    """Another run's later pin of the same base (python:3.12.2 in a multi-stage run) does not replace the
    one base-image measured with, so both article tables size the base from one pin."""
    base_run = {"run_id": "r1", "bases": {"python:3.13": {"lab_tag": "lab/full", "bytes": 900}}}
    later = {"run_id": "r2", "bases": {"python:3.12.2": {"lab_tag": "lab/full-rebuilt", "bytes": 950}}}
    full = ARTICLE_BASES[0]
    assert base_pin(full, [base_run, later], base_run) == ("python:3.13", base_run["bases"]["python:3.13"])
    assert base_pin(full, [base_run, later], None) == ("python:3.12.2", later["bases"]["python:3.12.2"])
    assert base_pin(ARTICLE_BASES[2], [base_run, later], base_run) == (None, None)
