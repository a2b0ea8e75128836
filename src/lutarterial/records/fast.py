"""A fast reader for own-format records in their plain shape: JSON text -> :class:`PatientData`.

Why (issue 10, speed): for a cohort of 100,000 records, validating each line with the pydantic
model and then converting the model (``ScreeningRecord.model_validate_json(text).to_patient()``)
was about a third of the screening CPU (profiled). This reader parses with the same JSON parser
(``pydantic_core.from_json``, i.e. jiter, which pydantic's own ``validate_json`` uses) and builds
the domain view directly, but only for records in the plain shape: every value of exactly the
type the schema names (JSON booleans for booleans, numbers for numbers, ``YYYY-MM-DD`` strings
for dates, strings with no surrounding whitespace, known keys only). For anything else it
returns ``None`` and the caller uses the pydantic model, which then accepts, coerces or rejects
with its own message. So the model stays the one definition of a valid record; this module only
takes the shortcut where the model's answer is certain, and
``tests/unit/records/test_fast_reader.py`` checks, on a varied corpus, that the shortcut gives
exactly (``repr``-equal) what the model gives.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from pydantic_core import from_json

from lutarterial.eligibility.patient import EVENT_TYPES, Administration, Event, Imaging, Measurement, PatientData, Scan
from lutarterial.records.schema import MEASUREMENT_ANALYTES, _PARTIAL_DATE, _parse_partial

__all__ = ["patient_from_json"]


class _Slow(Exception):
    """Not the plain shape: the pydantic model decides."""


_new = tuple.__new__
_date_from_iso = _dt.date.fromisoformat
_MAX_EXACT_INT = 2**53

# Field kinds: "b" bool | None; "s" str | None (no surrounding whitespace); "d" date | None;
# a frozenset: one of those strings | None; ("f", low, high, low_inclusive): a finite number | None
# within the bounds (a JSON integer becomes a float, as the model makes it); ("i", low, high): an
# integer | None within the bounds (inclusive).
_BOOL, _STR, _DATE = "b", "s", "d"

#: Fact sections in the model's field order (``ScreeningRecord.to_patient`` reads them in this order).
_TUMOUR = (("histologically_proven", _BOOL), ("differentiation", frozenset({"well", "poor"})),
           ("primary_origin", _STR))
_DISEASE = (("progression_on_ssa", _BOOL), ("progression_date", _DATE),
            ("hepatic_invasion_percent", ("f", 0.0, 100.0, True)))
_LIVER = (("coagulation_disorder", _BOOL), ("portal_thrombosis", _BOOL), ("intrahepatic_biliary_dilatation", _BOOL),
          ("digestive_or_biliary_anastomosis_or_fistula", _BOOL), ("cirrhosis", _BOOL),
          ("child_pugh_score", ("i", 5, 15)), ("ascites", frozenset({"none", "mild", "moderate_severe"})),
          ("encephalopathy", frozenset({"none", "grade_1_2", "grade_3_4"})))
_ADMIN = (("informed_consent_signed", _BOOL), ("informed_consent_date", _DATE), ("social_security", _BOOL),
          ("contraception_agreed", _BOOL), ("legal_protection", _BOOL), ("unable_to_consent", _BOOL),
          ("pregnant", _BOOL), ("breastfeeding", _BOOL), ("other_interventional_trial", _BOOL),
          ("mri_contraindicated", _BOOL), ("lutathera_contraindicated", _BOOL))
_CARDIAC_FACTS = (("carcinoid_heart_disease", _BOOL), ("antihypertensive_treatment", _BOOL))

_TOP_KEYS = frozenset({"record_id", "screening_date", "site", "patient", "tumour", "disease", "lutathera_cycles",
                       "post_therapy_scans", "inclusion_imaging", "measurements", "liver", "cardiac",
                       "administrative"})
_PATIENT_KEYS = frozenset({"birth_date", "sex", "menopausal_status"})
_SEXES = frozenset({"female", "male", "other", "unknown"})
_MENOPAUSAL = frozenset({"pre", "post"})
_TUMOUR_KEYS = frozenset(k for k, _ in _TUMOUR)
_DISEASE_KEYS = frozenset(k for k, _ in _DISEASE)
_LIVER_KEYS = frozenset(k for k, _ in _LIVER)
_ADMIN_KEYS = frozenset(k for k, _ in _ADMIN)
_CARDIAC_KEYS = frozenset({"carcinoid_heart_disease", "antihypertensive_treatment", "events"})
_CYCLE_KEYS = frozenset({"date", "route", "activity_mbq", "dose_reduced_for_toxicity", "cancelled_for_toxicity"})
_SCAN_KEYS = frozenset({"date", "residual_uptake"})
_IMAGING_KEYS = frozenset({"date", "complete_response", "liver_dominant_or_exclusive", "recist_assessable",
                           "resectable", "extrahepatic_dominant_or_threatening"})
_EVENT_KEYS = frozenset({"type", "date"})
_MEASUREMENT_KEYS = frozenset({"analyte", "value", "unit", "date", "reference_low", "reference_high",
                               "reference_unit", "source"})
_ANALYTES = frozenset(MEASUREMENT_ANALYTES)
_EVENTS = frozenset(EVENT_TYPES)
_ROUTES = frozenset({"IV", "IAH"})

#: ``YYYY-MM-DD`` text -> date, and strings known to need no stripping (dates, units, sources
#: repeat across a cohort; both bounded).
_DATES: dict[str, _dt.date] = {}
_PLAIN: set[str] = set()
_CACHE_MAX = 20_000


def _date(v: Any) -> _dt.date | None:
    if v is None:
        return None
    if type(v) is not str:
        raise _Slow
    d = _DATES.get(v)
    if d is not None:
        return d
    if len(v) != 10 or v[4] != "-" or v[7] != "-" or not v.isascii() or not (v[:4] + v[5:7] + v[8:]).isdigit():
        raise _Slow
    try:
        d = _date_from_iso(v)
    except ValueError:
        raise _Slow from None
    if len(_DATES) >= _CACHE_MAX:
        _DATES.clear()
    _DATES[v] = d
    return d


def _str(v: Any) -> str | None:
    """A string the model would keep as it is (``str_strip_whitespace``: nothing to strip)."""
    if v is None:
        return None
    if type(v) is not str:
        raise _Slow
    if v in _PLAIN:
        return v
    if v and (v[0].isspace() or v[-1].isspace()):
        raise _Slow  # whitespace to strip: the model decides
    if len(_PLAIN) >= _CACHE_MAX:
        _PLAIN.clear()
    _PLAIN.add(v)
    return v


def _float(v: Any) -> float | None:
    """A finite number as the model's ``float`` field gives it (a JSON integer becomes a float)."""
    if v is None:
        return None
    t = type(v)
    if t is float:
        if v - v != 0.0:  # NaN or infinite
            raise _Slow
        return v
    if t is int and -_MAX_EXACT_INT <= v <= _MAX_EXACT_INT:
        return float(v)
    raise _Slow


