"""`imagebench report` never loses a file: an empty report never replaces a real one, `--out` holding
foreign files is refused (and with --force they are left alone), and strings from run files are escaped
in REPORT.md and index.html."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hostile as H
import pytest


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """One real render of the small synthetic run (plots included) to copy from."""
    root = tmp_path_factory.mktemp("hostile-report")
    H.write_results(root / "results", None)
    o = H.run_cli(["report", "--results", root / "results", "--out", root / "report"], timeout=300)
    assert o.code == 0 and o.traceback is None, o.stderr
    return root


def test_corrupt_only_results_leave_the_old_report_byte_identical(rendered, tmp_path):
    """Every results file corrupt: exit 4, the corrupt files named, the previous report untouched byte for byte."""
    out = tmp_path / "report"
    shutil.copytree(rendered / "report", out)
    before = _snapshot(out)
    results = tmp_path / "results" / "m"
    results.mkdir(parents=True)
    (results / "a.json").write_text('{"schema": "imagebench.run", "trials": [', "utf-8")
    (results / "b.json").write_text(H.dumps_raw(H.mutate(H.good_run(), ("schema_version",), -1)), "utf-8")
    o = H.run_cli(["report", "--results", tmp_path / "results", "--out", out])
    assert o.code == 4 and o.traceback is None
    assert "a.json" in o.stderr and "b.json" in o.stderr
    assert _snapshot(out) == before


def test_out_with_foreign_files_is_refused_and_force_keeps_them(rendered, tmp_path):
    """--out holding the user's files: exit 2 and nothing touched; with --force the report is written and
    the user's files (even plots/*.png and *.svg) stay as they were."""
    out = tmp_path / "mine"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "holiday.png").write_bytes(b"my photo")
    (out / "drawing.svg").write_text("<svg/>")
    (out / "notes.md").write_text("my notes")
    before = _snapshot(out)
    o = H.run_cli(["report", "--results", rendered / "results", "--out", out])
    assert o.code == 2 and "did not write" in o.stderr and o.traceback is None
    assert _snapshot(out) == before
    o = H.run_cli(["report", "--results", rendered / "results", "--out", out, "--force"], timeout=300)
    assert o.code == 0, o.stderr
    after = _snapshot(out)
    assert {k: after[k] for k in before} == before
    assert "REPORT.md" in after and "index.html" in after


def test_a_rerender_removes_only_what_a_render_wrote(rendered, tmp_path):
    """Stale plots a render listed are removed on the next render; a file the user put beside them is refused."""
    out = tmp_path / "report"
    shutil.copytree(rendered / "report", out)
    manifest = out / ".imagebench-report"
    listed = manifest.read_text().splitlines()
    assert "REPORT.md" in listed and "index.html" in listed
    (out / "plots" / "old-plot.png").write_bytes(b"stale")
    manifest.write_text(manifest.read_text() + "plots/old-plot.png\n")
    o = H.run_cli(["report", "--results", rendered / "results", "--out", out], timeout=300)
    assert o.code == 0, o.stderr
    assert not (out / "plots" / "old-plot.png").exists()
    (out / "plots" / "users.png").write_bytes(b"user")
    o = H.run_cli(["report", "--results", rendered / "results", "--out", out], timeout=300)
    assert o.code == 2 and "users.png" in o.stderr
    assert (out / "plots" / "users.png").read_bytes() == b"user"


def test_out_that_is_a_file_or_unwritable_is_a_usage_error(rendered, tmp_path):
    """--out naming a file or a path that cannot be created: exit 2, one line, nothing written."""
    f = tmp_path / "file"
    f.write_text("x")
    for out in (f, Path("/proc/imagebench/report")):
        o = H.run_cli(["report", "--results", rendered / "results", "--out", out])
        assert o.code == 2 and o.traceback is None, (out, o.code, o.stderr)
        assert len(o.stderr.strip().splitlines()) == 1
    assert f.read_text() == "x"


def test_strings_from_run_files_are_escaped(tmp_path):
    """A run id, machine, claim and warning holding HTML: escaped in REPORT.md and index.html (no raw tag)."""
    from harness.report.model import build_report
    from harness.report.render import html, markdown
    from harness.results import read_run_file

    evil = "<script>alert(1)</script>"
    data = H.good_run()
    data["run_id"] = "x" + evil
    data["warnings"] = [evil]
    data["command"] = ["imagebench", evil]
    data["experiments"]["multi-stage"]["claim"] = evil
    data["experiments"]["multi-stage"]["summary"] = evil
    f = tmp_path / "m" / "run.json"
    f.parent.mkdir()
    f.write_text(json.dumps(data))
    report = build_report([read_run_file(f)])
    md = markdown(report)

    class AnySvg(dict):
        def __missing__(self, key):
            return ""

    page = html(report, AnySvg())
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "<script>" not in page and "&lt;script&gt;" in page
