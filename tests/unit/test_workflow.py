"""The scheduled workflow (.github/workflows/scheduled.yml) cannot be injected and lints clean.

Structure: no `${{ }}` inside any `run:` script, every action pinned by a full commit SHA with its
release in a comment, checkout keeps no credentials, the token reads only. Behaviour: the gate and
drift steps' own scripts run in bash with hostile dispatch inputs, which reach imagebench as plain
arguments. The linters CI runs (`make lint`: zizmor --offline, actionlint with shellcheck) report
nothing on the workflow, and do report a copy with an injection, an unpinned action and kept
credentials put back (so a clean lint means something).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
SCHEDULED = WORKFLOWS / "scheduled.yml"
BIN = Path(sys.executable).parent
SHA_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)\s*$")
# GitHub's command for a `shell: bash` step (the workflow's default)
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def _workflow() -> dict:
    return yaml.safe_load(SCHEDULED.read_text(encoding="utf-8"))


def _steps() -> list[dict]:
    return [step for job in _workflow()["jobs"].values() for step in job["steps"]]


def _step(name: str) -> dict:
    (step,) = [s for s in _steps() if s.get("name", "").startswith(name)]
    return step


def _tool(name: str) -> Path:
    path = BIN / name
    assert path.exists(), f"{name} is not in {BIN}: install the test extra (pip install -e '.[test]')"
    return path


def _recorder(tmp: Path) -> str:
    """An `$IB` that records its argv (one JSON list per line) and exits with the code for its command."""
    script = tmp / "record.py"
    script.write_text(
        "import json, os, sys\n"
        "with open(os.environ['RECORD'], 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "codes = json.loads(os.environ.get('CODES', '{}'))\n"
        "key = ' '.join(a for a in sys.argv[1:] if a in ('drift', '--local', 'gate'))\n"
        "print('ran', key)\n"
        "sys.exit(codes.get(key, 0))\n"
    )
    return f"{sys.executable} {script}"


def _run_step(step: dict, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    wf_env = {k: str(v) for k, v in _workflow()["env"].items() if "${{" not in str(v)}
    full = {"PATH": os.environ["PATH"], "HOME": str(cwd), **wf_env, **env}
    return subprocess.run(
        [*BASH, "-c", step["run"]], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )


def test_no_expression_inside_any_run_script():
    """No `run:` script of any workflow holds a `${{ }}` expression: inputs and outputs come in via env."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        wf = yaml.safe_load(path.read_text(encoding="utf-8"))
        for job_id, job in wf["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                if "${{" in step.get("run", ""):
                    found.append(f"{path.name}: {job_id} step {i} ({step.get('name', '')})")
    assert not found, found


def test_every_action_is_pinned_by_commit_with_its_release():
    """Every `uses:` names a full 40-hex commit and its release (`# vX.Y.Z`); checkout and upload are there."""
    used = []
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"^\s*(-\s+)?uses:", line):
                m = SHA_PIN.match(line)
                assert m, f"{path.name}: not pinned by commit with a version comment: {line.strip()}"
                used.append(m.group(1))
    assert {"actions/checkout", "actions/upload-artifact"} <= set(used)


def test_checkout_keeps_no_credentials_and_the_token_reads_only():
    """Checkout sets persist-credentials: false; no permissions at the top, the job reads contents and actions."""
    wf = _workflow()
    checkouts = [s for s in _steps() if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all(s.get("with", {}).get("persist-credentials") is False for s in checkouts)
    assert wf["permissions"] == {}
    for job in wf["jobs"].values():
        assert job["permissions"] == {"contents": "read", "actions": "read"}


def test_the_workflow_still_does_what_its_doc_says():
    """Two shards weekly; drift, drift --local, run, gate with the summary, report, export, two artifacts kept 90 days."""
    wf = _workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert triggers["schedule"] == [{"cron": "17 4 * * 1"}]
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"size_bytes", "size_pct", "time_ratio"}
    (job,) = wf["jobs"].values()
    assert job["strategy"]["matrix"]["shard"] == [1, 2]
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    for command in (
        '$IB --results "$CURRENT" drift >',
        '$IB --results "$CURRENT" drift --local',
        '$IB --results "$CURRENT" run --all --shard "$SHARD/2"',
        '$IB gate --baseline baseline --current "$CURRENT" "${args[@]}" --summary "$GITHUB_STEP_SUMMARY"',
        '$IB --results "$CURRENT" report',
        '$IB --results "$CURRENT" export --format pytest-benchmark',
        "$IB lab down",
    ):
        assert command in scripts, command
    uploads = {s["with"]["name"]: s["with"] for s in job["steps"] if "upload-artifact" in s.get("uses", "")}
    assert set(uploads) == {"results-shard-${{ matrix.shard }}", "report-shard-${{ matrix.shard }}"}
    assert all(u["retention-days"] == 90 for u in uploads.values())


@pytest.mark.parametrize(
    ("inputs", "across", "expected"),
    [
        ({}, "", ["--size-bytes", "0", "--time-ratio", "1.10"]),
        (
            {"SIZE_BYTES": "5", "SIZE_PCT": "0.5", "TIME_RATIO": "1.2"},
            "--across-machines",
            ["--size-bytes", "5", "--time-ratio", "1.2", "--size-pct", "0.5", "--across-machines"],
        ),
        (
            {
                "SIZE_BYTES": '0"; touch pwned; echo "',
                "SIZE_PCT": "$(touch pwned)",
                "TIME_RATIO": "`touch pwned` ${IFS}x",
            },
            "",
            [
                "--size-bytes",
                '0"; touch pwned; echo "',
                "--time-ratio",
                "`touch pwned` ${IFS}x",
                "--size-pct",
                "$(touch pwned)",
            ],
        ),
    ],
    ids=["schedule-defaults", "dispatch", "hostile"],
)
def test_gate_step_passes_dispatch_inputs_as_plain_arguments(tmp_path, inputs, across, expected):
    """The gate step's script gives each input to imagebench as one verbatim argument; hostile ones run nothing."""
    record = tmp_path / "argv.jsonl"
    env = {
        "IB": _recorder(tmp_path),
        "RECORD": str(record),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "SIZE_BYTES": "",
        "SIZE_PCT": "",
        "TIME_RATIO": "",
        **inputs,
    }
    if across:
        env["GATE_ACROSS"] = across
    cp = _run_step(_step("Regression gate"), tmp_path, env)
    assert cp.returncode == 0, cp.stderr
    (argv,) = [json.loads(line) for line in record.read_text().splitlines()]
    summary = ["--summary", str(tmp_path / "summary.md")]
    assert argv == ["gate", "--baseline", "baseline", "--current", "results-new", *expected, *summary]
    assert not (tmp_path / "pwned").exists()


def test_gate_step_with_real_imagebench_refuses_a_hostile_input(tmp_path):
    """The gate step with the real CLI: defaults pass a run against itself; an input `1; touch pwned` is exit 2."""
    fixture = REPO / "tests" / "fixtures" / "results" / "synthetic-b"
    for side in ("baseline", "results-new"):
        shutil.copytree(fixture, tmp_path / side / fixture.name)
    env = {
        "IB": f"{sys.executable} -m harness",
        "PYTHONPATH": str(REPO),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "SIZE_BYTES": "",
        "SIZE_PCT": "",
        "TIME_RATIO": "",
    }
    ok = _run_step(_step("Regression gate"), tmp_path, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "passed" in (tmp_path / "summary.md").read_text()
    bad = _run_step(_step("Regression gate"), tmp_path, {**env, "SIZE_PCT": "1; touch pwned"})
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "--size-pct" in bad.stderr, bad.stderr
    assert not (tmp_path / "pwned").exists()


def test_drift_step_reports_both_exit_codes_and_never_fails(tmp_path):
    """drift exit 1 and drift --local exit 3: the step exits 0 and its outputs and summary carry 1 and 3."""
    (tmp_path / "baseline" / "drift").mkdir(parents=True)
    (tmp_path / "baseline" / "drift" / "python.jsonl").write_text("{}\n")
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    env = {
        "IB": _recorder(tmp_path),
        "RECORD": str(tmp_path / "argv.jsonl"),
        "CODES": json.dumps({"drift": 1, "drift --local": 3}),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    cp = _run_step(_step("Base-image drift"), tmp_path, env)
    assert cp.returncode == 0, cp.stderr
    assert outputs.read_text().splitlines() == ["code=1", "local_code=3"]
    assert "## imagebench drift (exit 1; drift --local exit 3)" in summary.read_text()
    assert "ran drift\nran drift --local" in summary.read_text()
    assert (tmp_path / "results-new" / "drift" / "python.jsonl").exists()


@pytest.mark.parametrize(
    ("run_outcome", "gate_outcome", "code"),
    [
        ("success", "success", 0),
        ("failure", "success", 1),
        ("success", "failure", 1),
        ("skipped", "success", 1),
    ],
)
def test_verdict_fails_the_job_unless_run_and_gate_succeeded(tmp_path, run_outcome, gate_outcome, code):
    """The verdict step exits 0 only when both the run and the gate succeeded (drift alone never fails it)."""
    env = {
        "RUN_OUTCOME": run_outcome,
        "GATE_OUTCOME": gate_outcome,
        "DRIFT_CODE": "1",
        "DRIFT_LOCAL_CODE": "3",
    }
    cp = _run_step(_step("Verdict"), tmp_path, env)
    assert cp.returncode == code, cp.stdout + cp.stderr
    assert f"run: {run_outcome}, gate: {gate_outcome}, drift exit: 1 (--local: 3)" in cp.stdout


def _zizmor(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(_tool("zizmor")),
            "--offline",
            "--no-progress",
            "--format",
            "plain",
            str(root / ".github" / "workflows"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )


def _actionlint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(_tool("actionlint")),
            "-no-color",
            "-oneline",
            f"-shellcheck={_tool('shellcheck')}",
            *map(str, sorted((root / ".github" / "workflows").glob("*.y*ml"))),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )


def test_zizmor_and_actionlint_report_nothing():
    """`zizmor --offline .github/workflows/` and `actionlint` (with shellcheck) exit 0 with no finding."""
    z = _zizmor(REPO)
    assert z.returncode == 0 and "No findings" in z.stdout, z.stdout + z.stderr
    a = _actionlint(REPO)
    assert a.returncode == 0 and a.stdout == "", a.stdout + a.stderr


def test_the_linters_catch_what_the_workflow_avoids(tmp_path):
    """A copy with an input in a script, checkout@v4 unpinned with credentials kept, an unquoted var: both report."""
    text = SCHEDULED.read_text(encoding="utf-8")
    bad = text.replace('if [ -n "${SIZE_PCT:-}" ]', 'if [ -n "${{ inputs.size_pct }}" ]', 1)
    bad = re.sub(
        r"uses: actions/checkout@[0-9a-f]{40} # v[\d.]+\n\s+with:\n(\s+#.*\n)*\s+persist-credentials: false\n",
        "uses: actions/checkout@v4\n",
        bad,
    )
    bad = bad.replace('--shard "$SHARD/2"', "--shard $SHARD/2", 1)
    assert '-n "${{ inputs.size_pct }}"' in bad and "actions/checkout@v4" in bad and "--shard $SHARD/2" in bad
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "scheduled.yml").write_text(bad, encoding="utf-8")
    z = _zizmor(tmp_path)
    assert z.returncode != 0
    for audit in ("template-injection", "unpinned-uses", "artipacked"):
        assert f"[{audit}]" in z.stdout, z.stdout
    a = _actionlint(tmp_path)
    assert a.returncode == 1, a.stdout + a.stderr
    assert '"node20" is deprecated' in a.stdout and "actions/checkout@v4" in a.stdout, a.stdout
    assert "SC2086" in a.stdout, a.stdout  # shellcheck ran on the run: scripts
