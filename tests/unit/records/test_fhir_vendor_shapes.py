"""FHIR R4 Bundles shaped as other software writes them (Synthea, HAPI FHIR, EHR exports).

Each test builds the shape a real producer emits (transaction with ``request``, searchset with
``search.mode`` and OperationOutcome, absolute ``fullUrl``s, ``urn:uuid`` references, panels
with ``hasMember``, several codings with LOINC not first, censored values, typed reference
ranges...) and checks what the reader extracts and how screening treats it.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from lutarterial.eligibility import Status, screen
from lutarterial.errors import InvalidInputError
from lutarterial.records import bundle_to_patient, bundle_to_patients

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
AS_OF = dt.date(2024, 6, 3)
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CYCLES = ("2023-09-01", "2023-10-27", "2023-12-22", "2024-02-16")


def uid(n: int | str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lutarterial-test-{n}"))


def quantity(value, code, unit=None, comparator=None):
    q = {"value": value, "unit": unit or code, "system": UCUM, "code": code}
    if comparator:
        q["comparator"] = comparator
    return q


def lab(loinc, value, code, *, unit=None, pid=None, date="2024-05-27T08:30:00+02:00", rid=None, **extra):
    """A Synthea/HAPI style laboratory Observation (category laboratory, coding with display)."""
    res = {"resourceType": "Observation", "id": rid or uid(f"{loinc}-{value}-{date}"), "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "laboratory"}]}],
           "code": {"coding": [{"system": LOINC, "code": loinc, "display": loinc}], "text": loinc},
           "effectiveDateTime": date, "issued": "2024-05-28T10:00:00.000+02:00",
           "valueQuantity": quantity(value, code, unit)}
    if pid:
        res["subject"] = {"reference": pid}
    res.update(extra)
    return res


def admin(day, *, pid=None, rid=None, status="completed", **extra):
    res = {"resourceType": "MedicationAdministration", "id": rid or uid(f"ma-{day}"), "status": status,
           "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "V10XX04"}]},
           "effectiveDateTime": f"{day}T09:00:00+01:00",
           "dosage": {"dose": quantity(7.4, "GBq")}}
    if pid:
        res["subject"] = {"reference": pid}
    res.update(extra)
    return res


def patient(pid="p1", birth="1958-11-02", gender="female"):
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender,
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": f"NIR-{pid}"}]}


def collection(*resources, pat=None):
    pat = pat or patient()
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{uid((pat['id'], i))}", "resource": r}
                      for i, r in enumerate((pat, *resources))]}


def by_analyte(p):
    out = {}
    for m in p.measurements:
        out.setdefault(m.analyte, []).append(m)
    return out


# --- Bundle types and references -------------------------------------------------------------


def test_synthea_style_transaction_bundle_with_urn_uuid_references():
    pid = uid("patient")
    pat = dict(patient(pid), name=[{"family": "Doe"}], address=[{"city": "Nimes"}])
    resources = [
        pat,
        {"resourceType": "Organization", "id": uid("org"), "name": "CHU"},
        {"resourceType": "Encounter", "id": uid("enc"), "status": "finished", "subject": {"reference": f"urn:uuid:{pid}"}},
        *[admin(d, pid=f"urn:uuid:{pid}") for d in CYCLES],
        lab("718-7", 11.2, "g/dL", pid=f"urn:uuid:{pid}"),
        lab("751-8", 2.1, "10*3/uL", pid=f"urn:uuid:{pid}"),
        lab("777-3", 180, "10*3/uL", pid=f"urn:uuid:{pid}"),
    ]
    b = {"resourceType": "Bundle", "type": "transaction",
         "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                    "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]}
    p = bundle_to_patient(b)
    assert p.record_id == f"NIR-{pid}" and len(p.lutathera) == 4
    assert {m.analyte for m in p.measurements} == {"haemoglobin", "neutrophils", "platelets"}
    assert screen(p, as_of=AS_OF).criterion("INC07").status is P


def test_hapi_searchset_with_include_mode_outcome_and_absolute_urls():
    base = "http://hapi.example.org/fhir"
    entries = [
        {"fullUrl": f"{base}/Observation/h1", "search": {"mode": "match"},
         "resource": lab("718-7", 7.9, "g/dL", pid="Patient/1234", rid="h1")},
        {"fullUrl": f"{base}/Observation/h2", "search": {"mode": "match"},
         "resource": lab("718-7", 12.0, "g/dL", pid=f"{base}/Patient/5678/_history/3", rid="h2")},
        {"fullUrl": f"{base}/Patient/1234", "search": {"mode": "include"}, "resource": patient("1234")},
        {"fullUrl": f"{base}/Patient/5678", "search": {"mode": "include"}, "resource": patient("5678", gender="male")},
        {"search": {"mode": "outcome"}, "resource": {"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "informational"}]}},
    ]
    b = {"resourceType": "Bundle", "type": "searchset", "total": 2, "entry": entries,
         "link": [{"relation": "self", "url": f"{base}/Observation?code=718-7&_include=Observation:subject"}]}
    a, c = bundle_to_patients(b)
    assert [m.value for m in a.measurements] == [7.9] and [m.value for m in c.measurements] == [12.0]


def test_batch_response_entries_without_resource_are_skipped():
    b = collection(lab("718-7", 11, "g/dL"))
    b["type"] = "batch-response"
    b["entry"].append({"response": {"status": "404 Not Found"}})
    b["entry"].append({"response": {"status": "200 OK"}, "resource": lab("777-3", 150, "10*9/L")})
    p = bundle_to_patient(b)
    assert sorted(m.analyte for m in p.measurements) == ["haemoglobin", "platelets"]


def test_repeated_patient_entry_is_one_patient():
    b = collection(lab("718-7", 11, "g/dL", pid="Patient/p1"))
    b["entry"].append({"fullUrl": "urn:uuid:again", "resource": patient()})
    assert len(bundle_to_patients(b)) == 1


def test_single_patient_bundle_refuses_data_of_another_patient():
    b = collection(lab("718-7", 11, "g/dL", pid="Patient/someone-else"))
    with pytest.raises(InvalidInputError, match="Patient/someone-else"):
        bundle_to_patient(b)


def test_resource_about_a_group_or_device_is_ignored():
    b = collection(lab("718-7", 11, "g/dL", pid="Group/ward-3"), lab("777-3", 150, "10*9/L"))
    assert [m.analyte for m in bundle_to_patient(b).measurements] == ["platelets"]


# --- Observation shapes ------------------------------------------------------------------------


def test_ucum_code_preferred_over_display_unit_and_display_only_units():
    p = bundle_to_patient(collection(
        lab("718-7", 11.5, "g/dL", unit="g/dl"),
        lab("777-3", 180, "10*3/uL", unit="10^3/µL"),
        {**lab("1751-7", 36, "g/L"), "valueQuantity": {"value": 36, "unit": "g/L"}},  # no system: unit text
    ))
    ms = by_analyte(p)
    assert ms["haemoglobin"][0].unit == "g/dL" and ms["platelets"][0].unit == "10*3/uL"
    assert ms["albumin"][0].unit == "g/L"


def test_display_only_units_converted_or_unknown_naming_the_unit():
    def inc07(unit):
        odd = {**lab("777-3", 180, "x"), "valueQuantity": {"value": 180, "unit": unit}}  # no system/code
        b = collection(*[admin(d) for d in CYCLES], lab("718-7", 11, "g/dL"), lab("751-8", 2.0, "10*9/L"), odd)
        return screen(bundle_to_patient(b), as_of=AS_OF).criterion("INC07")

    assert inc07("10^3/µL").status is P  # display text the unit parser reads: 180 x 10^9/L
    r = inc07("Tsd/µl")
    assert r.status is U and "Tsd/µl" in r.reason


@pytest.mark.parametrize("comparator", ["<", "<=", ">", ">="])
def test_censored_value_is_never_read_as_a_value(comparator):
    # ALT "<5 U/L" would pass the ULN limit, ">500 U/L" would fail it: neither is silently used,
    # and an older uncensored ALT must not stand in for the newer censored one.
    older = lab("1742-6", 30, "U/L", date="2024-05-20T08:00:00+02:00", referenceRange=[{"high": quantity(35, "U/L")}])
    newer = lab("1742-6", 5, "U/L", date="2024-05-27T08:00:00+02:00", referenceRange=[{"high": quantity(35, "U/L")}])
    newer["valueQuantity"]["comparator"] = comparator
    b = collection(*[admin(d) for d in CYCLES], older, newer, lab("1920-8", 20, "U/L", referenceRange=[{"high": quantity(35, "U/L")}]),
                   lab("2160-0", 0.9, "mg/dL"), lab("1975-2", 10, "umol/L", referenceRange=[{"high": quantity(21, "umol/L")}]),
                   lab("29463-7", 64, "kg"))
    r = screen(bundle_to_patient(b), as_of=AS_OF).criterion("INC06")
    assert r.status is U
    assert f"censored result {comparator}5" in r.reason


@pytest.mark.parametrize("status,read", [("final", True), ("amended", True), ("corrected", True),
                                         ("preliminary", True), ("unknown", True), ("entered-in-error", False),
                                         ("cancelled", False), ("registered", False)])
def test_observation_status(status, read):
    p = bundle_to_patient(collection(lab("718-7", 11, "g/dL", status=status)))
    assert bool(p.measurements) is read


def test_data_absent_reason_gives_no_value():
    absent = {**lab("718-7", 0, "g/dL"), "dataAbsentReason": {"coding": [{"code": "error"}]}}
    del absent["valueQuantity"]
    assert bundle_to_patient(collection(absent)).measurements == ()


@pytest.mark.parametrize("timing,expected", [
    ({"effectiveDateTime": "2024-05-27T23:30:00-05:00"}, dt.date(2024, 5, 27)),  # local date as written
    ({"effectiveDateTime": "2024-05-27"}, dt.date(2024, 5, 27)),
    ({"effectiveInstant": "2024-05-26T22:30:00.000Z"}, dt.date(2024, 5, 26)),
    ({"effectivePeriod": {"start": "2024-05-25T08:00:00+02:00", "end": "2024-05-26"}}, dt.date(2024, 5, 25)),
    ({"effectivePeriod": {"end": "2024-05-26T08:00:00+02:00"}}, dt.date(2024, 5, 26)),
    ({"effectiveDateTime": "2024-05"}, None),  # month only: not datable for a window
    ({}, None),  # only `issued` (report release): deliberately not used as the sample date
])
def test_observation_timing(timing, expected):
    res = lab("718-7", 11, "g/dL")
    del res["effectiveDateTime"]
    res.update(timing)
    assert bundle_to_patient(collection(res)).measurements[0].date == expected


def test_loinc_not_first_coding_and_oid_system():
    res = lab("718-7", 11, "g/dL")
    res["code"] = {"coding": [{"system": "http://acme.example/lab-codes", "code": "HGB"},
                              {"system": "urn:oid:2.16.840.1.113883.6.1", "code": "718-7"}]}
    assert [m.analyte for m in bundle_to_patient(collection(res)).measurements] == ["haemoglobin"]


def test_cbc_panel_with_has_member_reads_the_members_once():
    members = [lab("718-7", 11, "g/dL", rid="hb"), lab("751-8", 2.0, "10*9/L", rid="neut"),
               lab("777-3", 160, "10*9/L", rid="plt")]
    panel = {"resourceType": "Observation", "id": "cbc", "status": "final",
             "code": {"coding": [{"system": LOINC, "code": "58410-2"}]}, "effectiveDateTime": "2024-05-27",
             "hasMember": [{"reference": f"Observation/{m['id']}"} for m in members]}
    p = bundle_to_patient(collection(panel, *members))
    assert sorted(m.analyte for m in p.measurements) == ["haemoglobin", "neutrophils", "platelets"]


def test_blood_pressure_panel_and_lab_panel_components():
    bp = {"resourceType": "Observation", "id": "bp", "status": "final",
          "code": {"coding": [{"system": LOINC, "code": "55284-4"}]}, "effectiveDateTime": "2024-05-27",
          "component": [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": quantity(150, "mm[Hg]", "mmHg")},
                        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": quantity(90, "mm[Hg]", "mmHg")}]}
    panel = {"resourceType": "Observation", "id": "liver", "status": "final",
             "code": {"coding": [{"system": LOINC, "code": "24325-3"}]}, "effectiveDateTime": "2024-05-27",
             "component": [{"code": {"coding": [{"system": LOINC, "code": "1742-6"}]}, "valueQuantity": quantity(30, "U/L"),
                            "referenceRange": [{"high": quantity(40, "U/L")}]}]}
    ms = by_analyte(bundle_to_patient(collection(bp, panel)))
    assert ms["systolic_bp"][0].value == 150 and ms["diastolic_bp"][0].value == 90
    assert ms["alt"][0].value == 30 and ms["alt"][0].reference_high == 40


def test_ecog_answer_codes_as_value_or_interpretation():
    # LOINC answer list LL529-9: LA9622-7 = 0 ... LA9627-6 = 5 (dead).
    answers = {"LA9622-7": 0, "LA9623-5": 1, "LA9624-3": 2, "LA9625-0": 3, "LA9626-8": 4, "LA9627-6": 5}
    for code, grade in answers.items():
        as_value = {"resourceType": "Observation", "id": "e", "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "89247-1"}]}, "effectiveDateTime": "2024-05-27",
                    "valueCodeableConcept": {"coding": [{"system": LOINC, "code": code}]}}
        as_interp = {**as_value, "interpretation": [as_value["valueCodeableConcept"]]}
        del as_interp["valueCodeableConcept"]
        for res in (as_value, as_interp):
            assert bundle_to_patient(collection(res)).measurements[0].value == grade


# --- reference ranges --------------------------------------------------------------------------


def _alt_with(ranges, gender="female"):
    res = lab("1742-6", 30, "U/L", referenceRange=ranges)
    return by_analyte(bundle_to_patient(collection(res, pat=patient(gender=gender))))["alt"][0]


def test_reference_range_only_high_only_low_text_only():
    assert _alt_with([{"high": quantity(35, "U/L")}]).reference_high == 35
    m = _alt_with([{"low": quantity(7, "U/L")}])
    assert m.reference_low == 7 and m.reference_high is None
    m = _alt_with([{"text": "< 35 U/L"}])
    assert m.reference_high is None  # text is not parsed: the ULN screens unknown


def test_reference_range_normal_chosen_over_therapeutic():
    meaning = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
    m = _alt_with([{"type": {"coding": [{"system": meaning, "code": "therapeutic"}]}, "high": quantity(100, "U/L")},
                   {"type": {"coding": [{"system": meaning, "code": "normal"}]}, "high": quantity(35, "U/L")}])
    assert m.reference_high == 35


def test_reference_range_by_sex_and_ambiguous():
    ranges = [{"appliesTo": [{"coding": [{"system": "http://snomed.info/sct", "code": "248153007"}], "text": "Male"}],
               "high": quantity(45, "U/L")},
              {"appliesTo": [{"coding": [{"system": "http://snomed.info/sct", "code": "248152002"}], "text": "Female"}],
               "high": quantity(35, "U/L")}]
    assert _alt_with(ranges, "female").reference_high == 35
    assert _alt_with(ranges, "male").reference_high == 45
    assert _alt_with(ranges, "unknown").reference_high is None  # not guessed


# --- LUTATHERA ---------------------------------------------------------------------------------


def test_cycles_are_distinct_days_and_statuses():
    dup = admin(CYCLES[0], rid="dup")  # the same infusion recorded twice
    stopped = admin("2024-03-01", status="stopped")
    wrong = admin("2024-03-02", status="entered-in-error")
    in_progress = admin("2024-04-12", status="in-progress")
    p = bundle_to_patient(collection(*[admin(d) for d in CYCLES], dup, stopped, wrong, in_progress))
    assert [a.date.isoformat() for a in p.lutathera] == [*CYCLES, "2024-04-12"]
    assert p.lutathera[0].activity_mbq == pytest.approx(7400)


def test_dose_units_and_effective_period():
    mci = admin("2024-01-01", dosage={"dose": quantity(200, "mCi")})
    mbq = admin("2024-02-01", dosage={"dose": quantity(7400, "MBq")})
    period = admin("2024-03-01", dosage={"dose": quantity(7.4, "GBq")})
    del period["effectiveDateTime"]
    period["effectivePeriod"] = {"start": "2024-03-01T09:00:00+01:00", "end": "2024-03-01T09:40:00+01:00"}
    bad = admin("2024-04-01", dosage={"dose": quantity(7.4, "Gy")})
    p = bundle_to_patient(collection(mci, mbq, period, bad))
    assert [a.activity_mbq for a in p.lutathera][:3] == pytest.approx([7400, 7400, 7400])
    assert p.lutathera[2].date == dt.date(2024, 3, 1) and p.lutathera[3].activity_mbq is None


def test_medication_reference_contained_bundled_absolute_and_ingredient():
    contained = admin("2024-01-01", medicationReference={"reference": "#m"},
                      contained=[{"resourceType": "Medication", "id": "m", "code": {"text": "Lu-177-DOTATATE (Lutathera)"}}])
    del contained["medicationCodeableConcept"]
    bundled = admin("2024-02-01", medicationReference={"reference": "http://ehr.example/fhir/Medication/lu"})
    del bundled["medicationCodeableConcept"]
    med = {"resourceType": "Medication", "id": "lu", "code": {"coding": [{"system": "http://acme/local", "code": "X1"}]},
           "ingredient": [{"itemCodeableConcept": {"text": "lutetium (177Lu) oxodotreotide"}}]}
    other = admin("2024-03-01", medicationCodeableConcept={"text": "Lutetium Lu 177 vipivotide tetraxetan (Pluvicto)"})
    p = bundle_to_patient(collection(contained, bundled, med, other))
    assert [a.date for a in p.lutathera] == [dt.date(2024, 1, 1), dt.date(2024, 2, 1)]


def test_intra_arterial_route_by_snomed_code_only():
    ia = admin("2024-05-01", dosage={"route": {"coding": [{"system": "http://snomed.info/sct", "code": "58100008"}]},
                                     "dose": quantity(7.4, "GBq")})
    iv = admin("2024-04-01", dosage={"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]}})
    assert [a.route for a in bundle_to_patient(collection(iv, ia)).lutathera] == ["IV", "IAH"]


# --- Patient ------------------------------------------------------------------------------------


@pytest.mark.parametrize("birth,status", [("1960", P), ("1960-05", P), ("2006", U), ("2006-06", U), ("2006-05", P),
                                          ("2006-07", F)])
def test_partial_birth_date_age_only_when_determinable(birth, status):
    # Adult (>= 18) on 2024-06-03: born in 2006 may be 17 or 18; June 2006 likewise; May 2006 is 18.
    p = bundle_to_patient(collection(pat=patient(birth=birth)))
    assert screen(p, as_of=AS_OF).criterion("INC08").status is status


@pytest.mark.parametrize("gender", ["other", "unknown"])
def test_gender_other_or_unknown_is_not_guessed(gender):
    b = collection(lab("2160-0", 1.0, "mg/dL"), lab("29463-7", 70, "kg"), pat=patient(gender=gender))
    p = bundle_to_patient(b)
    assert p.sex == gender
    assert screen(p, as_of=AS_OF).criterion("INC09").status is U  # contraception depends on sex


# --- Conditions and consent ----------------------------------------------------------------------


def _condition(code, *, status="active", system="http://snomed.info/sct", **extra):
    return {"resourceType": "Condition", "id": uid(f"c-{code}-{status}-{sorted(extra)}"),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": status}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": {"coding": [{"system": system, "code": code}]}, **extra}


def test_synthea_pregnancy_resolved_sets_no_fact_active_does():
    past = _condition("72892002", status="resolved", onsetDateTime="2019-01-10", abatementDateTime="2019-10-01")
    assert "pregnant" not in bundle_to_patient(collection(past)).facts
    abated = _condition("72892002", abatementDateTime="2019-10-01")  # abatement without clinicalStatus update
    assert "pregnant" not in bundle_to_patient(collection(abated)).facts
    now = _condition("72892002", onsetDateTime="2024-04-01")
    assert bundle_to_patient(collection(now)).facts["pregnant"] is True


@pytest.mark.parametrize("code", ["401303003", "401314000", "57054005"])
def test_acute_mi_codes_are_events_even_when_resolved(code):
    mi = _condition(code, status="resolved", onsetDateTime="2024-01-10", abatementDateTime="2024-02-01")
    events = bundle_to_patient(collection(mi)).cardiovascular_events
    assert [(e.kind, e.date) for e in events] == [("myocardial_infarction", dt.date(2024, 1, 10))]


def test_history_of_mi_code_is_not_an_event():
    # 399211009 "history of myocardial infarction": its onset is when it was recorded, not the MI.
    assert bundle_to_patient(collection(_condition("399211009", onsetDateTime="2024-01-10"))).cardiovascular_events == ()


def test_consent_scope_must_be_research():
    scope = "http://terminology.hl7.org/CodeSystem/consentscope"
    privacy = {"resourceType": "Consent", "id": "priv", "status": "active", "dateTime": "2024-05-30",
               "scope": {"coding": [{"system": scope, "code": "patient-privacy"}]}}
    research = dict(privacy, id="res", scope={"coding": [{"system": scope, "code": "research"}]})
    assert "informed_consent_signed" not in bundle_to_patient(collection(privacy)).facts
    p = bundle_to_patient(collection(privacy, research))
    assert p.facts["informed_consent_signed"] is True and p.facts["informed_consent_date"] == dt.date(2024, 5, 30)


@pytest.mark.parametrize("bad", ["1960-13-01", "60", "01/05/1960"])
def test_malformed_birth_date_is_refused_naming_it(bad):
    with pytest.raises(InvalidInputError, match="birthDate"):
        bundle_to_patient(collection(pat=patient(birth=bad)))


def test_panel_with_contained_members():
    members = [{k: v for k, v in lab("718-7", 11, "g/dL", rid="hb").items() if k != "effectiveDateTime"},
               lab("777-3", 160, "10*9/L", rid="plt", date="2024-05-26")]
    panel = {"resourceType": "Observation", "id": "cbc", "status": "final", "contained": members,
             "code": {"coding": [{"system": LOINC, "code": "58410-2"}]}, "effectiveDateTime": "2024-05-27T08:00:00+02:00",
             "hasMember": [{"reference": "#hb"}, {"reference": "#plt"}]}
    ms = by_analyte(bundle_to_patient(collection(panel)))
    assert ms["haemoglobin"][0].date == dt.date(2024, 5, 27)  # the panel's date
    assert ms["platelets"][0].date == dt.date(2024, 5, 26)  # its own
    voided = dict(panel, status="entered-in-error")
    assert bundle_to_patient(collection(voided)).measurements == ()


def test_history_bundle_reads_the_latest_version_of_a_result():
    v1 = dict(lab("1742-6", 50, "U/L", rid="alt1"), meta={"versionId": "1", "lastUpdated": "2024-05-28T10:00:00Z"})
    v2 = dict(lab("1742-6", 30, "U/L", rid="alt1", status="amended"),
              meta={"versionId": "2", "lastUpdated": "2024-05-29T10:00:00Z"})
    b = collection(v2, v1)  # history bundles list the newest first
    b["type"] = "history"
    assert [m.value for m in bundle_to_patient(b).measurements] == [30]
    assert [m.value for m in bundle_to_patient(collection(v1, v2)).measurements] == [30]


def test_reference_range_age_bands_and_single_range_for_the_other_sex():
    adult = {"age": {"low": {"value": 18, "unit": "yr", "system": UCUM, "code": "a"}}, "high": quantity(35, "U/L")}
    assert _alt_with([adult]).reference_high == 35  # an adult band covers every screened patient
    child = {"age": {"high": {"value": 17, "code": "a", "system": UCUM}}, "high": quantity(50, "U/L")}
    assert _alt_with([child, adult]).reference_high == 35
    older = {"age": {"low": {"value": 65, "code": "a", "system": UCUM}}, "high": quantity(30, "U/L")}
    assert _alt_with([older]).reference_high is None  # which band applies depends on the screening date
    male_only = [{"appliesTo": [{"text": "male"}], "high": quantity(45, "U/L")}]
    assert _alt_with(male_only, "female").reference_high is None
    assert _alt_with(male_only, "male").reference_high == 45
    two_general = [{"high": quantity(35, "U/L")}, {"high": quantity(40, "U/L")}]
    assert _alt_with(two_general).reference_high is None
    assert _alt_with([{"high": quantity(35, "U/L")}, {"high": quantity(35, "U/L")}]).reference_high == 35


def test_collection_of_per_patient_bundles():
    inner1 = collection(lab("718-7", 11, "g/dL", pid="Patient/a"), pat=patient("a"))
    inner2 = collection(lab("718-7", 7, "g/dL", pid="Patient/b"), pat=patient("b", gender="male"))
    outer = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": inner1}, {"resource": inner2}]}
    a, b = bundle_to_patients(outer)
    assert (a.record_id, [m.value for m in a.measurements]) == ("NIR-a", [11])
    assert (b.record_id, [m.value for m in b.measurements]) == ("NIR-b", [7])


@pytest.mark.parametrize("text,is_lutathera", [
    ("[177Lu]Lu-DOTA-TATE 7.4 GBq", True), ("177Lu-DOTATATE", True), ("Lutetium (177Lu) oxodotreotide", True),
    ("LUTATHERA 370 MBq/mL", True), ("Lu177 dotatate", True),
    ("[68Ga]Ga-DOTATATE (NETSPOT)", False), ("Lutetium Lu 177 vipivotide tetraxetan", False), ("octreotide LAR", False),
])
def test_lutathera_name_variants(text, is_lutathera):
    a = admin("2024-01-01", medicationCodeableConcept={"text": text})
    assert (bundle_to_patient(collection(a)).lutathera is not None) is is_lutathera


def test_logical_and_conditional_patient_references():
    sys_ = "urn:oid:1.2.250.1.213.1.4.8"
    a = lab("718-7", 11, "g/dL", rid="ha")
    a["subject"] = {"identifier": {"system": sys_, "value": "NIR-a"}}  # logical reference only
    b = lab("718-7", 7, "g/dL", pid=f"Patient?identifier={sys_}|NIR-b", rid="hb")  # conditional (Synthea style)
    bundle = collection(a, b, patient("b", gender="male"), pat=patient("a"))
    pa, pb = bundle_to_patients(bundle)
    assert [m.value for m in pa.measurements] == [11] and [m.value for m in pb.measurements] == [7]
    c = lab("718-7", 9, "g/dL", pid=f"Patient?identifier={sys_}|NIR-zz", rid="hc")
    with pytest.raises(InvalidInputError, match="NIR-zz"):
        bundle_to_patients(collection(c, patient("b"), pat=patient("a")))


def test_diagnostic_report_with_contained_results_and_with_referenced_results():
    hb = {k: v for k, v in lab("718-7", 11, "g/dL", rid="hb").items() if k != "effectiveDateTime"}
    report = {"resourceType": "DiagnosticReport", "id": "dr", "status": "final", "contained": [hb],
              "code": {"coding": [{"system": LOINC, "code": "58410-2"}]},
              "effectiveDateTime": "2024-05-27T08:00:00+02:00", "result": [{"reference": "#hb"}]}
    ms = bundle_to_patient(collection(report)).measurements
    assert [(m.analyte, m.date) for m in ms] == [("haemoglobin", dt.date(2024, 5, 27))]
    assert bundle_to_patient(collection(dict(report, status="cancelled"))).measurements == ()
    # a report without contained results (results are their own entries) needs no subject even
    # in a multi-patient Bundle
    plain = {"resourceType": "DiagnosticReport", "id": "dr2", "status": "final", "result": [{"reference": "Observation/x"}]}
    b = collection(plain, lab("718-7", 9, "g/dL", pid="Patient/p1"), lab("718-7", 8, "g/dL", pid="Patient/p2"),
                   patient("p2"))
    assert [len(p.measurements) for p in bundle_to_patients(b)] == [1, 1]


def test_single_patient_conditional_reference_must_match_its_identifier():
    sys_ = "urn:oid:1.2.250.1.213.1.4.8"
    ok = lab("718-7", 11, "g/dL", pid=f"Patient?identifier={sys_}|NIR-p1", rid="ok")
    assert len(bundle_to_patient(collection(ok)).measurements) == 1
    other = lab("718-7", 11, "g/dL", pid=f"Patient?identifier={sys_}|NIR-p9", rid="other")
    with pytest.raises(InvalidInputError, match="NIR-p9"):
        bundle_to_patient(collection(other))
    anonymous = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-01-01", "gender": "male"}
    assert len(bundle_to_patient(collection(other, pat=anonymous)).measurements) == 1  # nothing to compare with


def test_value_as_decimal_string_is_read_and_garbage_is_refused():
    as_text = lab("718-7", 0, "g/dL")
    as_text["valueQuantity"]["value"] = "11.2"
    assert bundle_to_patient(collection(as_text)).measurements[0].value == 11.2
    for bad in ("11,2", "high", True, [11]):
        res = lab("718-7", 0, "g/dL", rid="bad")
        res["valueQuantity"]["value"] = bad
        with pytest.raises(InvalidInputError, match="Observation/bad: valueQuantity.value"):
            bundle_to_patient(collection(res))


def test_event_date_is_onset_not_recorded_date():
    recorded_only = _condition("22298006", recordedDate="2024-05-01")
    onset_period = _condition("84114007", onsetPeriod={"start": "2023-03-01", "end": "2023-04-01"},
                              recordedDate="2024-05-01")
    events = {e.kind: e.date for e in bundle_to_patient(collection(recorded_only, onset_period)).cardiovascular_events}
    assert events == {"myocardial_infarction": None, "heart_failure": dt.date(2023, 3, 1)}
    # an MI known only by its recording date does not exclude as "recent": it stays unknown
    r = screen(bundle_to_patient(collection(recorded_only)), as_of=AS_OF).criterion("EXC07")
    assert r.status is U


@pytest.mark.parametrize("verification", ["unconfirmed", "provisional", "differential"])
def test_suspected_diagnosis_sets_nothing(verification):
    c = _condition("19943007")  # cirrhosis
    c["verificationStatus"] = {"coding": [{"code": verification}]}
    assert "cirrhosis" not in bundle_to_patient(collection(c)).facts
