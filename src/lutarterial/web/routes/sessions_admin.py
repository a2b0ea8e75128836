"""Administrators list and end sign-in sessions (issue 9): JSON under ``/api/admin/sessions``
and a page at ``/admin/sessions``. Ending a session takes effect at that user's next request."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from lutarterial.errors import AccessDeniedError
from lutarterial.web.backend import WebUser
from lutarterial.web.deps import backend_of, current_user, flash, require_csrf

__all__ = ["router", "pages"]

router = APIRouter(prefix="/api", tags=["sessions"])
pages = APIRouter(include_in_schema=False)

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "not signed in"},
                                           403: {"description": "not an administrator"},
                                           404: {"description": "no such session"}}


def _admin(user: WebUser) -> WebUser:
    if not user.is_admin:
        raise AccessDeniedError(f"user {user.username!r} ({user.role}) may not manage sessions")
    return user


class EndIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.get("/admin/sessions", responses=_ERRORS)
def api_sessions(request: Request, all: bool = False, user: WebUser = Depends(current_user)) -> list[dict[str, Any]]:
    """Live sessions (``?all=true``: ended ones too, with why they ended), newest first."""
    return list(backend_of(request).list_sessions(_admin(user), active_only=not all))


@router.post("/admin/sessions/{session_id}/end", status_code=200, responses=_ERRORS,
             dependencies=[Depends(require_csrf)])
def api_end_session(request: Request, session_id: int, body: EndIn,
                    user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """End one session now (its cookie gets 401 / the sign-in page from the next request on)."""
    if not 0 < session_id < 2**63:
        from lutarterial.errors import NotFoundError

        raise NotFoundError(f"session {session_id} does not exist")
    ended = backend_of(request).end_session_by_id(_admin(user), session_id, reason=body.reason)
    return {"id": session_id, "ended": ended}


@pages.get("/admin/sessions")
def sessions_page(request: Request, user: WebUser = Depends(current_user)) -> Response:
    return _sessions_page(request, user)


def _sessions_page(request: Request, user: WebUser, **kept: Any) -> Response:
    rows = backend_of(request).list_sessions(_admin(user), active_only=False)
    return request.app.state.templates.TemplateResponse(
        request, "admin_sessions.html",
        request.app.state.page_context(request, {"sessions": rows[:300], "title": "Sessions", "active": "sessions",
                                                 **kept}))


@pages.post("/admin/sessions/{session_id}/end", dependencies=[Depends(require_csrf)])
def end_session_form(request: Request, session_id: int, reason: str = Form(""),
                     user: WebUser = Depends(current_user)) -> Response:
    if not reason.strip():  # issue 13: the page again with the message, not a bare 422
        from lutarterial.web.forms import kept

        resp = _sessions_page(request, user, **kept(f"end-{session_id}", {"reason": reason},
                                                    "Not ended: a reason is required (it is shown in the list)"))
        resp.status_code = 400
        return resp
    if 0 < session_id < 2**63:
        backend_of(request).end_session_by_id(_admin(user), session_id, reason=reason)
        flash(request, "ok", f"Session {session_id} ended.")
    return RedirectResponse("/admin/sessions", status_code=303)
