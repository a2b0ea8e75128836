"""Sign-in and sign-out, for the browser (forms) and for API clients (JSON).

A successful sign-in replaces the whole session (new CSRF token: no session fixation).
Repeated failures for one username are throttled: after ``MAX_FAILURES`` within
``LOCK_WINDOW_S`` further attempts are refused for that window, whatever the password.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from lutarterial.errors import AccessDeniedError
from lutarterial.web.deps import backend_of, current_user, flash, require_csrf
from lutarterial.web.sessions import new_csrf_token

__all__ = ["router", "MAX_FAILURES", "LOCK_WINDOW_S"]

router = APIRouter()
log = logging.getLogger("lutarterial.web.auth")
MAX_FAILURES = 5
LOCK_WINDOW_S = 15 * 60
_failures: dict[str, deque[float]] = defaultdict(deque)


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


def _throttled(username: str) -> bool:
    now = time.monotonic()
    q = _failures[username.lower()]
    while q and now - q[0] > LOCK_WINDOW_S:
        q.popleft()
    return len(q) >= MAX_FAILURES


def _sign_in(request: Request, username: str, password: str) -> Any:
    if _throttled(username):
        log.warning("sign-in refused for %r: too many failures", username)
        raise AccessDeniedError(
            f"too many failed sign-ins for {username!r}; wait {LOCK_WINDOW_S // 60} minutes or ask an administrator"
        )
    user = backend_of(request).authenticate(username, password)
    client = request.client.host if request.client else "?"
    if user is None:
        _failures[username.lower()].append(time.monotonic())
        log.warning("failed sign-in for %r from %s", username, client)
        return None
    _failures.pop(username.lower(), None)
    log.info("sign-in %s (%s) from %s", user.username, user.role, client)
    session = request.scope["session"]
    session.clear()
    now = int(time.time())
    session.update({"uid": user.id, "csrf": new_csrf_token(), "iat": now, "seen": now})
    request.state.user = user
    return user


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Response:
    session = request.scope["session"]
    if session.get("uid") is not None and backend_of(request).load_user(session["uid"]) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    extra = {"next_url": _safe_next(next), "title": "Sign in",
             "idle_minutes": request.app.state.settings.idle_timeout_s // 60}
    return request.app.state.templates.TemplateResponse(request, "login.html",
                                                        request.app.state.page_context(request, extra))


@router.post("/login", include_in_schema=False, dependencies=[Depends(require_csrf)])
def login_submit(request: Request, username: str = Form(...), password: str = Form(...),
                 next: str = Form("/participants")) -> Response:
    user = _sign_in(request, username, password)
    if user is None:
        extra = {"next_url": _safe_next(next), "title": "Sign in", "username": username,
                 "idle_minutes": request.app.state.settings.idle_timeout_s // 60,
                 "flashes": [["error", "Unknown username or wrong password."]]}
        return request.app.state.templates.TemplateResponse(
            request, "login.html", request.app.state.page_context(request, extra), status_code=401)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    session = request.scope["session"]
    session.clear()
    session["csrf"] = new_csrf_token()
    flash(request, "info", "You are signed out.")
    return RedirectResponse("/login", status_code=303)


@router.post("/api/login", response_model=SessionOut, tags=["session"])
def api_login(request: Request, body: LoginIn) -> Any:
    """Sign in; sets the session cookie and returns the CSRF token for writes."""
    user = _sign_in(request, body.username, body.password)
    if user is None:
        from fastapi.responses import JSONResponse

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
    request.scope["session"].clear()
    return Response(status_code=204)
