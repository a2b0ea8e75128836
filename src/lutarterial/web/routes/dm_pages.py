"""Data-management pages (issue 13): the participant's schedule, queries, signatures, locks and
SDV (``/participants/{tn}/data-management``) and the sites' dashboard (``/data-management``).

Forms post here; each write calls one registry service (access checks, audit) and comes back to
the page with a message; a refused write renders the page again at once with the message and every
value typed (never the password). A write refused by a lock shows the lock's message (HTTP 423).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from lutarterial.errors import AccessDeniedError, InvalidInputError
from lutarterial.registry import services as sv
from lutarterial.web import dm, forms
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


def _again(request: Request, tn: str, user: WebUser, form: str, values: dict[str, str]) -> Any:
    """The participant's DM page again for the refused ``form``: its typed values (never the
    password) and the message (issue 13: values kept; ``forms.kept``)."""
    return lambda message: _dm_page(request, tn, user, **forms.kept(form, values, message))


def _refused(request: Request, again: Any, back: RedirectResponse, exc: Exception, verb: str = "saved") -> Response:
    """A refused write: the page again with the values (``again``), else a redirect with the message."""
    message = f"Not {verb}: {exc}"
    if again is None:
        flash(request, "error", message)
        return back
    resp: Response = again(message)
    resp.status_code = getattr(exc, "http_status", 400)
    return resp


def _do(request: Request, ok: str, back: RedirectResponse, again: Any, fn: Any, *args: Any,
        **kwargs: Any) -> Response:
    try:
        dm.write(backend_of(request), fn, *args, **kwargs)
    except (InvalidInputError, AccessDeniedError) as exc:  # incl. RecordLockedError (423 on the API)
        return _refused(request, again, back, exc)
    flash(request, "ok", ok)
    return back


@router.get("/participants/{tn}/data-management")
def participant_dm(request: Request, tn: str, today: str | None = None,
                   user: WebUser = Depends(current_user)) -> Response:
    return _dm_page(request, tn, user, today)


def _dm_page(request: Request, tn: str, user: WebUser, today: str | None = None, **kept: Any) -> Response:
    be = backend_of(request)
    p = be.participant(user, tn, set())
    on = dm.today(today)
    data = dm.dm_overview(be, user, tn, on=on)
    session = request.scope.get("session") or {}
    return _render(request, "dm_participant.html", p=p, dm=data, tab="dm", today=on.isoformat(),
                   first_signing=session.get(_ESIG_KEY) != user.id, title=f"{p['trial_number']} data management",
                   active="participants", **kept)


@router.post("/participants/{tn}/queries", dependencies=W)
async def open_query(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    again = _again(request, tn, user, "query", f)
    try:
        table, row = _target(f)
    except InvalidInputError as exc:
        return _refused(request, again, _back(tn, "queries"), exc)
    return _do(request, "Query opened.", _back(tn, "queries"), again, sv.open_query, user.actor, tn,
               text=f.get("text", ""), table_name=table, row_id=row, field=f.get("field") or None,
               assign_to=f.get("assign_to") or None)


@router.post("/queries/{query_id}/{action}", dependencies=W)
async def query_action(request: Request, query_id: int, action: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    tn = f.get("tn", "")
    back = _back(tn, f"q{query_id}") if tn else RedirectResponse("/data-management", status_code=303)
    again = _again(request, tn, user, f"{action}-{query_id}", f) if tn else None
    if action == "answer":
        return _do(request, "Answer sent.", back, again, sv.answer_query, user.actor, query_id, text=f.get("text", ""))
    if action == "close":
        return _do(request, "Query closed.", back, again, sv.close_query, user.actor, query_id, text=f.get("text", ""))
    if action == "reopen":
        return _do(request, "Query re-opened.", back, again, sv.reopen_query, user.actor, query_id,
                   text=f.get("text", ""))
    if action == "assign":
        return _do(request, "Query assigned.", back, again, sv.assign_query, user.actor, query_id,
                   assign_to=f.get("assign_to", ""))
    raise InvalidInputError(f"query action {action!r}; valid: answer, close, reopen, assign")


@router.post("/participants/{tn}/sign", dependencies=W)
async def sign(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    session = request.scope.get("session")
    first = not isinstance(session, dict) or session.get(_ESIG_KEY) != user.id
    back = _back(tn, "signatures")
    again = _again(request, tn, user, "sign", f)  # the password is never shown again
    if first and not (f.get("username") or "").strip():
        return _refused(request, again, back, InvalidInputError(
            "the first signing of a session needs your user name and password"), "signed")
    try:
        table, row = _target(f)
        dm.write(backend_of(request), sv.sign, user.actor, tn, password=f.get("password", ""),
                 meaning=f.get("meaning", ""), table_name=table, row_id=row,
                 username=(f.get("username") or None) if first else None)
    except (InvalidInputError, AccessDeniedError) as exc:
        return _refused(request, again, back, exc, "signed")
    if isinstance(session, dict):
        session[_ESIG_KEY] = user.id
    flash(request, "ok", "Signed.")
    return back


@router.post("/participants/{tn}/lock", dependencies=W)
async def lock(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    again = _again(request, tn, user, "lock", f)
    try:
        table, row = _target(f)
    except InvalidInputError as exc:
        return _refused(request, again, _back(tn, "locks"), exc)
    return _do(request, "Locked.", _back(tn, "locks"), again, sv.lock_record, user.actor, tn,
               reason=f.get("reason", ""), table_name=table, row_id=row)


@router.post("/locks/{lock_id}/unlock", dependencies=W)
async def unlock(request: Request, lock_id: int, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    tn = f.get("tn", "")
    again = _again(request, tn, user, f"unlock-{lock_id}", f) if tn else None
    return _do(request, "Unlocked.", _back(tn, "locks"), again, sv.unlock_record, user.actor, lock_id,
               reason=f.get("reason", ""))


@router.post("/participants/{tn}/sdv", dependencies=W)
async def sdv(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    again = _again(request, tn, user, "sdv", f)
    try:
        table, row = _target(f)
    except InvalidInputError as exc:
        return _refused(request, again, _back(tn, "sdv"), exc)
    return _do(request, "Marked source-verified.", _back(tn, "sdv"), again, sv.mark_verified, user.actor, tn,
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
    except (InvalidInputError, AccessDeniedError) as exc:  # issue 13: the safety tab again with the lesions typed
        from lutarterial.web.routes.pages import safety_page

        return _refused(request, lambda message: safety_page(request, tn, user, **forms.kept("recist", f, message)),
                        back, exc)
    flash(request, "ok", f"RECIST assessment saved: overall response {response} (computed by the RECIST 1.1 engine).")
    return back


def install(app: FastAPI) -> None:
    """Template helpers used by shared templates: the participant banner and the query counts."""
    env = app.state.templates.env
    env.globals["dm_banner"] = lambda user, tn: dm.banner(app.state.backend, user, tn)
    from lutarterial.web.recist_form import form_context

    env.globals["recist_form"] = form_context
    env.globals["group_rows"] = forms.group_rows  # rows of a refused form's repeating group (issue 13)
