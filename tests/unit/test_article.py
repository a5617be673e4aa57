"""The article-vs-measured view: agreement wording, smoke failures, bases compressed vs compressed, downloads."""

from __future__ import annotations

import pandas as pd

from harness import analysis
from harness.report.article import ARTICLE_COMPARISONS, FIGURES, agreement, build_article_view, smoke_state
from harness.report.model import Table
from harness.results import TIDY_COLUMNS


def test_agreement_same_direction_sizes():
    """Lower on both sides: same size within 10 %, smaller when closer to x1, larger when farther."""
    assert agreement(0.60, 0.62, 0.61, 0.63).startswith("same direction, about the same size")
    assert "smaller effect here" in agreement(0.37, 0.80, 0.79, 0.81)
    assert "larger effect here" in agreement(0.60, 0.30, 0.29, 0.31)


def test_agreement_direction_not_settled_or_opposite():
    """An interval across x1 does not settle the direction; one above x1 is the opposite direction."""
    assert agreement(0.6, 0.98, 0.9, 1.1).startswith("direction not settled")
    assert agreement(0.6, 1.02, 1.01, 1.03).startswith("opposite direction")
    assert agreement(0.6, 1.0, 1.0, 1.0).startswith("opposite direction")
    assert agreement(0.6, None, None, None) == "not measured here"


def test_article_ratios_are_the_articles():
    """Every figure the article gives is covered, with its ratio (web x0.60, ds x0.37, slim x0.127, alpine x0.051)."""
    ratios = {f.article_text: round(f.article_ratio, 3) for f in FIGURES}
    assert ratios == {
        "259 MB → 156 MB": 0.602,
        "969 MB → 357 MB": 0.368,
        "1.02 GB → 130 MB": 0.127,
        "1.02 GB → 51.8 MB": 0.051,
        "130 MB → 51.8 MB": 0.398,
    }


def _rows(variant: str, metric: str, values: list[float], experiment: str = "multi-stage") -> list[dict]:
    return [
        {
            "run_id": "r1",
            "machine": "m",
            "experiment": experiment,
            "variant": variant,
            "scenario": "cold",
            "trial": i,
            "metric": metric,
            "value": v,
            "unit": "",
        }
        for i, v in enumerate(values)
    ]


def _definition() -> dict:
    names = [
        "single",
        "single-clean",
        "web-article",
        "web-article-builder",
        "ds-single",
        "ds-single-slim",
        "ds-article",
        "ds-article-builder",
    ]
    return {
        "name": "multi-stage",
        "variants": [{"name": n} for n in names],
        "smoke_failures": {"ds-article": "ModuleNotFoundError: No module named 'pandas'"},
    }


def _df() -> pd.DataFrame:
    rows = []
    sizes = {"single": 370e6, "single-clean": 300e6, "web-article": 170e6, "ds-single": 1270e6}
    sizes |= {"ds-single-slim": 520e6, "ds-article": 510e6}
    for v, b in sizes.items():
        rows += _rows(v, "image_bytes", [b, b])
        rows += _rows(v, "smoke_ok", [0, 1] if v == "ds-article" else [1, 1])
    rows += _rows("ds-article", "download_bytes", [150e6, 150e6])
    rows += _rows("ds-article-builder", "download_bytes", [12e6, 12e6])
    rows += _rows("ds-single-slim", "download_bytes", [150e6, 150e6])
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def _view(run: dict, df: pd.DataFrame):
    """The article view of `run` with the trials `df` describes added to it, as the report builds it:
    from the analysis of the runs (every run pooled, as the frame is)."""
    trials: dict[tuple, dict] = {}
    for r in df.to_dict("records"):
        key = (r["experiment"], r["variant"], r["scenario"], r["trial"])
        t = trials.setdefault(
            key,
            dict(
                zip(("experiment", "variant", "scenario", "trial"), key, strict=True), status="ok", metrics={}
            ),
        )
        t["metrics"][r["metric"]] = r["value"]
    run = {**run, "experiments": {"multi-stage": _definition()}, "trials": [*run["trials"], *trials.values()]}
    return build_article_view(analysis.analyze([run], latest=False, comparisons=ARTICLE_COMPARISONS), Table)


def test_view_judges_each_figure_and_flags_smaller_but_broken():
    """A measured pair gets our ratio and an agreement; a candidate whose smoke failed says 'smaller but broken'."""
    df = _df()
    run = {"machine": "m", "run_id": "r1", "trials": [], "bases": {}}
    view = _view(run, df)
    figures = view.tables[0]
    by_label = {(r[1], r[3].split(".")[0]): r for r in figures.rows}
    web = by_label[("web app: multi-stage vs one stage", "multi-stage: web-article vs single")]
    assert web[0] == "Dockerfiles 1: Multi-stage builds"
    assert "single 370 MB" in web[4] and "web-article 170 MB" in web[4] and "×0.459" in web[4]
    assert web[5].startswith("×0.763: ours ×0.459 / the article's ×0.602")
    assert web[6].startswith("same direction")
    ds = by_label[("data science: multi-stage vs one stage", "multi-stage: ds-article vs ds-single")]
    assert ds[6].startswith("smaller but broken (ds-article: 1 of 2 smoke checks failed: ModuleNotFoundError")
    assert any("base-image" in r[3] for r in figures.rows) is False  # no base-image experiment in these runs
    assert not any(r[1].startswith("hadolint") for r in figures.rows)  # nor lint-and-scan


def test_view_says_what_the_builder_saves_in_downloads():
    """Final-stage downloads = article variant minus its builder-only build, set against one stage."""
    run = {"machine": "m", "run_id": "r1", "trials": [], "bases": {}}
    view = _view(run, _df())
    (line,) = view.lines
    assert "builder stage downloads 12.0 MB" in line
    assert "final stage still downloads 138 MB" in line
    assert "(`ds-single-slim`) downloads 150 MB" in line and "92 %" in line


def test_bases_table_compares_compressed_with_published():
    """The lab stand-in's pushed layers (those adding up to its size) are set beside the official image's
    published compressed size."""
    pin = {"public": "python:3.13-slim", "lab_tag": "lab/slim", "image_id": "sha256:aa", "bytes": 160e6}
    trial = {
        "experiment": "multi-stage",
        "variant": "single",
        "status": "ok",
        "bases": {"python:3.13-slim": "sha256:aa"},
        "image": {"layer_compressed_bytes": [58_890_074, 93], "layer_bytes": [159_999_000, 140]},
    }
    run = {"machine": "m", "run_id": "r1", "trials": [trial], "bases": {"python:3.13-slim": pin}}
    view = _view(run, _df())
    slim = next(r for r in view.tables[1].rows if r[0] == "python:3.12.2-slim")
    assert slim[1] == "130 MB" and "lab/slim" in slim[3] and slim[5] == "58.9 MB"
    assert slim[2].startswith("46.2 MB (python:3.12-slim, 2026-09-01") and slim[6] == "×1.28"
    alpine = next(r for r in view.tables[1].rows if r[0] == "python:3.12.2-alpine")
    assert alpine[3].startswith("no stand-in")


def test_smoke_state_none_when_all_passed():
    """A variant whose every smoke check passed (or that has none) is not flagged."""
    df = _df()
    assert smoke_state(df, "m", "multi-stage", "single", {}) is None
    assert smoke_state(df, "m", "multi-stage", "nope", {}) is None
