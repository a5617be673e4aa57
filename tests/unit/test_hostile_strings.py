"""Lone UTF-16 surrogates in a run file ("\\ud800" as a JSON escape) crash no reader.

JSON may spell a lone surrogate, which is no Unicode character: before loading escaped them,
`imagebench table`, `report` and `gate --summary` died with UnicodeEncodeError on any string that
held one. Loading now escapes each as the text `\\udXXX` (keys too, the same way wherever it occurs),
keeps every measurement and adds a run warning naming the fields; `run_id` and `machine` holding
one are refused as before (one line naming file and field). The files are generated here from the
good fixture run, with a surrogate added to every free-text string, and go through the real CLI.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import hostile as H
import pytest

from harness.errors import SchemaError
from harness.results import escape_lone_surrogates, read_run_file, tidy_rows

HOSTILE_ID = "20260903T120000Z-00d800"
MARK = "@@LONE@@"
# values a reader matches against a fixed set: a surrogate there is a schema error, not free text
ENUMS = {"schema", "status", "expect", "op"}


def _suffix_everything(node: Any, top: bool = True) -> Any:
    """A copy with MARK after every free-text string, every experiment name and every metric name."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            kept = top and key in ("run_id", "machine", "schema", "schema_version")
            if kept or (key in ENUMS and isinstance(value, str)):
                out[key] = value
            elif key in ("experiments", "metrics") and isinstance(value, dict):
                out[key] = {k + MARK: _suffix_everything(v, False) for k, v in value.items()}
            else:
                out[key] = _suffix_everything(value, False)
        return out
    if isinstance(node, list):
        return [_suffix_everything(v, False) for v in node]
    if isinstance(node, str):
        return node + MARK
    return node


def _hostile_text(escape: str = "\\ud800", data: dict | None = None) -> str:
    """The good run (new id) as JSON text with `escape` (a JSON escape) at every MARK."""
    base = H.good_run(HOSTILE_ID) if data is None else data
    return json.dumps(_suffix_everything(base), indent=1).replace(MARK, escape)


def _write(folder: Path, text: str, run_id: str = HOSTILE_ID) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.json"
    path.write_text(text, encoding="ascii")
    return path


