"""Study data per participant: visits of the protocol schedule, labs, adverse events, RECIST
assessments, imaging and dosimetry analyses; generic audited update and delete; timeline.

Each kind of record has one validator used both on creation and on update (the update is
validated as the merged record), so a correction can never produce a record that could not
have been entered.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, literal, select, true
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError, NotFoundError, UnitError
from lutarterial.registry.access import Actor, Permission, require
from lutarterial.registry.audit import audited
from lutarterial.registry.models import (
    AdverseEvent,
    Base,
    Consent,
    DosimetryAnalysis,
    ImagingAnalysis,
    LabResult,
    Participant,
    ParticipantStatus,
    RecistAssessment,
    ScreeningResult,
    Visit,
    VisitKind,
    VisitStatus,
)
from lutarterial.registry.services._common import (
    ParticipantHiddenError,
    as_date,
    as_float,
    as_optional_text,
    flush_like_orm,
    load_participant,
)

__all__ = [
    "RECORD_KINDS",
    "TimelineItem",
    "record_visit",
    "record_iah_cycle",
    "list_visits",
    "record_lab",
    "list_labs",
    "record_adverse_event",
    "list_adverse_events",
    "record_recist",
    "list_recist",
    "attach_imaging_analysis",
    "attach_dosimetry_analysis",
    "list_analyses",
    "get_record",
    "update_record",
    "delete_record",
    "participant_timeline",
    "complete_participation",
]

#: Upper bound of a plausible single LUTATHERA administration (label: 7 400 MBq per cycle);
#: larger values are refused as typing errors (e.g. kBq entered as MBq).
MAX_ACTIVITY_MBQ = 15000.0
#: Visits are numbered from 1; no protocol schedule has a thousand visits of one kind (issue 9: 10**25).
MAX_VISIT_NUMBER = 1000
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RESPONSES = ("CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD")
_RELATEDNESS = ("not_related", "unlikely", "possible", "probable", "definite", "unknown")


# --- validators -------------------------------------------------------------------------------


def _v_visit(v: dict[str, Any]) -> dict[str, Any]:
    try:
        kind = VisitKind(str(v.get("kind", "")).strip().lower()).value
    except ValueError:
        raise InvalidInputError(f"visit kind {v.get('kind')!r}; valid: {', '.join(k.value for k in VisitKind)}") from None
    try:
        status = VisitStatus(str(v.get("status") or VisitStatus.PLANNED.value).lower()).value
    except ValueError:
        raise InvalidInputError(f"visit status {v.get('status')!r}; valid: {', '.join(s.value for s in VisitStatus)}") from None
    number = v.get("number", 1)
    if isinstance(number, bool) or (isinstance(number, float) and not number.is_integer()):
        raise InvalidInputError(f"visit number {number!r} is not an integer")
    try:
        number = int(number if number is not None else 1)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"visit number {number!r} is not an integer") from None
    if number < 1:
        raise InvalidInputError("visit number starts at 1")
    if number > MAX_VISIT_NUMBER:
        from lutarterial.errors import ImplausibleValueError

        raise ImplausibleValueError(f"visit number {number} is above {MAX_VISIT_NUMBER}: not a visit of this protocol")
    if kind == VisitKind.IV_CYCLE.value and number > 4:
        raise InvalidInputError(f"IV cycle {number}: LUTATHERA is given in at most 4 cycles")
    out = {
        "kind": kind, "number": number, "status": status,
        "planned_date": as_date(v.get("planned_date"), "planned date", required=False),
        "visit_date": as_date(v.get("visit_date"), "visit date", required=status == VisitStatus.DONE.value,
                              not_future=status == VisitStatus.DONE.value),
        "activity_mbq": as_float(v.get("activity_mbq"), "administered activity (MBq)", required=False,
                                 minimum=0.0, maximum=MAX_ACTIVITY_MBQ),
        "artery": as_optional_text(v.get("artery"), "artery"),
        "catheter_position": as_optional_text(v.get("catheter_position"), "catheter position"),
        "notes": as_optional_text(v.get("notes"), "notes", max_length=4000),
    }
    treatment = kind in (VisitKind.IV_CYCLE.value, VisitKind.IAH_CYCLE.value)
    if not treatment and out["activity_mbq"] is not None:
        raise InvalidInputError(f"a {kind} visit has no administered activity; record it on the treatment cycle")
    if treatment and status == VisitStatus.DONE.value and not out["activity_mbq"]:
        raise InvalidInputError(f"a {kind.replace('_', ' ')} done needs the administered activity (MBq, > 0)")
    if kind == VisitKind.IAH_CYCLE.value and status == VisitStatus.DONE.value:
        if not out["artery"] or not out["catheter_position"]:
            raise InvalidInputError("the IAH cycle needs the injected artery and the catheter position")
    if kind != VisitKind.IAH_CYCLE.value and (out["artery"] or out["catheter_position"]):
        raise InvalidInputError("artery and catheter position belong to the IAH cycle only")
    return out


def _canonical_lab(analyte: str, value: float, unit: str) -> tuple[str, float, str]:
    from lutarterial.units import analyte_by_name, to_canonical

    a = analyte_by_name(analyte)
    if a is None:
        raise InvalidInputError(f"analyte {analyte!r} is not known to lutarterial.units")
    return a.name, to_canonical(a, value, unit), a.canonical_unit


def _v_lab(v: dict[str, Any]) -> dict[str, Any]:
    from lutarterial.units import analyte_by_loinc

    analyte = as_optional_text(v.get("analyte"), "analyte", max_length=50)
    loinc = as_optional_text(v.get("loinc"), "LOINC code", max_length=20)
    if analyte is None and loinc is not None:
        found = analyte_by_loinc(loinc)
        analyte = found.name if found else None
    if analyte is None:
        raise InvalidInputError("analyte (or a known LOINC code) is required")
    value = as_float(v.get("value"), f"{analyte} value")
    unit = as_optional_text(v.get("unit"), f"{analyte} unit", max_length=50)
    if unit is None:
        raise UnitError(f"{analyte}: a unit is required")
    assert value is not None
    name, canonical, canonical_unit = _canonical_lab(analyte, value, unit)
    lln = as_float(v.get("lln"), f"{analyte} LLN", required=False, minimum=0.0)
    uln = as_float(v.get("uln"), f"{analyte} ULN", required=False, minimum=0.0)
    if lln is not None and uln is not None and lln >= uln:
        raise InvalidInputError(f"{analyte} reference range: LLN {lln:g} must be below ULN {uln:g} "
                                "(check that the two limits were not swapped)")
    _plausible_lab(name, unit, {"value": value, "LLN": lln, "ULN": uln})
    return {"analyte": name, "loinc": loinc, "value": value, "unit": unit, "value_canonical": canonical,
            "unit_canonical": canonical_unit, "lln": lln, "uln": uln,
            "collected_date": as_date(v.get("collected_date"), "collection date", not_future=True),
            "visit_id": v.get("visit_id")}


def _plausible_lab(analyte: str, unit: str, values: dict[str, float | None]) -> None:
    """Lab value and reference limits within the analyte's physical limits (issue 9: platelets -150)."""
    from lutarterial.plausibility import check_quantity, plausibility_table

    if analyte not in plausibility_table():
        return
    for label, x in values.items():
        if x is not None:
            check_quantity(analyte, x, unit, name=f"{analyte} {label}")


