"""`compare`: edits from COPY lines, differences in words with intervals, no verdict unless claimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.compare import (
    copy_sources,
    default_edits,
    difference_text,
    make_pair,
    parse_claim,
    render_compare,
    summarize,
)
from harness.errors import UsageError

BAD = """FROM python:3.12-slim
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
CMD ["python", "app.py"]
"""
GOOD = """FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=app:app \\
     app.py templates/ ./
COPY --from=builder /wheels /wheels
CMD ["python", "app.py"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    for rel, text in {
        "app.py": "print('hi')\n",
        "requirements.txt": "flask\n",
        "templates/index.html": "<p>hi</p>\n",
        "README.md": "x\n",
        "secret.env": "x\n",
    }.items():
        (tmp_path / rel).write_text(text)
    (tmp_path / ".dockerignore").write_text("secret.env\n")
    (tmp_path / "bad.Dockerfile").write_text(BAD)
    (tmp_path / "good.Dockerfile").write_text(GOOD)
    return tmp_path


def test_copy_sources_skip_from_stage_and_join_continuations() -> None:
    """COPY sources come from the context only (`--from=` skipped), continuation lines joined."""
    assert copy_sources(GOOD) == ["requirements.txt", "app.py", "templates/"]
    assert copy_sources(BAD) == ["."]
    assert copy_sources('COPY ["a b.py", "/app/"]\nADD https://x/y.tgz /t\n') == ["a b.py"]


def test_default_edits_pick_code_both_copy_and_the_named_manifest(project: Path) -> None:
    """Default edit-source file: code both Dockerfiles copy; edit-deps: the manifest a COPY names."""
    e = default_edits([project / "bad.Dockerfile", project / "good.Dockerfile"], project)
    assert e.source == ("app.py",)
    assert e.deps == "requirements.txt"


def test_make_pair_records_edits_probes_smoke_and_only_stated_claims(project: Path, tmp_path: Path) -> None:
    """The pair carries the edits, probes and smoke asked for; claims only when the user states one."""
    folder = tmp_path / "pair"
    folder.mkdir()
    exp = make_pair(
        project / "bad.Dockerfile",
        project / "good.Dockerfile",
        None,
        folder,
        ("cold", "edit-source"),
        probes=("stop",),
        smoke="python -c 1",
    )
    assert exp.edits == {"source": ["app.py"]}
    assert exp.claims == ()
    assert exp.probes == ("stop",)
    assert all(v.smoke == "python -c 1" and v.scenarios == ("cold", "edit-source") for v in exp.variants)
    folder2 = tmp_path / "pair2"
    folder2.mkdir()
    exp2 = make_pair(
        project / "bad.Dockerfile",
        project / "good.Dockerfile",
        None,
        folder2,
        ("edit-source",),
        claims=("build_seconds:lower",),
    )
    assert [(c.metric, c.expect, c.scenario) for c in exp2.claims] == [
        ("build_seconds", "lower", "edit-source")
    ]


def test_bad_inputs_are_one_line_usage_errors(project: Path, tmp_path: Path) -> None:
    """Unknown probe, missing --edit file and a claim on an unmeasured scenario are usage errors."""
    args = (project / "bad.Dockerfile", project / "good.Dockerfile", None)
    for i, kw in enumerate(({"probes": ("nope",)}, {"edit": ("missing.py",)})):
        folder = tmp_path / f"f{i}"
        folder.mkdir()
        with pytest.raises(UsageError):
            make_pair(*args, folder, ("edit-source",), **kw)
    with pytest.raises(UsageError):
        parse_claim("build_seconds:lower:warm", ("cold",))
    with pytest.raises(UsageError):
        parse_claim("build_seconds:better", ("cold",))


def _row(a: float, b: float, ratio=None, low=None, high=None, exact=False) -> dict:
    return {"a_median": a, "b_median": b, "ratio": ratio, "low": low, "high": high, "exact": exact}


def test_difference_sentences() -> None:
    """Smaller/larger with the interval in percent; an interval over 1 is no detectable difference."""
    assert difference_text("build_seconds", "s", _row(10, 4.7, 0.47, 0.44, 0.50)) == (
        "B smaller by 53 % (95 % CI 50-56 %)"
    )
    assert difference_text("build_seconds", "s", _row(10, 10.2, 1.02, 0.97, 1.08)).startswith(
        "no detectable difference"
    )
    assert "larger by 50 %" in difference_text("image_bytes", "B", _row(100, 150, exact=True))
    assert difference_text("layers", "count", _row(3, 3, exact=True)) == "identical in every trial"


def _run(values: dict[tuple[str, str], list[float]], claims: list | None = None) -> dict:
    trials = []
    for (variant, metric), vals in values.items():
        for i, v in enumerate(vals):
            trials.append(
                {
                    "experiment": "compare",
                    "variant": variant,
                    "scenario": "cold",
                    "trial": i,
                    "status": "ok",
                    "metrics": {metric: v},
                }
            )
    return {
        "run_id": "r",
        "machine": "m",
        "seed": 1,
        "plan": [{"scenario": "cold"}],
        "experiments": {"compare": {"claims": claims or []}},
        "trials": trials,
    }


def test_summary_has_no_p_value_where_values_do_not_vary_and_no_verdict() -> None:
    """Sizes identical in every trial get an exact difference and no p; no claim means no verdict."""
    run = _run(
        {
            ("a", "image_bytes"): [100.0, 100.0, 100.0],
            ("b", "image_bytes"): [50.0, 50.0, 50.0],
            ("a", "build_seconds"): [10.0, 11.0, 10.5],
            ("b", "build_seconds"): [5.0, 5.5, 5.2],
        }
    )
    s = summarize(run, "a", "b")
    by = {r["metric"]: r for r in s["rows"]}
    assert by["image_bytes"]["exact"] and by["image_bytes"]["p_value"] is None
    assert "smaller by 50 %" in by["image_bytes"]["difference"]
    assert "smaller" in by["build_seconds"]["difference"] and "95 % CI" in by["build_seconds"]["difference"]
    assert s["claims"] == []
    assert "verdict" not in by["build_seconds"]
    text = render_compare(s)
    assert "B against A" in text and "supported" not in text


def test_one_trial_each_is_never_called_exact_or_the_same_in_every_trial():
    """A time measured once per side is one draw, not an exact value; a size measured once says so."""
    from harness.compare import difference_text

    once_time = {
        "a_median": 17.6,
        "b_median": 14.8,
        "n": 1,
        "exact": False,
        "ratio": 0.84,
        "low": None,
        "high": None,
    }
    assert (
        difference_text("build_seconds", "s", once_time)
        == "B/A = 0.84 (one trial each: no interval, not a finding)"
    )
    once_size = {"a_median": 100.0, "b_median": 100.0, "n": 1, "exact": True}
    assert difference_text("image_bytes", "B", once_size) == "identical (one trial each)"
    twice_size = {"a_median": 100.0, "b_median": 50.0, "n": 2, "exact": True}
    assert difference_text("image_bytes", "B", twice_size).endswith("; same in every trial)")
