"""FHIR R4 Bundle reader: Patient, Observations (LOINC/UCUM), LUTATHERA, conditions, consent.

Why plain JSON: we read a small, well-defined subset and must stay tolerant of what real
servers emit (extra fields, partial dates) while refusing what would change a decision
(an Observation in error, a value without a usable unit is kept and screens ``unknown``
naming its unit). Absence of a resource is never read as absence of the condition: what
FHIR does not say stays ``None`` (``unknown``). Codes understood: ``fhir_codes.yaml``.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from lutarterial.eligibility.patient import Administration, Event, Measurement, PatientData
from lutarterial.errors import InvalidInputError, UnitError
from lutarterial.units import analyte_by_loinc, convert

__all__ = ["is_fhir_bundle", "bundle_to_patient", "bundle_to_patients"]

LOINC = "http://loinc.org"
#: Spellings of the LOINC system seen in exports (the OID form comes from CDA-derived EHR feeds).
_LOINC_SYSTEMS = {LOINC, "http://loinc.org/", "https://loinc.org", "https://loinc.org/",
                  "urn:oid:2.16.840.1.113883.6.1", None, ""}
UCUM = "http://unitsofmeasure.org"
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")  # FHIR decimal
#: Observation statuses that are not a result: ignored. ``final``, ``amended``, ``corrected``,
#: ``preliminary``, ``unknown`` and an absent status carry a value and are read.
_IGNORED_OBS = {"entered-in-error", "cancelled", "registered"}
#: MedicationAdministration statuses that are not a given cycle: ignored (``stopped`` = infusion
#: interrupted, ``on-hold`` = not given yet). ``completed``, ``in-progress``, ``unknown`` and an
#: absent status are read as given.
_IGNORED_ADMIN = {"entered-in-error", "not-done", "stopped", "on-hold"}
#: SNOMED CT route codes (Route of administration value set): intra-arterial, intravenous.
_ROUTE_IA = {"58100008"}
_ROUTE_IV = {"47625008"}
#: referenceRange.type codes that are the lab's normal range (others: therapeutic, treatment...).
_NORMAL_RANGE = {"normal", ""}


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
            # Specimen collection started on ``start``; a period with only ``end`` is dated by it.
            d, precision = _date(res[key].get("start") or res[key].get("end"))
            return d if precision == "day" else None
    # ``issued`` (report release) is deliberately not used: it can fall days after collection and
    # would move a result into a window its sample is outside of.
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
    """LOINC codes of ``concept`` in coding order (LOINC need not be the first coding)."""
    out = []
    for c in _codings(concept):
        system = c.get("system")
        if (system if isinstance(system, str) or system is None else "?") in _LOINC_SYSTEMS:
            code = _str(c.get("code")).strip()
            if code:
                out.append(code)
    return out


def _quantity_unit(q: dict[str, Any]) -> str | None:
    """The unit of a Quantity: the UCUM ``code`` when the system is UCUM, else ``unit`` (display text)."""
    code, unit = q.get("code"), q.get("unit")
    code = code.strip() if isinstance(code, str) else ""
    if code and q.get("system") in (UCUM, UCUM + "/"):
        return code
    return (unit.strip() if isinstance(unit, str) else "") or code or None


def _ref(res: dict[str, Any]) -> str:
    return f"{res.get('resourceType')}/{res.get('id', '?')}"


def _range_kind(rr: dict[str, Any]) -> str:
    codes = [_str(c.get("code")).lower() for c in _codings(rr.get("type"))]
    return codes[0] if codes else ""


def _age_years(q: Any) -> float | None:
    q = _as_dict(q)
    value = _num(q.get("value"))
    unit = (_quantity_unit(q) or "").lower()
    if value is None:
        return None
    if unit in ("a", "yr", "yrs", "year", "years", "y"):
        return value
    if unit in ("mo", "month", "months"):
        return value / 12
    return None


def _covers_adults(rr: dict[str, Any]) -> bool:
    """True when ``age`` is absent or spans every adult age (low <= 18 y, high absent or >= 100 y)."""
    age = rr.get("age")
    if age is None:
        return True
    age = _as_dict(age)
    low = _age_years(age.get("low")) if age.get("low") is not None else 0.0
    high = _age_years(age.get("high")) if age.get("high") is not None else float("inf")
    return low is not None and high is not None and low <= 18 and high >= 100


def _pick_range(ranges: list[Any], sex: str | None) -> dict[str, Any] | None:
    """The lab's normal range among ``referenceRange`` entries.

    Ranges typed other than *normal* (therapeutic, treatment, recommended...) are skipped, and
    so are ranges for an age band narrower than adulthood (this trial screens adults; which
    band applies would need the screening date). A range without ``appliesTo`` applies to
    everyone; otherwise the one whose ``appliesTo`` names the patient's sex (SNOMED 248153007
    male, 248152002 female, or the text) is used. Several candidates that differ, or none,
    give no range (the ULN screens unknown) rather than a guess.
    """
    if not ranges:
        return None
    normal = [rr for rr in ranges if isinstance(rr, dict) and _range_kind(rr) in _NORMAL_RANGE
              and (isinstance(rr.get("low"), dict) or isinstance(rr.get("high"), dict)) and _covers_adults(rr)]
    general = [rr for rr in normal if not rr.get("appliesTo")]
    if not general and sex in ("male", "female"):
        code = {"male": "248153007", "female": "248152002"}[sex]
        for rr in normal:
            for concept in _as_list(rr.get("appliesTo")):
                words = " ".join(_texts(concept)).replace("-", " ").split()
                if any(_str(c.get("code")) == code for c in _codings(concept)) or sex in words:
                    general.append(rr)
                    break
    bounds = {(repr(_as_dict(rr.get("low")).get("value")), repr(_as_dict(rr.get("high")).get("value")),
               _quantity_unit(_as_dict(rr.get("high"))) or _quantity_unit(_as_dict(rr.get("low"))))
              for rr in general}
    return general[0] if len(bounds) == 1 else None


def _measurement(analyte: str, res: dict[str, Any], holder: dict[str, Any], when: _dt.date | None,
                 sex: str | None = None) -> Measurement | None:
    q = holder.get("valueQuantity")
    if not isinstance(q, dict) or q.get("value") is None:
        return None  # no result (dataAbsentReason, valueCodeableConcept, valueString): nothing to read
    value = q["value"]
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        value = float(value)  # a decimal sent as a JSON string by a lax exporter: exact, so read
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        # Silently skipping it would let an older result stand in for this newer one.
        raise InvalidInputError(f"{_ref(res)}: valueQuantity.value {value!r} is not a number (FHIR decimal)")
    q = dict(q, value=value)
    unit = _quantity_unit(q)
    comparator = q.get("comparator")
    if comparator not in (None, ""):  # any comparator, even a malformed one, makes it a bound
        # "<5 U/L" is a bound, not a value. The reader does not know which threshold a rule will
        # apply, so it cannot tell whether the bound decides the criterion; dropping it would let
        # an older result stand in for the newest one. It is kept with a unit no converter
        # accepts, so the rule screens *unknown* with a reason that names the censored result.
        unit = f"{unit or 'no unit'} [censored result {comparator}{q['value']:g}: a bound, not a value]"
    low = high = None
    ref_unit = None
    ranges = _as_list(holder.get("referenceRange")) or (_as_list(res.get("referenceRange")) if holder is res else [])
    rr = _pick_range(ranges, sex)
    if rr is not None:
        lo, hi = rr.get("low"), rr.get("high")
        low = _num(lo.get("value")) if isinstance(lo, dict) else None
        high = _num(hi.get("value")) if isinstance(hi, dict) else None
        units = {_quantity_unit(x) for x in (lo, hi) if isinstance(x, dict) and _quantity_unit(x)}
        ref_unit = units.pop() if len(units) == 1 else (None if not units else "inconsistent")
    return Measurement(analyte=analyte, value=float(q["value"]), unit=unit, date=when,
                       reference_low=low, reference_high=high, reference_unit=ref_unit, source=_ref(res))


def _ecog(res: dict[str, Any], when: _dt.date | None) -> Measurement | None:
    answers = _codes()["ecog"]["answers"]
    value: float | None = None
    if isinstance(res.get("valueInteger"), int) and not isinstance(res.get("valueInteger"), bool):
        value = float(res["valueInteger"])
    elif isinstance(res.get("valueQuantity"), dict) and _num(res["valueQuantity"].get("value")) is not None:
        value = float(res["valueQuantity"]["value"])
    else:
        # LOINC answer list LL529-9 as the value, or (mCODE profile) as the interpretation.
        concepts = [res.get("valueCodeableConcept"), *_as_list(res.get("interpretation"))]
        for c in (c for concept in concepts for c in _codings(concept)):
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


_PUNCT_AS_SPACE = str.maketrans({ch: " " for ch in "-()[],/"})


def _norm_text(t: str) -> str:
    """Lower case with hyphens and brackets as spaces ("Lu-177 (177Lu)" -> "lu 177 177lu")."""
    return " ".join(t.lower().translate(_PUNCT_AS_SPACE).split())


@lru_cache(maxsize=1)
def _lutathera_names() -> tuple[str, ...]:
    return tuple(_norm_text(n) for n in _codes()["lutathera"]["names"])


def _is_lutathera(concepts: Any) -> bool:
    """A LUTATHERA medication: ATC V10XX04 in any coding, or its brand/INN/USAN name in a text."""
    cfg = _codes()["lutathera"]
    items = concepts if isinstance(concepts, list) else [concepts]
    names = _lutathera_names()
    for concept in items:
        if any(_str(c.get("code")).strip().upper() in cfg["atc"] for c in _codings(concept)):
            return True
        for t in _texts(concept):
            t = _norm_text(t)
            compact = t.replace(" ", "")  # "[177Lu]Lu-DOTA-TATE" -> "177lulu dotatate" -> "177luludotatate"
            if any(n in t for n in names) or (
                ("dotatate" in compact or "oxodotreotide" in compact)
                and any(k in compact for k in ("lutetium", "177lu", "lu177"))
            ):
                return True
    return False


def _medication_concepts(med: Any) -> list[Any]:
    """``Medication.code`` and its ingredients' ``itemCodeableConcept`` (where a server puts the INN)."""
    med = _as_dict(med)
    out = [med.get("code")]
    for ing in _as_list(med.get("ingredient")):
        if isinstance(ing, dict):
            out.append(ing.get("itemCodeableConcept"))
    return [c for c in out if isinstance(c, dict)]


