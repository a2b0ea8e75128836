"""The application factory: ``create_app(db_url)`` returns a ready FastAPI app.

The app is a thin shell: every read and write goes through :mod:`lutarterial.web.backend`,
which calls the registry's audited, access-checked services with the signed-in user's
``Actor``. Nothing here writes to the database directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates

from lutarterial import __version__
from lutarterial.web.errors import install_error_handlers
from lutarterial.web.sessions import SignedSessionMiddleware
from lutarterial.web.settings import WebSettings, data_dir_for, default_db_url

__all__ = ["create_app"]

_HERE = Path(__file__).resolve().parent


def _page_context(app: FastAPI) -> Any:
    def build(request: Request, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        session = request.scope.get("session", {})
        ctx: dict[str, Any] = {
            "me": getattr(request.state, "user", None),
            "csrf_token": session.get("csrf", ""),
            "flashes": session.pop("flash", []) if isinstance(session, dict) else [],
            "demo": app.state.demo,
            "version": __version__,
            "active": None,
            "title": None,
        }
        ctx.update(extra or {})
        return ctx

    return build


def create_app(
    db_url: str | None = None,
    *,
    settings: WebSettings | None = None,
    demo: bool = False,
    upgrade: bool = True,
) -> FastAPI:
    """Build the web app for the database at ``db_url`` (default: SQLite in ``./data``).

    ``upgrade`` brings the schema to the latest Alembic revision first (idempotent), so the
    embedded default works on a fresh directory. ``demo`` shows a banner saying the data are
    synthetic. ``settings`` default to :meth:`WebSettings.from_env`.
    """
    from lutarterial.web.backend import Backend
    from lutarterial.web.routes import api, auth, pages

    from lutarterial.web.perf import (PerfSettings, engine_kwargs, install_fast_getattr,  # issue 13: fast
                                      install_thread_limit)

    url = db_url or default_db_url()
    settings = settings or WebSettings.from_env(url)
    perf = PerfSettings.from_env()
    backend = Backend.open(url, upgrade=upgrade, engine_kwargs=engine_kwargs(url, perf))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        install_thread_limit(perf.threads)  # sync routes: a few threads on few cores (web/perf.py)
        yield
        backend.close()

    app = FastAPI(
        lifespan=lifespan,
        title="LUTARTERIAL trial registry",
        version=__version__,
        description=(
            "REST API of the LUTARTERIAL registry. Sign in with `POST /api/v1/login` (JSON "
            "`{username, password}`); the answer sets a session cookie and returns the CSRF token "
            "that every write must send in the `X-CSRF-Token` header. Every route checks the "
            "signed-in user's site memberships and role; writes require a `reason` for the audit trail. "
            "Scripts use a personal API token instead (`Authorization: Bearer lut_...`, no CSRF; "
            "`lutarterial token create` or the account page). Paths are versioned under `/api/v1`; "
            "every error is `{error, detail, problems?}` (schema `Error`)."
        ),
        openapi_url="/openapi.json",
        docs_url=None,  # issue 13: offline Swagger UI / ReDoc behind login (routes/api_docs.py)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.backend = backend
    app.state.demo = demo
    app.state.data_dir = data_dir_for(url)
    app.state.templates = Jinja2Templates(directory=str(_HERE / "templates"))
    app.state.templates.env.auto_reload = perf.template_reload  # no mtime check per render (web/perf.py)
    install_fast_getattr(app.state.templates.env)  # {{ row.x }} on dict rows without an exception (web/perf.py)
    app.state.perf = perf
    app.state.templates.env.globals["version"] = __version__
    from lutarterial.web.views import changes_html, fmt

    app.state.templates.env.filters["fmt"] = fmt
    app.state.templates.env.filters["changes_html"] = changes_html
    app.state.page_context = _page_context(app)
    from lutarterial.web.finite_json import FiniteJsonMiddleware  # issue 9: no NaN/Infinity in API bodies

    app.add_middleware(FiniteJsonMiddleware)
    app.add_middleware(SignedSessionMiddleware, settings=settings)
    from lutarterial.web.static_cache import CachedStaticFiles  # issue 13: no worker thread per file

    app.mount("/static", CachedStaticFiles(directory=str(_HERE / "static"), cache=not perf.template_reload),
              name="static")
    install_error_handlers(app)
    from lutarterial.web.contract import install_contract

    install_contract(app)  # issue 15: /api/v1 paths, one error model in the OpenAPI
    app.include_router(auth.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    from lutarterial.web.routes import api_studies as _api_studies  # issue 11

    app.include_router(_api_studies.router)
    from lutarterial.web.routes import dm_api as _dm_api, dm_pages as _dm_pages  # issue 13

    app.include_router(_dm_api.router)
    app.include_router(_dm_pages.router)
    _dm_pages.install(app)
    from lutarterial.web.routes import api_docs as _api_docs  # issue 13

    app.include_router(_api_docs.router)
    from lutarterial.web.routes import tokens as _tokens  # issue 15

    app.include_router(_tokens.router)
    app.include_router(_tokens.pages)
    from lutarterial.web.routes import imports as _imports  # issue 15

    app.include_router(_imports.router)
    from lutarterial.web.routes import sessions_admin as _sessions_admin  # issue 9
    from lutarterial.web.security_headers import SecurityHeadersMiddleware  # issue 9

    app.include_router(_sessions_admin.router)
    app.include_router(_sessions_admin.pages)
    from lutarterial.web.routes import reports as _reports  # issue 12

    app.include_router(_reports.router)
    app.include_router(_reports.pages)
    app.add_middleware(SecurityHeadersMiddleware)
    if perf.inline:  # LUTARTERIAL_WEB_THREADS=0: sync routes on the event loop's thread (web/perf.py)
        from lutarterial.web.perf import InlineSyncMiddleware, install_inline_sync

        if install_inline_sync():
            app.add_middleware(InlineSyncMiddleware)
        else:
            import logging

            logging.getLogger("lutarterial.web").warning(
                "LUTARTERIAL_WEB_THREADS=0: this FastAPI version has no run_in_threadpool hook; sync routes "
                "run in one worker thread")

    from lutarterial.web import balance

    if balance.installed():  # a worker of `lutarterial serve --workers N`: connections kept even
        app.add_middleware(balance.BalanceMiddleware)
    return app
