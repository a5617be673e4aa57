"""Machine identity: host name plus a hash of persisted ids, so two hosts named alike never pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import machine
from harness.cli import main


@pytest.fixture
def fresh_identity(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("IMAGEBENCH_MACHINE", raising=False)
    monkeypatch.setattr(machine.socket, "gethostname", lambda: "vm")

    def use_state(state: Path) -> dict:
        state.mkdir(exist_ok=True)
        monkeypatch.setenv("IMAGEBENCH_STATE", str(state))
        machine._measured.cache_clear()
        return machine.identity()

    yield use_state
    machine._measured.cache_clear()


def test_same_host_name_different_state_never_pool(fresh_identity, tmp_path: Path) -> None:
    """Two machines both called `vm` (different persisted ids) get different names, both starting `vm-`."""
    a = fresh_identity(tmp_path / "a")
    b = fresh_identity(tmp_path / "b")
    assert a["host"] == b["host"] == "vm"
    assert a["name"] != b["name"]
    assert a["name"].startswith("vm-") and len(a["hash"]) == 8


def test_identity_is_stable_across_calls(fresh_identity, tmp_path: Path) -> None:
    """The persisted id makes the same machine keep its name from one run to the next."""
    first = fresh_identity(tmp_path / "s")
    again = fresh_identity(tmp_path / "s")
    assert first["name"] == again["name"]
    assert (tmp_path / "s" / machine.ID_FILE).read_text().strip()


def test_override_names_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """$IMAGEBENCH_MACHINE names the machine verbatim (made filesystem-safe)."""
    monkeypatch.setenv("IMAGEBENCH_MACHINE", "ci box")
    assert machine.machine_name() == "ci-box"
    assert machine.identity()["override"] is True


def test_reference_runs_are_labelled_another_machine() -> None:
    """Reference runs get a `reference-` machine label and a role, even when the host name matches."""
    runs = [{"machine": "vm", "run_id": "r1"}]
    out = machine.as_reference(runs)
    assert out[0]["machine"] == "reference-vm"
    assert "another machine" in out[0]["machine_identity"]["role"]
    assert runs[0]["machine"] == "vm"


REPO = Path(__file__).resolve().parent.parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "results"


def test_report_shows_reference_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`report` shows this machine's runs; `--with-reference` adds the reference as `reference-<machine>`."""
    mine = tmp_path / "runs"
    src = sorted(p for p in FIXTURE.glob("*/*.json") if p.parent.name != "drift")[0]
    run = json.loads(src.read_text())
    run["run_id"] = run["run_id"][:-6] + "abcdef"
    run["machine"] = "here-12345678"
    (mine / "here-12345678").mkdir(parents=True)
    (mine / "here-12345678" / f"{run['run_id']}.json").write_text(json.dumps(run))
    monkeypatch.setenv("IMAGEBENCH_REFERENCE", str(FIXTURE))
    assert main(["report", "--results", str(mine), "--out", str(tmp_path / "plain")]) == 0
    assert "reference-" not in (tmp_path / "plain" / "REPORT.md").read_text()
    out = tmp_path / "with"
    assert main(["report", "--results", str(mine), "--with-reference", "--out", str(out)]) == 0
    machines = {
        json.loads(p.read_text())["machine"] for p in FIXTURE.glob("*/*.json") if p.parent.name != "drift"
    }
    text = (out / "REPORT.md").read_text()
    assert any(f"reference-{m}" in text for m in machines)
