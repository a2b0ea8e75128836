"""Own-format record: published schema, strict validation, file loading, synthetic cohort."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from lutarterial.eligibility import PatientData, screen
from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.records import (
    RecordError,
    ScreeningRecord,
    iter_records,
    json_schema,
    load_records,
    make_records,
    parse_json_text,
    parse_record,
)

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "docs" / "screening-record.schema.json"


def test_committed_schema_equals_the_generated_one():
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == json_schema(), "regenerate: lutarterial screening-schema --out docs/screening-record.schema.json"


def test_schema_is_valid_and_accepts_synthetic_records():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for rec in make_records(50, seed=3):
        validator.validate(rec)


def test_schema_and_model_refuse_the_same_misspelt_field():
    bad = {"record_id": "x", "measurements": [{"analyte": "platelets", "value": 1, "unit": "G/L", "dat": "2024-01-01"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())
    with pytest.raises(InvalidInputError, match="measurements.0.dat"):
        parse_record(bad)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({}, "record_id"),
        ({"record_id": "x", "patient": {"birth_date": "03/15/1960"}}, "birth_date"),
        ({"record_id": "x", "patient": {"sex": "F"}}, "sex"),
        ({"record_id": "x", "measurements": [{"analyte": "plt", "value": 1}]}, "analyte"),
        ({"record_id": "x", "measurements": [{"analyte": "platelets", "value": "NaN"}]}, "value"),
        ({"record_id": "x", "liver": {"child_pugh_score": 4}}, "child_pugh_score"),
        ({"record_id": "x", "cardiac": {"events": [{"type": "flu", "date": "2024-01-01"}]}}, "type"),
        ({"record_id": "x", "screening_date": "2024-02-30"}, "screening_date"),
    ],
)
def test_invalid_records_are_refused_naming_the_field(record, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_record(record)


def test_record_to_patient_keeps_none_as_undocumented():
    p = parse_record({"record_id": "x"}).to_patient()
    assert isinstance(p, PatientData)
    assert p.lutathera is None and p.cardiovascular_events is None and p.facts == {}
    p = parse_record({"record_id": "x", "lutathera_cycles": [], "cardiac": {"events": []}}).to_patient()
    assert p.lutathera == () and p.cardiovascular_events == ()


def test_make_records_is_deterministic_and_covers_every_verdict():
    a, b = make_records(300, seed=7), make_records(300, seed=7)
    assert a == b and a != make_records(300, seed=8)
    verdicts = {screen(parse_record(r)).verdict.value for r in a}
    assert verdicts == {"eligible", "ineligible", "incomplete"}


def test_load_records_from_json_ndjson_array_and_directory(tmp_path):
    recs = make_records(5, seed=1)
    (tmp_path / "one.json").write_text(json.dumps(recs[0]), encoding="utf-8")
    (tmp_path / "many.ndjson").write_text("".join(json.dumps(r) + "\n" for r in recs[1:3]) + "\n", encoding="utf-8")
    (tmp_path / "arr.json").write_text(json.dumps(recs[3:]), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    loaded = list(load_records(tmp_path))
    assert sorted(r.record_id for r in loaded) == sorted(r["record_id"] for r in recs)
    assert all(isinstance(r, ScreeningRecord) for r in loaded)
    assert [r.record_id for r in load_records(tmp_path / "many.ndjson")] == [recs[1]["record_id"], recs[2]["record_id"]]


def test_bad_line_is_an_error_with_its_line_number(tmp_path):
    f = tmp_path / "c.ndjson"
    f.write_text(json.dumps(make_records(1)[0]) + "\n{not json\n", encoding="utf-8")
    items = list(iter_records(f))
    assert isinstance(items[1], RecordError) and items[1].origin.endswith("c.ndjson:2")
    with pytest.raises(InvalidInputError, match="c.ndjson:2"):
        list(load_records(f))


def test_missing_path_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        list(load_records(tmp_path / "absent.json"))


def test_parse_json_text_fast_path_matches_dict_path():
    rec = make_records(1, seed=2)[0]
    assert parse_json_text(json.dumps(rec)) == parse_record(rec)
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_json_text("{oops", "x.ndjson:1")
