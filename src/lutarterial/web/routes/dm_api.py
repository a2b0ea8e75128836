"""Data-management JSON routes (issue 13): schedule, queries, e-signatures, locks, SDV.

Same conventions as ``routes/api.py``: session cookie, ``X-CSRF-Token`` on writes, registry
services do the access checks and the audit. Writes to a locked participant answer 423.
``today`` (YYYY-MM-DD) may be passed to the read routes to see statuses on another day.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lutarterial.registry import services as sv
from lutarterial.web import dm
from lutarterial.web.backend import WebUser
from lutarterial.web.deps import backend_of, current_user, require_csrf

__all__ = ["router"]

_ERR = {"description": "error: {error, detail}"}
_R = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR}
_RW = {**_R, 423: {"description": "the participant or form is locked: unlock it (data manager) first"}}
router = APIRouter(prefix="/api", tags=["data management"], responses=_R)  # type: ignore[arg-type]
W = [Depends(require_csrf)]


class QueryIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000, description="the question to the site")
    table_name: str | None = Field(None, description="form: table of the record (e.g. lab_results); none = participant")
    row_id: int | None = None
    field: str | None = Field(None, description="one field of the form (e.g. year_of_birth, record.patient.sex)")
    assign_to: str | None = None


class TextIn(BaseModel):
    text: str = Field("", max_length=4000)


class AssignIn(BaseModel):
    assign_to: str = Field(min_length=1, max_length=100)


class SignIn(BaseModel):
    password: str = Field(min_length=1, max_length=500)
    meaning: str
    username: str | None = Field(None, description="required on the first signing of a session")
    table_name: str | None = None
    row_id: int | None = None


class LockIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    table_name: str | None = None
    row_id: int | None = None


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class SdvIn(BaseModel):
    table_name: str
    row_id: int
    field: str | None = None


@router.get("/participants/{tn}/schedule")
def participant_schedule(request: Request, tn: str, today: str | None = None,
                         user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    """Planned dates, windows and status (due, overdue, done_in_window, done_out_of_window, missed,
    not_applicable) of each visit of the protocol's schedule."""
    return dm.schedule(backend_of(request), user, tn, on=dm.today(today))


@router.get("/schedule/dashboard")
def schedule_dashboard(request: Request, site: str | None = None, today: str | None = None,
                       user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Upcoming and overdue visits of the user's sites, and query counts/ages per site."""
    return dm.dashboard(backend_of(request), user, on=dm.today(today), site=site)


@router.get("/queries")
def list_queries(request: Request, site: str | None = None, status: str | None = None, today: str | None = None,
                 user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    return dm.queries(backend_of(request), user, on=dm.today(today), site=site, status=status)


@router.get("/participants/{tn}/queries")
def participant_queries(request: Request, tn: str, status: str | None = None,
                        user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    return dm.queries(backend_of(request), user, on=dm.today(), tn=tn, status=status)


@router.get("/queries/{query_id}")
def get_query(request: Request, query_id: int, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    return dm.query_thread(backend_of(request), user, query_id, on=dm.today())


@router.post("/participants/{tn}/queries", dependencies=W, status_code=201, responses=_RW)  # type: ignore[arg-type]
def open_query(request: Request, tn: str, body: QueryIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Open a query on the participant, a form or one field (monitor, data manager, admin)."""
    return dm.write(backend_of(request), sv.open_query, user.actor, tn, **body.model_dump())


@router.post("/queries/{query_id}/assign", dependencies=W)
def assign_query(request: Request, query_id: int, body: AssignIn, user: WebUser = Depends(current_user)) -> dict:
    return dm.write(backend_of(request), sv.assign_query, user.actor, query_id, assign_to=body.assign_to)


@router.post("/queries/{query_id}/answer", dependencies=W)
def answer_query(request: Request, query_id: int, body: TextIn, user: WebUser = Depends(current_user)) -> dict:
    """The site's answer (coordinator, investigator)."""
    return dm.write(backend_of(request), sv.answer_query, user.actor, query_id, text=body.text)


@router.post("/queries/{query_id}/close", dependencies=W)
def close_query(request: Request, query_id: int, body: TextIn, user: WebUser = Depends(current_user)) -> dict:
    """Close (the opener; a data manager; anyone who opens queries for an automatic one)."""
    return dm.write(backend_of(request), sv.close_query, user.actor, query_id, text=body.text)


@router.post("/queries/{query_id}/reopen", dependencies=W)
def reopen_query(request: Request, query_id: int, body: TextIn, user: WebUser = Depends(current_user)) -> dict:
    return dm.write(backend_of(request), sv.reopen_query, user.actor, query_id, text=body.text)


@router.post("/participants/{tn}/edit-checks", dependencies=W)
def run_checks(request: Request, tn: str, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Run the edit checks now (they also run after every write); returns the queries opened."""
    return dm.write(backend_of(request), sv.run_edit_checks, user.actor, tn)


@router.get("/participants/{tn}/signatures")
def list_signatures(request: Request, tn: str, user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    """Signatures (printed name, UTC date-time, meaning, content hash; voided ones with the reason)."""
    with backend_of(request).read() as s:
        return sv.list_signatures(s, user.actor, tn)


@router.post("/participants/{tn}/signatures", dependencies=W, status_code=201)
def sign(request: Request, tn: str, body: SignIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Sign the casebook (no table_name) or one form: password re-entered at each signing (investigator)."""
    return dm.write(backend_of(request), sv.sign, user.actor, tn, **body.model_dump())


@router.get("/participants/{tn}/locks")
def list_locks(request: Request, tn: str, user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    with backend_of(request).read() as s:
        return [sv.lock_dict(lk) for lk in sv.list_locks(s, user.actor, tn)]


@router.post("/participants/{tn}/locks", dependencies=W, status_code=201)
def lock(request: Request, tn: str, body: LockIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Lock the participant (no table_name) or one form (data manager, admin)."""
    return dm.write(backend_of(request), sv.lock_record, user.actor, tn, **body.model_dump())


@router.post("/locks/{lock_id}/unlock", dependencies=W)
def unlock(request: Request, lock_id: int, body: ReasonIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    return dm.write(backend_of(request), sv.unlock_record, user.actor, lock_id, reason=body.reason)


@router.get("/participants/{tn}/sdv")
def list_sdv(request: Request, tn: str, user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    with backend_of(request).read() as s:
        return [sv.sdv_dict(m) for m in sv.list_sdv(s, user.actor, tn)]


@router.post("/participants/{tn}/sdv", dependencies=W, status_code=201)
def mark_sdv(request: Request, tn: str, body: SdvIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Mark a form or one field source-verified (monitor, admin); cleared when the value changes."""
    return dm.write(backend_of(request), sv.mark_verified, user.actor, tn, **body.model_dump())
