"""Readers of hospital lab exports (issue 15): formats detected, French CSV conventions, FHIR details,
per-row problems that never stop the other rows."""

from __future__ import annotations

import datetime as dt

import pytest

from lutarterial.errors import InvalidInputError
from lutarterial.records.labs import detect_format, parse_labs

HEADER = "trial_number,analyte,value,unit,lln,uln,date\n"


@pytest.mark.parametrize("text, fmt", [
    ('{"resourceType": "Bundle", "entry": []}', "fhir"),
    ('{"resourceType": "Bundle",\n "entry": []}', "fhir"),  # pretty-printed JSON is one document
    ('{"resourceType": "Observation"}\n{"resourceType": "Observation"}\n', "ndjson"),
    (HEADER, "csv"),
    ("\ufeff" + HEADER, "csv"),
])
def test_format_detection(text: str, fmt: str) -> None:
    assert detect_format(text) == fmt


@pytest.mark.parametrize("cell, day, time", [
    ("2024-03-04", dt.date(2024, 3, 4), None),
    ("04/03/2024", dt.date(2024, 3, 4), None),  # French day/month order
    ("4/3/2024 8h30", dt.date(2024, 3, 4), "08:30"),
    ("2024-03-04T07:45:00+02:00", dt.date(2024, 3, 4), "07:45:00"),
])
def test_dates(cell: str, day: dt.date, time: str | None) -> None:
    rows = parse_labs(HEADER + f"BDX-001,plaquettes,100,G/L,150,400,{cell}\n").rows
    assert (rows[0].collected_date, rows[0].collected_time) == (day, time)


@pytest.mark.parametrize("cell", ["31/02/2024", "2024-13-01", "03-04-2024", ""])
def test_bad_dates_are_row_problems(cell: str) -> None:
    parsed = parse_labs(HEADER + f"BDX-001,plaquettes,100,G/L,150,400,{cell}\nBDX-001,ALAT,30,UI/L,,40,2024-01-02\n")
    assert [r.analyte for r in parsed.rows] == ["alt"]  # the good row is kept
    assert parsed.problems[0].where == "line 2" and "date" in parsed.problems[0].reason


def test_semicolon_csv_reads_decimal_commas_and_french_names() -> None:
    text = "trial_number;analyte;value;unit;lln;uln;date\nBDX-001;Hémoglobine;9,8;g/dL;12;16;11/03/2024\n" \
           "BDX-001;Polynucléaires neutrophiles;1,25;G/L;1,8;7,5;11/03/2024\n"
    rows = parse_labs(text).rows
    assert [(r.analyte, r.value, r.lln, r.uln) for r in rows] == [("haemoglobin", 9.8, 12.0, 16.0),
                                                                  ("neutrophils", 1.25, 1.8, 7.5)]


@pytest.mark.parametrize("value, problem", [("<5", "censored"), ("abc", "not a number"), ("inf", "finite"),
                                             ("", "no value")])
def test_values_that_are_not_numbers(value: str, problem: str) -> None:
    parsed = parse_labs(HEADER + f"BDX-001,ASAT,{value},UI/L,,40,2024-01-02\n")
    assert not parsed.rows and problem in parsed.problems[0].reason


def test_csv_without_the_required_columns_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="header"):
        parse_labs("analyte,valeur\nplaquettes,100\n", "csv")


def _obs(**over: object) -> dict:
    res = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
           "effectiveDateTime": "2024-04-02", "valueQuantity": {"value": 75, "code": "10*9/L"},
           "referenceRange": [{"low": {"value": 150}, "high": {"value": 400}}]}
    res.update(over)
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": res}]}


def test_fhir_observation_fields() -> None:
    row = parse_labs(_obs()).rows[0]
    assert (row.analyte, row.loinc, row.value, row.unit, row.lln, row.uln) == ("platelets", "777-3", 75.0,
                                                                               "10*9/L", 150.0, 400.0)


@pytest.mark.parametrize("over, problem", [
    ({"status": "entered-in-error"}, "entered-in-error"),
    ({"status": "cancelled"}, "cancelled"),
    ({"valueQuantity": {"value": 75, "code": "10*9/L", "comparator": "<"}}, "censored"),
    ({"valueQuantity": {"value": 75}}, "no unit"),
    ({"valueString": "normal", "valueQuantity": None}, "valueQuantity"),
    ({"effectiveDateTime": None}, "effectiveDateTime"),
    ({"code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]}}, "not one the registry records"),
])
def test_fhir_observations_refused_with_a_reason(over: dict, problem: str) -> None:
    parsed = parse_labs(_obs(**over))
    assert not parsed.rows and problem in parsed.problems[0].reason


def test_fhir_amended_status_is_read() -> None:
    assert parse_labs(_obs(status="amended")).rows[0].value == 75.0


def test_old_mac_line_ends_are_read_and_broken_csv_is_a_clear_error() -> None:
    rows = parse_labs((HEADER + "BDX-001,plaquettes,100,G/L,150,400,2024-01-02\n").replace("\n", "\r"), "csv").rows
    assert [r.value for r in rows] == [100.0]
    with pytest.raises(InvalidInputError, match="not a readable CSV"):
        parse_labs(HEADER + 'BDX-001,"' + "x" * 200_000 + '",100,G/L,150,400,2024-01-02\n', "csv")  # > field limit
