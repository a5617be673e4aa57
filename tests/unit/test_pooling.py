"""Which runs a report judges together, what an interrupted run or a failed calibration may decide,
and how exact metrics and settings are stated (harness.analysis; no Docker, run dicts built here)."""

from __future__ import annotations

import pytest

from harness import analysis
from harness.report.model import build_report

COMMIT = "a" * 40
ENGINE = {
    "docker_host": "unix:///var/run/docker.sock",
    "engine_version": "26.1.5",
    "docker_root_dir": "/var/lib/docker",
    "builder_driver": "docker",
    "storage_driver": "overlay2",
    "image_store": "classic",
}


def claim(**kw) -> dict:
    return {"source": "extension", "scenario": "cold", **kw}


SIZE = {
    "name": "size",
    "practice": "Size practice",
    "section": "dockerfile",
    "variants": [{"name": "big"}, {"name": "small"}],
    "claims": [
        claim(
            metric="image_bytes",
            expect="lower",
            baseline="big",
            candidate="small",
            primary=True,
            source="article",
            article_section="dockerfiles.3",
        )
    ],
}
TIMED = {
    "name": "timed",
    "practice": "Time practice",
    "section": "dockerfile",
    "variants": [{"name": "slow"}, {"name": "fast"}],
    "claims": [
        claim(
            metric="build_seconds",
            expect="lower",
            baseline="slow",
            candidate="fast",
            primary=True,
            source="article",
            article_section="dockerfiles.2",
        ),
        claim(metric="stop_seconds", variant="fast", op="==", value=3.0, by_construction=True),
    ],
}
CALIBRATION = {
    "name": "calibration",
    "practice": "Calibration",
    "section": "calibration",
    "variants": [{"name": "sleep-0"}, {"name": "sleep-1"}],
    "claims": [
        claim(
            metric="build_seconds",
            expect="delta",
            baseline="sleep-0",
            candidate="sleep-1",
            value=1.0,
            tolerance=0.05,
        )
    ],
}
SHAPED = {
    "name": "shaped",
    "practice": "Shaped practice",
    "section": "images",
    "requires": ["shaped-network"],
    "variants": [{"name": "big"}, {"name": "small"}],
    "claims": [claim(metric="image_bytes", expect="lower", baseline="big", candidate="small", primary=True)],
}


def trial(exp: str, variant: str, n: int, **metrics: float) -> dict:
    return {
        "experiment": exp,
        "variant": variant,
        "scenario": "cold",
        "trial": n,
        "status": "ok",
        "metrics": metrics,
    }


def run(
    run_id: str,
    start: str,
    end: str,
    experiments: dict[str, dict],
    trials: list[dict],
    *,
    status: str = "complete",
    commit: str = COMMIT,
    engine: dict | None = None,
    profile: str = "unlimited",
) -> dict:
    return {
        "schema": "imagebench.run",
        "run_id": run_id,
        "machine": "m",
        "status": status,
        "created_at": start,
        "updated_at": end,
        "command": ["imagebench", "run"],
        "warnings": [],
        "fingerprint": {
            "harness": {"git_commit": commit, "git_dirty": False},
            "engine": engine or ENGINE,
            "lab": {"profile": {"name": profile, "rate_bps": 0.0 if profile == "unlimited" else 1e8}},
        },
        "experiments": experiments,
        "trials": trials,
    }


def size_trials(big: list[float], small: list[float]) -> list[dict]:
    return [trial("size", "big", i, image_bytes=b) for i, b in enumerate(big)] + [
        trial("size", "small", i, image_bytes=s) for i, s in enumerate(small)
    ]


def timed_trials(calibration_delta: float, n: int = 5) -> list[dict]:
    out = []
    for i in range(n):
        out += [
            trial("timed", "slow", i, build_seconds=10.0 + 0.01 * i),
            trial("timed", "fast", i, build_seconds=5.0 + 0.01 * i, stop_seconds=3.0),
            trial("calibration", "sleep-0", i, build_seconds=2.0 + 0.001 * i),
            trial("calibration", "sleep-1", i, build_seconds=2.0 + calibration_delta + 0.001 * i),
        ]
    return out


