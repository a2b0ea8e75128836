"""Property-based: no record crashes the engine, and the verdict follows the three-valued rules."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings, strategies as st

from lutarterial.eligibility import Administration, Event, Imaging, Measurement, PatientData, Scan, Status, screen
from lutarterial.eligibility.patient import EVENT_TYPES
from lutarterial.errors import InvalidInputError
from lutarterial.records import parse_record
from lutarterial.units import ANALYTES

DAY0 = dt.date(2021, 4, 1)
dates = st.one_of(st.none(), st.dates(min_value=dt.date(2019, 1, 1), max_value=dt.date(2026, 12, 31)))
tri = st.sampled_from([True, False, None])
units = st.sampled_from([None, "g/dL", "g/L", "mmol/L", "G/L", "/mm3", "10*9/L", "10*3/uL", "umol/L", "mg/dL",
                         "U/L", "ukat/L", "kg", "%", "mL/min", "mL/min/{1.73_m2}", "s", "1", "mm[Hg]", "cells",
                         "furlong", "", "x10^9/L"])
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6).map(float))

measurement = st.builds(
    Measurement,
    analyte=st.sampled_from(sorted(ANALYTES) + ["ecog", "unknown_thing"]),
    value=numbers,
    unit=units,
    date=dates,
    reference_low=st.one_of(st.none(), numbers),
    reference_high=st.one_of(st.none(), numbers),
    reference_unit=st.one_of(st.none(), units),
)
facts = st.fixed_dictionaries(
    {},
    optional={
        "histologically_proven": tri, "differentiation": st.sampled_from(["well", "poor", "odd"]),
        "primary_origin": st.sampled_from(["pancreas", "ileum", "lung", "unknown_primary", "?"]),
        "progression_on_ssa": tri, "progression_date": dates,
        "hepatic_invasion_percent": st.floats(0, 100), "cirrhosis": tri,
        "child_pugh_score": st.integers(5, 15), "ascites": st.sampled_from(["none", "mild", "moderate_severe", "x"]),
        "encephalopathy": st.sampled_from(["none", "grade_1_2", "grade_3_4"]),
        "informed_consent_signed": tri, "informed_consent_date": dates, "social_security": tri,
        "pregnant": tri, "antihypertensive_treatment": tri, "coagulation_disorder": tri,
        "carcinoid_heart_disease": tri, "lutathera_contraindicated": tri, "contraception_agreed": tri,
    },
).map(lambda d: {k: v for k, v in d.items() if v is not None})

patients = st.builds(
    PatientData,
    record_id=st.text(min_size=1, max_size=8),
    birth_date=dates,
    birth_date_precision=st.sampled_from(["day", "month", "year"]),
    sex=st.sampled_from([None, "female", "male", "other"]),
    menopausal_status=st.sampled_from([None, "pre", "post"]),
    facts=facts,
    measurements=st.lists(measurement, max_size=12).map(tuple),
    lutathera=st.one_of(st.none(), st.lists(st.builds(
        Administration, date=dates, route=st.sampled_from(["IV", "IAH"]), activity_mbq=st.none(),
        dose_reduced_for_toxicity=tri, cancelled_for_toxicity=tri), max_size=6).map(tuple)),
    scans=st.one_of(st.none(), st.lists(st.builds(Scan, date=dates, residual_uptake=tri), max_size=3).map(tuple)),
    imaging=st.one_of(st.none(), st.lists(st.builds(
        Imaging, date=dates, complete_response=tri, liver_dominant_or_exclusive=tri, recist_assessable=tri,
        resectable=tri, extrahepatic_dominant_or_threatening=tri), max_size=3).map(tuple)),
    cardiovascular_events=st.one_of(st.none(), st.lists(st.builds(
        Event, kind=st.sampled_from(EVENT_TYPES + ("other",)), date=dates), max_size=3).map(tuple)),
    cardiovascular_history_complete=st.booleans(),
)


def _check_verdict(result) -> None:
    statuses = [c.status for c in result.criteria]
    assert len(statuses) == 23 and all(isinstance(s, Status) for s in statuses)
    if Status.FAIL in statuses:
        assert result.verdict.value == "ineligible"
    elif Status.UNKNOWN in statuses:
        assert result.verdict.value == "incomplete"
    else:
        assert result.verdict.value == "eligible"
    for c in result.criteria:
        assert c.reason
        if c.status is Status.UNKNOWN:
            assert any(m.startswith(c.id + ":") for m in result.missing)
    d = result.to_dict()
    assert d["verdict"] == result.verdict.value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient=patients, as_of=st.dates(min_value=DAY0, max_value=dt.date(2026, 12, 31)),
       version=st.sampled_from([None, "1", "2"]))
def test_no_patient_crashes_the_engine(patient, as_of, version):
    try:
        result = screen(patient, as_of=as_of, protocol_version=version)
    except InvalidInputError:
        # the only accepted refusal: nothing here should raise it, so fail loudly if it does
        raise AssertionError("screen() refused a PatientData") from None
    _check_verdict(result)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=5), st.sampled_from(["2024-05-01", "2024-13-01", "1960", "well"]))


@settings(max_examples=150, deadline=None)
@given(
    data=st.fixed_dictionaries(
        {"record_id": st.text(min_size=1, max_size=5)},
        optional={
            "screening_date": st.sampled_from(["2024-06-03", "2022-01-01", "x"]),
            "patient": st.dictionaries(st.sampled_from(["birth_date", "sex", "menopausal_status", "zz"]), json_scalars),
            "measurements": st.lists(st.dictionaries(
                st.sampled_from(["analyte", "value", "unit", "date", "reference_high"]), json_scalars), max_size=4),
            "liver": st.dictionaries(st.sampled_from(["cirrhosis", "ascites", "child_pugh_score"]), json_scalars),
            "lutathera_cycles": st.lists(st.dictionaries(st.sampled_from(["date", "route"]), json_scalars), max_size=5),
        },
    )
)
def test_arbitrary_json_is_refused_cleanly_or_screened(data):
    try:
        rec = parse_record(data)
    except InvalidInputError:
        return
    try:
        result = screen(rec)
    except InvalidInputError:
        return  # no screening date, or none in force
    except Exception as exc:  # noqa: BLE001
        from lutarterial.errors import ProtocolDefinitionError

        assert isinstance(exc, ProtocolDefinitionError), repr(exc)
        return
    _check_verdict(result)


_BASE = None


def _base_patient():
    global _BASE
    if _BASE is None:
        from lutarterial.records import make_records

        # the first fully eligible synthetic record: every lab path is live
        _BASE = next(p for p in (parse_record(r).to_patient() for r in make_records(20, seed=5))
                     if screen(p).verdict.value == "eligible")
    return _BASE


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(0, 14),
    value=st.one_of(st.just("keep"), numbers),
    unit=st.one_of(st.just("keep"), units),
    day_offset=st.one_of(st.just(-3), st.integers(-400, 30)),
    ref_high=st.one_of(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e-300]), st.none(), numbers),
    ref_low=st.one_of(st.none(), numbers),
    duplicate=st.booleans(),
)
def test_perturbing_one_result_of_a_complete_record_never_crashes(index, value, unit, day_offset, ref_high, ref_low,
                                                                   duplicate):
    import dataclasses

    base = _base_patient()
    ms = list(base.measurements)
    old = ms[index]
    new = old._replace(value=old.value if value == "keep" else value, unit=old.unit if unit == "keep" else unit,
                       date=base.screening_date + dt.timedelta(days=day_offset),
                       reference_high=ref_high, reference_low=ref_low)
    if duplicate:
        ms.append(new)
    else:
        ms[index] = new
    patient = dataclasses.replace(base, measurements=tuple(ms))
    _check_verdict(screen(patient))
