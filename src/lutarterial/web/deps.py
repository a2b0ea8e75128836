"""Request dependencies: who is signed in, and is this write genuine (CSRF)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from lutarterial.web.errors import CsrfError, NotAuthenticated
from lutarterial.web.sessions import csrf_matches

__all__ = ["current_user", "require_csrf", "flash", "backend_of"]

_SAFE = {"GET", "HEAD", "OPTIONS"}


def backend_of(request: Request) -> Any:
    return request.app.state.backend


def current_user(request: Request) -> Any:
    """The signed-in user (a :class:`~lutarterial.web.backend.WebUser`), or NotAuthenticated.

    The user is re-read from the registry at most every ``Backend.USER_TTL_S`` (2 s), so a
    deactivated account or a changed site membership takes effect within that time.
    """
    session = request.scope.get("session") or {}
    uid = session.get("uid")
    if uid is None:
        raise NotAuthenticated()
    user = backend_of(request).load_user(uid)
    if user is None:
        session.pop("uid", None)
        raise NotAuthenticated()
    request.state.user = user
    return user


async def require_csrf(request: Request) -> None:
    """Refuse unsafe requests without the session's CSRF token (header or form field)."""
    if request.method in _SAFE:
        return
    session = request.scope.get("session") or {}
    supplied = request.headers.get("x-csrf-token")
    if not supplied:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            supplied = value if isinstance(value, str) else None
    if not csrf_matches(session, supplied):
        raise CsrfError("the form was stale or forged (CSRF token missing or wrong): reload the page and try again")


def flash(request: Request, level: str, text: str) -> None:
    """Queue a one-time message shown on the next page."""
    session = request.scope.get("session")
    if isinstance(session, dict):
        session.setdefault("flash", []).append([level, text])