def _bool(v: Any) -> bool | None:
    if v is None or v is True or v is False:
        return v
    raise _Slow


def _value(v: Any, kind: Any) -> Any:
    if v is None:
        return None
    if v is True or v is False:
        if kind == _BOOL:
            return v
        raise _Slow
    if kind == _BOOL:
        raise _Slow
    if kind == _STR:
        return _str(v)
    if kind == _DATE:
        return _date(v)
    if type(kind) is frozenset:
        if type(v) is str and v in kind:
            return v
        raise _Slow
    if kind[0] == "f":
        v = _float(v)
        low, high, low_inclusive = kind[1], kind[2], kind[3]
        if v < low or (v == low and not low_inclusive) or v > high:
            raise _Slow
        return v
    # ("i", low, high)
    if type(v) is not int or not kind[1] <= v <= kind[2]:
        raise _Slow
    return v


_EMPTY: dict[str, Any] = {}
_NO_ITEMS: list[Any] = []


def _section(data: dict[str, Any], name: str, keys: frozenset[str]) -> dict[str, Any]:
    obj = data.get(name, _EMPTY)
    if type(obj) is not dict or not obj.keys() <= keys:
        raise _Slow
    return obj


def _facts(facts: dict[str, Any], obj: dict[str, Any], spec: tuple) -> None:
    if obj:
        for k, kind in spec:
            v = obj.get(k)
            if v is not None:
                facts[k] = v if (v is True or v is False) and kind == _BOOL else _value(v, kind)


def _items(data: dict[str, Any], name: str, keys: frozenset[str]) -> list[dict[str, Any]] | None:
    v = data.get(name)
    if v is None:
        return None
    if type(v) is not list:
        raise _Slow
    for it in v:
        if type(it) is not dict or not it.keys() <= keys:
            raise _Slow
    return v


def _measurements(items: Any) -> tuple[Measurement, ...]:
    if type(items) is not list:
        raise _Slow  # null is not a valid measurement list
    out = []
    keys, analytes, plain, dates = _MEASUREMENT_KEYS, _ANALYTES, _PLAIN, _DATES
    for m in items:
        if type(m) is not dict or not m.keys() <= keys:
            raise _Slow
        get = m.get
        analyte = get("analyte")
        if type(analyte) is not str or analyte not in analytes:
            raise _Slow
        value = get("value")
        if type(value) is float:
            if value - value != 0.0:
                raise _Slow
        else:
            value = _float(value)
            if value is None:
                raise _Slow  # the value is required
        unit = get("unit")
        if unit is not None and (type(unit) is not str or unit not in plain):
            unit = _str(unit)
        day = get("date")
        if day is not None:
            day = (dates.get(day) if type(day) is str else None) or _date(day)
        low, high, ref_unit, source = get("reference_low"), get("reference_high"), get("reference_unit"), get("source")
        if low is not None:
            low = _float(low)
        if high is not None:
            high = _float(high)
        if ref_unit is not None:
            ref_unit = _str(ref_unit)
        if source is not None:
            source = _str(source)
        out.append(_new(Measurement, (analyte, value, unit, day, low, high, ref_unit, source or "")))
    return tuple(out)


