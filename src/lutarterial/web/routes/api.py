"""REST API under ``/api`` (OpenAPI at ``/openapi.json``), the same operations as the pages.

Authentication is the session cookie from ``POST /api/login``; every write must carry the
session's CSRF token in ``X-CSRF-Token`` and a ``reason`` (audit trail). Errors are JSON
``{"error": <type>, "detail": <what to fix>}`` with 400/401/403/404/422.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lutarterial.errors import InvalidInputError
from lutarterial.web.backend import WebUser, normalise_screening
from lutarterial.web.deps import backend_of, current_user, require_csrf
from lutarterial.web.perf import json_now

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["registry"])
W = [Depends(require_csrf)]


def _reason_and_fields(body: BaseModel, exclude: set[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Split a write body into the audit reason and the fields passed to the registry service."""
    data = body.model_dump(exclude=exclude)
    return data.pop("reason"), data

Reason = Field(min_length=1, max_length=2000, description="why (recorded in the audit trail)")


class ParticipantIn(BaseModel):
    site: str = Field(description="site code, e.g. BDX")
    reason: str = Reason
    sex: str | None = None
    year_of_birth: int | None = None
    consent_version: str | None = None
    consent_date: dt.date | None = None


class ConsentIn(BaseModel):
    version: str
    signed_date: dt.date
    reason: str = Reason


class ScreeningIn(BaseModel):
    record: dict[str, Any] = Field(description="screening record (lutarterial.records JSON Schema)")
    as_of: dt.date
    protocol_version: str | None = None
    reason: str = Reason


class EvaluateIn(BaseModel):
    record: dict[str, Any]
    as_of: dt.date | None = None
    protocol_version: str | None = None


class EnrolIn(BaseModel):
    enrolled_date: dt.date
    reason: str = Reason


class VisitIn(BaseModel):
    kind: str = Field(description="iv_cycle, pet_after_iv, iah_cycle, pet_after_iah, follow_up, end_of_study")
    reason: str = Reason
    number: int = 1
    status: str = "planned"
    planned_date: dt.date | None = None
    visit_date: dt.date | None = None
    activity_mbq: float | None = None
    artery: str | None = None
    catheter_position: str | None = None
    notes: str | None = None


class IahCycleIn(BaseModel):
    visit_date: dt.date
    activity_mbq: float
    artery: str
    catheter_position: str
    reason: str = Reason
    notes: str | None = None


class LabIn(BaseModel):
    analyte: str | None = None
    loinc: str | None = None
    value: float
    unit: str
    collected_date: dt.date
    reason: str = Reason
    lln: float | None = None
    uln: float | None = None


class AdverseEventIn(BaseModel):
    term: str
    grade: int
    onset_date: dt.date
    reason: str = Reason
    serious: bool = False
    relatedness: str = "unknown"
    resolution_date: dt.date | None = None
    outcome: str | None = None


class RecistIn(BaseModel):
    assessment_date: dt.date
    response: str
    reason: str = Reason
    target_sum_mm: float | None = None
    details: dict[str, Any] | None = None


class AnalysisIn(BaseModel):
    kind: str
    result: dict[str, Any]
    reason: str = Reason
    study_instance_uid: str | None = None
    series_instance_uids: list[str] | None = None
    input_hashes: dict[str, str] | None = None
    parameters: dict[str, Any] | None = None
    software_version: str = ""
    imaging_analysis_id: int | None = None


@router.get("/sites")
def sites(request: Request, user: WebUser = Depends(current_user)) -> list[dict[str, str]]:
    """The sites the signed-in user belongs to (all for admin)."""
    return list(backend_of(request).sites_of(user))


