"""Sign-in and sign-out, for the browser (forms) and for API clients (JSON).

A successful sign-in creates a server-side session (``user_sessions`` row) and replaces the
whole cookie session (new random token, new CSRF token: no session fixation). Logout ends the
row, so a copy of the cookie is useless afterwards. Failed sign-ins are throttled in the
database (:mod:`lutarterial.registry.throttle`): per (username, client address) back-off, a
per-address limit, and an account lock only after failures from several addresses.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from lutarterial.registry.throttle import ThrottledError
from lutarterial.web.deps import backend_of, current_user, current_user_sync, flash, require_csrf
from lutarterial.web.errors import NotAuthenticated
from lutarterial.web.sessions import new_csrf_token

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger("lutarterial.web.auth")


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=500)


class SessionOut(BaseModel):
    username: str
    role: str
    sites: list[str]
    can_write: bool
    csrf_token: str


def _safe_next(url: str | None) -> str:
    """Only same-site relative paths are followed after sign-in (no open redirect)."""
    if not url:
        return "/participants"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/participants"
    return url


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _begin_session(request: Request, user: Any) -> None:
    """A fresh server-side session for ``user`` and a fresh cookie session carrying its token."""
    token = backend_of(request).start_session(user.id, client=_client(request),
                                              user_agent=request.headers.get("user-agent", ""))
    session = request.scope["session"]
    session.clear()
    now = int(time.time())
    session.update({"sid": token, "csrf": new_csrf_token(), "iat": now, "seen": now})
    request.state.user = user


def _sign_in(request: Request, username: str, password: str) -> Any:
    """The user for valid credentials (session started), ``None`` for wrong ones;
    :class:`ThrottledError` (429) while this address must wait."""
    client = _client(request)
    user = backend_of(request).authenticate(username, password, client)
    if user is None:
        log.warning("failed sign-in for %r from %s", username, client)
        return None
    log.info("sign-in %s (%s) from %s", user.username, user.role, client)
    _begin_session(request, user)
    return user


def _end_session(request: Request) -> None:
    session = request.scope["session"]
    token = session.get("sid")
    if token:
        backend_of(request).end_session(str(token), "logout")
    session.clear()
    session["csrf"] = new_csrf_token()


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Response:
    session = request.scope["session"]
    if session.get("sid"):
        try:
            current_user_sync(request)
            return RedirectResponse(_safe_next(next), status_code=303)
        except NotAuthenticated:
            pass
    extra = {"next_url": _safe_next(next), "title": "Sign in",
             "idle_minutes": request.app.state.settings.idle_timeout_s // 60}
    return request.app.state.templates.TemplateResponse(request, "login.html",
                                                        request.app.state.page_context(request, extra))


@router.post("/login", include_in_schema=False, dependencies=[Depends(require_csrf)])
def login_submit(request: Request, username: str = Form(...), password: str = Form(...),
                 next: str = Form("/participants")) -> Response:
    try:
        user = _sign_in(request, username, password)
        message, status = "Unknown username or wrong password.", 401
    except ThrottledError as exc:
        user, message, status = None, str(exc)[:1].upper() + str(exc)[1:] + ".", 429
    if user is None:
        extra = {"next_url": _safe_next(next), "title": "Sign in", "username": username,
                 "idle_minutes": request.app.state.settings.idle_timeout_s // 60,
                 "flashes": [["error", message]]}
        return request.app.state.templates.TemplateResponse(
            request, "login.html", request.app.state.page_context(request, extra), status_code=status)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    _end_session(request)
    flash(request, "info", "You are signed out.")
    return RedirectResponse("/login", status_code=303)


@router.post("/api/login", response_model=SessionOut, tags=["session"])
def api_login(request: Request, body: LoginIn) -> Any:
    """Sign in; sets the session cookie and returns the CSRF token for writes."""
    user = _sign_in(request, body.username, body.password)
    if user is None:
        return JSONResponse({"error": "NotAuthenticated", "detail": "unknown username or wrong password"},
                            status_code=401)
    return SessionOut(username=user.username, role=user.role, sites=list(user.sites), can_write=user.can_write,
                      csrf_token=request.scope["session"]["csrf"])


@router.get("/api/session", response_model=SessionOut, tags=["session"])
def api_session(request: Request, user: Any = Depends(current_user)) -> Any:
    """Who is signed in, and the CSRF token to send with writes."""
    return SessionOut(username=user.username, role=user.role, sites=list(user.sites), can_write=user.can_write,
                      csrf_token=request.scope["session"]["csrf"])


@router.post("/api/logout", status_code=204, tags=["session"], dependencies=[Depends(require_csrf)])
def api_logout(request: Request) -> Response:
    """Sign out: the server-side session ends, so a saved copy of the cookie no longer works."""
    _end_session(request)
    return Response(status_code=204)


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=500)
    new_password: str = Field(min_length=1, max_length=500)


@router.post("/api/session/password", response_model=SessionOut, tags=["session"],
             dependencies=[Depends(require_csrf)],
             responses={401: {"description": "not signed in"}, 403: {"description": "wrong current password"},
                        400: {"description": "new password refused"}})
def api_change_password(request: Request, body: PasswordIn, user: Any = Depends(current_user)) -> Any:
    """Change one's own password. Every session of the user ends (other browsers, saved cookies);
    this client gets a new session and CSRF token in the answer."""
    backend_of(request).change_own_password(user, body.current_password, body.new_password)
    fresh = backend_of(request).load_user(user.id)
    _begin_session(request, fresh or user)
    return SessionOut(username=user.username, role=user.role, sites=list(user.sites), can_write=user.can_write,
                      csrf_token=request.scope["session"]["csrf"])