def size_run(run_id: str, start: str, end: str, **kw) -> dict:
    return run(run_id, start, end, {"size": SIZE}, size_trials([100.0] * 3, [40.0] * 3), **kw)


def timed_run(run_id: str, start: str, end: str, delta: float = 1.0, **kw) -> dict:
    return run(run_id, start, end, {"timed": TIMED, "calibration": CALIBRATION}, timed_trials(delta), **kw)


def verdicts_by_name(runs: list[dict]) -> dict[str, dict]:
    claims = analysis.evaluate_claims(runs, latest=True)
    return {v["experiment"]: v for v in analysis.experiment_verdicts(runs, claims)}


# --------------------------------------------------------------------------- pooling


def test_runs_of_one_invocation_are_judged_together():
    """Disjoint runs of one commit, engine and profile: all kept, nothing left out, nothing pooled."""
    a = size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z")
    b = timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z")
    sel = analysis.select_runs([a, b])
    assert [r["run_id"] for r in sel.runs] == [a["run_id"], b["run_id"]]
    assert sel.left_out == [] and sel.pooled == []


@pytest.mark.parametrize(
    ("older_kw", "said"),
    [
        ({"start": "2026-01-01T10:40:00Z"}, "ran at the same time as run 20260101T103100Z-b"),
        ({"commit": "b" * 40}, "harness commit bbbbbbbbbbbb, not aaaaaaaaaaaa"),
        ({"engine": {**ENGINE, "docker_host": "unix:///run/other.sock"}}, "another engine (docker_host"),
        ({"profile": "20mbit"}, "network profile 20mbit, not unlimited"),
    ],
)
def test_a_run_that_differs_is_left_out_unless_pooled(older_kw, said):
    """An older run that overlaps the newer one in time, or comes from another harness commit, engine or
    network profile, is not judged beside it: left out with the reason; with pool=True it is kept and named."""
    start = older_kw.pop("start", "2026-01-01T10:00:00Z")
    older = size_run("20260101T100000Z-a", start, "2026-01-01T10:50:00Z", **older_kw)
    newer = timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z")
    sel = analysis.select_runs([older, newer])
    assert [r["run_id"] for r in sel.runs] == [newer["run_id"]]
    assert len(sel.left_out) == 1 and sel.left_out[0][0] == older["run_id"] and said in sel.left_out[0][1]
    pooled = analysis.select_runs([older, newer], pool=True)
    assert len(pooled.runs) == 2 and pooled.left_out == []
    assert pooled.pooled[0][0] == older["run_id"] and said in pooled.pooled[0][1]


def test_a_shaped_network_run_pools_with_an_unshaped_one():
    """An experiment that requires a shaped network runs under another profile by design: not a conflict."""
    a = size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z")
    trials = [
        trial("shaped", v, i, image_bytes=x) for i in range(3) for v, x in (("big", 9.0), ("small", 3.0))
    ]
    b = run(
        "20260101T103100Z-b",
        "2026-01-01T10:31:00Z",
        "2026-01-01T11:00:00Z",
        {"shaped": SHAPED},
        trials,
        profile="100mbit",
    )
    sel = analysis.select_runs([a, b])
    assert len(sel.runs) == 2 and sel.left_out == []


def test_a_left_out_run_lets_an_older_compatible_run_report_its_experiment():
    """When the newest run of an experiment is left out, an older run that fits the others reports it."""
    oldest = size_run("20260101T090000Z-o", "2026-01-01T09:00:00Z", "2026-01-01T09:30:00Z")
    other_commit = size_run(
        "20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z", commit="c" * 40
    )
    newest = timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z")
    sel = analysis.select_runs([oldest, other_commit, newest])
    assert [x[0] for x in sel.left_out] == [other_commit["run_id"]]
    assert analysis.latest_run_ids(sel.runs)[("m", "size")] == oldest["run_id"]


