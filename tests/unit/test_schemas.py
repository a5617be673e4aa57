"""The published JSON Schemas (schemas/*.schema.json): generated from harness.schemas' models,
committed as generated, and every committed run file and experiment validates against them with a
standard validator (jsonschema, what check-jsonschema in `make lint` uses)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import get_type_hints

import hostile as H
import jsonschema
import msgspec
import pytest

from harness import experiment, records, schemas
from harness.errors import SchemaError
from harness.results import iter_run_files, read_run_file, validate_run

REPO = Path(__file__).resolve().parents[2]
RUN_FILES = [
    p for root in (REPO / "results", REPO / "tests" / "fixtures" / "results") for p in iter_run_files(root)
]
EXPERIMENTS = sorted(REPO.glob("experiments/*/experiment.toml")) + sorted(
    REPO.glob("docs/sketches/*/experiment.toml")
)


def validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schemas.schema_path(kind).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("kind", sorted(schemas.SCHEMAS))
def test_committed_schema_is_what_the_models_generate(kind: str):
    """schemas/<kind>.schema.json equals what `python -m harness.schemas` writes from the models today."""
    assert schemas.schema_path(kind).read_text(encoding="utf-8") == schemas.schema_text(kind), (
        "stale schema: run python -m harness.schemas"
    )


@pytest.mark.parametrize(
    ("kind", "name"), [("run", "imagebench.run"), ("experiment", "imagebench.experiment")]
)
def test_schema_is_named_and_versioned(kind: str, name: str):
    """Each schema's $id carries the schema's name and version, and it is a valid draft 2020-12 schema."""
    schema = json.loads(schemas.schema_path(kind).read_text(encoding="utf-8"))
    assert schema["$id"].endswith(f"/{name}/v1.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_check_mode_flags_a_stale_schema(tmp_path, monkeypatch, capsys):
    """`python -m harness.schemas --check` exits 1 naming the stale file, 0 when all are current."""
    assert schemas.main(["--check"]) == 0
    stale = tmp_path / "schemas" / "run.schema.json"
    stale.parent.mkdir()
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(schemas, "schema_path", lambda kind: tmp_path / "schemas" / f"{kind}.schema.json")
    assert schemas.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "run.schema.json" in err and len(err.strip().splitlines()) == 1
    assert schemas.main(["--bogus"]) == 2


def test_every_committed_run_file_fits_the_run_schema():
    """Every run file under results/<machine>/ and the fixtures validates against schemas/run.schema.json."""
    assert len(RUN_FILES) >= 2
    v = validator("run")
    for path in RUN_FILES:
        errors = [e.message for e in v.iter_errors(json.loads(path.read_text(encoding="utf-8")))]
        assert not errors, f"{path}: {errors[:3]}"


def test_every_committed_experiment_fits_the_experiment_schema_and_model():
    """Every experiments/*/experiment.toml (and the sketches), parsed, validates against the schema and
    converts to the msgspec model."""
    assert len(EXPERIMENTS) >= 20
    v = validator("experiment")
    for path in EXPERIMENTS:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        errors = [e.message for e in v.iter_errors(data)]
        assert not errors, f"{path}: {errors[:3]}"
        msgspec.convert(data, schemas.Experiment)


def test_experiment_model_names_the_keys_the_loader_allows():
    """The experiment model's tables have exactly the keys harness/experiment.py accepts (both refuse others)."""
    fields = {s: set(s.__struct_fields__) for s in (schemas.Experiment, schemas.Variant, schemas.Claim)}
    assert fields[schemas.Experiment] == experiment._TOP_KEYS
    assert fields[schemas.Variant] == experiment._VARIANT_KEYS
    assert fields[schemas.Claim] == experiment._CLAIM_KEYS
    assert set(schemas.Edits.__struct_fields__) == {"source", "deps", "deps_append"}


def test_schema_refuses_what_the_loader_refuses_in_an_experiment():
    """An unknown key, a bad scenario and a trial count out of range fail the schema as they fail the loader."""
    v = validator("experiment")
    good = tomllib.loads(
        (REPO / "experiments" / "healthcheck" / "experiment.toml").read_text(encoding="utf-8")
    )
    assert not list(v.iter_errors(good))
    for bad in ({"colour": "red"}, {"scenarios": ["tepid"]}, {"trials": 0}, {"variants": []}):
        assert list(v.iter_errors(good | bad)), bad


def test_corrupted_run_file_fails_the_schema_and_the_reader_with_one_line(tmp_path):
    """A trial with an unknown status: the schema rejects it, and the reader says where in one line."""
    data = json.loads(RUN_FILES[0].read_text(encoding="utf-8"))
    data["trials"][0]["status"] = "bogus"
    assert list(validator("run").iter_errors(data))
    path = tmp_path / "m" / "r.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemaError) as exc:
        read_run_file(path)
    assert str(exc.value) == (
        f"{path}: trials[0] 'status' must be one of ok, failed, interrupted, skipped, got 'bogus'"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["trials"][0].update(trial=-1),
            "trials[0] 'trial' must be a whole number from 0, got -1",
        ),
        (lambda d: d["trials"][0].update(experiment=" "), "trials[0] 'experiment' is empty"),
        (
            lambda d: d["trials"][0]["metrics"].update(m=[1]),
            "trials[0] metric 'm' must be a finite number, true/false, text or null, got [1]",
        ),
        (lambda d: d.update(command=["a", 1]), "field 'command' items must be strings, got 1"),
        (lambda d: d.pop("trials"), "field 'trials' missing or not a list"),
        (lambda d: d.update(plan={}), "field 'plan' missing or not a list, got {}"),
        (lambda d: d.update(trials=d["trials"][:1] * 2), "trials[1] repeats trial"),
        (
            lambda d: d["fingerprint"].update(lab={"profile": {"rate_bps": "x"}}),
            "fingerprint.lab.profile 'rate_bps' must be a finite number, got 'x'",
        ),
        (lambda d: next(iter(d["experiments"].values())).pop("name"), "] lacks 'name'"),
    ],
)
def test_model_errors_read_as_todays_one_line_messages(change, message):
    """A model error names the place (trials[0], experiments['x'], field), the key and the value, in one line."""
    data = json.loads(RUN_FILES[0].read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(Exception) as exc:
        validate_run(data)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_every_corrupted_run_file_gets_the_message_it_got_before_the_model(tmp_path):
    """Each of the hostile corpus's 819 run-file mutations is accepted or refused as before the model
    (221e4e2's hand-written checks), with the very same one-line message (tests/fixtures/run_file_messages.json)."""
    expected = json.loads(
        (REPO / "tests" / "fixtures" / "run_file_messages.json").read_text(encoding="utf-8")
    )
    cases = H.run_file_mutations()
    assert len(cases) == len(expected["messages"])
    path = tmp_path / "r.json"
    for name, _key, text in cases:
        path.write_text(text, encoding="utf-8")
        try:
            read_run_file(path)
            got = "ACCEPTED"
        except SchemaError as exc:
            got = str(exc).replace(str(path), "<f>")
        assert got == expected["messages"][name], name


def test_schema_accepts_every_run_file_the_reader_accepts(tmp_path):
    """Over the hostile corpus's run-file mutations: a file imagebench reads never fails the published schema."""
    v = validator("run")
    accepted = 0
    for i, (name, _key, text) in enumerate(H.run_file_mutations()):
        path = tmp_path / f"{i}.json"
        path.write_text(text, encoding="utf-8")
        try:
            data = read_run_file(path)
        except SchemaError:
            continue
        accepted += 1
        if not any("lone surrogate" in w for w in data.get("warnings") or []):
            errors = [e.message for e in v.iter_errors(json.loads(text))]
            assert not errors, f"{name}: read, but the schema says {errors[:2]}"
    assert accepted >= 100


def test_committed_variants_fit_the_variant_record():
    """Every variant of every committed run file has records.VariantDef's required keys and no other."""
    declared = set(get_type_hints(records.VariantDef))
    for path in RUN_FILES:
        run = json.loads(path.read_text(encoding="utf-8"))
        for exp in run["experiments"].values():
            for v in exp.get("variants", []):
                assert set(v) <= declared, f"{path}: undeclared {set(v) - declared}"
                assert records.VariantDef.__required_keys__ <= set(v), f"{path}: {v.get('name')} lacks keys"
