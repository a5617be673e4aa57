"""A generated corpus of broken experiment.toml files, each one mutation of a committed experiment.

Every committed experiment (experiments/*/experiment.toml) loses each of its keys in turn, gets an
unknown key in each of its tables and a non-table in place of each [[variants]], [[claims]] and
[[preconditions]] table; four experiments that between them have every kind of table (calibration,
healthcheck's preconditions, instruction-order's [edits], secrets' smoke and cache) also get each
model field (present or not) set to each of VALUES. `messages(root)` loads every case from a copy of
its experiment folder under `root` and returns what `harness.experiment.load_experiment` said:
"ACCEPTED" or the error's one line, the copy's folder written as <d>.
tests/fixtures/experiment_messages.json holds what the hand-written checks said (before the
schemas.Experiment model checked the types), and tests/unit/test_experiment_corpus.py compares.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from harness import schemas
from tests.hostile import Raw, toml_dumps

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "experiments"
FIXTURE = REPO / "tests" / "fixtures" / "experiment_messages.json"
COMMENT = (
    "What harness.experiment.load_experiment said for each experiment.toml mutation of "
    "tests/experiment_corpus.py, recorded at 746bdeb with the hand-written type, required-key and "
    "unknown-key checks, before the schemas.Experiment model checked them; <d> is the experiment "
    "folder, <metrics> and <probes> the lists of known ones; digests are the sha256 of each "
    "committed experiment.toml the cases were made from. tests/unit/test_experiment_corpus.py "
    "checks every message is still the same."
)
FULL = ("calibration", "healthcheck", "instruction-order", "secrets")
VALUES: list[tuple[str, Any]] = [
    ("int", 7),
    ("zero", 0),
    ("minus-one", -1),
    ("big", 2000),
    ("huge-int", Raw("99999999999999999999")),
    ("float", 1.5),
    ("minus-float", -0.5),
    ("nan", math.nan),
    ("-inf", -math.inf),
    ("true", True),
    ("str", "x"),
    ("empty", ""),
    ("upper", "Bad Name"),
    ("list", []),
    ("list-str", ["x"]),
    ("list-int", [1]),
    ("list-empty-str", [""]),
    ("table", {}),
    ("table-int", {"a": 1}),
    ("table-bool", {"a": True}),
    ("datetime", Raw("1979-05-27T07:32:00Z")),
]
TABLES = {"variants": schemas.Variant, "claims": schemas.Claim, "preconditions": schemas.Claim}


def _fields(model: type) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(model)]


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any, *, delete: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return out


def _picked(table: str, items: list[Any]) -> list[int]:
    """The items of a table the full matrix mutates: the first and last, and one claim of each kind."""
    picked = {0, len(items) - 1}
    if table != "variants":
        for kind in ("lower", "higher", "delta", None):
            hits = [i for i, c in enumerate(items) if isinstance(c, dict) and c.get("expect") == kind]
            picked |= set(hits[:1])
    return sorted(i for i in picked if 0 <= i < len(items))


def cases(name: str, data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(case name, mutated experiment) for one committed experiment."""
    yield "unknown-key", _set(data, ("bogus",), 1)
    for key in data:
        yield f"{key}=delete", _set(data, (key,), None, delete=True)
    if isinstance(data.get("edits"), dict):
        yield "edits.bogus=unknown-key", _set(data, ("edits", "bogus"), 1)
        for key in data["edits"]:
            yield f"edits.{key}=delete", _set(data, ("edits", key), None, delete=True)
    for table in TABLES:
        for i, item in enumerate(data.get(table, [])):
            yield f"{table}[{i}]=int", _set(data, (table, i), 5)
            yield f"{table}[{i}].bogus=unknown-key", _set(data, (table, i, "bogus"), 1)
            for key in item:
                yield f"{table}[{i}].{key}=delete", _set(data, (table, i, key), None, delete=True)
    if name not in FULL:
        return
    for key in _fields(schemas.Experiment):
        for label, value in VALUES:
            yield f"{key}={label}", _set(data, (key,), value)
    edits = data.get("edits") if isinstance(data.get("edits"), dict) else {}
    for key in _fields(schemas.Edits):
        for label, value in VALUES:
            yield f"edits.{key}={label}", _set(dict(data, edits=edits), ("edits", key), value)
    for table, model in TABLES.items():
        for i in _picked(table, data.get(table, [])):
            for key in _fields(model):
                for label, value in VALUES:
                    yield f"{table}[{i}].{key}={label}", _set(data, (table, i, key), value)


def all_cases() -> Iterator[tuple[str, str, str]]:
    """(experiment name, case id, experiment.toml text) over every committed experiment."""
    for toml in sorted(EXPERIMENTS.glob("*/experiment.toml")):
        name = toml.parent.name
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
        for case, mutated in cases(name, data):
            yield name, f"{name}:{case}", toml_dumps(mutated)


def digests() -> dict[str, str]:
    """experiment name -> sha256 of its committed experiment.toml (the fixture records them: a case of
    an experiment edited since is a different case)."""
    return {
        toml.parent.name: hashlib.sha256(toml.read_bytes()).hexdigest()
        for toml in sorted(EXPERIMENTS.glob("*/experiment.toml"))
    }


def vocabularies() -> dict[str, str]:
    """The metric and probe lists messages spell out, as short names (adding a metric changes no case)."""
    from harness.experiment import _known_metrics, _known_probes

    return {", ".join(_known_metrics()): "<metrics>", ", ".join(_known_probes()): "<probes>"}


def messages(root: Path) -> dict[str, str]:
    """case id -> "ACCEPTED" or the one-line error load_experiment gives (its folder as <d>, the metric
    and probe lists as <metrics> and <probes>)."""
    from harness.errors import SchemaError, UsageError
    from harness.experiment import load_experiment

    short = vocabularies()

    out: dict[str, str] = {}
    copied: set[str] = set()
    for name, case, text in all_cases():
        folder = root / name
        if name not in copied:
            shutil.copytree(EXPERIMENTS / name, folder, symlinks=True)
            copied.add(name)
        (folder / "experiment.toml").write_text(text, encoding="utf-8")
        try:
            load_experiment(folder)
            out[case] = "ACCEPTED"
        except (SchemaError, UsageError) as exc:
            said = str(exc).replace(str(folder), "<d>")
            for words, name in short.items():
                said = said.replace(words, name)
            out[case] = said
    return out


def main() -> None:
    """Re-record tests/fixtures/experiment_messages.json with the loader as it is (after a deliberate
    change of its messages or of a committed experiment): python -m tests.experiment_corpus"""
    with tempfile.TemporaryDirectory() as tmp:
        got = messages(Path(tmp))
    doc = {"_comment": COMMENT, "digests": digests(), "messages": got}
    FIXTURE.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE}: {len(got)} cases")


if __name__ == "__main__":
    main()