def _route(concept: Any) -> str:
    """``IAH`` for an intra-arterial route (SNOMED 58100008 or the text), else ``IV``.

    An absent route reads as IV, LUTATHERA's licensed route (every cycle outside this trial's
    experimental arm); a coded route that is neither is also IV only if it says intravenous.
    """
    codes = {_str(c.get("code")).strip() for c in _codings(concept)}
    text = _norm_text(" ".join(_texts(concept)))
    if codes & _ROUTE_IA or "arterial" in text:
        return "IAH"
    return "IV"


def _one_per_day(items: list[Administration]) -> tuple[Administration, ...]:
    """One administration per calendar day: a cycle is a day, however many resources record it.

    Exports often hold the same infusion twice (an order-derived and a nursing record, or a
    resource repeated across pages). Undated ones are kept as they are (the engine reports them).
    Same-day duplicates keep the first; their activities are kept only when they agree.
    """
    out: list[Administration] = []
    by_day: dict[tuple[_dt.date, str], int] = {}
    for a in items:
        key = (a.date, a.route) if a.date is not None else None
        if key is None or key not in by_day:
            if key is not None:
                by_day[key] = len(out)
            out.append(a)
            continue
        i = by_day[key]
        prev = out[i]
        same = prev.activity_mbq is not None and a.activity_mbq is not None and abs(prev.activity_mbq - a.activity_mbq) < 1e-6
        out[i] = prev._replace(activity_mbq=prev.activity_mbq if same or a.activity_mbq is None else
                               (a.activity_mbq if prev.activity_mbq is None else None),
                               source=f"{prev.source}+{a.source}")
    return tuple(out)


