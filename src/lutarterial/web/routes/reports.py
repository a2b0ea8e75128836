"""Report downloads (issue 12): the trial report (PDF/HTML) and a participant's PDF.

Any signed-in user with a role may download (reading needs no permission entry); what a report holds
is the user's site scope (a statistician or admin: all sites). Reports name participants by
trial number only. Rendering takes seconds: the routes are plain ``def`` (thread pool).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from lutarterial.web.backend import WebUser
from lutarterial.web.deps import backend_of, current_user

__all__ = ["router", "pages"]

router = APIRouter(prefix="/api", tags=["reports"])
pages = APIRouter(include_in_schema=False)
_R: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}, "text/html": {}}, "description": "the rendered report"},
    400: {"description": "invalid input (the message says what to fix)"},
    401: {"description": "not signed in"}, 403: {"description": "role or site does not allow it"},
    404: {"description": "no such participant"}}
_MEDIA = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


def _file(path: Path, fmt: str, name: str) -> Response:
    return _bytes(path.read_bytes(), fmt, name)


_CACHE_SIZE = 8


def _trial(request: Request, user: WebUser, fmt: str, seed: int | None, n_boot: int | None) -> Response:
    """Render (or reuse) the trial report: the same snapshot, scope, user and seed give the same report,
    so a small per-app cache keyed by the audit head hash serves repeated downloads at once."""
    from sqlalchemy import select

    from lutarterial.registry.models import AuditEntry
    from lutarterial.reports.trial import write_report
    from lutarterial.statistics.ratios import DEFAULT_N_BOOT, DEFAULT_SEED
    from lutarterial.workflows.reports import trial_report_context

    seed = DEFAULT_SEED if seed is None else seed
    n_boot = DEFAULT_N_BOOT if n_boot is None else n_boot
    cmd = (f"lutarterial report trial --db <this server's database> --user {user.username} --out DIR "
           f"--seed {seed} --n-boot {n_boot}")
    cache: dict[Any, dict[str, bytes]] = request.app.state.__dict__.setdefault("trial_report_cache", {})
    with backend_of(request).read() as s:
        head = s.scalar(select(AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1))
        key = (head, user.username, user.actor.roles, user.actor.site_ids, seed, n_boot)
        if key not in cache:
            ctx = trial_report_context(s, user.actor, seed=seed, n_boot=n_boot, command=cmd,
                                       source=f"registry of this server, read as user {user.username}")
            with tempfile.TemporaryDirectory() as tmp:
                html, pdf = write_report(Path(tmp), ctx)
                while len(cache) >= _CACHE_SIZE:
                    cache.pop(next(iter(cache)))
                cache[key] = {"html": html.read_bytes(), "pdf": pdf.read_bytes()}
    return _bytes(cache[key][fmt], fmt, f"lutarterial-trial-report.{fmt}")


def _bytes(content: bytes, fmt: str, name: str) -> Response:
    disposition = "attachment" if fmt == "pdf" else "inline"
    return Response(content, media_type=_MEDIA[fmt],
                    headers={"Content-Disposition": f'{disposition}; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/reports/trial.pdf", responses=_R, response_class=Response)
def trial_pdf(request: Request, seed: int | None = Query(None, ge=0, le=2**63 - 1, description="bootstrap seed"),
              n_boot: int | None = Query(None, ge=100, le=100000, description="bootstrap resamples"),
              user: WebUser = Depends(current_user)) -> Response:
    """The trial report as PDF (the user's site scope; statistician and admin: all sites)."""
    return _trial(request, user, "pdf", seed, n_boot)


@router.get("/reports/trial.html", responses=_R, response_class=Response)
def trial_html(request: Request, seed: int | None = Query(None, ge=0, le=2**63 - 1, description="bootstrap seed"),
               n_boot: int | None = Query(None, ge=100, le=100000, description="bootstrap resamples"),
               user: WebUser = Depends(current_user)) -> Response:
    """The trial report as HTML."""
    return _trial(request, user, "html", seed, n_boot)


@router.get("/participants/{tn}/report.pdf", responses=_R, response_class=Response)
def participant_pdf(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    """One participant's report for the medical file (trial number only, no identity)."""
    from lutarterial.reports.trial import write_report
    from lutarterial.workflows.reports import participant_report_context

    with backend_of(request).read() as s:
        ctx = participant_report_context(s, user.actor, tn,
                                         figure_dir=Path(request.app.state.data_dir) / "figures")
    with tempfile.TemporaryDirectory() as tmp:
        _, pdf = write_report(Path(tmp), ctx, template="participant.html", stem=ctx["trial_number"])
        return _file(pdf, "pdf", f"{ctx['trial_number']}-report.pdf")


@pages.get("/reports")
def reports_page(request: Request, user: WebUser = Depends(current_user)) -> Response:
    """Download links: the trial report, and each visible participant's report."""
    rows = backend_of(request).list_participants(user)
    ctx = {"participants": rows, "title": "Reports", "active": "reports", "sites": list(user.sites)}
    return request.app.state.templates.TemplateResponse(request, "reports.html",
                                                        request.app.state.page_context(request, ctx))
