"""Request dependencies: who is signed in, and is this write genuine (CSRF)."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Request
from lutarterial.web.errors import CsrfError, NotAuthenticated
from lutarterial.web.perf import run_sync
from lutarterial.web.sessions import csrf_matches

__all__ = ["current_user", "current_user_sync", "cookie_user", "require_csrf", "flash", "backend_of"]

_SAFE = {"GET", "HEAD", "OPTIONS"}


def _bearer(request: Request) -> str | None:
    from lutarterial.web.tokens import bearer_token

    return bearer_token(request)


def backend_of(request: Request) -> Any:
    return request.app.state.backend


def current_user_sync(request: Request) -> Any:
    """The signed-in user (a :class:`~lutarterial.web.backend.WebUser`), or NotAuthenticated.

    Cookie sessions are checked against the ``user_sessions`` row on every request (one indexed
    SELECT by the token's hash), so a logout, password change, deactivation, role/site change
    or an administrator's end takes effect at once in every worker. Other credential kinds
    (e.g. API tokens) can be added as separate branches before the cookie one.
    """
    token = _bearer(request)
    if token is not None:  # issue 15: an API token; no cookie is read, no CSRF needed
        from lutarterial.web.tokens import user_from_bearer

        return user_from_bearer(request, token)
    user = cookie_user(request)
    request.state.user = user
    return user


async def current_user(request: Request) -> Any:
    """:func:`current_user_sync` as the routes' dependency, run on the event loop.

    Why (issue 13, fast): a sync dependency is one more trip through the worker threads on every
    request, and on two cores each trip waits for the GIL behind the other threads. The cookie
    check is one indexed read that never waits for a writer (SQLite in WAL mode, PostgreSQL MVCC),
    so it runs here; what may wait for the database's write lock (refreshing the session's
    last-seen time at most once a minute, an API token's use record) goes to a worker thread.
    """
    token = _bearer(request)
    if token is not None:
        from lutarterial.web.tokens import user_from_bearer

        return await run_sync(user_from_bearer, request, token)
    user = await _cookie_user_async(request)
    request.state.user = user
    return user


async def _cookie_user_async(request: Request) -> Any:
    session = request.scope.get("session") or {}
    token = session.get("sid")
    if not token:
        raise NotAuthenticated()
    settings = request.app.state.settings
    be = backend_of(request)
    check = functools.partial(be.session_check, str(token), idle_s=settings.idle_timeout_s,
                              max_age_s=settings.session_max_age_s)
    # never wait for a pooled connection on the event loop: every request would wait with it
    uid, pending = check() if be.idle_connection_available() else await run_sync(check)
    if pending is not None:
        await run_sync(be.session_apply, *pending)
    user = None if uid is None else be.cached_user(uid)
    if user is None and uid is not None:
        user = await run_sync(be.load_user, uid)
    if user is None:
        session.pop("sid", None)
        raise NotAuthenticated()
    return user


def cookie_user(request: Request) -> Any:
    """The user of the session cookie's server-side session, or NotAuthenticated."""
    session = request.scope.get("session") or {}
    token = session.get("sid")
    if not token:
        raise NotAuthenticated()
    settings = request.app.state.settings
    user = backend_of(request).session_user(str(token), idle_s=settings.idle_timeout_s,
                                            max_age_s=settings.session_max_age_s)
    if user is None:
        session.pop("sid", None)
        raise NotAuthenticated()
    return user


async def require_csrf(request: Request) -> None:
    """Refuse unsafe requests without the session's CSRF token (header or form field)."""
    if request.method in _SAFE:
        return
    if _bearer(request) is not None:
        return  # browsers never add a Bearer header by themselves: no cross-site forgery (issue 15)
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
