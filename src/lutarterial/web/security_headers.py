"""Security headers on every response (issue 9), as a pure-ASGI middleware.

* ``Content-Security-Policy``: scripts only from this origin (no inline script, no ``on*=``
  handler attributes: the templates load ``/static/*.js``), no plug-ins, no framing
  (``frame-ancestors 'none'``), forms post only here. Inline ``style=`` attributes stay allowed
  (``style-src 'unsafe-inline'``): they cannot run code.
* ``X-Frame-Options: DENY`` (older browsers), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` (trial numbers in URLs never leave the site),
  ``Cross-Origin-Opener-Policy: same-origin``.

A header a route sets itself is kept (``setdefault``).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware", "SECURITY_HEADERS", "CSP"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

#: The interactive API docs (Swagger UI) need their own inline bootstrap script.
_DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(("/api/docs", "/docs"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name == "Content-Security-Policy" and docs:
                        value = _DOCS_CSP
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_wrapper)
