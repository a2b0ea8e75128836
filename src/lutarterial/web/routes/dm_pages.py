"""Data-management pages (issue 13): the participant's schedule, queries, signatures, locks and
SDV (``/participants/{tn}/data-management``) and the sites' dashboard (``/data-management``).

Forms post here; each write calls one registry service (access checks, audit) and comes back to
the page with a message. A write refused by a lock shows the lock's message (the API answers 423).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from lutarterial.errors import AccessDeniedError, InvalidInputError
from lutarterial.registry import services as sv
from lutarterial.web import dm
from lutarterial.web.backend import WebUser
from lutarterial.web.deps import backend_of, current_user, flash, require_csrf

__all__ = ["router", "install"]

router = APIRouter(include_in_schema=False)
W = [Depends(require_csrf)]
_ESIG_KEY = "esig_uid"  # set after the first signing of a session (both components given)


def _render(request: Request, template: str, **ctx: Any) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, request.app.state.page_context(request, ctx))


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _back(tn: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/participants/{quote(tn)}/data-management{'#' + anchor if anchor else ''}",
                            status_code=303)


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"{value!r} is not a record number") from None


def _target(f: dict[str, str]) -> tuple[str | None, int | None]:
    """A form picker value ``table:row`` (or separate table_name/row_id fields)."""
    pick = (f.get("target") or "").strip()
    if pick:
        table, _, row = pick.partition(":")
        return table or None, _int(row)
    return (f.get("table_name") or None), _int(f.get("row_id"))


def _do(request: Request, ok: str, back: RedirectResponse, fn: Any, *args: Any, **kwargs: Any) -> RedirectResponse:
    try:
        dm.write(backend_of(request), fn, *args, **kwargs)
    except (InvalidInputError, AccessDeniedError) as exc:  # incl. RecordLockedError (423 on the API)
        flash(request, "error", f"Not saved: {exc}")
        return back
    flash(request, "ok", ok)
    return back


@router.get("/participants/{tn}/data-management")
def participant_dm(request: Request, tn: str, today: str | None = None,
                   user: WebUser = Depends(current_user)) -> Response:
    be = backend_of(request)
    p = be.participant(user, tn, set())
    on = dm.today(today)
    data = dm.dm_overview(be, user, tn, on=on)
    session = request.scope.get("session") or {}
    return _render(request, "dm_participant.html", p=p, dm=data, tab="dm", today=on.isoformat(),
                   first_signing=session.get(_ESIG_KEY) != user.id, title=f"{p['trial_number']} data management",
                   active="participants")


@router.post("/participants/{tn}/queries", dependencies=W)
async def open_query(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    try:
        table, row = _target(f)
    except InvalidInputError as exc:
        flash(request, "error", f"Not saved: {exc}")
        return _back(tn, "queries")
    return _do(request, "Query opened.", _back(tn, "queries"), sv.open_query, user.actor, tn, text=f.get("text", ""),
               table_name=table, row_id=row, field=f.get("field") or None, assign_to=f.get("assign_to") or None)


@router.post("/queries/{query_id}/{action}", dependencies=W)
async def query_action(request: Request, query_id: int, action: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    tn = f.get("tn", "")
    back = _back(tn, f"q{query_id}") if tn else RedirectResponse("/data-management", status_code=303)
    if action == "answer":
        return _do(request, "Answer sent.", back, sv.answer_query, user.actor, query_id, text=f.get("text", ""))
    if action == "close":
        return _do(request, "Query closed.", back, sv.close_query, user.actor, query_id, text=f.get("text", ""))
    if action == "reopen":
        return _do(request, "Query re-opened.", back, sv.reopen_query, user.actor, query_id, text=f.get("text", ""))
    if action == "assign":
        return _do(request, "Query assigned.", back, sv.assign_query, user.actor, query_id,
                   assign_to=f.get("assign_to", ""))
    raise InvalidInputError(f"query action {action!r}; valid: answer, close, reopen, assign")


@router.post("/participants/{tn}/sign", dependencies=W)
async def sign(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    session = request.scope.get("session")
    first = not isinstance(session, dict) or session.get(_ESIG_KEY) != user.id
    back = _back(tn, "signatures")
    if first and not (f.get("username") or "").strip():
        flash(request, "error", "Not signed: the first signing of a session needs your user name and password")
        return back
    try:
        table, row = _target(f)
        dm.write(backend_of(request), sv.sign, user.actor, tn, password=f.get("password", ""),
                 meaning=f.get("meaning", ""), table_name=table, row_id=row,
                 username=(f.get("username") or None) if first else None)
    except (InvalidInputError, AccessDeniedError) as exc:
        flash(request, "error", f"Not signed: {exc}")
        return back
    if isinstance(session, dict):
        session[_ESIG_KEY] = user.id
    flash(request, "ok", "Signed.")
    return back


@router.post("/participants/{tn}/lock", dependencies=W)
async def lock(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    try:
        table, row = _target(f)
    except InvalidInputError as exc:
        flash(request, "error", f"Not saved: {exc}")
        return _back(tn, "locks")
    return _do(request, "Locked.", _back(tn, "locks"), sv.lock_record, user.actor, tn, reason=f.get("reason", ""),
               table_name=table, row_id=row)


@router.post("/locks/{lock_id}/unlock", dependencies=W)
async def unlock(request: Request, lock_id: int, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    return _do(request, "Unlocked.", _back(f.get("tn", ""), "locks"), sv.unlock_record, user.actor, lock_id,
               reason=f.get("reason", ""))


@router.post("/participants/{tn}/sdv", dependencies=W)
async def sdv(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    try:
        table, row = _target(f)
    except InvalidInputError as exc:
        flash(request, "error", f"Not saved: {exc}")
        return _back(tn, "sdv")
    return _do(request, "Marked source-verified.", _back(tn, "sdv"), sv.mark_verified, user.actor, tn,
               table_name=table or "", row_id=row, field=f.get("field") or None)


@router.get("/data-management")
def dashboard(request: Request, site: str | None = None, today: str | None = None,
              user: WebUser = Depends(current_user)) -> Response:
    be = backend_of(request)
    on = dm.today(today)
    data = dm.dashboard(be, user, on=on, site=site or None)
    open_q = dm.queries(be, user, on=on, site=site or None)
    return _render(request, "dm_dashboard.html", board=data, queries=[q for q in open_q if q["status"] != "closed"],
                   sites=be.sites_of(user), site=site, today=on.isoformat(), active="dm", title="Data management")


@router.post("/participants/{tn}/recist-lesions", dependencies=W)
async def recist_lesions(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    """RECIST per lesion: the engine computes the response from all time points (issue 13)."""
    from lutarterial.web import recist_form

    f = await _form(request)
    be = backend_of(request)
    back = RedirectResponse(f"/participants/{quote(tn)}/safety", status_code=303)
    try:
        p = be.participant(user, tn, {"recist"})
        doc = recist_form.timepoint_from_form(f, recist_form.form_context(p))
        response, total, details = recist_form.evaluate_with(p, doc)
        be.add_recist(user, tn, reason=f.get("reason", ""), assessment_date=doc["date"], response=response,
                      target_sum_mm=total, details=details)
    except (InvalidInputError, AccessDeniedError) as exc:
        flash(request, "error", f"Not saved: {exc}")
        return back
    flash(request, "ok", f"RECIST assessment saved: overall response {response} (computed by the RECIST 1.1 engine).")
    return back


def install(app: FastAPI) -> None:
    """Template helpers used by shared templates: the participant banner and the query counts."""
    env = app.state.templates.env
    env.globals["dm_banner"] = lambda user, tn: dm.banner(app.state.backend, user, tn)
    env.globals["dm_query_counts"] = lambda user: dm.query_counts_by_tn(app.state.backend, user)
    from lutarterial.web.recist_form import form_context

    env.globals["recist_form"] = form_context
