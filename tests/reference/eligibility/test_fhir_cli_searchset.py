"""``lutarterial screen`` on FHIR files written by other software (end to end, in-process).

A HAPI-style searchset holding two patients (absolute fullUrls, ``search.mode`` include, an
OperationOutcome) is screened as two records; a censored ALT reaches the JSON output as an
*unknown* naming the bound; a Bundle whose resource names a patient it does not hold is
reported unreadable with that resource named, never screened with the datum mis-attributed.
"""

from __future__ import annotations

import csv
import json

import pytest

from lutarterial.cli.main import run

BASE = "http://hapi.example.org/fhir"
UCUM = "http://unitsofmeasure.org"


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _obs(rid, pid, loinc, value, code, *, comparator=None, high=None):
    q = {"value": value, "unit": code, "system": UCUM, "code": code}
    if comparator:
        q["comparator"] = comparator
    res = {"resourceType": "Observation", "id": rid, "status": "final", "meta": {"versionId": "1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
           "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2024-05-27T08:30:00+02:00",
           "valueQuantity": q}
    if high is not None:
        res["referenceRange"] = [{"high": {"value": high, "unit": code, "system": UCUM, "code": code}}]
    return {"fullUrl": f"{BASE}/Observation/{rid}", "search": {"mode": "match"}, "resource": res}


def _cycles(pid):
    return [{"fullUrl": f"{BASE}/MedicationAdministration/{pid}-{d}", "search": {"mode": "include"},
             "resource": {"resourceType": "MedicationAdministration", "id": f"{pid}-{d}", "status": "completed",
                          "subject": {"reference": f"{BASE}/Patient/{pid}"}, "effectiveDateTime": d,
                          "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc",
                                                                    "code": "V10XX04"}]}}}
            for d in ("2023-09-01", "2023-10-27", "2023-12-22", "2024-02-16")]


def _patient(pid, gender):
    return {"fullUrl": f"{BASE}/Patient/{pid}", "search": {"mode": "include"},
            "resource": {"resourceType": "Patient", "id": pid, "birthDate": "1958-11-02", "gender": gender}}


def test_searchset_with_two_patients_and_a_censored_alt(tmp_path, capsys):
    entries = [_patient("101", "female"), _patient("202", "male"), *_cycles("101"), *_cycles("202"),
               _obs("a1", "101", "1742-6", 5, "U/L", comparator="<", high=35),
               _obs("a2", "202", "1742-6", 30, "U/L", high=35),
               {"search": {"mode": "outcome"}, "resource": {"resourceType": "OperationOutcome",
                                                            "issue": [{"severity": "warning", "code": "processing"}]}}]
    f = tmp_path / "export.json"
    f.write_text(json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}), encoding="utf-8")
    code, out, _ = _run(["screen", str(f), "--json", "--as-of", "2024-06-03", "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    lines = {d["record"]: d for d in map(json.loads, out.strip().splitlines())}
    assert set(lines) == {"101", "202"}
    inc06 = {rid: next(c for c in d["criteria"] if c["id"] == "INC06") for rid, d in lines.items()}
    assert inc06["101"]["status"] == "unknown" and "censored result <5" in inc06["101"]["reason"]
    assert "censored" not in inc06["202"]["reason"]
    inc03 = {rid: next(c for c in d["criteria"] if c["id"] == "INC03")["status"] for rid, d in lines.items()}
    assert inc03 == {"101": "pass", "202": "pass"}


def test_bundle_with_a_foreign_patients_result_is_unreadable_and_named(tmp_path, capsys):
    entries = [_patient("101", "female"), _obs("x9", "999", "718-7", 11, "g/dL")]
    good = tmp_path / "a_good.json"
    good.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [_patient("7", "male")]}),
                    encoding="utf-8")
    bad = tmp_path / "b_bad.json"
    bad.write_text(json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}), encoding="utf-8")
    code, _, err = _run(["screen", str(good), str(bad), "--as-of", "2024-06-03", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "Traceback" not in err
    rows = list(csv.DictReader((tmp_path / "o" / "screening-log.csv").open(encoding="utf-8")))
    unreadable = [r for r in rows if r["verdict"] == "unreadable"]
    assert len(unreadable) == 1 and "Observation/x9" in unreadable[0]["reasons"] and "Patient/999" in unreadable[0]["reasons"]
