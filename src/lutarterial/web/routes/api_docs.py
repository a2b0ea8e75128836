"""Interactive API documentation served offline and behind login (issue 13).

Swagger UI and ReDoc come from the files shipped in the ``fastapi-offline`` package (no CDN), and
the bootstrap is a static script (``/static/api-docs.js``), so the pages need no inline script.
Anonymous visitors are sent to the sign-in page; the OpenAPI document itself stays at
``/openapi.json``.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lutarterial.errors import NotFoundError
from lutarterial.web.deps import current_user_sync
from lutarterial.web.errors import NotAuthenticated

__all__ = ["router", "ASSETS"]

router = APIRouter(include_in_schema=False)

#: The asset files served, from the fastapi-offline package.
ASSETS = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css",
          "redoc.standalone.js": "application/javascript", "favicon.png": "image/png"}


def _assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def _signed_in(request: Request) -> Response | None:
    try:
        current_user_sync(request)
    except NotAuthenticated:
        path = request.url.path
        return RedirectResponse(f"/login?next={quote(path, safe='')}", status_code=303)
    return None


def _page(title: str, body: str, head: str = "") -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="/api/docs/assets/favicon.png">{head}</head>
<body>{body}</body></html>""", headers={"Cache-Control": "no-store"})


@router.get("/api/docs")
def swagger(request: Request) -> Response:
    redirect = _signed_in(request)
    if redirect is not None:
        return redirect
    title = request.app.title + " - Swagger UI"
    return _page(title,
                 f'<div id="swagger-ui" data-openapi-url="{html.escape(request.app.openapi_url or "/openapi.json")}"></div>'
                 '<script src="/api/docs/assets/swagger-ui-bundle.js"></script>'
                 '<script src="/static/api-docs.js"></script>',
                 '<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">')


@router.get("/api/docs/redoc")
def redoc(request: Request) -> Response:
    redirect = _signed_in(request)
    if redirect is not None:
        return redirect
    return _page(request.app.title + " - ReDoc",
                 f'<redoc spec-url="{html.escape(request.app.openapi_url or "/openapi.json")}"></redoc>'
                 '<script src="/api/docs/assets/redoc.standalone.js"></script>')


@router.get("/api/docs/assets/{name}")
def asset(request: Request, name: str) -> Response:
    if name not in ASSETS:
        raise NotFoundError(f"no documentation asset {name!r}")
    redirect = _signed_in(request)
    if redirect is not None:
        return Response(status_code=401)
    from lutarterial.web.static_cache import cached_file_response  # from memory, on the loop (issue 13, fast)

    return cached_file_response(_assets_dir() / name, request.scope, media_type=ASSETS[name],
                                headers={"Cache-Control": "private, max-age=3600"},
                                cache=not request.app.state.perf.template_reload)
