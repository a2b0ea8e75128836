"""Server-rendered pages. Every route resolves the signed-in user first (``current_user``) and
passes it to the backend, which calls the registry's access-checked services; edit controls are
hidden from read-only users and the services refuse their writes anyway."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.registry.access import Permission
from lutarterial.registry.csv_safety import neutralise
from lutarterial.registry.models import ParticipantStatus, VisitStatus
from lutarterial.web import views
from lutarterial.web.backend import VISIT_LABELS, WebUser
from lutarterial.web.deps import backend_of, current_user, flash, require_csrf

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _render(request: Request, template: str, **ctx: Any) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, request.app.state.page_context(request, ctx))


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def _back(request: Request, tn: str, tab: str = "") -> RedirectResponse:
    return RedirectResponse(f"/participants/{quote(tn)}{'/' + tab if tab else ''}", status_code=303)


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _write(request: Request, action: Any, ok: str, back: RedirectResponse, again: Any = None) -> Response:
    """Run a write; invalid input comes back to the same page as a message (not a dead end): with
    ``again`` (issue 13) the page is rendered at once with every value typed and the message."""
    try:
        action()
    except InvalidInputError as exc:
        if again is not None:
            resp: Response = again(f"Not saved: {exc}")
            resp.status_code = exc.http_status
            return resp
        flash(request, "error", f"Not saved: {exc}")
        return back
    flash(request, "ok", ok)
    return back


def _again(request: Request, tn: str, user: WebUser, page: Any, form: str, values: dict[str, str]) -> Any:
    """``page`` rendered again for the refused ``form``: its typed values and the message (``forms.kept``)."""
    from lutarterial.web.forms import kept

    return lambda message: page(request, tn, user, **kept(form, values, message))


@router.get("/")
def home(user: WebUser = Depends(current_user)) -> Response:
    return RedirectResponse("/participants", status_code=303)


@router.get("/participants")
def participants(request: Request, site: str | None = None, status: str | None = None,
                 user: WebUser = Depends(current_user)) -> Response:
    be = backend_of(request)
    rows, qcounts = be.list_participants_with_queries(user, site=site or None, status=status or None)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return _render(request, "participants.html", participants=rows, qcounts=qcounts, sites=be.sites_of(user),
                   site=site, status=status,
                   statuses=[s.value for s in ParticipantStatus], counts=counts, active="participants",
                   title="Participants")


@router.get("/participants/new")
def new_participant(request: Request, user: WebUser = Depends(current_user)) -> Response:
    if not user.can(Permission.PARTICIPANT_WRITE):
        from lutarterial.errors import AccessDeniedError

        raise AccessDeniedError(f"user {user.username!r} ({user.role}) may not register participants")
    return _render(request, "participant_new.html", sites=backend_of(request).sites_of(user), active="new",
                   can_identity=user.can(Permission.IDENTITY_WRITE), title="New participant")


@router.post("/participants/new", dependencies=[Depends(require_csrf)])
async def create_participant(request: Request, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    identity = {k: f.get(k, "").strip() for k in ("family_name", "given_name", "birth_date", "hospital_id")}
    try:
        yob = int(f["year_of_birth"]) if f.get("year_of_birth") else None
        tn = backend_of(request).register(
            user, site=f.get("site", ""), reason=f.get("reason", ""), sex=f.get("sex") or None, year_of_birth=yob,
            identity=identity if any(identity.values()) else None,
            consent_version=f.get("consent_version") or None, consent_date=f.get("consent_date") or None)
    except (InvalidInputError, ValueError) as exc:
        # issue 13: the form comes back with what was typed and the message (no value is lost;
        # rendered directly, so identity values never travel in a cookie)
        resp = _render(request, "participant_new.html", sites=backend_of(request).sites_of(user), active="new",
                       can_identity=user.can(Permission.IDENTITY_WRITE), title="New participant", values=f,
                       error=f"Not registered: {exc}")
        resp.status_code = 400
        return resp
    flash(request, "ok", f"Registered {tn}.")
    return RedirectResponse(f"/participants/{tn}", status_code=303)


_TAB_PARTS = {
    "overview": {"consents", "screenings", "enrolment", "visits"},
    "screening": {"screenings"},
    "safety": {"labs", "adverse_events", "recist"},
    "imaging": {"imaging"},
    "dosimetry": {"dosimetry"},
    "audit": set(),
}


def _participant_ctx(request: Request, user: WebUser, tn: str, tab: str) -> dict[str, Any]:
    return _ctx_of(backend_of(request).participant(user, tn, _TAB_PARTS.get(tab), banner=True), tab)


def _ctx_of(p: dict[str, Any], tab: str) -> dict[str, Any]:
    return {"p": p, "tab": tab, "title": p["trial_number"], "today": _today(), "active": "participants"}


@router.get("/participants/{tn}")
def participant(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    return _participant_page(request, tn, user)


def _participant_page(request: Request, tn: str, user: WebUser, *, visit_values: dict[str, str] | None = None,
                      error: str | None = None, **kept: Any) -> Response:
    """The timeline page; after a refused visit it comes back with the typed values and the message."""
    ctx = _participant_ctx(request, user, tn, "overview")
    p = ctx["p"]
    can_enrol = (user.can(Permission.ENROLMENT_WRITE) and p["enrolment"] is None and p["screenings"]
                 and p["screenings"][-1]["overall"] == "eligible")
    consented = any(c["withdrawal_date"] is None for c in p["consents"])
    return _render(request, "participant.html", **ctx, timeline=views.timeline(p), consented=consented,
                   can_enrol=can_enrol, can_visit=user.can(Permission.VISIT_WRITE),
                   can_consent=user.can(Permission.CONSENT_WRITE),
                   visit_kinds=[(k, v) for k, v in VISIT_LABELS.items() if k != "screening"],
                   visit_statuses=[s.value for s in VisitStatus], vv=visit_values or {}, visit_error=error, **kept)


@router.post("/participants/{tn}/consent", dependencies=[Depends(require_csrf)])
async def consent(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    return _write(request, lambda: backend_of(request).record_consent(
        user, tn, version=f.get("version", ""), signed_date=f.get("signed_date", ""), reason=f.get("reason", "")),
        "Consent recorded.", _back(request, tn), _again(request, tn, user, _participant_page, "consent", f))


@router.post("/participants/{tn}/withdraw", dependencies=[Depends(require_csrf)])
async def withdraw(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    return _write(request, lambda: backend_of(request).withdraw_consent(
        user, tn, withdrawal_date=f.get("withdrawal_date", ""), reason=f.get("reason", ""),
        note=f.get("note") or None), "Withdrawal recorded.", _back(request, tn),
        _again(request, tn, user, _participant_page, "withdraw", f))


@router.get("/participants/{tn}/identity")
def identity(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    ctx = _participant_ctx(request, user, tn, "overview")
    ident = backend_of(request).identity(user, tn)
    return _render(request, "identity.html", **ctx, ident=ident)


@router.post("/participants/{tn}/enrol", dependencies=[Depends(require_csrf)])
async def enrol(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    return _write(request, lambda: backend_of(request).enrol(
        user, tn, enrolled_date=f.get("enrolled_date", ""), reason=f.get("reason", "")),
        f"{tn} enrolled.", _back(request, tn), _again(request, tn, user, _participant_page, "enrol", f))


@router.post("/participants/{tn}/visits", dependencies=[Depends(require_csrf)])
async def visit(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    be = backend_of(request)
    kind = f.get("kind", "")

    def act() -> None:
        common = dict(activity_mbq=f.get("activity_mbq") or None, notes=f.get("notes") or None)
        if kind == "iah_cycle" and f.get("status") == "done":
            be.record_iah_cycle(user, tn, reason=f.get("reason", ""), visit_date=f.get("visit_date", ""),
                                artery=f.get("artery") or None, catheter_position=f.get("catheter_position") or None,
                                **common)
        else:
            be.record_visit(user, tn, reason=f.get("reason", ""), kind=kind, number=int(f.get("number") or 1),
                            status=f.get("status") or "done", visit_date=f.get("visit_date") or None,
                            planned_date=f.get("planned_date") or None, artery=f.get("artery") or None,
                            catheter_position=f.get("catheter_position") or None, **common)

    try:
        act()
    except InvalidInputError as exc:  # issue 13: back to the page with the typed values and the message
        resp = _participant_page(request, tn, user, visit_values=f, error=f"Not saved: {exc}")
        resp.status_code = getattr(exc, "http_status", 400)
        return resp
    flash(request, "ok", f"{VISIT_LABELS.get(kind, kind)} saved.")
    return _back(request, tn)


def _correctness():  # type: ignore[no-untyped-def]
    from lutarterial.web import correctness  # issue 10: baseline rule and site protocol configuration

    return correctness


@router.get("/participants/{tn}/screening")
def screening(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    return _screening_page(request, tn, user)


def _screening_page(request: Request, tn: str, user: WebUser, *, typed: dict[str, Any] | None = None,
                    **kept: Any) -> Response:
    """The screening form: the last stored record, or after a refused save the record as typed (issue 13)."""
    from lutarterial.web import forms

    ctx = _participant_ctx(request, user, tn, "screening")
    p = ctx["p"]
    last = p["screenings"][-1] if p["screenings"] else None
    record = last["record"] if last else {"record_id": p["trial_number"], "site": p["site_code"]}
    shown = {"record": record, "record_json": json.dumps(record, indent=2),
             "as_of": last["as_of"] if last else _today(),
             "protocol_version": last["protocol_version"] if last else "", **(typed or {})}
    record = shown["record"]
    result = views.screening_view(last["result"]) if last else None
    for sc in p["screenings"]:  # re-run the engine on each stored record: does it reproduce?
        try:
            sc["reproduced"] = backend_of(request).rescreen(user, sc["id"])["reproduced"]
        except (InvalidInputError, ImportError):
            sc["reproduced"] = None
    readonly = not user.can(Permission.SCREENING_WRITE) or p["status"] in ("enrolled", "treated", "completed",
                                                                              "withdrawn")
    return _render(request, "screening.html", **ctx, field_groups=forms.field_groups(record),
                   repeat_groups=forms.repeat_groups(record),  # issue 13: lists as rows, no JSON
                   measurements=forms.measurement_rows(record), meas_analytes=forms.measurement_analytes(),
                   record_json=shown["record_json"], result=result, readonly=readonly,
                   as_of=shown["as_of"], protocol_version=shown["protocol_version"],
                   protocol_versions=views.protocol_versions(), engine_available=views.engine_available(),
                   protocol_info=_correctness().screening_protocol_info(backend_of(request), p, last["as_of"] if last else None),
                   **kept)


@router.post("/participants/{tn}/screening", dependencies=[Depends(require_csrf)])
async def screening_submit(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    from lutarterial.web import forms

    form = await request.form()
    try:
        record = forms.record_from_form(form)
        out = backend_of(request).screen(user, tn, record=record, as_of=str(form.get("as_of") or ""),
                                         reason=str(form.get("reason") or ""),
                                         protocol_version=str(form.get("protocol_version") or "") or None)
    except InvalidInputError as exc:  # issue 13: the form again with the record as typed and the message
        record, record_json = forms.typed_record(form)
        typed = {"record": record, "record_json": record_json, "as_of": str(form.get("as_of") or ""),
                 "protocol_version": str(form.get("protocol_version") or "")}
        resp = _screening_page(request, tn, user, typed=typed, **forms.kept("screening", form, f"Not saved: {exc}"))
        resp.status_code = exc.http_status
        return resp
    flash(request, "ok", f"Screening saved: {out['overall']} (protocol v{out['protocol_version']}).")
    return _back(request, tn, "screening")


@router.get("/participants/{tn}/safety")
def safety(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    return safety_page(request, tn, user)


def safety_page(request: Request, tn: str, user: WebUser, **kept: Any) -> Response:
    """The safety tab; after a refused lab, adverse-event or RECIST form with its typed values and the message."""
    ctx = _participant_ctx(request, user, tn, "safety")
    return _render(request, "safety.html", **ctx, plots=views.safety_plots(ctx["p"]), recist=views.recist_view(ctx["p"]),
                   can_lab=user.can(Permission.LAB_WRITE), can_ae=user.can(Permission.AE_WRITE),
                   can_recist=user.can(Permission.RECIST_WRITE), analytes=views.lab_analytes(),
                   ctcae=_correctness().safety_flags(backend_of(request), ctx["p"]),  # issue 10
                   relatedness=["not_related", "unlikely", "possible", "probable", "definite", "unknown"],
                   responses=["CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD"], **kept)


@router.post("/participants/{tn}/labs", dependencies=[Depends(require_csrf)])
async def lab(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    return _write(request, lambda: backend_of(request).add_lab(
        user, tn, reason=f.get("reason", ""), analyte=f.get("analyte"), value=f.get("value"), unit=f.get("unit", ""),
        collected_date=f.get("collected_date", ""), lln=_optional(f, "lln"), uln=_optional(f, "uln")),
        "Laboratory value saved.", _back(request, tn, "safety"), _again(request, tn, user, safety_page, "lab", f))


def _optional(f: dict[str, str], key: str) -> str | None:
    """An optional form field: left empty (or blank) is ``None``; anything else goes to the service
    as typed, which parses it and refuses a non-number with a message naming the field."""
    return (f.get(key) or "").strip() or None


@router.post("/participants/{tn}/adverse-events", dependencies=[Depends(require_csrf)])
async def adverse_event(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    return _write(request, lambda: backend_of(request).add_adverse_event(
        user, tn, reason=f.get("reason", ""), term=f.get("term", ""), grade=f.get("grade"),
        onset_date=f.get("onset_date", ""), serious=f.get("serious") == "true",
        relatedness=f.get("relatedness") or "unknown"), "Adverse event saved.", _back(request, tn, "safety"),
        _again(request, tn, user, safety_page, "ae", f))


@router.post("/participants/{tn}/recist", dependencies=[Depends(require_csrf)])
async def recist(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    f = await _form(request)
    return _write(request, lambda: backend_of(request).add_recist(
        user, tn, reason=f.get("reason", ""), assessment_date=f.get("assessment_date", ""),
        response=f.get("response", ""), target_sum_mm=f.get("target_sum_mm") or None),
        "RECIST assessment saved.", _back(request, tn, "safety"))


@router.get("/participants/{tn}/imaging")
def imaging(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    ctx = _participant_ctx(request, user, tn, "imaging")
    return _render(request, "analyses.html", **ctx, analyses=views.analyses_view(ctx["p"], "imaging"),
                   intro="Quantitative 68Ga PET/CT and 177Lu SPECT/CT analyses: uptake after the intra-arterial "
                         "hepatic (IAH) injection compared with the intravenous (IV) one, per volume of interest.",
                   empty_what="imaging analysis")


@router.get("/participants/{tn}/dosimetry")
def dosimetry(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    ctx = _participant_ctx(request, user, tn, "dosimetry")
    return _render(request, "analyses.html", **ctx, analyses=views.analyses_view(ctx["p"], "dosimetry"),
                   intro="177Lu absorbed-dose analyses: time-activity curves, time-integrated activity and "
                         "absorbed dose per region, with the inputs they were computed from.",
                   empty_what="dosimetry analysis")


@router.get("/participants/{tn}/plots/{name}.png")
def plot(request: Request, tn: str, name: str, user: WebUser = Depends(current_user)) -> Response:
    p = backend_of(request).participant(user, tn, {"labs", "recist", "imaging", "dosimetry", "visits"})
    png = views.plot_png(p, name, data_dir=request.app.state.data_dir)
    if png is None:
        raise NotFoundError(f"no plot {name!r} for {tn}")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


AUDIT_PAGE_SIZE = 25  # entries per audit page (the template renders every changed field of each)
#: The global audit page counts matching entries up to this many (then says "more than").
AUDIT_COUNT_CAP = 10_000


def _audit_csv(rows: list[dict[str, Any]], filename: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["id", "occurred_at", "actor_username", "actor_roles", "table_name", "row_id", "trial_number", "action",
            "reason", "old_values", "new_values"]
    w.writerow(cols)
    for r in rows:
        w.writerow([json.dumps(r[c], sort_keys=True) if isinstance(r.get(c), dict) else neutralise(r.get(c))
                    for c in cols])  # formula-leading text cells get ' (issue 9)
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/participants/{tn}/audit")
def participant_audit(request: Request, tn: str, page: int = 1, user: WebUser = Depends(current_user)) -> Response:
    """The participant's trail, newest first, 25 entries a page (the CSV holds all of it)."""
    page = max(1, page)
    p, rows, total = backend_of(request).participant_audit_view(user, tn, limit=AUDIT_PAGE_SIZE,
                                                                offset=(page - 1) * AUDIT_PAGE_SIZE,
                                                                parts=_TAB_PARTS["audit"])
    ctx = _ctx_of(p, "audit")
    pages = max(1, -(-total // AUDIT_PAGE_SIZE))
    link = lambda n: f"/participants/{quote(tn)}/audit?page={n}"  # noqa: E731
    return _render(request, "audit.html", **ctx, entries=rows, chain=None, total=total, page=page, pages=pages,
                   prev_url=link(page - 1) if page > 1 else None, next_url=link(page + 1) if page < pages else None,
                   csv_url=f"/participants/{quote(tn)}/audit.csv")


@router.get("/participants/{tn}/audit.csv")
def participant_audit_csv(request: Request, tn: str, user: WebUser = Depends(current_user)) -> Response:
    return _audit_csv(backend_of(request).participant_audit(user, tn), f"audit-{tn}.csv")



@router.get("/audit")
def audit(request: Request, table: str | None = None, user_name: str | None = None, participant: str | None = None,
          date_from: str | None = None, date_to: str | None = None, page: int = 1,
          user: WebUser = Depends(current_user)) -> Response:
    """Global audit trail: filter by participant, user, table and dates; 25 rows a page (issue 13)."""
    from lutarterial.registry import services as sv
    from lutarterial.registry.models import AUDITED_MODELS

    be = backend_of(request)
    if not user.can_audit:
        from lutarterial.errors import AccessDeniedError

        raise AccessDeniedError(f"user {user.username!r} ({user.role}) may not read the global audit trail")
    uname = request.query_params.get("user") or user_name
    page = max(1, page)
    with be.quick() as s:  # reads only (on PostgreSQL no BEGIN/ROLLBACK round trips)
        entries, total = sv.search_audit(s, user.actor, participant=participant or None, username=uname or None,
                                         table=table or None, date_from=date_from or None, date_to=date_to or None,
                                         limit=AUDIT_PAGE_SIZE, offset=(page - 1) * AUDIT_PAGE_SIZE,
                                         count_cap=AUDIT_COUNT_CAP)
        rows = be._audit_rows(s, entries)
    more = total > AUDIT_COUNT_CAP  # "more than 10,000": counting all of a long trail on every view costs
    total = min(total, AUDIT_COUNT_CAP)
    pages = max(1, -(-total // AUDIT_PAGE_SIZE))
    if more:
        pages += 1  # at least one more page; "Older" stays offered while a page comes back full
        pages = max(pages, page + (1 if len(rows) == AUDIT_PAGE_SIZE else 0))
    keep = {k: v for k, v in (("table", table), ("user", uname), ("participant", participant),
                              ("date_from", date_from), ("date_to", date_to)) if v}
    from urllib.parse import urlencode

    link = lambda n: "/audit?" + urlencode({**keep, "page": n})  # noqa: E731
    return _render(request, "audit.html", p=None, entries=rows, chain=be.verify_chain(), more=False, total_more=more,
                   tables=sorted(mdl.__tablename__ for mdl in AUDITED_MODELS), table=table, user=uname,
                   participant=participant, date_from=date_from, date_to=date_to, total=total, page=page,
                   pages=pages, prev_url=link(page - 1) if page > 1 else None,
                   next_url=link(page + 1) if page < pages else None,
                   csv_url="/audit.csv", active="audit", title="Audit trail")


@router.get("/audit.csv")
def audit_csv(request: Request, user: WebUser = Depends(current_user)) -> Response:
    return _audit_csv(backend_of(request).audit(user, limit=5000), "audit.csv")


@router.get("/exports")
def exports(request: Request, user: WebUser = Depends(current_user)) -> Response:
    return _render(request, "exports.html", tables=backend_of(request).export_tables(), active="exports",
                   title="Exports")


@router.get("/exports/csv/{table}.csv")
def export_csv(request: Request, table: str, user: WebUser = Depends(current_user)) -> Response:
    data = backend_of(request).export_csv(user, table)
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{table}.csv"'})


@router.get("/exports/lutarterial-csv.zip")
def export_zip(request: Request, user: WebUser = Depends(current_user)) -> Response:
    data = backend_of(request).export_zip(user)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="lutarterial-csv.zip"'})


@router.get("/exports/odm.xml")
def export_odm(request: Request, user: WebUser = Depends(current_user)) -> Response:
    data = backend_of(request).export_odm(user)
    return Response(data, media_type="application/xml",
                    headers={"Content-Disposition": 'attachment; filename="lutarterial-odm.xml"'})