def _cli(*argv: Any, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/imagebench-hostile.sock"}
    return subprocess.run(
        [sys.executable, "-m", "harness", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=H.REPO,
        stdin=subprocess.DEVNULL,
    )


def _clean(cp: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in cp.stderr and "UnicodeEncodeError" not in cp.stderr, cp.stderr[-2000:]


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (k, *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_every_string_is_escaped_and_every_measurement_kept(tmp_path):
    """A surrogate after every free-text string: loads, all strings are UTF-8, same numbers, one warning."""
    good = read_run_file(H.GOOD_RUN_FILE)
    path = _write(tmp_path / H.MACHINE, _hostile_text())
    run = read_run_file(path)
    for text in _strings(run):
        text.encode("utf-8")  # raises on a surrogate left behind
    assert run["experiments"]["multi-stage\\ud800"]["variants"][0]["name"].endswith("\\ud800")
    good_rows = list(tidy_rows([good]))
    rows = list(tidy_rows([run]))
    assert len(rows) == len(good_rows) > 0
    assert [r[7] for r in rows] == [r[7] for r in good_rows]  # every value, in order
    assert all(r[2] == "multi-stage\\ud800" and r[3].endswith("\\ud800") for r in rows)
    (note,) = [w for w in run["warnings"] if "lone surrogate" in w]
    assert note.split(":")[0].endswith("shown escaped as \\udXXX")
    assert "command[0]" in note and "more" in note


@pytest.mark.parametrize("escape", ["\\ud800", "\\udcff", "\\uDFFF", "\\udbff"])
def test_each_lone_surrogate_is_escaped_the_same_way_everywhere(tmp_path, escape):
    """High and low surrogates, upper- or lower-case hex: each becomes its own lower-case `\\udXXX` text."""
    run = read_run_file(_write(tmp_path / H.MACHINE, _hostile_text(escape)))
    expect = "\\u" + escape[2:].lower()
    trial = run["trials"][0]
    assert trial["experiment"] == "multi-stage" + expect
    assert trial["variant"] in {v["name"] for v in run["experiments"]["multi-stage" + expect]["variants"]}
    assert all(name.endswith(expect) for name in trial["metrics"])


def test_surrogate_pairs_are_characters_not_escaped(tmp_path):
    """A valid pair (\\ud83d\\ude00) is the emoji it spells: kept as is, no warning."""
    data = H.good_run(HOSTILE_ID)
    data["experiments"]["multi-stage"]["summary"] = "pair: " + MARK
    text = json.dumps(data, indent=1).replace(MARK, "\\ud83d\\ude00")
    run = read_run_file(_write(tmp_path / H.MACHINE, text))
    assert run["experiments"]["multi-stage"]["summary"] == "pair: \U0001f600"
    assert not any("lone surrogate" in w for w in run["warnings"])


def test_escape_names_fields_in_file_order_keys_included():
    """The walk names each changed field as the validator does, keys marked, in the order of the file."""
    data = json.loads(
        '{"a": ["x\\ud800", {"k\\udcff": 1, "m": "\\udfffz"}], "b": "ok", "c": {"d": "\\ud800"}}'
    )
    assert escape_lone_surrogates(data) == ["a[0]", "a[1].k\\udcff (key)", "a[1].m", "c.d"]
    assert data == {"a": ["x\\ud800", {"k\\udcff": 1, "m": "\\udfffz"}], "b": "ok", "c": {"d": "\\ud800"}}


@pytest.mark.parametrize("field", ["run_id", "machine"])
def test_a_surrogate_in_run_id_or_machine_is_refused_naming_file_and_field(tmp_path, field):
    """run_id or machine with a lone surrogate: one-line SchemaError naming the file and the field."""
    data = H.good_run(HOSTILE_ID)
    data[field] = data[field] + MARK
    path = _write(tmp_path / H.MACHINE, json.dumps(data).replace(MARK, "\\ud800"))
    with pytest.raises(SchemaError) as err:
        read_run_file(path)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and str(path) in message and repr(field) in message


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory) -> tuple[Path, Path]:
    """(clean, mixed): the good run alone, and the good run beside its every-string-hostile copy."""
    root = tmp_path_factory.mktemp("strings")
    clean = root / "clean"
    H.write_results(clean, None)
    mixed = root / "mixed"
    H.write_results(mixed, None)
    _write(mixed / H.MACHINE, _hostile_text())
    return clean, mixed


def test_table_prints_every_row_with_the_escaped_names(hostile_results):
    """`table --format csv` (and md, json): exit 0, both runs' rows, the names as `\\ud800` text."""
    clean, mixed = hostile_results
    base = _cli("--results", clean, "table", "--format", "csv")
    assert base.returncode == 0, base.stderr
    cp = _cli("--results", mixed, "table", "--format", "csv")
    _clean(cp)
    assert cp.returncode == 0, cp.stderr
    rows = list(csv.DictReader(io.StringIO(cp.stdout)))
    clean_rows = list(csv.DictReader(io.StringIO(base.stdout)))
    hostile = [r for r in rows if r["run_id"] == HOSTILE_ID]
    assert len(hostile) == len(clean_rows) and len(rows) == 2 * len(clean_rows)
    assert {r["experiment"] for r in hostile} == {"multi-stage\\ud800"}
    md = _cli("--results", mixed, "table", "--format", "md")
    _clean(md)
    assert md.returncode == 0 and "multi-stage\\ud800" in md.stdout, md.stderr
    js = _cli("--results", mixed, "table", "--format", "json")
    _clean(js)
    assert js.returncode == 0, js.stderr
    assert {r["experiment"] for r in json.loads(js.stdout)} == {"multi-stage", "multi-stage\\ud800"}


def test_report_renders_and_says_which_strings_were_escaped(hostile_results, tmp_path):
    """`report --out`: exit 0, HTML and Markdown written, the escaped names and the warning in them."""
    _, mixed = hostile_results
    cp = _cli("--results", mixed, "report", "--out", tmp_path / "rep")
    _clean(cp)
    assert cp.returncode == 0, cp.stderr[-2000:]
    html = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    markdown = (tmp_path / "rep" / "REPORT.md").read_text(encoding="utf-8")
    for page in (html, markdown):
        assert "multi-stage\\ud800" in page
        assert "lone surrogate (not Unicode text), shown escaped as \\udXXX" in page


def test_gate_against_itself_and_against_the_clean_run(hostile_results, tmp_path):
    """gate: mixed vs itself passes (summary, JSON); clean vs hostile lists the renamed cells, no crash."""
    clean, mixed = hostile_results
    summary = tmp_path / "summary.md"
    cp = _cli("gate", "--baseline", mixed, "--current", mixed, "--summary", summary)
    _clean(cp)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "multi-stage\\ud800" in summary.read_text(encoding="utf-8")
    js = _cli("gate", "--baseline", mixed, "--current", mixed, "--json")
    _clean(js)
    assert js.returncode == 0 and "multi-stage\\\\ud800" in js.stdout, js.stderr
    only = tmp_path / "hostile-only"
    _write(only / H.MACHINE, _hostile_text())
    # the fingerprint's strings changed too (kernel), so the machines differ: claims are still compared
    lost = _cli("gate", "--baseline", clean, "--current", only, "--across-machines", "--summary", summary)
    _clean(lost)
    # an experiment renamed is not the baseline's: listed on both sides, never a crash
    assert lost.returncode == 0, lost.stdout + lost.stderr
    assert (
        "new in the current results (no baseline): multi-stage\\ud800 (multi\\ud800/cold\\ud800"
        in lost.stdout
    )
    assert "multi-stage\\ud800" in summary.read_text(encoding="utf-8")


def test_a_refused_run_file_is_skipped_and_the_others_still_load(tmp_path):
    """machine with a surrogate: table keeps the good run and names the file; gate exits 4 in one line."""
    data = H.good_run(HOSTILE_ID)
    data["machine"] += MARK
    path = _write(tmp_path / H.MACHINE, json.dumps(data).replace(MARK, "\\ud800"))
    H.write_results(tmp_path, None)
    cp = _cli("--results", tmp_path, "table", "--format", "csv")
    _clean(cp)
    assert cp.returncode == 0 and H.GOOD_ID in cp.stdout and HOSTILE_ID not in cp.stdout
    (warning,) = [line for line in cp.stderr.splitlines() if path.name in line]
    assert "field 'machine' must be printable" in warning
    gate = _cli("gate", "--baseline", tmp_path, "--current", tmp_path)
    _clean(gate)
    assert gate.returncode == 4, gate.stdout + gate.stderr