def _build(data: Any) -> PatientData:
    if type(data) is not dict or not data.keys() <= _TOP_KEYS:
        raise _Slow
    record_id = _str(data.get("record_id"))
    if record_id is None or not 1 <= len(record_id) <= 200:
        raise _Slow
    screening_date = _date(data.get("screening_date"))
    _str(data.get("site"))  # validated, not used by screening
    patient = _section(data, "patient", _PATIENT_KEYS)
    birth, precision = None, "day"
    sex = menopausal = None
    if patient:
        b = _str(patient.get("birth_date"))
        if b is not None:
            if not _PARTIAL_DATE.match(b):
                raise _Slow
            try:
                birth, precision = _parse_partial(b)
            except ValueError:
                raise _Slow from None
        sex = _value(patient.get("sex"), _SEXES)
        menopausal = _value(patient.get("menopausal_status"), _MENOPAUSAL)
    cardiac = _section(data, "cardiac", _CARDIAC_KEYS)
    facts: dict[str, Any] = {}
    _facts(facts, _section(data, "tumour", _TUMOUR_KEYS), _TUMOUR)
    _facts(facts, _section(data, "disease", _DISEASE_KEYS), _DISEASE)
    _facts(facts, _section(data, "liver", _LIVER_KEYS), _LIVER)
    _facts(facts, _section(data, "administrative", _ADMIN_KEYS), _ADMIN)
    _facts(facts, cardiac, _CARDIAC_FACTS)
    cycles = _items(data, "lutathera_cycles", _CYCLE_KEYS)
    lutathera = None
    if cycles is not None:
        lutathera = []
        for c in cycles:
            route = c.get("route", "IV")
            if type(route) is not str or route not in _ROUTES:
                raise _Slow
            activity = _float(c.get("activity_mbq"))
            if activity is not None and not 0.0 < activity <= 100000.0:
                raise _Slow
            lutathera.append(_new(Administration, (_date(c.get("date")), route, activity,
                                                   _bool(c.get("dose_reduced_for_toxicity")),
                                                   _bool(c.get("cancelled_for_toxicity")), "")))
        lutathera = tuple(lutathera)
    scans = _items(data, "post_therapy_scans", _SCAN_KEYS)
    if scans is not None:
        scans = tuple([_new(Scan, (_date(s.get("date")), _bool(s.get("residual_uptake")), "")) for s in scans])
    imaging = _items(data, "inclusion_imaging", _IMAGING_KEYS)
    if imaging is not None:
        imaging = tuple([
            _new(Imaging, (_date(i.get("date")), _bool(i.get("complete_response")),
                           _bool(i.get("liver_dominant_or_exclusive")), _bool(i.get("recist_assessable")),
                           _bool(i.get("resectable")), _bool(i.get("extrahepatic_dominant_or_threatening")), ""))
            for i in imaging])
    events = cardiac.get("events") if cardiac else None
    if events is not None:
        if type(events) is not list:
            raise _Slow
        evs = []
        for e in events:
            if type(e) is not dict or not e.keys() <= _EVENT_KEYS:
                raise _Slow
            kind = e.get("type")
            if type(kind) is not str or kind not in _EVENTS:
                raise _Slow  # the type is required
            evs.append(_new(Event, (kind, _date(e.get("date")), "")))
        events = tuple(evs)
    return PatientData(
        record_id=record_id,
        birth_date=birth,
        birth_date_precision=precision,
        sex=sex,
        menopausal_status=menopausal,
        screening_date=screening_date,
        facts=facts,
        measurements=_measurements(data.get("measurements", _NO_ITEMS)),
        lutathera=lutathera,
        scans=scans,
        imaging=imaging,
        cardiovascular_events=events,
        source_format="lutarterial",
    )


def patient_from_json(text: str) -> PatientData | None:
    """The :class:`PatientData` of an own-format record in the plain shape, or ``None``.

    ``None`` means: use ``ScreeningRecord.model_validate_json(text).to_patient()`` (it decides
    whether the text is valid, coerces what it may coerce and names what is wrong). Never
    ``None`` for a FHIR text it should not read: the caller routes ``"resourceType"`` texts
    elsewhere first.
    """
    if "\\u" in text and ("\\ud" in text or "\\uD" in text):
        return None  # surrogate escapes: the model's parser answers for them
    try:
        data = from_json(text, allow_inf_nan=False)
    except ValueError:
        return None
    try:
        return _build(data)
    except _Slow:
        return None
