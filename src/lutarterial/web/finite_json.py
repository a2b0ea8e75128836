"""No NaN or Infinity in any JSON body of the API (issue 9: "NaN inside an imaging result" was stored).

Python's ``json`` (used by Starlette) accepts the non-standard tokens ``NaN``, ``Infinity`` and
``-Infinity``, and a number too large for a double (``1e400``) silently becomes infinity; pydantic
``float`` fields and free-form ``dict`` fields then accept them. This ASGI middleware reads the
body of every ``/api`` write with a JSON content type once, and answers 422 with the usual error
body (``{"error", "detail", "problems"}``) naming the JSON path when a non-finite number appears
anywhere; otherwise it hands the same bytes on unchanged. Malformed JSON is left to FastAPI.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["FiniteJsonMiddleware", "non_finite_paths"]

_WRITE_METHODS = {"POST", "PUT", "PATCH"}
_NON_FINITE = object()


class _Marker(float):
    """A float standing for a non-finite JSON number, remembering its text."""

    text: str

    def __new__(cls, text: str) -> _Marker:
        obj = super().__new__(cls, math.nan)
        obj.text = text
        return obj


def _constant(name: str) -> _Marker:
    return _Marker(name)


def _float(text: str) -> float:
    v = float(text)
    return v if math.isfinite(v) else _Marker(text)


def non_finite_paths(body: bytes | str, limit: int = 10) -> list[str]:
    """JSON paths (``$.result.suv[2]``) holding NaN/±Infinity or an overflowing number; ``[]`` if none.

    Raises :class:`ValueError` for text that is not JSON (left to the framework's own error).
    """
    doc = json.loads(body, parse_constant=_constant, parse_float=_float)
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(doc, "$")]
    while stack and len(found) < limit:
        v, path = stack.pop()
        if isinstance(v, _Marker):
            found.append(f"{path}: {v.text}")
        elif isinstance(v, dict):
            stack.extend((sub, f"{path}.{k}") for k, sub in reversed(list(v.items())))
        elif isinstance(v, list):
            stack.extend((sub, f"{path}[{i}]") for i, sub in reversed(list(enumerate(v))))
    return found


class FiniteJsonMiddleware:
    """Refuse ``/api`` JSON writes carrying non-finite numbers (422), before any route sees them."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") not in _WRITE_METHODS or not (
            str(scope.get("path", "")).startswith("/api")
        ):
            await self.app(scope, receive, send)
            return
        ctype = b""
        for k, v in scope.get("headers") or ():
            if k.lower() == b"content-type":
                ctype = v.lower()
        if b"json" not in ctype:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        first: dict[str, Any] | None = None
        while more:
            message = await receive()
            if message.get("type") != "http.request":
                first = message  # e.g. disconnect: hand it on
                break
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        try:
            bad = non_finite_paths(body) if body.strip() else []
        except (ValueError, RecursionError):
            bad = []  # not JSON (or absurdly nested): FastAPI answers with its own 422
        if bad:
            from fastapi.responses import JSONResponse

            from lutarterial.web.contract import error_body

            detail = ("the JSON body holds non-finite numbers (NaN, Infinity or a number too large for a double) "
                      "at " + ", ".join(p.split(":")[0] for p in bad) + "; send finite numbers")
            response = JSONResponse(error_body("ImplausibleValueError", detail, bad), status_code=422)
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                if first is not None:
                    return first
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
