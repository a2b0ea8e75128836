"""Turn errors into clear HTTP answers: HTML pages for the browser, JSON for ``/api``.

``LutarterialError`` subclasses carry their own status (400 invalid input, 403 access denied,
404 not found). Anything else is a bug: it is logged with a reference id and the user sees
"internal error, reference …" with no traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lutarterial.errors import AccessDeniedError, LutarterialError, NotFoundError

__all__ = ["NotAuthenticated", "CsrfError", "install_error_handlers", "wants_json"]

log = logging.getLogger("lutarterial.web")

_HEADINGS = {400: "Cannot do that", 401: "Please sign in", 403: "Access denied", 404: "Not found",
             405: "Not allowed", 409: "Conflict", 422: "Invalid input", 500: "Internal error"}


class NotAuthenticated(Exception):
    """No valid login: pages redirect to the sign-in form, the API answers 401."""


class CsrfError(LutarterialError):
    """A form or API write without the session's CSRF token (forged or stale page)."""

    http_status = 403


def wants_json(request: Request) -> bool:
    """The API, and clients that ask for JSON, get JSON errors; browsers get pages."""
    if request.url.path.startswith("/api/") or request.url.path == "/api":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _page(request: Request, status: int, message: str, kind: str,
          headers: dict[str, str] | None = None) -> Response:
    if wants_json(request):
        from lutarterial.web.contract import error_body

        return JSONResponse(error_body(kind, message), status_code=status, headers=headers)
    templates = request.app.state.templates
    ctx: dict[str, Any] = {"heading": _HEADINGS.get(status, "Error"), "message": message, "status": status}
    return templates.TemplateResponse(request, "error.html", request.app.state.page_context(request, ctx),
                                      status_code=status)


def _status_of(exc: LutarterialError) -> int:
    if getattr(exc, "public_kind", None) == "NotFoundError":  # another site's participant (issue 9)
        return 404
    if isinstance(exc, AccessDeniedError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    return int(getattr(exc, "http_status", 400) or 400)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(NotAuthenticated)
    async def _unauth(request: Request, exc: NotAuthenticated) -> Response:
        if wants_json(request):
            from lutarterial.web.contract import error_body

            bearer = request.headers.get("authorization", "").lower().startswith("bearer")
            return JSONResponse(error_body("NotAuthenticated", str(exc) or "sign in first (POST /api/v1/login) "
                                           "or send Authorization: Bearer <API token>"),
                                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="lutarterial"' if bearer
                                                          else 'Cookie realm="lutarterial"'})
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(nxt, safe='')}", status_code=303)

    @app.exception_handler(LutarterialError)
    async def _domain(request: Request, exc: LutarterialError) -> Response:
        status = _status_of(exc)
        if status == 403:
            log.warning("access denied: %s %s: %s", request.method, request.url.path, exc)
        headers = getattr(exc, "headers", None)  # e.g. Retry-After on 429 (issue 15)
        return _page(request, status, str(exc), getattr(exc, "public_kind", None) or type(exc).__name__,
                     headers=dict(headers) if isinstance(headers, dict) else None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form"))
            problems.append(f"{loc or 'input'}: {err.get('msg', 'invalid')}")
        message = "; ".join(problems) or "invalid input"
        if wants_json(request):
            return JSONResponse({"error": "InvalidInputError", "detail": message, "problems": problems},
                                status_code=422)
        return _page(request, 422, message, "InvalidInputError")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"there is no page at {request.url.path}"
        return _page(request, exc.status_code, detail, "HTTPError",
                     headers=dict(exc.headers) if getattr(exc, "headers", None) else None)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.exception("internal error %s on %s %s", ref, request.method, request.url.path)
        return _page(request, 500, f"internal error (reference {ref}); the administrator can find it in the server log",
                     "InternalError")
