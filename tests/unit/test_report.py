"""The rendered report: deterministic, self-contained, every plot labelled with its unit, one claims
row per experiment, robust to stray files. Rendered from the synthetic fixture (tests/fixtures/results)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib
import pytest

from harness.errors import SchemaError
from harness.metrics import METRICS
from harness.report import plots, render_report
from harness.report.model import build_report
from harness.results import load_runs

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "results"
COMMITTED = REPO / "results"
UNIT_RE = re.compile(
    r"\((?:[^()]*[,;] )?(s|ms|B|kB|MB|GB|count|fraction|×[^)]*|id|code|ratio|flag|value)"
    r"(?:[,;][^()]*)?\)"
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report-a")
    return render_report(FIXTURE, out)


@pytest.fixture(scope="module")
def model():
    return build_report(load_runs(FIXTURE))


def test_render_writes_html_markdown_and_plots(rendered):
    """render_report writes index.html, REPORT.md and PNG+SVG plots, every PNG referenced from REPORT.md."""
    assert rendered["html"].name == "index.html" and rendered["html"].is_file()
    assert rendered["markdown"].name == "REPORT.md" and rendered["markdown"].is_file()
    pngs = [p for p in rendered["plots"] if p.suffix == ".png"]
    svgs = [p for p in rendered["plots"] if p.suffix == ".svg"]
    assert len(pngs) == len(svgs) > 10
    md = rendered["markdown"].read_text()
    for png in pngs:  # every PNG is referenced, relative to REPORT.md
        assert f"(plots/{png.name})" in md
    assert rendered["skipped"] == []


def test_rendering_is_deterministic(rendered, tmp_path):
    """Rendering the same results twice gives byte-identical Markdown, HTML and plots."""
    again = render_report(FIXTURE, tmp_path / "b")
    assert again["markdown"].read_bytes() == rendered["markdown"].read_bytes()
    assert again["html"].read_bytes() == rendered["html"].read_bytes()
    for a, b in zip(sorted(rendered["plots"]), sorted(again["plots"]), strict=True):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes(), a.name


def test_committed_report_is_current():
    """results/report/REPORT.md must be what `imagebench report` renders from results/ today:
    no number in it was typed by hand, and none went stale. (The Markdown is built from the model
    directly: drawing the reference's 144 plots adds nothing to this check.)"""
    from harness.report.render import markdown

    committed = COMMITTED / "report" / "REPORT.md"
    if not committed.is_file():
        pytest.skip("no committed reference run yet (results/report/REPORT.md does not exist)")
    text = committed.read_text(encoding="utf-8")
    # rendered as its own first line says: with --pool only when it judged differing runs together
    pool = "--results <dir> --pool`" in text.split("\n", 3)[2]
    fresh = markdown(build_report(load_runs(COMMITTED), pool=pool))
    assert fresh == text, "results/report/REPORT.md is stale: run `imagebench report` and commit the result"


def test_markdown_has_no_render_time_or_absolute_paths(rendered):
    """The report names no absolute path of the results or the output."""
    md = rendered["markdown"].read_text()
    assert str(rendered["markdown"].parent) not in md
    assert str(FIXTURE) not in md
    html = rendered["html"].read_text()
    assert str(FIXTURE) not in html and str(rendered["html"].parent) not in html


def test_html_is_self_contained(rendered):
    """The HTML report loads nothing from outside, has no script, inlines its SVGs with unique ids."""
    html = rendered["html"].read_text()
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(http" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "@media print" in html and "overflow-x: auto" in html
    assert html.count("<svg") >= 10
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "element ids must be unique across inline SVGs"


def test_claims_table_has_a_row_per_experiment(model, rendered):
    """The claims table has one row per machine and experiment."""
    runs = load_runs(FIXTURE)
    expected = {(r["machine"], name) for r in runs for name in r["experiments"]}
    assert len(model.claims.rows) == len(expected) == 8
    headers = model.claims.headers
    assert headers[:2] == ["machine", "practice"] and "verdict" in headers
    rows = {(row[0], row[-1].text) for row in model.claims.rows}
    assert rows == expected
    md = rendered["markdown"].read_text()
    table = md.split("## Claims", 1)[1].split("\n\n")[2]
    assert len([ln for ln in table.splitlines() if ln.startswith("| synthetic-")]) == 8


def test_claims_table_comes_after_calibration_and_links_sections(rendered):
    """The claims table sits between trust and environment sections and every link has its anchor."""
    md = rendered["markdown"].read_text()
    assert md.index("## How far to trust these numbers") < md.index("## Claims") < md.index("## Environment")
    for anchor in re.findall(r"\]\(#(exp-[a-z0-9-]+)\)", md):
        assert f'<a id="{anchor}"></a>' in md
    html = rendered["html"].read_text()
    for anchor in re.findall(r'href="#(exp-[a-z0-9-]+)"', html):
        assert f'id="{anchor}"' in html


def test_verdicts_and_not_measured_are_shown(rendered):
    """The report shows verdicts, not-measured reasons and sizes that varied between trials."""
    md = rendered["markdown"].read_text()
    assert "| not measured here |" in md  # healthcheck: every trial failed
    assert "never became healthy" in md
    assert "alpine: needs --bases registry" in md  # a variant that cannot run here says so
    assert "| inconclusive |" in md
    assert "310,000,000 B to 310,004,096 B" in md  # a size that varied is a finding


def test_every_plot_names_its_metric_and_unit(model):
    """Every plot's axis names its metric and unit."""
    specs = [model.forest] + [p for s in model.sections for p in [*s.plots, s.waterfall] if p]
    assert len(specs) > 10
    for spec in specs:
        with matplotlib.rc_context(plots.RC):
            fig = spec.make()
        labels = [lab for ax in fig.axes for lab in (ax.get_xlabel(), ax.get_ylabel()) if lab]
        assert any(UNIT_RE.search(lab) for lab in labels), (spec.name, labels)
        metric = spec.name.split("--")[-1].replace("-", "_")
        if metric in METRICS:
            assert any(lab.startswith(metric) for lab in labels), (spec.name, labels)


def test_size_plots_say_compressed_or_uncompressed(model):
    """Size plots say whether the bytes are compressed or uncompressed."""
    for s in model.sections:
        for spec in s.plots:
            with matplotlib.rc_context(plots.RC):
                label = spec.make().axes[0].get_ylabel()
            if label.startswith("image_bytes_compressed"):
                assert "(compressed," in label
            elif label.startswith("image_bytes"):
                assert "(uncompressed," in label


def test_plots_do_not_touch_pyplot_state(model):
    """Making a plot leaves pyplot's global figure list unchanged."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    model.sections[0].plots[0].make()
    assert plt.get_fignums() == before


def test_corrupt_and_foreign_json_is_skipped_with_a_warning(tmp_path):
    """Corrupt and foreign JSON files under results are skipped with a warning and the report still renders."""
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    (results / "synthetic-a" / "corrupt.json").write_text('{"schema": "imagebench.run", "trials": [', "utf-8")
    (results / "synthetic-a" / "foreign.json").write_text('{"hello": "world"}', "utf-8")
    (results / "elsewhere").mkdir()
    (results / "elsewhere" / "list.json").write_text("[1, 2, 3]", "utf-8")
    with pytest.warns(UserWarning, match="skipped"):
        out = render_report(results, tmp_path / "report")
    assert len(out["skipped"]) == 3
    assert out["markdown"].is_file() and out["html"].is_file()
    assert "| supported |" in out["markdown"].read_text()


def test_empty_results_write_no_report(tmp_path):
    """No valid run: SchemaError (exit 4) and nothing is written - a report is never replaced by an empty one."""
    with pytest.raises(SchemaError, match="no valid run"):
        render_report(tmp_path / "nothing", tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_stale_plots_are_removed(rendered, tmp_path):
    """A plot an earlier render wrote (listed in its manifest) and this one does not is removed."""
    out_dir = tmp_path / "report"
    shutil.copytree(rendered["html"].parent, out_dir)
    (out_dir / "plots" / "gone.png").write_bytes(b"old")
    manifest = out_dir / ".imagebench-report"
    manifest.write_text(manifest.read_text() + "plots/gone.png\n")
    render_report(FIXTURE, out_dir)
    assert not (out_dir / "plots" / "gone.png").exists()


def test_environment_names_base_provenance(rendered):
    """The environment section names each base's public image, lab stand-in and published sizes."""
    md = rendered["markdown"].read_text()
    env = md.split("## Environment", 1)[1]
    assert "python:3.12-slim" in env and "lab stand-in (synthetic)" in env
    assert "docker-library/repo-info" in env
    assert "46.2 MB" in env  # the latest published compressed size of python:3.12-slim in harness/data
    assert "uncompressed" in env and "compressed" in env
