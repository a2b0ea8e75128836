"""Worked FHIR R4 Bundle, checked by hand: Cockcroft-Gault from vendor-shaped Observations.

Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine.
Nephron 1976;16:31-41: CrCl (mL/min) = (140 - age) x weight (kg) / (72 x SCr (mg/dL)),
x 0.85 for women. Patient: woman born 1958-11-02, screened 2024-06-03 (age 65), 64 kg
sent as 141.096 [lb_av] (1 lb = 0.45359237 kg exactly), creatinine 0.9 mg/dL sent by a
Synthea-style transaction bundle with urn:uuid references.
By hand: 75 x 64 / (72 x 0.9) = 74.074; x 0.85 = 62.963 mL/min. Tolerance 0.05 mL/min
(the evidence is rounded to 0.1).
"""

from __future__ import annotations

import datetime as dt

import pytest

from lutarterial.eligibility import Status, screen
from lutarterial.records import bundle_to_patient

AS_OF = dt.date(2024, 6, 3)
PID = "8f5c5f57-4b1e-4d0a-9d4b-6a0c2c3e9b10"
UCUM = "http://unitsofmeasure.org"


def _obs(i, loinc, value, code, unit=None):
    return {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}",
            "request": {"method": "POST", "url": "Observation"},
            "resource": {"resourceType": "Observation", "id": f"00000000-0000-0000-0000-{i:012d}", "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                         "subject": {"reference": f"urn:uuid:{PID}"},
                         "effectiveDateTime": "2024-05-27T08:30:00+02:00",
                         "valueQuantity": {"value": value, "unit": unit or code, "system": UCUM, "code": code}}}


def _bundle(gender="female"):
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{PID}", "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "id": PID, "birthDate": "1958-11-02", "gender": gender}},
        *[{"fullUrl": f"urn:uuid:ma-{d}", "request": {"method": "POST", "url": "MedicationAdministration"},
           "resource": {"resourceType": "MedicationAdministration", "id": f"ma-{d}", "status": "completed",
                        "subject": {"reference": f"urn:uuid:{PID}"}, "effectiveDateTime": d,
                        "medicationCodeableConcept": {"text": "LUTATHERA"}}}
          for d in ("2023-09-01", "2023-10-27", "2023-12-22", "2024-02-16")],
        _obs(1, "2160-0", 0.9, "mg/dL", "mg/dl"),
        _obs(2, "29463-7", 141.096, "[lb_av]", "lb"),
    ]}


def _crcl_evidence(result):
    inc06 = result.criterion("INC06")
    return inc06, [e for e in inc06.evidence if e.label.startswith("CrCl")]


def test_cockcroft_gault_from_fhir_units():
    inc06, ev = _crcl_evidence(screen(bundle_to_patient(_bundle()), as_of=AS_OF))
    assert len(ev) == 1
    assert ev[0].value == pytest.approx(62.963, abs=0.05)
    assert "age 65 y" in ev[0].note and "64.0 kg" in ev[0].note and "0.90 mg/dL" in ev[0].note


@pytest.mark.parametrize("gender", ["other", "unknown"])
def test_cockcroft_gault_not_guessed_without_female_or_male(gender):
    inc06, ev = _crcl_evidence(screen(bundle_to_patient(_bundle(gender)), as_of=AS_OF))
    assert ev == [] and inc06.status is Status.UNKNOWN
    assert any("sex" in n for n in inc06.needs)
