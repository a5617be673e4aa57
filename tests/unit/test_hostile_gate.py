"""Generated hostile size fields through `imagebench gate`: text, null, fractional, negative, huge or
non-finite byte counts in any size field the gate derives own-layer bytes from are refused with one line
naming the file and the field (exit 4), never a traceback, and the run file is left as it was."""

from __future__ import annotations

import copy
from pathlib import Path

import hostile as H
import pytest

from harness.gate.inputs import MAX_BYTES, size_field_errors

PIN = "python:3.12-slim"
# the good run with a pinned base, so the gate derives own_bytes from layer_bytes and the pin
GOOD = {**H.good_run(H.BAD_ID), "bases": {PIN: {"bytes": 32_000_000, "image_id": "sha256:" + "5e" * 32}}}

# (path under each ok trial, or under the run for bases; the field's name in the message)
SIZE_FIELDS = [
    (("metrics", "image_bytes"), "metrics.image_bytes"),
    (("metrics", "image_bytes_compressed"), "metrics.image_bytes_compressed"),
    (("metrics", "own_bytes"), "metrics.own_bytes"),
    (("metrics", "base_bytes_compressed"), "metrics.base_bytes_compressed"),
    (("metrics", "layers"), "metrics.layers"),
    (("image", "layer_bytes"), "image.layer_bytes"),
    (("image", "layer_bytes", 1), "image.layer_bytes[1]"),
    (("image", "layer_compressed_bytes", 4), "image.layer_compressed_bytes[4]"),
    (("bases", PIN, "bytes"), f"bases.{PIN}.bytes"),
]
# every hostile JSON value of the shared corpus but the deep nesting (the loader's own case), plus a
# few byte counts that are numbers but not byte counts
VALUES = [(label, v) for label, v in H.HOSTILE_JSON if label != "deep"] + [
    ("one-over-2**53", MAX_BYTES + 1),
    ("whole-float-1e20", 1e20),
]


def _mutated(path: tuple, value, *, every_trial: bool) -> dict:
    run = copy.deepcopy(GOOD)
    if path[0] == "bases":
        return H.mutate(run, path, value)
    targets = range(len(run["trials"])) if every_trial else [0]
    for i in targets:
        if run["trials"][i].get("status") == "ok":
            run = H.mutate(run, ("trials", i, *path), value)
    return run


def _dirs(tmp: Path, bad: dict, side: str) -> tuple[Path, Path, Path]:
    """(baseline dir, current dir, bad file): the good run on one side, the hostile one on `side`."""
    dirs = {s: tmp / s / H.MACHINE for s in ("baseline", "current")}
    for d in dirs.values():
        d.mkdir(parents=True)
    good_side = "baseline" if side == "current" else "current"
    (dirs[good_side] / f"{H.GOOD_ID}.json").write_text(
        H.dumps_raw(copy.deepcopy(GOOD) | {"run_id": H.GOOD_ID})
    )
    bad_file = dirs[side] / f"{H.BAD_ID}.json"
    bad_file.write_text(H.dumps_raw(bad), "utf-8")
    return dirs["baseline"].parent, dirs["current"].parent, bad_file


# a layer list that is null (not measured) or [1, 2] (two tiny layers) is a valid record, not a case
CASES = [
    pytest.param(path, field, value, id=f"{field}={label}")
    for path, field in SIZE_FIELDS
    for label, value in VALUES
    if not (path[-1] in ("layer_bytes", "layer_compressed_bytes") and label in ("null", "list"))
]


@pytest.mark.parametrize(("path", "field", "value"), CASES)
def test_a_hostile_size_field_is_refused_with_one_line_naming_file_and_field(tmp_path, path, field, value):
    """Exit 4, one stderr line with the file and (when the gate read it) the field; the file is unchanged."""
    for n, (side, every) in enumerate((("current", True), ("baseline", False))):
        bad = _mutated(path, value, every_trial=every)
        base, cur, bad_file = _dirs(tmp_path / str(n), bad, side)
        before = bad_file.read_bytes()
        out = H.run_cli(["gate", "--baseline", base, "--current", cur])
        assert out.traceback is None and not out.hung, out.traceback
        lines = out.stderr.strip().splitlines()
        assert out.code == 4 and out.stdout == "", (side, out.code, out.stderr, out.stdout[-300:])
        assert bad_file.name in out.stderr, out.stderr
        if not _loader_rejects(bad):  # else the loader skipped the file and said why (its own lines)
            assert len(lines) == 1, lines
            assert field in lines[0] and side in lines[0] and "Traceback" not in lines[0], lines[0]
        assert bad_file.read_bytes() == before  # nothing measured is lost: the gate never writes a run file


def _loader_rejects(run: dict) -> bool:
    from harness.errors import SchemaError
    from harness.results import validate_run

    try:
        validate_run(copy.deepcopy(run))
    except SchemaError:
        return True
    except Exception:  # noqa: BLE001 - a validator crash is the loader's finding, not this test's
        return True
    return False


def test_good_runs_have_no_bad_size_fields():
    """The good run, every committed reference run and the fixtures' runs pass the size check."""
    assert size_field_errors(GOOD) == []
    import json

    runs = [json.loads(p.read_text("utf-8")) for p in sorted((H.REPO / "results").glob("*/*.json"))]
    runs = [r for r in runs if isinstance(r, dict) and r.get("schema") == "imagebench.run"]
    assert runs
    for run in runs:
        assert size_field_errors(run) == [], run["run_id"]


def test_whole_floats_and_missing_lists_are_byte_counts():
    """1.0e6 (a whole float, as older runs recorded medians) and a null layer list are fine."""
    run = _mutated(("metrics", "image_bytes"), 160_000_000.0, every_trial=True)
    run["trials"][0]["image"]["layer_compressed_bytes"] = None
    assert size_field_errors(run) == []
