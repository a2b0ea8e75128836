"""The API's published contract: one error model, versioned paths, and an OpenAPI that tells the truth.

Done generically in :func:`install_contract` (called by ``create_app``) so that routes added by
any router under ``/api`` are covered without their authors doing anything:

* **One error model.** Every error answer of the API is ``{"error": str, "detail": str,
  "problems"?: [...]}`` (:class:`ErrorOut`, the ``Error`` component of the OpenAPI). The OpenAPI
  is post-processed so that every ``/api`` operation documents 400, 401, 403, 404, 409, 422,
  423 and 429 with that schema (FastAPI's default ``HTTPValidationError`` is removed: the 422
  body is this same model, with the list of ``problems``).
* **Versioning.** Routes are declared under ``/api/...``; they are served under ``/api/v1/...``
  (canonical, the only paths in the OpenAPI) and, for one release, under the old ``/api/...``
  paths, which answer with ``Deprecation: true`` and ``Link: </api/v1/...>;
  rel="successor-version"``. Done by :class:`ApiVersionMiddleware`, which rewrites the path of a
  ``/api/v1`` request before routing.
* **Inputs a database cannot hold** (NUL characters, integers beyond 64 bits) are refused with
  400 before they reach the database, instead of becoming a driver error (500).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ErrorOut", "ERROR_STATUSES", "API_V1", "install_contract", "error_body", "ApiVersionMiddleware",
           "BODY_EXAMPLES"]

API_PREFIX = "/api"
API_V1 = "/api/v1"
#: Paths under /api that are not versioned operations (the interactive docs page).
_UNVERSIONED = ("/api/docs",)


class ErrorOut(BaseModel):
    """Every error answer of the API (4xx, and the 500 "internal error, reference ..." one)."""

    error: str = Field(description="error type, e.g. InvalidInputError, AccessDeniedError, NotAuthenticated",
                       examples=["InvalidInputError"])
    detail: str = Field(description="what went wrong and what to fix, in words",
                        examples=["analyte 'glucose' is not known to lutarterial.units"])
    problems: list[Any] | None = Field(
        default=None, description="one entry per invalid field (validation errors) or per refused item",
        examples=[["value: Input should be a valid number"]])

    model_config = {"title": "Error"}


#: Status -> description documented on every /api operation (body: the Error model).
ERROR_STATUSES: dict[str, str] = {
    "400": "Bad request: invalid input or a body that is not valid JSON",
    "401": "Not authenticated: no session cookie or Bearer token, or an invalid/expired/revoked token",
    "403": "Forbidden: the role, the site membership, the token's scope or the CSRF token does not allow it",
    "404": "Not found: no such participant, record or path (or not visible to this user)",
    "409": "Conflict with the current state of the data",
    "422": "Validation error: the body, path or query parameters do not match the schema (see problems)",
    "423": "Locked: the record is locked or signed and cannot be changed",
    "429": "Too many requests for this token: retry after the number of seconds in Retry-After",
}


def error_body(kind: str, detail: str, problems: list[Any] | None = None) -> dict[str, Any]:
    """The JSON body of an error answer (the one place it is shaped)."""
    body = ErrorOut(error=kind, detail=detail, problems=problems).model_dump(exclude_none=True)
    return body


#: Request-body examples per schema name (shown in the OpenAPI and used by generated clients).
BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "LoginIn": {"username": "coord.bdx", "password": "••••••••"},
    "ParticipantIn": {"site": "BDX", "reason": "inclusion visit", "sex": "F", "year_of_birth": 1961,
                      "consent_version": "v3.0", "consent_date": "2024-01-02"},
    "ConsentIn": {"version": "v3.0", "signed_date": "2024-01-02", "reason": "consent signed at inclusion"},
    "ScreeningIn": {"record": {"record_version": "1", "screening_date": "2024-01-05"}, "as_of": "2024-01-05",
                    "reason": "screening visit"},
    "EvaluateIn": {"record": {"record_version": "1", "screening_date": "2024-01-05"}, "as_of": "2024-01-05"},
    "EnrolIn": {"enrolled_date": "2024-01-10", "reason": "eligible, consent signed"},
    "VisitIn": {"kind": "follow_up", "number": 1, "status": "planned", "planned_date": "2024-06-01",
                "reason": "schedule"},
    "IahCycleIn": {"visit_date": "2024-02-01", "activity_mbq": 7400, "artery": "right hepatic artery",
                   "catheter_position": "proper hepatic artery", "reason": "IAH cycle done"},
    "LabIn": {"analyte": "platelets", "value": 180, "unit": "G/L", "collected_date": "2024-02-15",
              "lln": 150, "uln": 400, "reason": "hospital lab report"},
    "AdverseEventIn": {"term": "Nausea", "grade": 1, "onset_date": "2024-02-02", "relatedness": "possible",
                       "reason": "reported at follow-up"},
    "RecistIn": {"assessment_date": "2024-05-01", "response": "SD", "target_sum_mm": 42.0,
                 "reason": "radiology report"},
    "AnalysisIn": {"kind": "suv", "result": {"suv_max": 12.3}, "software_version": "1.0",
                   "reason": "analysis of the PET"},
    "TokenIn": {"name": "nightly-labs", "scope": "write", "site": "BDX", "expires_days": 90,
                "reason": "lab import script of the BDX site"},
    "LabImportIn": {"format": "csv", "content": "analyte,value,unit,lln,uln,date\nplatelets,180,G/L,150,400,"
                    "2024-02-15\n", "reason": "hospital lab export"},
    "ScreeningImportIn": {"bundle": {"resourceType": "Bundle", "type": "collection", "entry": []},
                          "reason": "EHR export at screening"},
}


def _v1(path: str) -> str:
    return API_V1 + path[len(API_PREFIX):]


def _is_api(path: str) -> bool:
    return (path == API_PREFIX or path.startswith(API_PREFIX + "/")) and not path.startswith(API_V1 + "/") \
        and path != API_V1 and not path.startswith(_UNVERSIONED)


def _error_ref() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _post_process(schema: dict[str, Any]) -> dict[str, Any]:
    """Versioned paths, the error model on every operation, no HTTPValidationError."""
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    comps["Error"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    paths: dict[str, Any] = {}
    for path, item in schema.get("paths", {}).items():
        if not _is_api(path):
            paths[path] = item
            continue
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            responses = op.setdefault("responses", {})
            for status, text in ERROR_STATUSES.items():
                entry = responses.get(status)
                if entry is None or "HTTPValidationError" in json.dumps(entry) or "content" not in entry:
                    responses[status] = {"description": (entry or {}).get("description") or text,
                                         "content": _error_ref()}
                else:
                    entry["content"] = _error_ref()
            _add_example(op, comps)
            op.setdefault("security", [{"bearerAuth": []}, {"sessionCookie": []}])
        paths[_v1(path)] = item
    schema["paths"] = paths
    security = schema["components"].setdefault("securitySchemes", {})
    security["bearerAuth"] = {"type": "http", "scheme": "bearer",
                              "description": "personal API token (`lutarterial token create`, or the account page)"}
    security["sessionCookie"] = {"type": "apiKey", "in": "cookie", "name": "lutarterial_session",
                                 "description": "browser session from POST /api/v1/login; writes also need "
                                                "the X-CSRF-Token header"}
    return schema


def _add_example(op: dict[str, Any], comps: dict[str, Any]) -> None:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return
    ref = content.get("schema", {}).get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    example = BODY_EXAMPLES.get(name)
    if example is not None and "example" not in content and "examples" not in content:
        content["example"] = copy.deepcopy(example)


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` by the post-processed (cached) description."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            base = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes, openapi_version=app.openapi_version)
            app.openapi_schema = _post_process(base)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- the version middleware -------------------------------------------------------------------

_NUL = re.compile(rb"\\u0000|%00", re.IGNORECASE)
_BIG_INT = re.compile(rb"(?<![\d.eE])-?\d{19,}(?![\d.eE])")


class ApiVersionMiddleware:
    """Serve ``/api/v1/x`` by the route declared at ``/api/x``; mark ``/api/x`` deprecated.

    Also refuses (400, the error model) API requests whose path, query or JSON body holds a NUL
    character or an integer beyond 64 bits: neither fits a database column, and the driver error
    they cause would otherwise be a 500. Only ``application/json`` bodies are read for that (other
    bodies, e.g. file uploads, stream through untouched).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        deprecated_of: str | None = None
        if path == API_V1 or path.startswith(API_V1 + "/"):
            new_path = API_PREFIX + path[len(API_V1):]
            scope = dict(scope)
            scope["path"] = new_path
            raw = scope.get("raw_path")
            if isinstance(raw, bytes) and raw.startswith(API_V1.encode()):
                scope["raw_path"] = API_PREFIX.encode() + raw[len(API_V1):]
            scope["api_version"] = "v1"
        elif _is_api(path):
            deprecated_of = _v1(path)
        else:
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or b""
        query = scope.get("query_string") or b""
        if _NUL.search(raw_path if isinstance(raw_path, bytes) else b"") or _NUL.search(query) or "\x00" in path:
            await _refuse(send, "NUL characters are not accepted in the path or the query")
            return
        if _BIG_INT.search(query):
            await _refuse(send, "a number in the query is out of range (at most 18 digits)", status=422,
                          error="ValidationError")
            return
        if re.search(r"/-?\d{19,}(/|$)", scope["path"]):
            # No record can have such an id: the resource does not exist (issue 9: out-of-range
            # integers in a path answer 404, like any unknown id).
            await _refuse(send, "not found (a number in the path is out of range: at most 18 digits)",
                          status=404, error="NotFoundError")
            return
        if scope.get("method") in {"POST", "PUT", "PATCH"} and _is_json(scope):
            receive = await _checked_body(receive, send)
            if receive is None:
                return

        async def send_wrapper(message: Message) -> None:
            if deprecated_of is not None and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Deprecation"] = "true"
                headers["Link"] = f'<{deprecated_of}>; rel="successor-version"'
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _is_json(scope: Scope) -> bool:
    """Only JSON bodies are checked (uploads such as DICOM zips pass through untouched, unbuffered)."""
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            ctype = value.split(b";", 1)[0].strip().lower()
            return ctype == b"application/json" or ctype.endswith(b"+json")
    return False