def _resolve(ref: str, holder: dict[str, Any], by_url: dict[str, Any], all_resources: list[dict[str, Any]]) -> Any:
    """The resource a reference points at: contained (``#id``), a ``fullUrl``, ``Type/id`` or an absolute URL."""
    if ref.startswith("#"):
        return next((r for r in _as_list(holder.get("contained")) if isinstance(r, dict) and r.get("id") == ref[1:]),
                    None)
    if ref in by_url:
        return by_url[ref]
    rel = _relative(ref)
    return next((r for r in all_resources if f"{r.get('resourceType')}/{r.get('id')}" == rel), None)


def _relative(ref: str) -> str:
    """``Type/id`` of a relative or absolute reference (version ``/_history/n`` dropped)."""
    ref = ref.split("/_history/")[0].rstrip("/")
    parts = ref.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def _with_contained_members(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` plus the Observations a panel or report holds as ``contained`` members.

    Some EHR exports ship a lab panel (CBC 58410-2...) as one Observation whose results are
    contained (``hasMember: #id``), or a DiagnosticReport with contained ``result``s; a
    contained member without its own date takes the panel's (and its status: a panel or
    report entered in error or cancelled voids its members). Results a DiagnosticReport
    references as separate entries are read as those entries.
    """
    out: list[dict[str, Any]] = []
    for res in items:
        out.append(res)
        if res.get("resourceType") not in ("Observation", "DiagnosticReport") or not res.get("contained"):
            continue
        links = res.get("hasMember") if res.get("resourceType") == "Observation" else res.get("result")
        members = {_str(_as_dict(m).get("reference")) for m in _as_list(links)}
        for c in _as_list(res.get("contained")):
            if isinstance(c, dict) and c.get("resourceType") == "Observation" and f"#{_str(c.get('id'))}" in members:
                member = dict(c, _panel_date=_effective(res))
                if _str(res.get("status")) in _IGNORED_OBS:
                    member["status"] = res["status"]
                out.append(member)
    return out


def _research_consent(res: dict[str, Any]) -> bool:
    """A Consent that can be the trial's: ``scope``/``category`` say research, or say nothing.

    R4 requires ``scope``; one that names another purpose (``patient-privacy``, ``adr``
    advance directive, ``treatment``) is not a research informed consent. A Consent with
    neither scope nor category is read as the trial's (tolerance for minimal exports).
    """
    concepts = [c for c in [res.get("scope"), *_as_list(res.get("category"))] if isinstance(c, dict)]
    if not concepts:
        return True
    codes = {_str(c.get("code")).lower() for concept in concepts for c in _codings(concept)}
    text = " ".join(t for concept in concepts for t in _texts(concept))
    return "research" in codes or "research" in text or "trial" in text or "étude" in text


def _flat_entries(bundle: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    """Entries with a resource; a Bundle inside a Bundle (a collection of per-patient
    transaction Bundles, a document) contributes its own entries (3 levels at most)."""
    out: list[dict[str, Any]] = []
    for e in _as_list(bundle.get("entry")):
        if not isinstance(e, dict) or not isinstance(e.get("resource"), dict):
            continue
        if e["resource"].get("resourceType") == "Bundle":
            if depth < 3:
                out += _flat_entries(e["resource"], depth + 1)
            continue
        out.append(e)
    return out


def _version_key(res: dict[str, Any]) -> tuple[int, str]:
    meta = _as_dict(res.get("meta"))
    vid = _str(meta.get("versionId"))
    return (int(vid) if vid.isdigit() else -1, _str(meta.get("lastUpdated")))


def _latest_versions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per ``resourceType/id``: the latest ``meta.versionId`` (then ``lastUpdated``).

    A history Bundle, or pages of a search concatenated, can hold the same resource twice; an
    amended result and its superseded version must not read as two conflicting results.
    Resources without an id are all kept.
    """
    best: dict[str, int] = {}
    for i, e in enumerate(entries):
        r = e["resource"]
        if not _str(r.get("id")) or not _str(r.get("resourceType")):
            continue
        key = f"{r['resourceType']}/{r['id']}"
        j = best.get(key)
        if j is None or _version_key(r) > _version_key(entries[j]["resource"]):
            best[key] = i
    keep = set(best.values())
    return [e for i, e in enumerate(entries)
            if i in keep or not _str(e["resource"].get("id")) or not _str(e["resource"].get("resourceType"))]


def _subject_ref(res: dict[str, Any]) -> str | None:
    """The subject reference; a logical one (``identifier`` only) as ``Patient?identifier=sys|value``."""
    for key in ("subject", "patient", "beneficiary"):
        ref = res.get(key)
        if not isinstance(ref, dict):
            continue
        text = ref.get("reference")
        if isinstance(text, str) and text.strip():
            return text.strip()
        ident = _as_dict(ref.get("identifier"))
        if _str(ident.get("value")):
            return f"Patient?identifier={_str(ident.get('system'))}|{ident['value']}"
    return None


def _identifier_keys(pat: dict[str, Any]) -> list[str]:
    """Conditional-reference keys of a Patient: ``Patient?identifier=sys|value`` and ``=value``."""
    out = []
    for i in _as_list(pat.get("identifier")):
        if isinstance(i, dict) and _str(i.get("value")):
            out.append(f"Patient?identifier={_str(i.get('system'))}|{i['value']}")
            out.append(f"Patient?identifier={i['value']}")
    return out


#: Resources read per patient; everything else (Practitioner, Encounter, OperationOutcome...) is ignored.
_READ = {"Observation", "MedicationAdministration", "Condition", "Procedure", "Consent", "Coverage",
         "DiagnosticReport"}


def bundle_to_patients(bundle: dict[str, Any], origin: str = "") -> list[PatientData]:
    """Every patient of a FHIR R4 Bundle (collection, searchset, transaction, batch-response...).

    Entries without a ``resource`` (a DELETE in a transaction, a response without body) and
    resources screening does not read (OperationOutcome, Encounter, Practitioner...) are ignored;
    a Patient repeated (same id or ``fullUrl``) is read once. References may be ``urn:uuid:``
    ``fullUrl``s, ``Patient/id`` (with or without ``/_history/n``) or absolute URLs.

    A resource whose ``subject``/``patient``/``beneficiary`` names a Patient of the Bundle is
    that patient's. With one Patient, a resource naming none is read as that patient's (a
    tolerant reader); one naming a *different* ``Patient/id`` is an error, as is, with several
    Patients, a resource naming none of them, so no datum is silently attributed to the wrong
    patient. A resource whose subject is not a Patient (Group, Device, Location) is ignored.
    """
    if not is_fhir_bundle(bundle):
        raise InvalidInputError(f"{origin or 'input'}: not a FHIR Bundle")
    entries = _latest_versions(_flat_entries(bundle))
    resources_ = [e["resource"] for e in entries]
    by_url = {e["fullUrl"].strip(): e["resource"] for e in entries if _str(e.get("fullUrl"))}
    keys: dict[str, int] = {}
    patient_entries: list[dict[str, Any]] = []
    for e in entries:
        if e["resource"].get("resourceType") != "Patient":
            continue
        own = [k for k in (f"Patient/{e['resource']['id']}" if _str(e["resource"].get("id")) else "",
                           _str(e.get("fullUrl")).strip()) if k]
        if _str(e.get("fullUrl")).startswith("http"):
            own.append(_relative(e["fullUrl"]))
        if own and own[0] in keys:
            continue  # the same Patient again (an _include repeated across pages, a PUT plus a read)
        for k in own:
            keys[k] = len(patient_entries)
        for k in _identifier_keys(e["resource"]):
            keys.setdefault(k, len(patient_entries))
        patient_entries.append(e)
    if not patient_entries:
        raise InvalidInputError(f"{origin or 'bundle'}: a screening Bundle must hold a Patient, found none")
    groups: list[list[dict[str, Any]]] = [[] for _ in patient_entries]
    for res in resources_:
        if _str(res.get("resourceType")) not in _READ:
            continue
        if res.get("resourceType") == "DiagnosticReport" and not res.get("contained"):
            continue  # its results are separate entries, read as such
        ref = _subject_ref(res)
        index = None
        if ref:
            index = keys.get(ref)
            if index is None and ref.startswith("Patient?identifier=|"):  # logical reference without system
                index = keys.get("Patient?identifier=" + ref.split("|", 1)[1])
            if index is None and not ref.startswith("urn:") and "?" not in ref:
                index = keys.get(_relative(ref))
        if index is None and ref and not ref.startswith("urn:") and "?" not in ref \
                and not _relative(ref).startswith("Patient/"):
            continue  # about a Group, Device or Location, not a patient
        if index is None and len(patient_entries) == 1 and (
            not ref or not _str(patient_entries[0]["resource"].get("id"))
            or ("?" in ref and not _identifier_keys(patient_entries[0]["resource"]))
            or (ref.startswith("urn:") and not _str(patient_entries[0].get("fullUrl")))
        ):
            index = 0  # one patient, and the reference cannot name another
        if index is None:
            raise InvalidInputError(
                f"{origin or 'bundle'}: {_ref(res)} does not name one of the Bundle's {len(patient_entries)} "
                f"patient(s) (subject {ref!r}); fix the reference or split the Bundle per patient"
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
    if birth is None and pat.get("birthDate") not in (None, ""):
        raise InvalidInputError(
            f"{origin or 'bundle'}: {_ref(pat)} birthDate {pat.get('birthDate')!r} is not a FHIR date "
            "(YYYY, YYYY-MM or YYYY-MM-DD)"
        )
    sex = pat.get("gender") if pat.get("gender") in ("female", "male", "other", "unknown") else None

    codes = _codes()
    measurements: list[Measurement] = []
    administrations: list[Administration] = []
    events: list[Event] = []
    facts: dict[str, Any] = {}
    fact_sources: dict[str, str] = {}

    for res in _with_contained_members(resources_):
        rtype = res.get("resourceType")
        if rtype == "Observation":
            if _str(res.get("status")) in _IGNORED_OBS:
                continue
            when = _effective(res)
            if when is None and "_panel_date" in res:
                when = res["_panel_date"]
            loincs = _loinc_codes(res.get("code"))
            if codes["ecog"]["loinc"] in loincs:
                m = _ecog(res, when)
                if m:
                    measurements.append(m)
                continue
            # The Observation's own value (first LOINC coding that names an analyte) ...
            for code in loincs:
                a = analyte_by_loinc(code)
                if a:
                    m = _measurement(a.name, res, res, when, sex)
                    if m:
                        measurements.append(m)
                    break
            # ... and its components (BP panels 85354-6/55284-4; lab panels sent as components).
            for comp in _as_list(res.get("component")):
                if isinstance(comp, dict):
                    for code in _loinc_codes(comp.get("code")):
                        a = analyte_by_loinc(code)
                        if a:
                            m = _measurement(a.name, res, comp, when, sex)
                            if m:
                                measurements.append(m)
                            break
        elif rtype == "MedicationAdministration":
            if _str(res.get("status")) in _IGNORED_ADMIN:
                continue
            med = res.get("medicationCodeableConcept")
            ref = _str(_as_dict(res.get("medicationReference")).get("reference"))
            if med is None and ref:
                target = _resolve(ref, res, by_url, all_resources)
                med = _medication_concepts(target)
            if not _is_lutathera(med):
                continue
            dosage = _as_dict(res.get("dosage"))
            route = _route(dosage.get("route"))
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
            if verification in ("unconfirmed", "provisional", "differential"):
                continue  # a suspected diagnosis is neither yes nor no: the fact stays unknown
            refuted = verification == "refuted"
            # A resolved/inactive Condition (or one with an abatement) no longer holds: it says
            # nothing about the present state (a past pregnancy is not "not pregnant"), so it sets
            # no fact; as a dated event (an MI two years ago) it still counts.
            ended = rtype == "Condition" and (
                _concept_status(res, "clinicalStatus") in ("resolved", "inactive", "remission")
                or any(k.startswith("abatement") for k in res)
            )
            table = codes["conditions"] if rtype == "Condition" else codes["procedures"]
            for name, spec in (table.get("facts") or {}).items():
                if not ended and _code_match(res.get("code"), spec):
                    if facts.get(name) is not True:
                        facts[name] = not refuted
                        fact_sources[name] = _ref(res)
            if refuted:
                continue
            for kind, spec in (table.get("events") or {}).items():
                if _code_match(res.get("code"), spec):
                    # When it happened: onset / performed. Not ``recordedDate``: an old infarction
                    # recorded last month would read as recent and exclude wrongly; undated, the
                    # event keeps EXC07 unknown instead.
                    d, p = _date(res.get("onsetDateTime") or _as_dict(res.get("onsetPeriod")).get("start")
                                 or res.get("performedDateTime")
                                 or _as_dict(res.get("performedPeriod")).get("start"))
                    events.append(Event(kind=kind, date=d if p == "day" else None, source=_ref(res)))
        elif rtype == "Consent":
            if not _research_consent(res):
                continue  # a privacy consent or advance directive is not the trial's informed consent
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
        lutathera=_one_per_day(administrations) if administrations else None,
        cardiovascular_events=tuple(events),
        cardiovascular_history_complete=False,  # FHIR cannot say "history reviewed, none"
        source_format="fhir-r4",
    )
