"""Dates (windows, anchors, stale, future), conflicts, verdict rules and version selection."""

from __future__ import annotations

import datetime as dt

import pytest

from lutarterial.eligibility import PatientData, Status, screen
from lutarterial.errors import InvalidInputError, ProtocolDefinitionError
from lutarterial.records import parse_record

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
AS_OF = dt.date(2024, 6, 3)


def test_lab_after_screening_date_is_ignored_with_a_note(record, lab, crit):
    rec = lab(record, "platelets", 200000, "/mm3")
    rec["measurements"].append({"analyte": "platelets", "value": 10000, "unit": "/mm3", "date": "2024-06-04"})
    r = crit(rec, "INC07")
    assert r.status is P
    assert any("after the screening date" in e.note for e in r.evidence)


def test_lab_on_the_day_of_the_4th_cycle_is_not_after_it(record, lab, crit):
    rec = lab(record, "haemoglobin", 11.0, "g/dL", date="2024-02-16")
    r = crit(rec, "INC07", as_of=dt.date(2024, 3, 1))
    assert r.status is U
    assert any("not after the 4th LUTATHERA cycle" in e.note for e in r.evidence)
    rec = lab(record, "haemoglobin", 11.0, "g/dL", date="2024-02-17")
    rec = lab(lab(rec, "neutrophils", 3.0, "G/L", date="2024-02-17"), "platelets", 200, "G/L", date="2024-02-17")
    assert crit(rec, "INC07", as_of=dt.date(2024, 3, 1)).status is P


@pytest.mark.parametrize(("lab_date", "expected"), [("2024-05-06", P), ("2024-05-05", U)])
def test_lab_window_is_28_days(record, lab, crit, lab_date, expected):
    r = crit(lab(record, "haemoglobin", 11.0, "g/dL", date=lab_date), "INC07")
    assert r.status is expected
    if expected is U:
        assert "stale" in r.reason and any("haemoglobin" in n for n in r.needs)


def test_most_recent_valid_value_is_used_and_shown(record, lab, crit):
    rec = lab(record, "platelets", 50000, "/mm3", date="2024-05-20")
    rec["measurements"].append({"analyte": "platelets", "value": 150, "unit": "G/L", "date": "2024-05-30"})
    r = crit(rec, "INC07")
    assert r.status is P
    shown = [e for e in r.evidence if e.label == "platelets" and not e.note.startswith("ignored")]
    assert shown[0].value == 150 and shown[0].date == dt.date(2024, 5, 30)


def test_conflicting_values_on_the_same_date_are_flagged(record, lab, crit):
    rec = lab(record, "platelets", 200000, "/mm3")
    rec["measurements"].append({"analyte": "platelets", "value": 60, "unit": "G/L", "date": "2024-05-27"})
    r = crit(rec, "INC07")
    assert r.status is U and "conflicting" in r.reason


def test_identical_values_in_different_units_on_the_same_date_agree(record, lab, crit):
    rec = lab(record, "platelets", 200000, "/mm3")
    rec["measurements"].append({"analyte": "platelets", "value": 200, "unit": "G/L", "date": "2024-05-27"})
    assert crit(rec, "INC07").status is P


def test_undated_lab_is_ignored(record, lab, crit):
    rec = lab(record, "haemoglobin", 11.0, "g/dL")
    for m in rec["measurements"]:
        if m["analyte"] == "haemoglobin":
            m.pop("date")
    r = crit(rec, "INC07")
    assert r.status is U and "undated" in r.reason


def test_labs_need_the_4th_cycle_date(record, crit):
    record["lutathera_cycles"][3]["date"] = None
    r = crit(record, "INC07")
    assert r.status is U and any("4th LUTATHERA cycle" in n for n in r.needs)


def test_post_therapy_scan_must_follow_the_last_cycle(record, crit):
    record["post_therapy_scans"] = [{"date": "2023-12-23", "residual_uptake": True}]
    assert crit(record, "EXC02").status is U
    record["post_therapy_scans"] = [{"date": "2024-02-17", "residual_uptake": False}]
    assert crit(record, "EXC02").status is F
    record["post_therapy_scans"] = [{"date": "2024-02-23", "residual_uptake": True}]  # last cycle + 7 days
    assert crit(record, "EXC02").status is P
    record["post_therapy_scans"] = [{"date": "2024-02-24", "residual_uptake": True}]
    assert crit(record, "EXC02").status is U


def test_consent_after_screening_date_is_unknown(record, crit):
    record["administrative"]["informed_consent_date"] = "2024-06-04"
    assert crit(record, "INC10").status is U
    record["administrative"]["informed_consent_signed"] = False
    assert crit(record, "INC10").status is F


@pytest.mark.parametrize(
    ("sex", "meno", "agreed", "expected"),
    [("male", None, True, P), ("male", None, False, F), ("male", None, None, U), ("female", "post", None, P),
     ("female", "pre", True, P), ("female", "pre", None, U), ("female", None, None, U)],
)
def test_inc09_contraception(record, crit, sex, meno, agreed, expected):
    record["patient"] = {"birth_date": "1970-01-01", "sex": sex, "menopausal_status": meno}
    record["administrative"]["contraception_agreed"] = agreed
    assert crit(record, "INC09").status is expected


