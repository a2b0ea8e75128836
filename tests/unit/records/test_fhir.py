"""FHIR R4 Bundle reader: LOINC/UCUM observations, LUTATHERA, conditions, consent, coverage."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lutarterial.eligibility import Status, screen
from lutarterial.errors import InvalidInputError
from lutarterial.records import bundle_to_patient, load_records, parse_record

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
AS_OF = dt.date(2024, 6, 3)
LAB = "2024-05-27T08:30:00+02:00"


def obs(code, value, unit, *, date=LAB, status="final", high=None, low=None, rid=None, system="http://loinc.org"):
    res = {"resourceType": "Observation", "id": rid or f"o-{code}-{value}", "status": status,
           "code": {"coding": [{"system": system, "code": code}]}, "effectiveDateTime": date,
           "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
    if high is not None or low is not None:
        rr = {}
        if high is not None:
            rr["high"] = {"value": high, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        if low is not None:
            rr["low"] = {"value": low, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        res["referenceRange"] = [rr]
    return res


def lutathera(day, *, atc=True, status="completed", rid=None):
    med = ({"coding": [{"system": "http://www.whocc.no/atc", "code": "V10XX04"}]} if atc
           else {"text": "LUTATHERA 370 MBq/mL solution for infusion"})
    return {"resourceType": "MedicationAdministration", "id": rid or f"ma-{day}", "status": status,
            "medicationCodeableConcept": med, "effectiveDateTime": day,
            "dosage": {"route": {"text": "intravenous"}, "dose": {"value": 7.4, "unit": "GBq", "code": "GBq"}}}


def bundle(*resources, patient=None):
    pat = patient or {"resourceType": "Patient", "id": "p1", "identifier": [{"value": "NIM-042"}],
                      "birthDate": "1958-11-02", "gender": "female"}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate((pat, *resources))]}


def full_bundle(*extra):
    return bundle(
        lutathera("2023-09-01"), lutathera("2023-10-27"), lutathera("2023-12-22", atc=False), lutathera("2024-02-16"),
        obs("718-7", 105, "g/L"),
        obs("751-8", 2.1, "10*9/L"),
        obs("26515-7", 180, "10*3/uL"),
        obs("2160-0", 0.9, "mg/dL"),
        obs("29463-7", 64, "kg"),
        obs("1742-6", 35, "U/L", high=35),
        obs("1920-8", 88, "U/L", high=35),
        obs("1751-7", 36, "g/L"),
        {"resourceType": "Observation", "id": "ecog", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]}, "effectiveDateTime": LAB,
         "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA9623-5"}]}},
        {"resourceType": "Observation", "id": "bp", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "85354-6"}]}, "effectiveDateTime": LAB,
         "component": [
             {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
              "valueQuantity": {"value": 165, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
             {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
              "valueQuantity": {"value": 85, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]},
        {"resourceType": "Consent", "id": "c1", "status": "active", "dateTime": "2024-05-30"},
        {"resourceType": "Coverage", "id": "cov", "status": "active"},
        *extra,
    )


def test_patient_and_observations_are_read():
    p = bundle_to_patient(full_bundle())
    assert p.record_id == "NIM-042" and p.sex == "female" and p.birth_date == dt.date(1958, 11, 2)
    assert p.source_format == "fhir-r4"
    by = {m.analyte: m for m in p.measurements}
    assert by["haemoglobin"].unit == "g/L" and by["platelets"].unit == "10*3/uL"
    assert by["alt"].reference_high == 35 and by["ecog"].value == 1
    assert by["systolic_bp"].value == 165 and by["diastolic_bp"].value == 85
    assert by["haemoglobin"].date == dt.date(2024, 5, 27)
    assert len(p.lutathera) == 4 and p.lutathera[0].activity_mbq == pytest.approx(7400)
    assert p.facts["informed_consent_signed"] is True and p.facts["social_security"] is True


def test_fhir_screening_uses_converted_units_and_the_labs_uln():
    result = screen(bundle_to_patient(full_bundle()), as_of=AS_OF)
    st = {c.id: c.status for c in result.criteria}
    assert st["INC03"] is P and st["INC05"] is P and st["INC07"] is P and st["INC10"] is P and st["INC11"] is P
    inc06 = result.criterion("INC06")
    assert inc06.status is F and "AST 2.51 x ULN" in inc06.reason  # 88 / 35
    # EXC07: BP 165 mmHg but treatment undocumented, and FHIR cannot assert a complete history
    assert st["EXC07"] is U
    assert result.verdict.value == "ineligible"


def test_entered_in_error_and_cancelled_observations_are_ignored():
    bad = obs("718-7", 60, "g/L", date="2024-05-29T09:00:00Z", status="entered-in-error", rid="err")
    cancelled = obs("777-3", 20, "10*9/L", date="2024-05-29T09:00:00Z", status="cancelled", rid="can")
    result = screen(bundle_to_patient(full_bundle(bad, cancelled)), as_of=AS_OF)
    assert result.criterion("INC07").status is P


def test_unknown_unit_in_fhir_is_unknown_naming_the_unit():
    b = bundle(*[lutathera(d) for d in ("2023-09-01", "2023-10-27", "2023-12-22", "2024-02-16")],
               obs("718-7", 11, "g/dL"), obs("751-8", 2.0, "10*9/L"), obs("777-3", 150, "mg/dL"))
    r = screen(bundle_to_patient(b), as_of=AS_OF).criterion("INC07")
    assert r.status is U and "mg/dL" in r.reason


def test_recent_myocardial_infarction_condition_excludes():
    mi = {"resourceType": "Condition", "id": "mi", "code": {"coding": [
        {"system": "http://snomed.info/sct", "code": "22298006"}]}, "onsetDateTime": "2024-01-10",
        "clinicalStatus": {"coding": [{"code": "active"}]}}
    old = dict(mi, id="old", onsetDateTime="2020-01-10")
    r = screen(bundle_to_patient(full_bundle(mi, old)), as_of=AS_OF).criterion("EXC07")
    assert r.status is F and "myocardial_infarction" in r.reason


def test_refuted_and_icd10_conditions():
    cirrhosis_refuted = {"resourceType": "Condition", "id": "c", "verificationStatus": {"coding": [{"code": "refuted"}]},
                         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "K74.6"}]}}
    pvt = {"resourceType": "Condition", "id": "pvt",
           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I81"}]}}
    p = bundle_to_patient(full_bundle(cirrhosis_refuted, pvt))
    assert p.facts["cirrhosis"] is False and p.facts["portal_thrombosis"] is True
    assert screen(p, as_of=AS_OF).criterion("EXC05").status is F


def test_lutathera_by_name_and_by_reference_and_not_done():
    med = {"resourceType": "Medication", "id": "m1", "code": {"text": "Lutetium Lu 177 dotatate"}}
    by_ref = {"resourceType": "MedicationAdministration", "id": "r1", "status": "completed",
              "medicationReference": {"reference": "Medication/m1"}, "effectiveDateTime": "2024-01-01"}
    not_done = lutathera("2024-03-01", status="not-done")
    other = {"resourceType": "MedicationAdministration", "id": "oct", "status": "completed",
             "medicationCodeableConcept": {"text": "octreotide LAR"}, "effectiveDateTime": "2024-01-05"}
    p = bundle_to_patient(bundle(med, by_ref, not_done, other))
    assert [a.date for a in p.lutathera] == [dt.date(2024, 1, 1)]


def test_ecog_value_integer_and_partial_birth_date():
    pat = {"resourceType": "Patient", "id": "p2", "birthDate": "1970", "gender": "male"}
    e = {"resourceType": "Observation", "id": "e", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]}, "effectiveDateTime": LAB,
         "valueInteger": 3}
    p = bundle_to_patient(bundle(e, patient=pat))
    assert p.birth_date_precision == "year" and p.record_id == "p2"
    r = screen(p, as_of=AS_OF)
    assert r.criterion("INC05").status is F and r.criterion("INC08").status is P


def test_bundle_must_hold_one_patient():
    with pytest.raises(InvalidInputError, match="must hold a Patient"):
        bundle_to_patient({"resourceType": "Bundle", "entry": []})


def test_single_resource_is_refused_with_advice():
    with pytest.raises(InvalidInputError, match="Bundle"):
        parse_record({"resourceType": "Patient", "id": "x"})


def test_fhir_bundle_is_auto_detected_in_files(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps(full_bundle()), encoding="utf-8")
    recs = list(load_records(tmp_path / "b.json"))
    assert len(recs) == 1 and recs[0].record_id == "NIM-042"


def _two_patient_bundle(ref_second="Patient/p2"):
    p1 = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01", "gender": "male"}
    p2 = {"resourceType": "Patient", "id": "p2", "birthDate": "1960-01-01", "gender": "female"}
    h1 = dict(obs("718-7", 11, "g/dL", rid="h1"), subject={"reference": "Patient/p1"})
    h2 = dict(obs("718-7", 7, "g/dL", rid="h2"), subject={"reference": ref_second})
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"fullUrl": "urn:uuid:a", "resource": p1}, {"fullUrl": "urn:uuid:b", "resource": p2},
                      {"resource": h1}, {"resource": h2}]}


def test_multi_patient_bundle_splits_by_subject(tmp_path):
    from lutarterial.records import bundle_to_patients

    a, b = bundle_to_patients(_two_patient_bundle())
    assert [m.value for m in a.measurements] == [11] and [m.value for m in b.measurements] == [7]
    a, b = bundle_to_patients(_two_patient_bundle("urn:uuid:b"))
    assert [m.value for m in b.measurements] == [7]
    with pytest.raises(InvalidInputError, match="2 patients"):
        bundle_to_patient(_two_patient_bundle())
    with pytest.raises(InvalidInputError, match="does not name"):
        bundle_to_patients(_two_patient_bundle("Patient/zz"))
    f = tmp_path / "two.json"
    f.write_text(json.dumps(_two_patient_bundle()), encoding="utf-8")
    assert [r.record_id for r in load_records(f)] == ["p1", "p2"]