async def _refuse(send: Send, detail: str, *, status: int = 400, error: str = "InvalidInputError") -> None:
    body = json.dumps(error_body(error, detail)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _checked_body(receive: Receive, send: Send) -> Receive | None:
    """Read the whole body, refuse NUL escapes / huge integers in JSON, replay it downstream."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            chunks = []
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    problem = _unstorable(body)
    if problem:
        await _refuse(send, problem)
        return None
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


_INT_MAX = 2**63 - 1


def _unstorable(body: bytes) -> str | None:
    """Why a JSON body cannot be stored (NUL character, integer beyond 64 bits), or None."""
    if b"\x00" in body:
        return "NUL characters are not accepted in the body"
    if b"\\u0000" not in body and not _BIG_INT.search(body):
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON: the route's own parsing answers
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return "NUL characters are not accepted in the body"
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > _INT_MAX:
            return "a number in the body is out of range (beyond 64-bit integers)"
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def install_contract(app: FastAPI) -> None:
    """Version middleware and the post-processed OpenAPI (call once in ``create_app``)."""
    from lutarterial.web.tokens import limiter_from_env

    app.add_middleware(ApiVersionMiddleware)
    install_openapi(app)
    app.state.token_limiter = limiter_from_env()
    _install_storage_errors(app)


def _install_storage_errors(app: FastAPI) -> None:
    """A value the database cannot hold (PostgreSQL INTEGER is 32-bit, SQLite 64-bit; NUL in text)
    is the client's error: 400 in the error model, never a 500."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DataError, StatementError

    def answer(request: Request, detail: str) -> JSONResponse:
        return JSONResponse(error_body("InvalidInputError", detail), status_code=400)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        return answer(request, "a value is out of range or not storable (e.g. a number too large for an id)")

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return answer(request, "a number is out of range")

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        if isinstance(exc.orig, (OverflowError, ValueError)):
            return answer(request, "a value is out of range or not storable")
        raise exc