@pytest.mark.parametrize(
    ("sex", "pregnant", "breastfeeding", "expected"),
    [("male", None, None, P), ("female", False, False, P), ("female", True, False, F), ("female", False, True, F),
     ("female", None, False, U), (None, None, None, U)],
)
def test_exc09_pregnancy(record, crit, sex, pregnant, breastfeeding, expected):
    record["patient"] = {"birth_date": "1970-01-01", "sex": sex}
    record["administrative"].update(pregnant=pregnant, breastfeeding=breastfeeding)
    assert crit(record, "EXC09").status is expected


@pytest.mark.parametrize(
    ("cid", "section", "flag", "value", "expected"),
    [("EXC08", "administrative", "legal_protection", True, F), ("EXC08", "administrative", "unable_to_consent", True, F),
     ("EXC08", "administrative", "legal_protection", None, U), ("EXC10", "administrative", "other_interventional_trial", True, F),
     ("EXC11", "administrative", "mri_contraindicated", True, F), ("EXC11", "administrative", "mri_contraindicated", None, U),
     ("EXC12", "administrative", "lutathera_contraindicated", True, F), ("INC11", "administrative", "social_security", False, F),
     ("INC11", "administrative", "social_security", None, U), ("INC01", "tumour", "differentiation", "poor", F),
     ("INC01", "tumour", "primary_origin", "lung", F), ("INC01", "tumour", "primary_origin", "unknown_primary", U),
     ("INC01", "tumour", "histologically_proven", False, F)],
)
def test_flag_criteria(record, crit, cid, section, flag, value, expected):
    record[section][flag] = value
    assert crit(record, cid).status is expected


@pytest.mark.parametrize(
    ("field", "value", "cid", "expected"),
    [("complete_response", True, "EXC01", F), ("complete_response", None, "EXC01", U),
     ("extrahepatic_dominant_or_threatening", True, "EXC04", F), ("resectable", True, "INC04", F),
     ("liver_dominant_or_exclusive", False, "INC04", F), ("recist_assessable", None, "INC04", U)],
)
def test_imaging_criteria(record, crit, field, value, cid, expected):
    record["inclusion_imaging"][0][field] = value
    assert crit(record, cid).status is expected


def test_imaging_before_the_last_cycle_is_not_inclusion_imaging(record, crit):
    record["inclusion_imaging"][0]["date"] = "2024-02-01"
    assert crit(record, "INC04").status is U


def test_verdicts(record, lab):
    assert screen(parse_record(record), as_of=AS_OF).verdict.value == "eligible"
    rec = lab(record, "platelets", 50, "G/L")
    rec["administrative"]["social_security"] = None
    result = screen(parse_record(rec), as_of=AS_OF)
    assert result.verdict.value == "ineligible"  # a fail wins over an unknown
    record["administrative"]["social_security"] = None
    result = screen(parse_record(record), as_of=AS_OF)
    assert result.verdict.value == "incomplete"
    assert result.missing == ["INC11: social_security (yes/no)"]


def test_to_dict_has_the_issue_shape(record):
    d = screen(parse_record(record), as_of=AS_OF).to_dict()
    assert list(d) == ["record", "protocol_version", "as_of", "verdict", "criteria", "missing"]
    assert d["record"] == "BDX-0001" and d["as_of"] == "2024-06-03" and d["protocol_version"] == "1"
    assert all(set(c) == {"id", "status", "reason", "evidence"} for c in d["criteria"])
    assert len(d["criteria"]) == 23


def test_default_version_without_configuration_and_explicit_version_2(record, lab):
    # issue 10: a patient screened in 2025 with 80,000/mm3 passes INC07 under the default version 1
    # (the public summary's 75,000/mm3); version 2 (100,000/mm3) applies only when asked for.
    rec = lab(record, "platelets", 80000, "/mm3")
    default = screen(parse_record(rec), as_of=AS_OF)
    assert default.protocol_version == "1" and default.criterion("INC07").status is P
    forced = screen(parse_record(rec), as_of=AS_OF, protocol_version="2")
    assert forced.protocol_version == "2" and forced.criterion("INC07").status is F


def test_as_of_defaults_to_the_records_screening_date(record):
    assert screen(parse_record(record)).as_of == dt.date(2024, 6, 3)
    record.pop("screening_date")
    with pytest.raises(InvalidInputError, match="screening_date"):
        screen(parse_record(record))


def test_unknown_version_and_date_before_the_trial():
    with pytest.raises(ProtocolDefinitionError, match="available"):
        screen(PatientData(record_id="x"), as_of=AS_OF, protocol_version="9")
    # no invented first date: the default version applies on any date
    assert screen(PatientData(record_id="x"), as_of=dt.date(2020, 1, 1)).protocol_version == "1"


def test_dict_input_is_parsed(record):
    assert screen(record, as_of=AS_OF).verdict.value == "eligible"


def test_empty_record_is_incomplete_with_needs_for_every_criterion():
    result = screen(PatientData(record_id="empty"), as_of=AS_OF)
    assert result.verdict.value == "incomplete"
    assert {c.id for c in result.criteria} == {m.split(":")[0] for m in result.missing}


def test_as_of_accepts_iso_text(record):
    assert screen(record, as_of="2024-06-03").as_of == AS_OF
    with pytest.raises(InvalidInputError, match="not a date"):
        screen(record, as_of="03/06/2024")