def test_the_report_names_what_it_left_out_and_what_it_pooled():
    """The report's notes say which run was left out and why; with pool=True a POOLED banner comes first."""
    older = size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z", commit="b" * 40)
    newer = timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z")
    report = build_report([older, newer], n_boot=200)
    assert any(n.startswith(f"Run {older['run_id']} left out: harness commit") for n in report.notes)
    assert {s.experiment for s in report.sections} == {"calibration", "timed"}
    pooled = build_report([older, newer], n_boot=200, pool=True)
    assert pooled.notes[0].startswith("POOLED (--pool)") and older["run_id"] in pooled.notes[0]
    assert {s.experiment for s in pooled.sections} == {"calibration", "timed", "size"}


# --------------------------------------------------------------------------- interrupted runs


def test_an_interrupted_run_never_decides():
    """An interrupted run's experiment is inconclusive, saying so, whatever its numbers show."""
    r = size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z", status="interrupted")
    v = verdicts_by_name([r])["size"]
    assert v["verdict"] == "inconclusive" and "interrupted run never decides" in v["reason"]


def test_a_complete_run_outranks_a_newer_interrupted_one():
    """A newer interrupted run of an experiment does not replace an older complete one."""
    old = size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z")
    new = size_run("20260101T110000Z-b", "2026-01-01T11:00:00Z", "2026-01-01T11:10:00Z", status="interrupted")
    assert analysis.latest_run_ids([old, new])[("m", "size")] == old["run_id"]
    assert verdicts_by_name([old, new])["size"]["verdict"] == "supported"


# --------------------------------------------------------------------------- calibration gates time claims