def _v_ae(v: dict[str, Any]) -> dict[str, Any]:
    term = as_optional_text(v.get("term"), "adverse event term")
    if term is None:
        raise InvalidInputError("adverse event term (CTCAE v5) is required")
    raw_grade = v.get("grade")
    if isinstance(raw_grade, bool) or (isinstance(raw_grade, float) and not raw_grade.is_integer()):
        raise InvalidInputError(f"CTCAE grade {raw_grade!r} must be an integer 1 to 5")
    try:
        grade = int(raw_grade)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"CTCAE grade {raw_grade!r} must be 1 to 5") from None
    if not 1 <= grade <= 5:
        raise InvalidInputError(f"CTCAE grade {grade} must be 1 to 5")
    onset = as_date(v.get("onset_date"), "onset date", not_future=True)
    resolution = as_date(v.get("resolution_date"), "resolution date", required=False, not_future=True)
    if resolution is not None and onset is not None and resolution < onset:
        raise InvalidInputError(f"resolution date {resolution} is before onset {onset}")
    related = str(v.get("relatedness") or "unknown").strip().lower()
    if related not in _RELATEDNESS:
        raise InvalidInputError(f"relatedness {related!r}; valid: {', '.join(_RELATEDNESS)}")
    serious = v.get("serious", False)
    if isinstance(serious, str):
        serious = serious.strip().lower() in ("1", "true", "yes", "y", "on")
    return {"term": term, "meddra_code": as_optional_text(v.get("meddra_code"), "MedDRA code", max_length=20),
            "grade": grade, "onset_date": onset, "resolution_date": resolution, "serious": bool(serious),
            "relatedness": related, "outcome": as_optional_text(v.get("outcome"), "outcome", max_length=50),
            "action_taken": as_optional_text(v.get("action_taken"), "action taken", max_length=100)}


