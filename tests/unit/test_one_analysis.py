"""Claims are judged in one place: `harness.analysis.analyze`. The report, its article view and the
end-of-run summary render what it decides; no other module of harness calls the claim-judging code
(read from the source with `ast`, so an alias or a lazy import cannot hide a call). Verdicts and
statuses are `StrEnum`s that read exactly as the words they replace."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from harness import analysis, stats
from harness.report.article import ARTICLE_COMPARISONS
from harness.report.model import build_report
from harness.report.render import markdown
from harness.results import load_runs
from harness.verdicts import RunStatus, TrialStatus, Verdict

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "harness"
FIXTURE = REPO / "tests" / "fixtures" / "results"

# The claim-judging code: what turns values into a verdict, per claim or per experiment.
JUDGES = {
    "harness.analysis": {
        "evaluate_claim",
        "evaluate_claims",
        "experiment_verdicts",
        "calibrate",
        "run_calibration",
        "decide",
        "combine",
        "_judge",
        "_judge_comparison",
        "_evaluate_check",
        "_evaluate_delta",
        "_smoke_rule",
        "_by_construction",
        "_network_precondition",
    },
    "harness.stats": {"verdict", "delta_verdict", "check", "check_detail"},
}
# Modules that may: the analysis, and the statistics it delegates the interval rules to.
JUDGING_MODULES = {"harness/analysis.py", "harness/stats.py"}


def judging_uses(source: str) -> set[str]:
    """The claim-judging functions (`module.name`) a module's source names: called, passed or imported,
    through `from harness import analysis [as x]`, `import harness.analysis [as x]` or
    `from harness.analysis import name [as y]`, at module level or inside a function."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> harness module
    names: dict[str, str] = {}  # local name -> module.function
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full in JUDGES:
                    modules[a.asname or a.name] = full
                elif node.module in JUDGES and a.name in JUDGES[node.module]:
                    names[a.asname or a.name] = full
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in JUDGES and a.asname:
                    modules[a.asname] = a.name
    found = set(names.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name) and base.id in modules and node.attr in JUDGES[modules[base.id]]:
                found.add(f"{modules[base.id]}.{node.attr}")
            dotted = ast.unparse(base)
            if (
                dotted in JUDGES and node.attr in JUDGES[dotted]
            ):  # import harness.analysis; harness.analysis.x
                found.add(f"{dotted}.{node.attr}")
    return found


def test_no_module_outside_the_analysis_judges_a_claim():
    """Every harness module but analysis.py and stats.py names none of the claim-judging functions
    (the gate and compare too: they render `analyze`'s claims)."""
    offenders: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in JUDGING_MODULES:
            continue
        uses = judging_uses(path.read_text(encoding="utf-8"))
        if uses:
            offenders[rel] = uses
    assert offenders == {}, (
        "only harness.analysis judges claims: render analysis.analyze(...)'s result instead"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from harness import analysis\nanalysis.evaluate_claim(df, 'm', d, 0, c)", {"evaluate_claim"}),
        ("from harness import analysis as a\nfor c in a.evaluate_claims(runs): pass", {"evaluate_claims"}),
        ("from harness.analysis import decide as pick\npick(row, [], [])", {"decide"}),
        ("import harness.analysis as h\nh.calibrate(claims, runs)", {"calibrate"}),
        ("import harness.stats\nharness.stats.verdict(0.5, 0.9, 'lower')", {"verdict"}),
        (
            "def f():\n    from harness import stats\n    return stats.check_detail(v, '<', 1)",
            {"check_detail"},
        ),
        ("from harness.analysis import combine\nfs = [combine]", {"combine"}),
        ("from harness import analysis\nanalysis.analyze(runs).experiments", set()),
        ("from harness import stats\nstats.ratio_ci(b, c)", set()),
        ("verdict = 'supported'\nx.verdict(1)", set()),
    ],
)
def test_the_check_sees_every_way_of_naming_a_judge(source, expected):
    """A call through an alias, a lazy import or a function passed as a value is found; the analysis'
    entry, an interval or an unrelated `verdict` is not."""
    assert {u.rsplit(".", 1)[1] for u in judging_uses(source)} == expected


