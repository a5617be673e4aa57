"""harness.records says in types what results/README.md documents and what run files hold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_type_hints

import pytest

from harness import records
from harness.lab.core import BaseRef, Lab

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "results" / "README.md").read_text(encoding="utf-8")
RUN_FILES = [
    p
    for root in (REPO / "results", REPO / "tests" / "fixtures" / "results")
    for p in sorted(root.glob("*/*.json"))
    if json.loads(p.read_text(encoding="utf-8")).get("schema") == records.RUN_SCHEMA
]
# written by the runner but not (yet) a row of results/README.md's tables
UNDOCUMENTED: dict[str, set[str]] = {"run": set(), "trial": {"error", "error_text"}}


def documented_fields(heading: str) -> set[str]:
    """The backticked names in the first column of the table under `heading` in results/README.md."""
    section = README.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def keys(td: type) -> set[str]:
    return set(get_type_hints(td))


def test_run_record_has_the_documented_fields():
    """RunRecord declares exactly the run-file fields results/README.md documents (plus known extras)."""
    assert keys(records.RunRecord) == documented_fields("## Run file") | UNDOCUMENTED["run"]


def test_trial_record_has_the_documented_fields():
    """TrialRecord declares exactly the trial fields results/README.md documents (plus known extras)."""
    assert keys(records.TrialRecord) == documented_fields("### Trial record") | UNDOCUMENTED["trial"]


def test_documented_step_and_image_fields_are_declared():
    """StepRecord and ImageRecord name every step and image field the trial table lists."""
    table = README.split("### Trial record", 1)[1].split("\n#", 1)[0]
    image_row = next(ln for ln in table.splitlines() if ln.startswith("| `image`"))
    steps_row = next(ln for ln in table.splitlines() if ln.startswith("| `steps`"))
    assert set(re.findall(r"`([a-z_]+)`", image_row.split("|")[2])) <= keys(records.ImageRecord)
    assert set(re.findall(r"`([a-z_]+)`", steps_row.split("|")[2])) == keys(records.StepRecord)


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_run_files_fit_the_records(path: Path):
    """Every key of a committed run file (and of its plan, trials, steps, image, bases) is declared,
    and every required key is there."""
    run = json.loads(path.read_text(encoding="utf-8"))

    def fits(obj: dict, td: type, where: str) -> None:
        assert set(obj) <= keys(td), f"{where}: undeclared {set(obj) - keys(td)}"
        assert td.__required_keys__ <= set(obj), f"{where}: missing {td.__required_keys__ - set(obj)}"

    fits(run, records.RunRecord, "run")
    assert run["status"] in records.RunStatus.__args__
    for entry in run["plan"]:
        fits(entry, records.PlanEntry, "plan entry")
    for pin in (run.get("bases") or {}).values():
        fits(pin, records.BasePin, "base pin")
    for exp in run["experiments"].values():
        fits(exp, records.ExperimentDef, "experiment")
        for claim in exp.get("claims", []) + exp.get("preconditions", []):
            fits(claim, records.ClaimDef, "claim")
    for t in run["trials"]:
        fits(t, records.TrialRecord, "trial")
        assert t["status"] in records.TrialStatus.__args__
        fits(t.get("image") or {}, records.ImageRecord, "image")
        fits(t.get("smoke") or {}, records.SmokeRecord, "smoke")
        for step in t.get("steps") or []:
            fits(step, records.StepRecord, "step")


def test_the_lab_is_a_lab_handle():
    """harness.lab.core.Lab, its resolved bases and its profile have every member the handles declare."""
    lab = Lab(
        {"ports": {}, "urls": {"registry": "127.0.0.1:5000", "index": "http://i/simple/", "apt_proxy": "p"}}
    )
    assert isinstance(lab, records.LabHandle)
    assert isinstance(lab.profile, records.ProfileHandle)
    assert isinstance(BaseRef("python:3.13-slim", "imagebench-lab/x:1", "sha256:0", 1), records.BaseHandle)
    assert not isinstance(object(), records.LabHandle)