def _v_recist(v: dict[str, Any]) -> dict[str, Any]:
    response = str(v.get("response") or "").strip().upper()
    if response not in _RESPONSES:
        raise InvalidInputError(f"RECIST response {v.get('response')!r}; valid: {', '.join(_RESPONSES)}")
    details = v.get("details")
    if details is not None and not isinstance(details, dict):
        raise InvalidInputError("RECIST details must be a JSON object")
    from lutarterial.plausibility import check_canonical, require_finite_tree

    require_finite_tree(details, "RECIST details")
    target_sum = as_float(v.get("target_sum_mm"), "sum of target diameters (mm)", required=False, minimum=0.0)
    if target_sum is not None:
        check_canonical("sum_of_diameters", target_sum, name="sum of target diameters (mm)")
    return {"assessment_date": as_date(v.get("assessment_date"), "assessment date", not_future=True),
            "target_sum_mm": target_sum,
            "response": response, "details": details, "visit_id": v.get("visit_id")}


def _v_analysis(v: dict[str, Any]) -> dict[str, Any]:
    kind = as_optional_text(v.get("kind"), "analysis kind", max_length=50)
    if kind is None:
        raise InvalidInputError("analysis kind is required (e.g. 'pet_iah_vs_iv', 'lesion_dosimetry')")
    study = as_optional_text(v.get("study_instance_uid"), "StudyInstanceUID", max_length=64)
    series = list(v.get("series_instance_uids") or [])
    for uid in ([study] if study else []) + series:
        if not isinstance(uid, str) or len(uid) > 64 or not _UID.match(uid):
            raise InvalidInputError(f"{uid!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    hashes = dict(v.get("input_hashes") or {})
    for name, digest in hashes.items():
        if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
            raise InvalidInputError(f"input hash of {name!r} must be a SHA-256 hex digest")
    from lutarterial.plausibility import require_finite_tree

    for key in ("parameters", "result"):
        if v.get(key) is not None and not isinstance(v.get(key), dict):
            raise InvalidInputError(f"analysis {key} must be a JSON object")
        require_finite_tree(v.get(key), f"analysis {key}")  # issue 9: NaN inside a result was stored
    out = {"kind": kind, "study_instance_uid": study, "series_instance_uids": series,
           "input_hashes": {str(k): str(d).lower() for k, d in hashes.items()},
           "parameters": dict(v.get("parameters") or {}), "result": dict(v.get("result") or {}),
           "software_version": str(v.get("software_version") or ""), "visit_id": v.get("visit_id")}
    if "imaging_analysis_id" in v:
        out["imaging_analysis_id"] = v.get("imaging_analysis_id")
    return out


@dataclass(frozen=True)
class _Kind:
    model: type[Base]
    permission: str
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    label: str


#: Kinds of participant records that :func:`update_record` / :func:`delete_record` accept.
RECORD_KINDS: dict[str, _Kind] = {
    "visit": _Kind(Visit, Permission.VISIT_WRITE, _v_visit, "visit"),
    "lab": _Kind(LabResult, Permission.LAB_WRITE, _v_lab, "lab result"),
    "adverse_event": _Kind(AdverseEvent, Permission.AE_WRITE, _v_ae, "adverse event"),
    "recist": _Kind(RecistAssessment, Permission.RECIST_WRITE, _v_recist, "RECIST assessment"),
    "imaging_analysis": _Kind(ImagingAnalysis, Permission.IMAGING_WRITE, _v_analysis, "imaging analysis"),
    "dosimetry_analysis": _Kind(DosimetryAnalysis, Permission.DOSIMETRY_WRITE, _v_analysis, "dosimetry analysis"),
}


def _check_refs(session: Session, p: Participant, values: dict[str, Any]) -> None:
    """Visit and imaging-analysis references must belong to the same participant."""
    for key, model in (("visit_id", Visit), ("imaging_analysis_id", ImagingAnalysis)):
        ref = values.get(key)
        if ref is None:
            continue
        try:
            ref = int(ref)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{key} {ref!r} is not an id") from None
        row = session.get(model, ref)
        if row is None or row.participant_id != p.id:  # type: ignore[attr-defined]
            raise InvalidInputError(f"{key} {ref} is not a record of {p.trial_number}")
        values[key] = ref


def _check_not_after_withdrawal(session: Session, p: Participant, when: dt.date | None) -> None:
    if p.status != ParticipantStatus.WITHDRAWN.value or when is None:
        return
    withdrawn = session.scalar(select(Consent.withdrawal_date).where(Consent.participant_id == p.id)
                               .order_by(Consent.withdrawal_date.desc()))
    if withdrawn is not None and when > withdrawn:
        raise InvalidInputError(f"{p.trial_number} withdrew consent on {withdrawn}; no data after that date")


_LR = LabResult.__table__.c
#: The participant's earliest value of an analyte before a date (the CTCAE baseline), prebuilt Core
#: (issue 13, fast: an ORM SELECT of whole rows on every laboratory save). ``exclude``: a corrected row.
_BASELINE = (select(_LR.value_canonical, _LR.unit_canonical)
             .where(_LR.participant_id == bindparam("pid"), _LR.analyte == bindparam("analyte"),
                    _LR.collected_date < bindparam("before"), _LR.id != bindparam("exclude"))
             .order_by(_LR.collected_date, _LR.id).limit(1))


@lru_cache(maxsize=1)
def _baseline_and_rule() -> Any:
    """:data:`_BASELINE` (NULLs when there is none) and the ``ctcae_require_baseline`` setting in one
    row: ``SELECT b.value_canonical, b.unit_canonical, (setting) FROM (SELECT 1) LEFT JOIN (baseline) b
    ON true`` (issue 13, fast: two reads on every laboratory save). Built once, on first use."""
    from lutarterial.registry.services.settings import CTCAE_REQUIRE_BASELINE, setting_subquery

    b = _BASELINE.subquery("baseline")
    one = select(literal(1).label("one")).subquery("one")
    return (select(b.c.value_canonical, b.c.unit_canonical,
                   setting_subquery(CTCAE_REQUIRE_BASELINE).label("require_baseline"))
            .select_from(one.outerjoin(b, true())))


def _grade_lab(session: Session, p: Participant, values: dict[str, Any], exclude_id: int | None = None) -> None:
    """CTCAE v5 grade from ``lutarterial.clinical.ctcae.grade_lab`` (never our own rules).

    LLN/ULN are the lab's reference limits given with the value; the baseline is the
    participant's earliest earlier value of the same analyte (CTCAE grades some terms
    relative to baseline). A value that cannot be graded keeps ``ctcae_grade`` empty and the
    engine's reason in ``grading``.
    """
    try:
        ctcae = importlib.import_module("lutarterial.clinical.ctcae")
    except ImportError:  # pragma: no cover - the clinical package ships with lutarterial
        return
    from lutarterial.registry.services.settings import CTCAE_REQUIRE_BASELINE, setting_or_default

    flush_like_orm(session)
    # the baseline (the earliest only, not every earlier value) and the registry setting in one read
    row = session.execute(_baseline_and_rule(), {
        "pid": p.id, "analyte": values["analyte"], "before": values["collected_date"],
        "exclude": -1 if exclude_id is None else exclude_id}).one()

    graded = ctcae.grade_lab(
        values["analyte"], values["value"], values["unit"], lln=values.get("lln"), uln=values.get("uln"),
        baseline=row.value_canonical, baseline_unit=row.unit_canonical,
        date=values["collected_date"].isoformat(),
        # issue 10: the registry setting decides the baseline rule (default: missing = normal, said so)
        require_baseline=bool(setting_or_default(CTCAE_REQUIRE_BASELINE, row.require_baseline)),
    )
    data = graded.to_dict()
    values["grading"] = data
    values["ctcae_grade"] = data.get("grade")
    values["ctcae_term"] = data.get("term")


def _check_rules(session: Session, p: Participant, kind: str, clean: dict[str, Any], exclude_id: int | None) -> None:
    """Rules across records, applied on entry and on correction alike."""
    _check_refs(session, p, clean)
    _check_not_after_withdrawal(session, p, clean.get("visit_date") or clean.get("collected_date")
                                or clean.get("onset_date") or clean.get("assessment_date"))
    if kind == "lab":
        _grade_lab(session, p, clean, exclude_id=exclude_id)
    if kind == "visit":
        stmt = select(Visit).where(Visit.participant_id == p.id, Visit.kind == clean["kind"],
                                   Visit.number == clean["number"])
        if exclude_id is not None:
            stmt = stmt.where(Visit.id != exclude_id)
        if session.scalars(stmt).first() is not None:
            raise InvalidInputError(f"{p.trial_number} already has {clean['kind']} #{clean['number']}; update it instead")
        if clean["kind"] in (VisitKind.IAH_CYCLE.value, VisitKind.PET_AFTER_IAH.value) and p.status not in (
                ParticipantStatus.ENROLLED.value, ParticipantStatus.TREATED.value, ParticipantStatus.COMPLETED.value):
            raise InvalidInputError(f"{p.trial_number} is {p.status}; the IAH cycle needs an enrolled participant")


def _create(session: Session, actor: Actor, kind: str, participant: int | str, values: dict[str, Any],
            reason: str) -> Any:
    spec = RECORD_KINDS[kind]
    require(actor, spec.permission)
    p = load_participant(session, actor, participant)
    clean = spec.validate(values)
    _check_rules(session, p, kind, clean, None)
    with audited(session, actor, reason):
        row = spec.model(participant_id=p.id, **clean)
        session.add(row)
        _after_visit_change(p, row if kind == "visit" else None)
    return row


def _after_visit_change(p: Participant, visit: Visit | None) -> None:
    if (visit is not None and visit.kind == VisitKind.IAH_CYCLE.value and visit.status == VisitStatus.DONE.value
            and p.status == ParticipantStatus.ENROLLED.value):
        p.status = ParticipantStatus.TREATED.value


# --- creation services ------------------------------------------------------------------------


def record_visit(session: Session, actor: Actor, participant: int | str, *, kind: str, reason: str,
                 number: int = 1, status: str = "planned", planned_date: dt.date | str | None = None,
                 visit_date: dt.date | str | None = None, activity_mbq: float | None = None,
                 artery: str | None = None, catheter_position: str | None = None, notes: str | None = None) -> Visit:
    """Schedule or record a visit of the protocol (:class:`~lutarterial.registry.models.VisitKind`)."""
    return _create(session, actor, "visit", participant, dict(
        kind=kind, number=number, status=status, planned_date=planned_date, visit_date=visit_date,
        activity_mbq=activity_mbq, artery=artery, catheter_position=catheter_position, notes=notes), reason)


def record_iah_cycle(session: Session, actor: Actor, participant: int | str, *, visit_date: dt.date | str,
                     activity_mbq: float, artery: str, catheter_position: str, reason: str,
                     notes: str | None = None) -> Visit:
    """Record the intra-arterial hepatic LUTATHERA cycle as done (participant becomes ``treated``).

    Updates the planned IAH visit if one exists, else creates it.
    """
    p = load_participant(session, actor, participant)
    planned = session.scalars(select(Visit).where(Visit.participant_id == p.id,
                                                  Visit.kind == VisitKind.IAH_CYCLE.value)).first()
    fields = dict(status="done", visit_date=visit_date, activity_mbq=activity_mbq, artery=artery,
                  catheter_position=catheter_position, notes=notes)
    if planned is not None:
        return update_record(session, actor, "visit", planned.id, fields, reason=reason)
    return record_visit(session, actor, p.id, kind="iah_cycle", reason=reason, **fields)  # type: ignore[arg-type]


def record_lab(session: Session, actor: Actor, participant: int | str, *, analyte: str | None, value: float,
               unit: str, collected_date: dt.date | str, reason: str, loinc: str | None = None,
               visit_id: int | None = None, lln: float | None = None, uln: float | None = None) -> LabResult:
    """Record a lab value as reported; converted to the canonical unit by ``lutarterial.units``
    (an unknown unit is refused) and CTCAE-graded by ``lutarterial.clinical.ctcae.grade_lab``.
    ``lln``/``uln``: the lab's reference limits, in ``unit`` (needed for ×ULN terms)."""
    return _create(session, actor, "lab", participant, dict(analyte=analyte, value=value, unit=unit,
                   collected_date=collected_date, loinc=loinc, visit_id=visit_id, lln=lln, uln=uln), reason)


def record_adverse_event(session: Session, actor: Actor, participant: int | str, *, term: str, grade: int,
                         onset_date: dt.date | str, reason: str, serious: bool = False,
                         relatedness: str = "unknown", resolution_date: dt.date | str | None = None,
                         meddra_code: str | None = None, outcome: str | None = None,
                         action_taken: str | None = None) -> AdverseEvent:
    """Record an adverse event (CTCAE v5 term and grade 1-5)."""
    return _create(session, actor, "adverse_event", participant, dict(
        term=term, grade=grade, onset_date=onset_date, serious=serious, relatedness=relatedness,
        resolution_date=resolution_date, meddra_code=meddra_code, outcome=outcome, action_taken=action_taken), reason)


def record_recist(session: Session, actor: Actor, participant: int | str, *, assessment_date: dt.date | str,
                  response: str, reason: str, target_sum_mm: float | None = None,
                  details: dict[str, Any] | None = None, visit_id: int | None = None) -> RecistAssessment:
    """Record a RECIST 1.1 time-point response (``details``: the clinical engine's result dict)."""
    return _create(session, actor, "recist", participant, dict(
        assessment_date=assessment_date, response=response, target_sum_mm=target_sum_mm, details=details,
        visit_id=visit_id), reason)


def attach_imaging_analysis(session: Session, actor: Actor, participant: int | str, *, kind: str,
                            result: dict[str, Any], reason: str, study_instance_uid: str | None = None,
                            series_instance_uids: list[str] | None = None,
                            input_hashes: dict[str, str] | None = None, parameters: dict[str, Any] | None = None,
                            software_version: str = "", visit_id: int | None = None) -> ImagingAnalysis:
    """Attach an imaging analysis with its inputs' DICOM UIDs and SHA-256 file hashes."""
    return _create(session, actor, "imaging_analysis", participant, dict(
        kind=kind, result=result, study_instance_uid=study_instance_uid, series_instance_uids=series_instance_uids,
        input_hashes=input_hashes, parameters=parameters, software_version=software_version, visit_id=visit_id),
        reason)


def attach_dosimetry_analysis(session: Session, actor: Actor, participant: int | str, *, kind: str,
                              result: dict[str, Any], reason: str, study_instance_uid: str | None = None,
                              series_instance_uids: list[str] | None = None,
                              input_hashes: dict[str, str] | None = None, parameters: dict[str, Any] | None = None,
                              software_version: str = "", visit_id: int | None = None,
                              imaging_analysis_id: int | None = None) -> DosimetryAnalysis:
    """Attach a dosimetry analysis (optionally pointing at the imaging analysis it used)."""
    return _create(session, actor, "dosimetry_analysis", participant, dict(
        kind=kind, result=result, study_instance_uid=study_instance_uid, series_instance_uids=series_instance_uids,
        input_hashes=input_hashes, parameters=parameters, software_version=software_version, visit_id=visit_id,
        imaging_analysis_id=imaging_analysis_id), reason)


def complete_participation(session: Session, actor: Actor, participant: int | str, *, end_date: dt.date | str,
                           reason: str, notes: str | None = None) -> Visit:
    """Close follow-up: record the end-of-study visit as done; the participant becomes ``completed``.

    Only for an enrolled or treated participant (a withdrawal is recorded with ``withdraw_consent``).
    """
    p = load_participant(session, actor, participant)
    if p.status not in (ParticipantStatus.ENROLLED.value, ParticipantStatus.TREATED.value):
        raise InvalidInputError(f"{p.trial_number} is {p.status}; only an enrolled participant completes the study")
    visit = record_visit(session, actor, p.id, kind="end_of_study", status="done", visit_date=end_date, notes=notes,
                         reason=reason)
    with audited(session, actor, reason):
        p.status = ParticipantStatus.COMPLETED.value
    return visit


# --- reads ------------------------------------------------------------------------------------


def _list(session: Session, actor: Actor, model: type[Any], participant: int | str, *order: Any) -> list[Any]:
    p = load_participant(session, actor, participant)
    return list(session.scalars(select(model).where(model.participant_id == p.id).order_by(*order, model.id)))


def list_visits(session: Session, actor: Actor, participant: int | str) -> list[Visit]:
    return _list(session, actor, Visit, participant, Visit.visit_date, Visit.planned_date)


def list_labs(session: Session, actor: Actor, participant: int | str) -> list[LabResult]:
    return _list(session, actor, LabResult, participant, LabResult.collected_date)


def list_adverse_events(session: Session, actor: Actor, participant: int | str) -> list[AdverseEvent]:
    return _list(session, actor, AdverseEvent, participant, AdverseEvent.onset_date)


def list_recist(session: Session, actor: Actor, participant: int | str) -> list[RecistAssessment]:
    return _list(session, actor, RecistAssessment, participant, RecistAssessment.assessment_date)


def list_analyses(session: Session, actor: Actor, participant: int | str, *,
                  dosimetry: bool = False) -> list[Any]:
    return _list(session, actor, DosimetryAnalysis if dosimetry else ImagingAnalysis, participant)


def get_record(session: Session, actor: Actor, kind: str, record_id: int) -> Any:
    """One record of ``kind`` (see :data:`RECORD_KINDS`), if the actor may see its participant."""
    spec = RECORD_KINDS.get(kind)
    if spec is None:
        raise InvalidInputError(f"record kind {kind!r}; valid: {', '.join(RECORD_KINDS)}")
    row = session.get(spec.model, record_id)
    if row is None:
        raise NotFoundError(f"{spec.label} {record_id} does not exist")
    try:
        load_participant(session, actor, row.participant_id)  # type: ignore[attr-defined]
    except ParticipantHiddenError:  # another site's record: answered like a missing one (issue 9)
        raise ParticipantHiddenError(f"{spec.label} {record_id} does not exist") from None
    return row


def update_record(session: Session, actor: Actor, kind: str, record_id: int, changes: dict[str, Any], *,
                  reason: str) -> Any:
    """Correct fields of a record; the merged record is validated as on entry; audited with reason."""
    spec = RECORD_KINDS.get(kind)
    if spec is None:
        raise InvalidInputError(f"record kind {kind!r}; valid: {', '.join(RECORD_KINDS)}")
    require(actor, spec.permission)
    row = get_record(session, actor, kind, record_id)
    p = load_participant(session, actor, row.participant_id)
    current = {attr: getattr(row, attr) for attr in spec.model.__table__.columns.keys()}
    unknown = set(changes) - set(current) or set(changes) & {"id", "participant_id", "created_at"}
    if unknown:
        raise InvalidInputError(f"{spec.label}: cannot change {', '.join(sorted(unknown))}")
    clean = spec.validate({**current, **changes})
    _check_rules(session, p, kind, clean, row.id)
    with audited(session, actor, reason):
        for key, value in clean.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
        _after_visit_change(p, row if kind == "visit" else None)
    return row


def delete_record(session: Session, actor: Actor, kind: str, record_id: int, *, reason: str) -> None:
    """Delete a record entered in error; its last values stay in the audit trail."""
    spec = RECORD_KINDS.get(kind)
    if spec is None:
        raise InvalidInputError(f"record kind {kind!r}; valid: {', '.join(RECORD_KINDS)}")
    require(actor, spec.permission)
    row = get_record(session, actor, kind, record_id)
    with audited(session, actor, reason):
        session.delete(row)


# --- timeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    """One line of the participant timeline (consent, screenings, enrolment, visits, AEs)."""

    date: dt.date | None
    kind: str
    label: str
    status: str
    record_kind: str
    record_id: int


_ORDER = {k.value: i for i, k in enumerate(VisitKind)}


def participant_timeline(session: Session, actor: Actor, participant: int | str) -> list[TimelineItem]:
    """The protocol schedule of one participant in date order (undated planned items last)."""
    from lutarterial.registry.models import Enrolment

    p = load_participant(session, actor, participant)
    items: list[TimelineItem] = []
    for c in session.scalars(select(Consent).where(Consent.participant_id == p.id)):
        items.append(TimelineItem(c.signed_date, "consent", f"Consent {c.version}", "signed", "consent", c.id))
        if c.withdrawal_date:
            items.append(TimelineItem(c.withdrawal_date, "withdrawal", f"Consent {c.version} withdrawn",
                                      "withdrawn", "consent", c.id))
    for s in session.scalars(select(ScreeningResult).where(ScreeningResult.participant_id == p.id)):
        items.append(TimelineItem(s.as_of, "screening", f"Screening (protocol {s.protocol_version})", s.overall,
                                  "screening", s.id))
    for e in session.scalars(select(Enrolment).where(Enrolment.participant_id == p.id)):
        items.append(TimelineItem(e.enrolled_date, "enrolment", "Enrolment", "enrolled", "enrolment", e.id))
    for v in session.scalars(select(Visit).where(Visit.participant_id == p.id)):
        label = VisitKind(v.kind).name.replace("_", " ").title().replace("Iah", "IAH").replace("Iv", "IV") \
            .replace("Pet", "PET")
        if v.kind in (VisitKind.IV_CYCLE.value, VisitKind.FOLLOW_UP.value):
            label += f" {v.number}"
        if v.activity_mbq:
            label += f" — {v.activity_mbq:.0f} MBq"
        items.append(TimelineItem(v.visit_date or v.planned_date, v.kind, label, v.status, "visit", v.id))
    for a in session.scalars(select(AdverseEvent).where(AdverseEvent.participant_id == p.id)):
        items.append(TimelineItem(a.onset_date, "adverse_event", f"AE: {a.term} (grade {a.grade})",
                                  "serious" if a.serious else "recorded", "adverse_event", a.id))
    far = dt.date.max
    items.sort(key=lambda i: (i.date or far, _ORDER.get(i.kind, -1), i.record_id))
    return items
