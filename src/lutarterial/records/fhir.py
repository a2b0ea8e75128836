"""FHIR R4 Bundle reader: Patient, Observations (LOINC/UCUM), LUTATHERA, conditions, consent.

Why plain JSON: we read a small, well-defined subset and must stay tolerant of what real
servers emit (extra fields, partial dates) while refusing what would change a decision
(an Observation in error, a value without a usable unit is kept and screens ``unknown``
naming its unit). Absence of a resource is never read as absence of the condition: what
FHIR does not say stays ``None`` (``unknown``). Codes understood: ``fhir_codes.yaml``.
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from lutarterial.eligibility.patient import Administration, Event, Measurement, PatientData
from lutarterial.errors import InvalidInputError, UnitError
from lutarterial.units import analyte_by_loinc, convert

__all__ = ["is_fhir_bundle", "bundle_to_patient", "bundle_to_patients"]

LOINC = "http://loinc.org"
_IGNORED_OBS = {"entered-in-error", "cancelled", "registered"}
_IGNORED_ADMIN = {"entered-in-error", "not-done", "stopped"}


@lru_cache(maxsize=1)
def _codes() -> dict[str, Any]:
    text = resources.files("lutarterial.records").joinpath("fhir_codes.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _as_dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _str(x: Any) -> str:
    return x if isinstance(x, str) else ""


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def is_fhir_bundle(data: Any) -> bool:
    """True for a JSON object that is a FHIR Bundle (``resourceType`` = ``Bundle``)."""
    return isinstance(data, dict) and data.get("resourceType") == "Bundle"


def _date(value: Any) -> tuple[_dt.date | None, str]:
    """(first possible day, precision) of a FHIR date/dateTime string."""
    if not isinstance(value, str) or len(value) < 4:
        return None, "day"
    try:
        if len(value) >= 10:
            return _dt.date.fromisoformat(value[:10]), "day"
        if len(value) == 7:
            return _dt.date(int(value[:4]), int(value[5:7]), 1), "month"
        if len(value) == 4:
            return _dt.date(int(value), 1, 1), "year"
    except ValueError:
        pass
    return None, "day"


def _effective(res: dict[str, Any]) -> _dt.date | None:
    for key in ("effectiveDateTime", "effectiveInstant", "occurrenceDateTime", "performedDateTime"):
        if key in res:
            d, precision = _date(res[key])
            return d if precision == "day" else None
    for key in ("effectivePeriod", "performedPeriod"):
        if isinstance(res.get(key), dict):
            d, precision = _date(res[key].get("start"))
            return d if precision == "day" else None
    return None


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in _as_list(concept.get("coding")) if isinstance(c, dict)]


def _texts(concept: Any) -> list[str]:
    out = []
    if isinstance(concept, dict):
        if isinstance(concept.get("text"), str):
            out.append(concept["text"])
        out += [c["display"] for c in _codings(concept) if isinstance(c.get("display"), str)]
    return [t.lower() for t in out]


def _loinc_codes(concept: Any) -> list[str]:
    return [str(c.get("code", "")) for c in _codings(concept) if c.get("system") in (LOINC, None)]


def _quantity_unit(q: dict[str, Any]) -> str | None:
    if q.get("system") == "http://unitsofmeasure.org" and _str(q.get("code")):
        return q["code"]
    return _str(q.get("unit")) or _str(q.get("code")) or None


def _ref(res: dict[str, Any]) -> str:
    return f"{res.get('resourceType')}/{res.get('id', '?')}"


def _measurement(analyte: str, res: dict[str, Any], holder: dict[str, Any], when: _dt.date | None) -> Measurement | None:
    q = holder.get("valueQuantity")
    if not isinstance(q, dict) or not isinstance(q.get("value"), (int, float)) or isinstance(q.get("value"), bool):
        return None
    if q.get("comparator"):
        # "<5 U/L" is a bound, not a value: it is not read (documented limitation).
        return None
    low = high = None
    ref_unit = None
    for rr in _as_list(holder.get("referenceRange")) or _as_list(res.get("referenceRange")):
        if isinstance(rr, dict):
            lo, hi = rr.get("low"), rr.get("high")
            low = _num(lo.get("value")) if isinstance(lo, dict) else None
            high = _num(hi.get("value")) if isinstance(hi, dict) else None
            units = {_quantity_unit(x) for x in (lo, hi) if isinstance(x, dict) and _quantity_unit(x)}
            ref_unit = units.pop() if len(units) == 1 else (None if not units else "inconsistent")
            break
    return Measurement(analyte=analyte, value=float(q["value"]), unit=_quantity_unit(q), date=when,
                       reference_low=low, reference_high=high, reference_unit=ref_unit, source=_ref(res))


def _ecog(res: dict[str, Any], when: _dt.date | None) -> Measurement | None:
    answers = _codes()["ecog"]["answers"]
    value: float | None = None
    if isinstance(res.get("valueInteger"), int) and not isinstance(res.get("valueInteger"), bool):
        value = float(res["valueInteger"])
    elif isinstance(res.get("valueQuantity"), dict) and _num(res["valueQuantity"].get("value")) is not None:
        value = float(res["valueQuantity"]["value"])
    else:
        for c in _codings(res.get("valueCodeableConcept")):
            if _str(c.get("code")) in answers:
                value = float(answers[c["code"]])
                break
    if value is None:
        return None
    return Measurement(analyte="ecog", value=value, unit=None, date=when, source=_ref(res))


def _code_match(concept: Any, table: dict[str, list[str]]) -> bool:
    for c in _codings(concept):
        code, system = str(c.get("code", "")), str(c.get("system", "")).lower()
        if "snomed" in system and code in table.get("snomed", []):
            return True
        if "icd-10" in system or "icd10" in system:
            for prefix in table.get("icd10", []):
                if code == prefix or code.startswith(prefix + ".") or (len(prefix) == 3 and code.startswith(prefix)):
                    return True
    return False


def _concept_status(res: dict[str, Any], key: str) -> str:
    codes = [str(c.get("code", "")) for c in _codings(res.get(key))]
    return codes[0] if codes else ""


def _is_lutathera(concept: Any) -> bool:
    cfg = _codes()["lutathera"]
    if any(str(c.get("code", "")).upper() in cfg["atc"] for c in _codings(concept)):
        return True
    return any(any(name in t for name in cfg["names"]) or ("lutetium" in t and "dotatate" in t) for t in _texts(concept))


def _subject_ref(res: dict[str, Any]) -> str | None:
    for key in ("subject", "patient", "beneficiary"):
        ref = res.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return ref["reference"]
    return None


def bundle_to_patients(bundle: dict[str, Any], origin: str = "") -> list[PatientData]:
    """Every patient of a FHIR R4 Bundle (collection, searchset, transaction...), in Bundle order.

    With one Patient, every resource is read as that patient's (a tolerant reader). With
    several, each resource must name its patient (``subject``/``patient``/``beneficiary``)
    by ``Patient/id`` or by the Patient entry's ``fullUrl``; one that does not is an error
    naming it, so no datum is silently attributed to the wrong patient.
    """
    if not is_fhir_bundle(bundle):
        raise InvalidInputError(f"{origin or 'input'}: not a FHIR Bundle")
    entries = [e for e in _as_list(bundle.get("entry")) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    resources_ = [e["resource"] for e in entries]
    by_url = {e["fullUrl"]: e["resource"] for e in entries if _str(e.get("fullUrl"))}
    patient_entries = [e for e in entries if e["resource"].get("resourceType") == "Patient"]
    if not patient_entries:
        raise InvalidInputError(f"{origin or 'bundle'}: a screening Bundle must hold a Patient, found none")
    keys: dict[str, int] = {}
    for i, e in enumerate(patient_entries):
        if e["resource"].get("id"):
            keys[f"Patient/{e['resource']['id']}"] = i
        if _str(e.get("fullUrl")):
            keys[e["fullUrl"]] = i
    groups: list[list[dict[str, Any]]] = [[] for _ in patient_entries]
    for res in resources_:
        rtype = res.get("resourceType")
        if rtype in ("Patient", "Medication"):
            continue
        if len(patient_entries) == 1:
            groups[0].append(res)
            continue
        ref = _subject_ref(res)
        index = keys.get(ref or "")
        if index is None and ref and ref.startswith("http"):
            index = next((v for k, v in keys.items() if ref.endswith("/" + k)), None)
        if index is None:
            raise InvalidInputError(
                f"{origin or 'bundle'}: {_ref(res)} does not name one of the Bundle's {len(patient_entries)} patients "
                f"(subject {ref!r})"
            )
        groups[index].append(res)
    return [_patient_from(e["resource"], group, resources_, by_url, bundle, origin)
            for e, group in zip(patient_entries, groups)]


def bundle_to_patient(bundle: dict[str, Any], origin: str = "") -> PatientData:
    """The one patient of a FHIR R4 Bundle (an error if it holds several: use :func:`bundle_to_patients`)."""
    patients = bundle_to_patients(bundle, origin)
    if len(patients) != 1:
        raise InvalidInputError(
            f"{origin or 'bundle'}: the Bundle holds {len(patients)} patients; screen it as a cohort "
            "(load_records / lutarterial screen FILE)"
        )
    return patients[0]


def _patient_from(
    pat: dict[str, Any],
    resources_: list[dict[str, Any]],
    all_resources: list[dict[str, Any]],
    by_url: dict[str, Any],
    bundle: dict[str, Any],
    origin: str,
) -> PatientData:
    ident = next((i["value"] for i in _as_list(pat.get("identifier")) if isinstance(i, dict) and _str(i.get("value"))),
                 None)
    record_id = str(ident or pat.get("id") or bundle.get("id") or origin or "fhir-patient")
    birth, precision = _date(pat.get("birthDate"))
    sex = pat.get("gender") if pat.get("gender") in ("female", "male", "other", "unknown") else None

    codes = _codes()
    measurements: list[Measurement] = []
    administrations: list[Administration] = []
    events: list[Event] = []
    facts: dict[str, Any] = {}
    fact_sources: dict[str, str] = {}

    for res in resources_:
        rtype = res.get("resourceType")
        if rtype == "Observation":
            if _str(res.get("status")) in _IGNORED_OBS:
                continue
            when = _effective(res)
            loincs = _loinc_codes(res.get("code"))
            if codes["ecog"]["loinc"] in loincs:
                m = _ecog(res, when)
                if m:
                    measurements.append(m)
                continue
            if any(code in codes["blood_pressure_panels"] for code in loincs):
                for comp in _as_list(res.get("component")):
                    if isinstance(comp, dict):
                        for code in _loinc_codes(comp.get("code")):
                            a = analyte_by_loinc(code)
                            if a and a.name in ("systolic_bp", "diastolic_bp"):
                                m = _measurement(a.name, res, comp, when)
                                if m:
                                    measurements.append(m)
                continue
            for code in loincs:
                a = analyte_by_loinc(code)
                if a:
                    m = _measurement(a.name, res, res, when)
                    if m:
                        measurements.append(m)
                    break
        elif rtype == "MedicationAdministration":
            if _str(res.get("status")) in _IGNORED_ADMIN:
                continue
            med = res.get("medicationCodeableConcept")
            ref = _str(_as_dict(res.get("medicationReference")).get("reference"))
            if med is None and ref:
                target = by_url.get(ref) or next(
                    (r for r in all_resources if f"{r.get('resourceType')}/{r.get('id')}" == ref), None
                )
                med = _as_dict(target).get("code")
            if not _is_lutathera(med):
                continue
            dosage = _as_dict(res.get("dosage"))
            route_text = " ".join(_texts(dosage.get("route")))
            route = "IAH" if "arterial" in route_text else "IV"
            activity = None
            dose = dosage.get("dose")
            if isinstance(dose, dict) and _num(dose.get("value")) is not None and _quantity_unit(dose):
                try:
                    activity = convert(float(dose["value"]), str(_quantity_unit(dose)), "MBq")
                except UnitError:
                    activity = None
            administrations.append(Administration(date=_effective(res), route=route, activity_mbq=activity, source=_ref(res)))
        elif rtype in ("Condition", "Procedure"):
            verification = _concept_status(res, "verificationStatus")
            if verification == "entered-in-error" or res.get("status") in ("entered-in-error", "not-done"):
                continue
            refuted = verification == "refuted"
            table = codes["conditions"] if rtype == "Condition" else codes["procedures"]
            for name, spec in (table.get("facts") or {}).items():
                if _code_match(res.get("code"), spec):
                    if facts.get(name) is not True:
                        facts[name] = not refuted
                        fact_sources[name] = _ref(res)
            if refuted:
                continue
            for kind, spec in (table.get("events") or {}).items():
                if _code_match(res.get("code"), spec):
                    d, p = _date(res.get("onsetDateTime") or res.get("performedDateTime")
                                 or _as_dict(res.get("performedPeriod")).get("start") or res.get("recordedDate"))
                    events.append(Event(kind=kind, date=d if p == "day" else None, source=_ref(res)))
        elif rtype == "Consent":
            status = res.get("status")
            if status == "active":
                facts["informed_consent_signed"] = True
                d, p = _date(res.get("dateTime"))
                if d and p == "day":
                    facts["informed_consent_date"] = d
                fact_sources["informed_consent_signed"] = fact_sources["informed_consent_date"] = _ref(res)
            elif status == "rejected" and facts.get("informed_consent_signed") is not True:
                facts["informed_consent_signed"] = False
                fact_sources["informed_consent_signed"] = _ref(res)
        elif rtype == "Coverage":
            if res.get("status") == "active":
                facts["social_security"] = True
                fact_sources["social_security"] = _ref(res)

    return PatientData(
        record_id=record_id,
        birth_date=birth,
        birth_date_precision=precision,
        sex=sex,
        screening_date=None,
        facts=facts,
        fact_sources=fact_sources,
        measurements=tuple(measurements),
        lutathera=tuple(administrations) if administrations else None,
        cardiovascular_events=tuple(events),
        cardiovascular_history_complete=False,  # FHIR cannot say "history reviewed, none"
        source_format="fhir-r4",
    )
