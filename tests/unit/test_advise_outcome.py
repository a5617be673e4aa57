"""Unit tests of how `imagebench advise` judges a failing original and the rewrites that fail with it
(harness/advise/outcome.py and the summary), on recorded runs and generated trials (no daemon)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.advise import rewrites as rw
from harness.advise.command import (
    Advice,
    plan,
    render,
    stand_in_entry,
    substituted_base,
    summarize,
)
from harness.advise.outcome import (
    AS_ORIGINAL,
    Outcome,
    classify,
    key_line,
    normalise,
    stand_in_verdict,
    variant_outcome,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED = FIXTURES / "advise-recorded"
IMPORT_ERR = "ImportError: cannot import name 'url_quote' from 'werkzeug.urls' ({}/werkzeug/urls.py)"


def recorded(name: str) -> tuple[Advice, dict, str, dict]:
    """The fixture's plan, its recorded main run, its smoke command and the stand-in runs as advise reads them."""
    rec = json.loads((RECORDED / f"{name}.json").read_text())
    run = rec["run"]
    smoke = run["command"][run["command"].index("--smoke") + 1]
    advice = plan(FIXTURES / f"advise-{name}" / "Dockerfile", None, ["order"])
    found = substituted_base(advice, run)
    assert found is not None
    public, used = found
    tried = [stand_in_entry(s["rule"], public, s["run"]) for s in rec["stand_ins"]]
    return advice, run, smoke, {"used": used, "tried": tried}


def test_normalise_keeps_what_two_images_of_one_project_share():
    """Paths up to site-packages, the Python minor, addresses and ids are not part of a failure's signature."""
    a = normalise(IMPORT_ERR.format("/usr/local/lib/python3.13/site-packages"))
    b = normalise(IMPORT_ERR.format("/opt/venv/lib/python3.11/site-packages"))
    assert a == b == IMPORT_ERR.format("…")
    assert normalise("OSError: /usr/local/lib/python3.13/lib-dynload") == normalise(
        "OSError: /usr/local/lib/python3.11/lib-dynload"
    )
    assert normalise("<App object at 0x7f3a2b1c>  failed") == normalise("<App object at 0x55d0aa01> failed")
    assert normalise("image sha256:" + "ab" * 32) == "image <id>"
    assert normalise("NameError: name 'x' is not defined") != normalise("NameError: name 'y' is not defined")


def test_key_line_is_the_exception_line_of_a_traceback():
    """A traceback followed by a logger's last words is summarized by its exception line."""
    out = (
        "[INFO] Starting gunicorn 27.0.1\nTraceback (most recent call last):\n"
        '  File "/app/app.py", line 2, in <module>\n'
        "NameError: name 'RequestsCookieJar' is not defined\n"
        "[INFO] Worker exiting (pid: 7)\n\n"
    )
    assert key_line(out) == "NameError: name 'RequestsCookieJar' is not defined"
    assert key_line("exit because of reasons\n") == "exit because of reasons"
    assert key_line("") == "(no output)"


SMOKE_A = Outcome("smoke", IMPORT_ERR.format("/usr/local/lib/python3.13/site-packages"), 1)
SMOKE_A_VENV = Outcome("smoke", IMPORT_ERR.format("/opt/venv/lib/python3.13/site-packages"), 1)
SMOKE_B = Outcome("smoke", "PermissionError: [Errno 13] Permission denied: '/app/cache'", 1)
SMOKE_A_EXIT2 = Outcome("smoke", SMOKE_A.line, 2)
BUILD = Outcome("build", "error: command 'gcc' failed: No such file or directory")
PASS = Outcome("pass")