def test_time_claims_are_judged_when_the_runs_calibration_passed():
    """The run's own calibration recovered +1.0 s: the build-time claim keeps its verdict."""
    v = verdicts_by_name([timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z")])
    assert v["calibration"]["verdict"] == "supported"
    assert v["timed"]["verdict"] == "supported"


def test_time_claims_are_inconclusive_when_the_runs_calibration_failed():
    """The run measured +1.2 s for an injected +1.0 s: its time claims become inconclusive, saying why,
    though their own interval would have supported them."""
    r = timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z", delta=1.2)
    claims = analysis.evaluate_claims([r], latest=True)
    timed = next(c for c in claims if c["experiment"] == "timed" and c["metric"] == "build_seconds")
    assert timed["verdict"] == "inconclusive" and timed["measured_verdict"] == "supported"
    assert timed["reason"].startswith("this run's calibration failed")
    assert verdicts_by_name([r])["timed"]["verdict"] == "inconclusive"


def test_time_claims_without_a_calibration_are_inconclusive():
    """A run that carried no calibration cannot have its times judged."""
    r = timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z")
    r["experiments"] = {"timed": TIMED}
    r["trials"] = [t for t in r["trials"] if t["experiment"] == "timed"]
    claims = analysis.evaluate_claims([r], latest=True)
    timed = next(c for c in claims if c["metric"] == "build_seconds")
    assert timed["verdict"] == "inconclusive" and "carried no calibration" in timed["reason"]


# --------------------------------------------------------------------------- exact is exact, settings are settings


def test_exact_sizes_have_no_p_value_and_say_exact():
    """Sizes identical in every trial: the ratio is exact, no interval from resampling, no p-value."""
    claims = analysis.evaluate_claims(
        [size_run("r1", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z")], latest=True
    )
    c = claims[0]
    assert c["interval"] == "exact" and c["p"] is None and c["low"] == c["high"] == pytest.approx(0.4)
    assert "exact: the same in every trial" in c["figure"] and c["verdict"] == "supported"


def test_sizes_that_vary_are_judged_on_their_range():
    """Sizes that differ by a few bytes between trials: judged on the range every trial allows, no p-value."""
    r = run(
        "r1",
        "2026-01-01T10:00:00Z",
        "2026-01-01T10:30:00Z",
        {"size": SIZE},
        size_trials([1000.0, 1010.0, 1005.0], [990.0, 1001.0, 995.0]),
    )
    c = analysis.evaluate_claims([r], latest=True)[0]
    assert c["interval"] == "range" and c["p"] is None
    assert c["low"] == pytest.approx(990 / 1010) and c["high"] == pytest.approx(1001 / 1000)
    assert c["verdict"] == "inconclusive"  # 1001 B against 1000 B: not smaller in every trial
    assert "range over trials" in c["figure"] and "varied between trials by up to" in c["reason"]


def test_a_value_fixed_by_the_experiment_is_stated_not_judged():
    """A by-construction claim shows its value with no interval, p-value or verdict, and never decides."""
    r = timed_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z")
    claims = analysis.evaluate_claims([r], latest=True)
    stop = next(c for c in claims if c["metric"] == "stop_seconds")
    assert stop["verdict"] == analysis.BY_CONSTRUCTION and stop["low"] is None and stop["p"] is None
    assert stop["figure"] == "fast: stop_seconds = 3.00 s (set by the experiment, not measured)"
    v = verdicts_by_name([r])["timed"]
    assert v["deciding"]["metric"] == "build_seconds"
    assert any("set by the experiment" in line for line in v["also_found"])


# --------------------------------------------------------------------------- the n a claim needs


def test_min_trials_follows_the_reports_rules():
    """A time ratio needs MIN_TIME_RATIO_N, a time threshold 2, an exact metric or a setting one."""
    assert (
        analysis.min_trials({"metric": "build_seconds", "expect": "lower"}) == analysis.MIN_TIME_RATIO_N == 5
    )
    assert analysis.min_trials({"metric": "stop_seconds", "op": "<", "value": 1.0}) == 2
    assert analysis.min_trials({"metric": "image_bytes", "expect": "lower"}) == 1
    assert (
        analysis.min_trials({"metric": "stop_seconds", "op": "==", "value": 3.0, "by_construction": True})
        == 1
    )


def test_every_experiment_runs_at_the_n_its_claims_need():
    """The catalog's default trials (what `make reference` runs) are never below what the report needs to
    judge each claim: a claim can not be inconclusive by construction of its experiment's n."""
    from pathlib import Path

    from harness.experiment import discover

    short = []
    for exp in discover(Path(__file__).resolve().parents[2] / "experiments"):
        n_of = {v.name: v.trials or exp.trials for v in exp.variants}
        for c in exp.to_dict()["claims"]:
            need = analysis.min_trials(c)
            for v in (c.get("variant"), c.get("baseline"), c.get("candidate")):
                if v and max(n_of.get(v, exp.trials), exp.min_trials) < need:
                    short.append(f"{exp.name}/{v}: {n_of.get(v)} trials, {c['metric']} needs {need}")
    assert short == []


# --------------------------------------------------------------------------- what makes results/ a reference


def _script(name: str):
    """scripts/<name>.py loaded as a module (scripts/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _as_reference(r: dict) -> dict:
    r["command"] = ["imagebench", "--results", "results", "run", *r["experiments"]]
    r["fingerprint"]["harness"]["git_dirty"] = False
    return r


def test_one_make_reference_passes_the_reference_check():
    """Two disjoint, complete runs of one clean commit, started by the script's command, with a passing
    calibration: no problem."""
    check = _script("reference_check")
    a = _as_reference(timed_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z"))
    b = _as_reference(size_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z"))
    assert check.problems([a, b], n_boot=200) == []
    for r in (a, b):
        r["fingerprint"]["lab"] = {"index_uploaded_before": "2026-12-01T00:00:00+00:00"}
    assert check.problems([a, b], n_boot=200, cutoff="2026-12-01T00:00:00+00:00") == []


def test_the_reference_check_names_every_broken_rule():
    """An interrupted run, another commit, a dirty tree, a command from elsewhere, runs that overlap and a
    failed calibration are each named."""
    check = _script("reference_check")
    a = _as_reference(
        timed_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:45:00Z", delta=1.2)
    )
    b = _as_reference(
        size_run("20260101T103100Z-b", "2026-01-01T10:31:00Z", "2026-01-01T11:00:00Z", status="interrupted")
    )
    b["fingerprint"]["harness"].update(git_commit="c" * 40, git_dirty=True)
    b["command"] = ["imagebench", "--results", "/tmp/x", "run", "size"]
    b["fingerprint"]["lab"] = {"index_uploaded_before": "2027-01-01T00:00:00+00:00"}
    found = "\n".join(check.problems([a, b], n_boot=200, cutoff="2026-12-01T00:00:00+00:00"))
    for said in (
        "2 harness commits",
        "not from a clean tree",
        "status interrupted, not complete",
        "is not one reference-run.sh runs",
        "its calibration failed",
        "overlap in time",
        "run 20260101T100000Z-a: lab index cutoff None, not experiments/index.toml's 2026-12-01",
        "run 20260101T103100Z-b: lab index cutoff 2027-01-01T00:00:00+00:00, not",
    ):
        assert said in found


def test_each_article_claim_names_its_section_in_the_report():
    """A practice's section lists each claim with its source; an article claim names the article's section."""
    r = size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z")
    report = build_report([r], n_boot=200)
    rows = next(s for s in report.sections if s.experiment == "size").claims.rows
    assert rows[0][6] == "article (dockerfiles.3: Small base images)"
    assert next(s for s in report.sections if s.experiment == "size").cannot_show == ""


def test_a_rate_claim_is_not_gated_by_a_build_time_calibration():
    """A CPU loop's throughput is not what a build-time calibration checks (and the runner carries none
    for it): a run with only a rate claim keeps its verdict without a calibration."""
    rate = {
        "name": "rate",
        "practice": "Rate practice",
        "section": "bonus",
        "variants": [{"name": "limited"}],
        "claims": [claim(metric="cpu_share", variant="limited", op="<=", value=0.55, primary=True)],
    }
    trials = [trial("rate", "limited", i, cpu_share=0.50 + 0.001 * i) for i in range(5)]
    r = run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z", {"rate": rate}, trials)
    c = analysis.evaluate_claims([r], latest=True)[0]
    assert c["verdict"] == "supported" and "calibration" not in (c["reason"] or "")


# --------------------------------------------------------------------------- do two references agree?


def test_two_references_that_agree_say_so():
    """The same runs twice: every practice and every claim gives the same verdict, nothing DIFFERS."""
    cmp = _script("reference_compare")
    a = [size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z")]
    b = [size_run("20260102T100000Z-b", "2026-01-02T10:00:00Z", "2026-01-02T10:30:00Z")]
    lines = cmp.compare(a, b, n_boot=200)
    assert lines[0].startswith("practices: 1 of 1 give the same verdict; claims: ")
    assert not any("DIFFERS" in line or "claim differs" in line for line in lines)


def test_a_verdict_that_differs_between_references_is_named_with_both_figures():
    """The second reference measured the 'small' variant bigger: the practice DIFFERS, both deciding
    figures are printed and the claim is listed."""
    cmp = _script("reference_compare")
    a = [size_run("20260101T100000Z-a", "2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z")]
    b = [
        run(
            "20260102T100000Z-b",
            "2026-01-02T10:00:00Z",
            "2026-01-02T10:30:00Z",
            {"size": SIZE},
            size_trials([100.0] * 3, [140.0] * 3),
        )
    ]
    lines = cmp.compare(a, b, n_boot=200)
    assert lines[0].startswith("practices: 0 of 1 give the same verdict")
    assert any(
        line.startswith("  size: supported / not supported") and line.endswith("DIFFERS") for line in lines
    )
    assert any(line.startswith("    second: ") and "140" in line for line in lines)
    assert any(line.startswith("  claim differs: size: ") for line in lines)