@router.get("/participants")
def participants(request: Request, site: str | None = None, status: str | None = None,
                 user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    """Participants of the user's sites with status and last screening verdict."""
    return list(backend_of(request).list_participants(user, site=site, status=status))


@router.post("/participants", status_code=201, dependencies=W)
def register(request: Request, body: ParticipantIn, user: WebUser = Depends(current_user)) -> dict[str, str]:
    """Register a participant (allocates the trial number), optionally with consent."""
    tn = backend_of(request).register(user, site=body.site, reason=body.reason, sex=body.sex,
                                      year_of_birth=body.year_of_birth, consent_version=body.consent_version,
                                      consent_date=body.consent_date.isoformat() if body.consent_date else None)
    return {"trial_number": tn}


@router.get("/participants/{tn}")
def participant(request: Request, tn: str, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Everything about one participant (study data only; never the identity key)."""
    return json_now(dict(backend_of(request).participant(user, tn)))  # type: ignore[no-any-return]


@router.get("/participants/{tn}/identity")
def identity(request: Request, tn: str, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """The identity key: administrators only (every other role gets 403)."""
    return dict(backend_of(request).identity(user, tn))


@router.get("/participants/{tn}/timeline")
def timeline(request: Request, tn: str, user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    """The protocol schedule in date order."""
    return list(backend_of(request).timeline(user, tn))


@router.post("/participants/{tn}/consents", status_code=201, dependencies=W)
def consent(request: Request, tn: str, body: ConsentIn, user: WebUser = Depends(current_user)) -> dict[str, bool]:
    backend_of(request).record_consent(user, tn, version=body.version, signed_date=body.signed_date.isoformat(),
                                       reason=body.reason)
    return {"ok": True}


@router.post("/screening/evaluate", dependencies=W)
def evaluate(request: Request, body: EvaluateIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Screen a record without storing anything (the live screening form uses this)."""
    try:
        from lutarterial.eligibility import screen
    except ImportError:
        raise InvalidInputError("the screening engine is not installed in this build") from None
    as_of = body.as_of or dt.datetime.now(dt.timezone.utc).date()
    result = screen(body.record, as_of=as_of, protocol_version=body.protocol_version or None)
    return normalise_screening(result.to_dict())


@router.post("/participants/{tn}/screenings", status_code=201, dependencies=W)
def screen_participant(request: Request, tn: str, body: ScreeningIn,
                       user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Screen and store the record with the protocol version and result."""
    return dict(backend_of(request).screen(user, tn, record=body.record, as_of=body.as_of.isoformat(),
                                           reason=body.reason, protocol_version=body.protocol_version))


@router.get("/screenings/{screening_id}/rescreen")
def rescreen(request: Request, screening_id: int, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Re-run the engine on a stored screening and say whether it reproduces the stored result."""
    return dict(backend_of(request).rescreen(user, screening_id))


@router.post("/participants/{tn}/enrolment", status_code=201, dependencies=W)
def enrol(request: Request, tn: str, body: EnrolIn, user: WebUser = Depends(current_user)) -> dict[str, bool]:
    backend_of(request).enrol(user, tn, enrolled_date=body.enrolled_date.isoformat(), reason=body.reason)
    return {"ok": True}


@router.post("/participants/{tn}/visits", status_code=201, dependencies=W)
def visit(request: Request, tn: str, body: VisitIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    reason, data = _reason_and_fields(body)
    return dict(backend_of(request).record_visit(user, tn, reason=reason, **data))


@router.post("/participants/{tn}/iah-cycle", status_code=201, dependencies=W)
def iah_cycle(request: Request, tn: str, body: IahCycleIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Record the intra-arterial hepatic LUTATHERA cycle (date, activity, artery, catheter position)."""
    reason, data = _reason_and_fields(body)
    return dict(backend_of(request).record_iah_cycle(user, tn, reason=reason, **data))


@router.post("/participants/{tn}/labs", status_code=201, dependencies=W)
def lab(request: Request, tn: str, body: LabIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Record a laboratory value (converted to its canonical unit and CTCAE-graded by the registry)."""
    reason, data = _reason_and_fields(body)
    return json_now(dict(backend_of(request).add_lab(user, tn, reason=reason, **data)), 201)  # type: ignore[no-any-return]


@router.post("/participants/{tn}/adverse-events", status_code=201, dependencies=W)
def adverse_event(request: Request, tn: str, body: AdverseEventIn,
                  user: WebUser = Depends(current_user)) -> dict[str, Any]:
    reason, data = _reason_and_fields(body)
    return dict(backend_of(request).add_adverse_event(user, tn, reason=reason, **data))


@router.post("/participants/{tn}/recist", status_code=201, dependencies=W)
def recist(request: Request, tn: str, body: RecistIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    reason, data = _reason_and_fields(body)
    return dict(backend_of(request).add_recist(user, tn, reason=reason, **data))


@router.post("/participants/{tn}/imaging-analyses", status_code=201, dependencies=W)
def imaging_analysis(request: Request, tn: str, body: AnalysisIn,
                     user: WebUser = Depends(current_user)) -> dict[str, int]:
    reason, data = _reason_and_fields(body, exclude={"imaging_analysis_id"})
    return {"id": backend_of(request).attach_analysis(user, tn, dosimetry=False, reason=reason, **data)}


@router.post("/participants/{tn}/dosimetry-analyses", status_code=201, dependencies=W)
def dosimetry_analysis(request: Request, tn: str, body: AnalysisIn,
                       user: WebUser = Depends(current_user)) -> dict[str, int]:
    reason, data = _reason_and_fields(body)
    return {"id": backend_of(request).attach_analysis(user, tn, dosimetry=True, reason=reason, **data)}


@router.get("/participants/{tn}/audit")
def participant_audit(request: Request, tn: str, user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    """Audit rows about one participant, oldest first."""
    return list(backend_of(request).participant_audit(user, tn))


@router.get("/audit")
def audit(request: Request, table: str | None = None, limit: int = 200,
          user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    """Newest audit rows (monitors and admins)."""
    return list(backend_of(request).audit(user, table=table, limit=limit))


@router.get("/audit/verify")
def audit_verify(request: Request, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Recompute the audit hash chain (monitors and admins)."""
    if not user.can_audit:
        from lutarterial.errors import AccessDeniedError

        raise AccessDeniedError(f"user {user.username!r} may not verify the audit trail")
    return dict(backend_of(request).verify_chain(max_age_s=0))  # always a full pass (the page may reuse it)