@pytest.mark.parametrize(
    ("original", "mine", "status", "relation"),
    [
        (PASS, PASS, "ok", None),
        (PASS, SMOKE_A, "broken", "worse"),
        (PASS, BUILD, "broken", "worse"),
        (SMOKE_A, SMOKE_A, AS_ORIGINAL, "same"),
        (SMOKE_A, SMOKE_A_VENV, AS_ORIGINAL, "same"),  # same error, the package in another prefix
        (SMOKE_A, SMOKE_B, "broken", "different"),
        (SMOKE_A, SMOKE_A_EXIT2, "broken", "different"),  # same line, another exit status
        (SMOKE_A, BUILD, "broken", "different"),
        (BUILD, BUILD, AS_ORIGINAL, "same"),
        (BUILD, SMOKE_A, "broken", "different"),
        (SMOKE_A, PASS, "ok", "fixes"),
        (SMOKE_A, Outcome("none", "skipped"), "not measured", None),
    ],
)
def test_classify_by_the_outcome_against_the_original(original, mine, status, relation):
    """Only a rewrite that makes the outcome worse is broken; failing as the original does is 'as the original'."""
    got = classify(original, mine, "true")
    assert (got[0], got[2]) == (status, relation)
    if status == "broken" and relation == "different":
        assert got[1].startswith("fails differently from the original: ")


def test_stand_in_verdicts():
    """Every stand-in fails -> 'every'; one passes -> the rule to pass; no substitution or nothing to try says so."""
    other = [{"python": "3.11", "rule": "older", "outcome": SMOKE_A}]
    v = stand_in_verdict(SMOKE_A, "3.13", other)
    assert (
        v["verdict"] == "every"
        and "under every stand-in (Python 3.13 and 3.11), the same way" in v["message"]
    )
    v = stand_in_verdict(SMOKE_A, "3.13", [{"python": "3.11", "rule": "older", "outcome": BUILD}])
    assert v["verdict"] == "every" and "not always the same way" in v["message"]
    v = stand_in_verdict(SMOKE_A, "3.13", [{"python": "3.11", "rule": "older", "outcome": PASS}])
    assert v["verdict"] == "substitution" and v["passes_with"] == "older"
    assert v["message"] == "fails on 3.13, passes on 3.11: pass --python-substitute older"
    v = stand_in_verdict(SMOKE_A, None, [])
    assert v["verdict"] == "unsubstituted" and v["message"].startswith("ran with no Python substitution")
    none = [{"python": "3.11", "rule": "older", "outcome": Outcome("none", "lab down")}]
    assert stand_in_verdict(SMOKE_A, "3.13", none)["verdict"] == "untried"


def test_recorded_import_failure_ranks_the_reorder_first_as_the_original():
    """Recorded: an app whose own import fails on 3.13 and 3.11. The original is said to fail under every
    stand-in, once, before the table; the reorder fails the same way, is 'as the original', ranks first and
    is recommended for its rebuild after an edit; nothing is BROKEN."""
    advice, run, smoke, stand_ins = recorded("importfail")
    assert [t["python"] for t in stand_ins["tried"]] == ["3.11"] and stand_ins["used"] == "3.13"
    s = summarize(run, advice, smoke, stand_ins)
    o = s["original"]
    assert o["status"] == "fails" and o["outcome"]["kind"] == "smoke" and o["outcome"]["exit_code"] == 1
    assert o["outcome"]["line"].startswith("ImportError: cannot import name 'url_quote'")
    assert o["stand_ins"]["verdict"] == "every"
    first = s["rewrites"][0]
    assert first["variant"] == "order" and first["rank"] == 1 and first["status"] == AS_ORIGINAL
    assert first["recommended"] and first["effect"] == "rebuild after edit"
    cell = first["cells"]["rebuild after edit"]
    assert cell["high"] < 1 and cell["ratio"] < 0.2
    text = render(s)
    head = text.split("rewrites ranked by effect")[0]
    assert "fails under every stand-in (Python 3.13 and 3.11), the same way" in head
    assert text.count("cannot import name 'url_quote'") == 1  # said once, up front
    assert "BROKEN" not in text
    assert "1. order (recommended; fails as the original does)" in text


