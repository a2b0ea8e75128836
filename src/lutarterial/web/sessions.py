"""Signed session cookies and CSRF tokens, with nothing but the standard library.

The cookie holds a small JSON dict (the random token of the server-side session -- see
:mod:`lutarterial.registry.user_sessions` -- the CSRF token, issue and last-seen times), encoded
as URL-safe base64 and signed with HMAC-SHA256 under the server secret. It carries no study
data. A cookie whose signature fails, whose login is older than ``session_max_age_s`` or that
was idle longer than ``idle_timeout_s`` is ignored (the user logs in again).

CSRF: every session (anonymous ones too) has a random token. Form posts must send it in the
``csrf_token`` field, JSON writes in the ``X-CSRF-Token`` header; comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lutarterial.web.settings import WebSettings

__all__ = ["SignedSessionMiddleware", "sign", "unsign", "new_csrf_token", "csrf_matches"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], secret: str) -> str:
    """Serialise and sign ``payload``; the result is safe to put in a cookie."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    mac = hmac.new(secret.encode("utf-8"), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(token: str, secret: str) -> dict[str, Any] | None:
    """Return the payload of a token made by :func:`sign`, or ``None`` if it was altered."""
    try:
        body, mac = token.rsplit(".", 1)
        expected = hmac.new(secret.encode("utf-8"), body.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        data = json.loads(_unb64(body))
    except (ValueError, UnicodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(session: dict[str, Any], supplied: str | None) -> bool:
    """True when ``supplied`` equals the session's CSRF token (constant-time)."""
    expected = session.get("csrf")
    if not expected or not supplied:
        return False
    return hmac.compare_digest(str(expected).encode(), str(supplied).encode())


class SignedSessionMiddleware:
    """Pure-ASGI middleware exposing ``request.session`` as a dict backed by a signed cookie."""

    def __init__(self, app: ASGIApp, settings: WebSettings, clock: Any = time.time) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock

    def _load(self, raw: str | None) -> dict[str, Any]:
        now = self.clock()
        data = unsign(raw, self.settings.secret_key) if raw else None
        if data is not None and ("uid" in data or "sid" in data):
            issued, seen = float(data.get("iat", 0)), float(data.get("seen", 0))
            if now - issued > self.settings.session_max_age_s or now - seen > self.settings.idle_timeout_s:
                data = {"expired": True}
        if not data or "csrf" not in data:
            data = {"csrf": new_csrf_token(), **(data or {})}
        return data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        raw = conn.cookies.get(self.settings.cookie_name)
        session = self._load(raw)
        if ("uid" in session or "sid" in session) and self.clock() - float(session.get("seen", 0)) > 60:
            session["seen"] = int(self.clock())  # refreshed at most once a minute
        scope["session"] = session

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                current = scope["session"]
                current.pop("expired", None)
                value = sign(current, self.settings.secret_key)
                headers = MutableHeaders(scope=message)
                flags = "Path=/; HttpOnly; SameSite=Lax"
                if self.settings.secure_cookies:
                    flags += "; Secure"
                if raw != value:
                    headers.append("Set-Cookie", f"{self.settings.cookie_name}={value}; {flags}")
                if not scope.get("path", "").startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_wrapper)
