"""The fast own-format reader (records.fast) gives exactly what the pydantic model gives, or steps aside.

Why: ``patient_from_json`` skips the model for records in the plain shape (issue 10, speed). It
must never accept a text the model refuses, and never read a value differently (an integer where
the model makes a float, whitespace the model strips, a lax boolean). Each text below is read
both ways: either the fast reader returns ``None`` or its :class:`PatientData` has the same
``repr`` as ``ScreeningRecord.model_validate_json(text).to_patient()`` (``repr`` shows value types
and the order of the facts).
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from lutarterial.records import ScreeningRecord, make_records
from lutarterial.records.fast import patient_from_json


def _slow(text: str):
    try:
        return ScreeningRecord.model_validate_json(text).to_patient()
    except Exception:  # noqa: BLE001 - any refusal
        return None


def _same(text: str) -> bool:
    """True when the fast reader answered (checked against the model); False when it stepped aside."""
    fast = patient_from_json(text)
    if fast is None:
        return False
    slow = _slow(text)
    assert slow is not None, f"fast reader accepted a text the model refuses: {text[:300]}"
    assert repr(fast) == repr(slow), text[:300]
    assert fast == slow
    return True


def test_plain_synthetic_records_take_the_fast_path():
    for rec in make_records(300, seed=11):
        assert _same(json.dumps(rec, ensure_ascii=False))
        assert _same(json.dumps(rec))  # \\u escapes for non-ASCII site names


# (path, value) edits, each applied to a plain record: the fast reader must agree or step aside.
_EDITS: list[tuple[tuple[Any, ...], Any]] = [
    (("record_id",), " SYN-1"), (("record_id",), "SYN-1 "), (("record_id",), ""), (("record_id",), "x" * 200),
    (("record_id",), "x" * 201), (("record_id",), 7), (("record_id",), None), (("record_id",), "\u3000x"),
    (("screening_date",), "2024-6-03"), (("screening_date",), "2024-02-30"), (("screening_date",), "20240603"),
    (("screening_date",), "2024-06-03T00:00:00"), (("screening_date",), 1700000000), (("screening_date",), None),
    (("screening_date",), "0000-01-01"), (("screening_date",), "\u0662024-06-03"), (("screening_date",), " 2024-06-03"),
    (("site",), " Bordeaux"), (("site",), 3), (("site",), None), (("site",), ""),
    (("patient",), None), (("patient",), {}), (("patient", "birth_date"), "1950"), (("patient", "birth_date"), "1950-02"),
    (("patient", "birth_date"), "1950-13"), (("patient", "birth_date"), "1950-02-30"), (("patient", "birth_date"), ""),
    (("patient", "birth_date"), "1950-01-01 "), (("patient", "birth_date"), 1950), (("patient", "sex"), "Male"),
    (("patient", "sex"), "other"), (("patient", "sex"), "unknown"), (("patient", "sex"), " male"),
    (("patient", "menopausal_status"), "peri"), (("patient", "extra"), 1),
    (("tumour",), None), (("tumour", "histologically_proven"), 1), (("tumour", "histologically_proven"), "true"),
    (("tumour", "differentiation"), "poor"), (("tumour", "differentiation"), "moderate"),
    (("tumour", "primary_origin"), "ileum "), (("tumour", "primary_origin"), 5),
    (("disease", "hepatic_invasion_percent"), 50), (("disease", "hepatic_invasion_percent"), 0),
    (("disease", "hepatic_invasion_percent"), -0.0), (("disease", "hepatic_invasion_percent"), 100),
    (("disease", "hepatic_invasion_percent"), 100.0001), (("disease", "hepatic_invasion_percent"), -1),
    (("disease", "hepatic_invasion_percent"), True), (("disease", "hepatic_invasion_percent"), "50"),
    (("disease", "progression_date"), None), (("disease", "progression_on_ssa"), 0),
    (("lutathera_cycles",), None), (("lutathera_cycles",), []), (("lutathera_cycles",), {}),
    (("lutathera_cycles", 0, "route"), "IAH"), (("lutathera_cycles", 0, "route"), "iv"),
    (("lutathera_cycles", 0, "route"), None), (("lutathera_cycles", 0, "activity_mbq"), 0),
    (("lutathera_cycles", 0, "activity_mbq"), 100000), (("lutathera_cycles", 0, "activity_mbq"), 100000.5),
    (("lutathera_cycles", 0, "activity_mbq"), 7400), (("lutathera_cycles", 0, "activity_mbq"), None),
    (("lutathera_cycles", 0, "cancelled_for_toxicity"), None), (("lutathera_cycles", 0, "cancelled_for_toxicity"), 1),
    (("lutathera_cycles", 0, "extra"), 1), (("lutathera_cycles", 0, "date"), None),
    (("post_therapy_scans",), []), (("post_therapy_scans", 0, "residual_uptake"), None),
    (("post_therapy_scans", 0, "residual_uptake"), "yes"), (("inclusion_imaging",), None),
    (("inclusion_imaging", 0, "resectable"), None), (("inclusion_imaging", 0, "resectable"), 0),
    (("measurements",), None), (("measurements",), []), (("measurements", 0, "value"), 12),
    (("measurements", 0, "value"), -0.0), (("measurements", 0, "value"), 0), (("measurements", 0, "value"), "12.5"),
    (("measurements", 0, "value"), None), (("measurements", 0, "value"), True), (("measurements", 0, "value"), 2**60),
    (("measurements", 0, "value"), 1.0000000000000002), (("measurements", 0, "value"), 5e-324),
    (("measurements", 0, "unit"), " g/L"), (("measurements", 0, "unit"), ""), (("measurements", 0, "unit"), None),
    (("measurements", 0, "unit"), 5), (("measurements", 0, "analyte"), "glucose"), (("measurements", 0, "analyte"), None),
    (("measurements", 0, "reference_high"), 40), (("measurements", 0, "reference_high"), "40"),
    (("measurements", 0, "reference_low"), -1), (("measurements", 0, "reference_unit"), "g/dL"),
    (("measurements", 0, "reference_unit"), "g/dL "), (("measurements", 0, "source"), "lab 1"),
    (("measurements", 0, "source"), ""), (("measurements", 0, "source"), " lab"), (("measurements", 0, "date"), None),
    (("measurements", 0, "date"), "2024-05-32"), (("measurements", 0, "extra"), 1),
    (("liver",), None), (("liver", "child_pugh_score"), 7), (("liver", "child_pugh_score"), 7.0),
    (("liver", "child_pugh_score"), 4), (("liver", "child_pugh_score"), 16), (("liver", "child_pugh_score"), True),
    (("liver", "ascites"), "mild"), (("liver", "ascites"), "severe"), (("liver", "encephalopathy"), "grade_3_4"),
    (("cardiac",), None), (("cardiac", "events"), None), (("cardiac", "events"), [{"type": "stroke"}]),
    (("cardiac", "events"), [{"type": "stroke", "date": "2024-01-01"}]), (("cardiac", "events"), [{"date": "2024-01-01"}]),
    (("cardiac", "events"), [{"type": "flu", "date": "2024-01-01"}]), (("cardiac", "events"), {}),
    (("cardiac", "antihypertensive_treatment"), None), (("administrative", "informed_consent_date"), "2024-06-01"),
    (("administrative", "pregnant"), True), (("administrative", "plateletes"), 1), (("plateletes",), 1),
]


def _apply(rec: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    r = copy.deepcopy(rec)
    node: Any = r
    try:
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[path[-1]] = value
    except (TypeError, IndexError, KeyError):  # an earlier edit replaced a parent: leave the record as it is
        return rec
    return r


@pytest.mark.parametrize("path,value", _EDITS, ids=[f"{'.'.join(map(str, p))}={v!r}"[:60] for p, v in _EDITS])
def test_edits_agree_with_the_model(path, value):
    rec = make_records(1, seed=5)[0]
    _same(json.dumps(_apply(rec, path, value)))


@pytest.mark.parametrize("text", [
    '{"record_id": "x"}', '{"record_id": "x", "record_id": "y"}', '{"record_id": "x\\ud800"}',
    '{"record_id": "x\\uD83D\\uDE00"}', '{"record_id": "\\u00e9"}', '{"record_id": "x",}', '[{"record_id": "x"}]',
    '{"record_id": "x", "measurements": [{"analyte": "alt", "value": NaN, "unit": "U/L"}]}',
    '{"record_id": "x", "measurements": [{"analyte": "alt", "value": Infinity, "unit": "U/L"}]}',
    '{"record_id": "x", "measurements": [{"analyte": "alt", "value": 1e400, "unit": "U/L"}]}',
    '{"record_id": "x", "measurements": [{"analyte": "alt", "value": -0, "unit": "U/L"}]}',
    '{"record_id": "x", "measurements": [{"analyte": "alt", "value": 1.5, "value": 2.5, "unit": "U/L"}]}',
    '\ufeff{"record_id": "x"}', '{"record_id": "x"}\n', '  {"record_id": "x"}  ', '{"record_id": "x"} 1', "",
    "null", '"x"', '{"record_id": "x", "patient": {"birth_date": "\u0661\u0669\u0665\u0660"}}',
])
def test_odd_texts_agree_with_the_model(text):
    _same(text)


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False, allow_infinity=False),
              st.sampled_from(["2024-06-03", "1950", " x", "g/L", "IV", "male", "well", "stroke", "alt", "2024-13-01"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["date", "value", "unit"]),
                                                                         inner, max_size=3)),
    max_leaves=6,
)
_paths = st.sampled_from([p for p, _ in _EDITS])


@settings(max_examples=300, deadline=None)
@given(path=_paths, value=_json_values, seed=st.integers(0, 50))
def test_random_edits_agree_with_the_model(path, value, seed):
    rec = make_records(1, seed=seed)[0]
    _same(json.dumps(_apply(rec, path, value)))


def test_mutated_cohort_agrees_with_the_model():
    rng = random.Random(2024)
    fields = [p for p, _ in _EDITS]
    hits = 0
    for rec in make_records(400, seed=21):
        for _ in range(rng.randint(0, 3)):
            path = rng.choice(fields)
            value = rng.choice([v for p, v in _EDITS if p == path] + [None])
            rec = _apply(rec, path, value)
        hits += _same(json.dumps(rec, ensure_ascii=rng.random() < 0.5))
    assert hits > 50