def test_recorded_removed_module_names_the_substitution_that_passes():
    """Recorded: an app importing cgi (gone in 3.13) fails on the 3.13 stand-in and passes on 3.11: advise says
    which --python-substitute makes it pass; the reorder still fails as the original does there."""
    advice, run, smoke, stand_ins = recorded("removedmodule")
    s = summarize(run, advice, smoke, stand_ins)
    si = s["original"]["stand_ins"]
    rule = stand_ins["tried"][0]["rule"]
    assert si["verdict"] == "substitution" and si["passes_with"] == rule
    assert si["message"] == f"fails on 3.13, passes on 3.11: pass --python-substitute {rule}"
    assert s["original"]["outcome"]["line"] == "ModuleNotFoundError: No module named 'cgi'"
    assert s["rewrites"][0]["status"] == AS_ORIGINAL
    text = render(s)
    assert text.index(f"passes on 3.11: pass --python-substitute {rule}") < text.index("rewrites ranked")
    # one trial: a gain without an interval is not recommended, and says why
    assert "1. order (as the original; not established: needs 2+ trials)" in text


def _trials(variant: str, outcome: Outcome, edit: float) -> list[dict]:
    out = []
    for t in range(2):
        for scen, secs in (("cold", 5.0 + t), ("edit-source", edit + 0.01 * t)):
            rec: dict = {
                "variant": variant,
                "scenario": scen,
                "trial": t,
                "status": "ok",
                "image": {"user": ""},
            }
            rec["metrics"] = {
                "image_bytes": 100.0,
                "build_seconds": secs,
                "smoke_ok": int(outcome.kind == "pass"),
            }
            if outcome.kind == "build":
                rec = {
                    **rec,
                    "status": "failed",
                    "metrics": {},
                    "error": "build failed",
                    "error_text": outcome.line,
                }
                del rec["image"]
            elif outcome.kind == "smoke":
                rec["smoke"] = {
                    "exit_code": outcome.exit_code,
                    "output_tail": f"Traceback:\n{outcome.line}\n",
                }
            out.append(rec)
    return out


def test_a_rewrite_that_fails_differently_is_broken_and_ranks_last():
    """The original fails its import; order fails the same way (ranked, recommended), non-root fails with another
    error (broken, last, its own line shown), exec-form passes (ranked, marked as passing where the original
    fails)."""
    names = ("order", "non-root", "exec-form")
    advice = Advice(
        Path("Dockerfile"),
        Path(),
        "FROM x\n",
        [rw.Rewrite(n, "FROM x\n", f"why {n}") for n in names],
        "app.py",
        None,
    )
    trials = _trials("original", SMOKE_A, 3.0) + _trials("order", SMOKE_A_VENV, 0.1)
    trials += _trials("non-root", SMOKE_B, 0.05) + _trials("exec-form", PASS, 3.0)
    run = {"run_id": "r", "seed": 1, "trials": trials}
    assert variant_outcome(run, "order").same_as(variant_outcome(run, "original"))
    s = summarize(run, advice, "true")
    by = {r["variant"]: r for r in s["rewrites"]}
    assert s["rewrites"][0]["variant"] == "order" and s["rewrites"][-1]["variant"] == "non-root"
    assert by["order"]["status"] == AS_ORIGINAL and by["order"]["recommended"]
    assert by["non-root"]["status"] == "broken" and not by["non-root"]["recommended"]
    assert by["exec-form"]["status"] == "ok" and by["exec-form"]["vs_original"] == "fixes"
    assert "stand_ins" not in s["original"]  # not tried: nothing passed in
    text = render(s)
    assert "non-root (BROKEN)" in text and "fails differently from the original: " in text
    assert "[passes where the original fails]" in text
    assert text.splitlines()[0].startswith("The original fails: smoke check failed (exit 1): ImportError")


def test_stand_in_entry_reads_the_retry_run():
    """The Python a retry ran on is the one its run recorded, or the planned one when it made no substitution."""
    trials = _trials("original", PASS, 3.0)
    subs = {"python:3.12-slim": {"used": "3.11"}}
    e = stand_in_entry(
        "older", "python:3.12-slim", {"run_id": "x", "trials": trials, "python_substitutions": subs}
    )
    assert (e["python"], e["outcome"].kind, e["run_id"]) == ("3.11", "pass", "x")
    e = stand_in_entry("nearest", "python:3.13-slim-bookworm", {"run_id": "y", "trials": trials}, "3.13")
    assert e["python"] == "3.13"
