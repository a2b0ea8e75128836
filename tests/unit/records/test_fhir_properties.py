"""Property-based: odd FHIR content is refused cleanly or read; it never crashes the reader or engine."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings, strategies as st

from lutarterial.eligibility import screen
from lutarterial.errors import InvalidInputError
from lutarterial.records import bundle_to_patients

scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=True), st.text(max_size=6),
                   st.sampled_from(["2024-05-30", "2024-05", "2024", "2024-05-30T10:00:00Z", "final", "active",
                                    "entered-in-error", "completed", "female", "V10XX04", "718-7", "777-3",
                                    "89247-1", "LA9624-3", "http://loinc.org", "10*9/L", "g/dL", "mg/dL"]))
coding = st.fixed_dictionaries({}, optional={"system": scalar, "code": scalar, "display": scalar})
concept = st.one_of(scalar, st.fixed_dictionaries({}, optional={"coding": st.one_of(scalar, st.lists(coding, max_size=2)),
                                                                  "text": scalar}))
quantity = st.one_of(scalar, st.fixed_dictionaries({}, optional={"value": scalar, "unit": scalar, "code": scalar,
                                                                   "system": scalar, "comparator": scalar}))
resource = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Observation", "MedicationAdministration", "Condition", "Consent", "Coverage",
                                      "Procedure", "Medication", "Encounter"])},
    optional={
        "id": scalar, "status": scalar, "code": concept, "valueQuantity": quantity, "valueInteger": scalar,
        "valueCodeableConcept": concept, "effectiveDateTime": scalar, "effectivePeriod": st.one_of(scalar, st.fixed_dictionaries({"start": scalar})),
        "referenceRange": st.one_of(scalar, st.lists(st.fixed_dictionaries({}, optional={"low": quantity, "high": quantity}), max_size=2)),
        "component": st.one_of(scalar, st.lists(st.fixed_dictionaries({}, optional={"code": concept, "valueQuantity": quantity}), max_size=2)),
        "medicationCodeableConcept": concept, "medicationReference": st.one_of(scalar, st.fixed_dictionaries({"reference": scalar})),
        "dosage": st.one_of(scalar, st.fixed_dictionaries({}, optional={"route": concept, "dose": quantity})),
        "verificationStatus": concept, "onsetDateTime": scalar, "dateTime": scalar,
        "subject": st.one_of(scalar, st.fixed_dictionaries({"reference": scalar})),
    },
)
patient = st.fixed_dictionaries({"resourceType": st.just("Patient")},
                                optional={"id": scalar, "birthDate": scalar, "gender": scalar,
                                          "identifier": st.one_of(scalar, st.lists(st.fixed_dictionaries({"value": scalar}), max_size=1))})


@settings(max_examples=250, deadline=None)
@given(patients=st.lists(patient, min_size=0, max_size=2), resources=st.lists(resource, max_size=8),
       entry_junk=st.lists(scalar, max_size=2))
def test_odd_bundles_never_crash(patients, resources, entry_junk):
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in patients + resources] + list(entry_junk)}
    try:
        records = bundle_to_patients(bundle, "prop")
    except InvalidInputError:
        return
    for rec in records:
        result = screen(rec, as_of=dt.date(2024, 6, 3))
        assert result.verdict.value in ("eligible", "ineligible", "incomplete")