def test_build_report_enters_the_judging_code_once_through_analyze():
    """Following the runs through build_report, the only way into the claim-judging functions from
    outside harness/analysis.py is one call of `analyze` (the report and the article view render it)."""
    judges = JUDGES["harness.analysis"] | {"analyze"}
    here = analysis.__file__
    entered: list[str] = []

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code.co_filename == here and frame.f_code.co_name in judges:
            back = frame.f_back
            if back is None or back.f_code.co_filename != here:
                entered.append(frame.f_code.co_name)

    runs = load_runs(FIXTURE)
    sys.setprofile(profile)
    try:
        build_report(runs)
    finally:
        sys.setprofile(None)
    assert entered == ["analyze"]


@pytest.fixture(scope="module")
def result() -> analysis.Analysis:
    return analysis.analyze(load_runs(FIXTURE), comparisons=ARTICLE_COMPARISONS)


def test_the_result_holds_each_experiments_verdict_claims_deciding_claim_and_provenance(result):
    """One ExperimentResult per machine and experiment: a Verdict, its judged claims, the deciding claim
    among them (or a precondition), and the run it rests on (the latest chosen for it)."""
    assert result.experiments
    keys = [(e.machine, e.experiment) for e in result.experiments]
    assert len(keys) == len(set(keys)) == len(result.chosen)
    for e in result.experiments:
        assert isinstance(e.verdict, Verdict)
        assert all(c["machine"] == e.machine and c["experiment"] == e.experiment for c in e.claims)
        if e.deciding is not None and e.deciding.get("role") != "precondition":
            assert any(e.deciding is c for c in e.claims)
        if e.verdict != Verdict.NOT_MEASURED:
            assert e.deciding is not None or not e.claims
        assert e.run is not None and e.run["run_id"] == result.chosen[(e.machine, e.experiment)]
        assert e.run is result.run(e.machine, e.experiment)
    assert {c["verdict"] for c in result.claims} <= set(Verdict)


def test_the_article_figures_are_judged_by_the_analysis(result):
    """Each article figure's pair is one of the analysis' comparisons, judged without a p-value."""
    judged = {c for (_m, c) in result.comparisons}
    measured = {c for c in ARTICLE_COMPARISONS if any(c.experiment in d for d in result.definitions.values())}
    assert judged == measured and judged
    for res in result.comparisons.values():
        assert res["verdict"] in set(Verdict)
        assert res.get("p") is None


def test_the_analysis_is_the_same_with_and_without_the_report(result):
    """The report shows the analysis' verdicts: its claims table has each experiment's verdict word."""
    report = build_report(load_runs(FIXTURE))
    column = report.claims.headers.index("verdict")
    shown = [str(row[column]) for row in report.claims.rows]
    ordered = sorted(result.experiments, key=lambda e: (e.section != "calibration", e.experiment, e.machine))
    assert [s.split(":", 1)[0] for s in shown] == [str(e.verdict) for e in ordered]


def test_verdicts_and_statuses_read_as_the_words_they_replace():
    """StrEnum members equal, format, hash and serialise as their text."""
    assert Verdict.NOT_SUPPORTED == "not supported" and f"{Verdict.NOT_MEASURED}" == "not measured here"
    assert str(Verdict.BY_CONSTRUCTION) == "by construction" and {"supported": 1}[Verdict.SUPPORTED] == 1
    assert json.dumps({"v": Verdict.INCONCLUSIVE, "s": TrialStatus.OK}) == '{"v": "inconclusive", "s": "ok"}'
    assert RunStatus.COMPLETE == "complete" and TrialStatus("skipped") is TrialStatus.SKIPPED
    assert stats.verdict(0.5, 0.9, "lower") is Verdict.SUPPORTED
    assert analysis.combine([Verdict.SUPPORTED, "not supported"]) is Verdict.NOT_SUPPORTED
    assert analysis.NOT_MEASURED is Verdict.NOT_MEASURED


def test_no_enum_name_leaks_into_the_report():
    """The rendered report says 'supported', never 'Verdict.SUPPORTED'."""
    md = markdown(build_report(load_runs(FIXTURE)))
    assert "Verdict." not in md and "TrialStatus." not in md and "supported" in md
