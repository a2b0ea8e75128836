"""Queries (discrepancies) between monitors/data managers and sites, and the edit checks.

A query points at a participant, a form (``table_name`` + ``row_id``) or one field. Life cycle:
``open`` (monitor, data manager, or an automatic check) -> ``answered`` (site: coordinator or
investigator) -> ``closed`` (the opener; any monitor/data manager for an automatic query), or
re-opened. Every step is a row of the query's thread and an audit row.

Edit checks (:mod:`lutarterial.datamanagement.checks`, data in ``edit_checks.yaml``) run after
every write touching a participant (:mod:`lutarterial.registry.dm_guard`); each finding opens
one query, deduplicated by check and target, never blocking the save.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from lutarterial.datamanagement.checks import check_inputs, default_plausible, evaluate_checks, load_edit_checks
from lutarterial.errors import AccessDeniedError, InvalidInputError, NotFoundError
from lutarterial.registry.access import Actor, Permission, can, require, restrict_to_sites
from lutarterial.registry.audit import audited
from lutarterial.registry.models import (
    AdverseEvent,
    Consent,
    DataQuery,
    ImagingSeries,
    ImagingStudy,
    LabResult,
    Participant,
    QueryMessage,
    Role,
    ScreeningResult,
    Site,
    Visit,
    utcnow,
)
from lutarterial.registry.services._common import as_optional_text, load_participant
from lutarterial.registry.services._dm import ts, context_actor, resolve_target

__all__ = ["QUERY_STATUSES", "open_query", "assign_query", "answer_query", "close_query", "reopen_query",
           "get_query", "list_queries", "query_messages", "query_counts", "query_summary_by_site",
           "build_casebook", "run_edit_checks", "run_edit_checks_for", "INCREMENTAL_TABLES",
           "CASEBOOK_PARTS_OF_TABLE", "open_check_query", "query_dict"]

QUERY_STATUSES = ("open", "answered", "closed")
CHECK_OPENER = "edit-check"


def _text(value: Any, name: str) -> str:
    text = as_optional_text(value, name, max_length=4000)
    if text is None:
        raise InvalidInputError(f"{name} is required")
    return text


def _step(session: Session, q: DataQuery, action: str, text: str, username: str) -> None:
    session.add(QueryMessage(query_id=q.id, participant_id=q.participant_id, action=action, text=text,
                             username=username))


def open_query(session: Session, actor: Actor, participant: int | str, *, text: str,
               table_name: str | None = None, row_id: int | None = None, field: str | None = None,
               assign_to: str | None = None) -> DataQuery:
    """Open a query (monitor, data manager, admin) on a participant, a form or one field."""
    require(actor, Permission.QUERY_OPEN)
    p = load_participant(session, actor, participant)
    body = _text(text, "query text")
    table_name, rid, field, _row = resolve_target(session, p, table_name, row_id, field)
    assignee = as_optional_text(assign_to, "assignee", max_length=100)
    where = f"{table_name} #{rid}{'.' + field if field else ''}" if table_name else "participant"
    with audited(session, actor, f"query opened on {p.trial_number} {where}: {body}"):
        q = DataQuery(participant_id=p.id, table_name=table_name, row_id=rid, field=field, text=body,
                      status="open", source="manual", opened_by=actor.username, assigned_to=assignee)
        session.add(q)
        session.flush()
        _step(session, q, "open", body, actor.username)
    return q


def get_query(session: Session, actor: Actor, query_id: int) -> DataQuery:
    q = session.get(DataQuery, int(query_id))
    if q is None:
        raise NotFoundError(f"query {query_id} does not exist")
    load_participant(session, actor, q.participant_id)
    return q


def _may_close(actor: Actor, q: DataQuery) -> None:
    require(actor, Permission.QUERY_OPEN)
    if q.opened_by == actor.username or actor.is_admin or q.source == "check" \
            or Role.DATA_MANAGER in actor.roles:
        return
    raise AccessDeniedError(f"query {q.id} was opened by {q.opened_by}: only the opener (or a data manager) "
                            "closes or re-opens it")


def assign_query(session: Session, actor: Actor, query_id: int, *, assign_to: str) -> DataQuery:
    """Assign to a user or role at the site (e.g. ``inv.bdx`` or ``investigator``)."""
    require(actor, Permission.QUERY_OPEN)
    q = get_query(session, actor, query_id)
    who = _text(assign_to, "assignee")
    with audited(session, actor, f"query {q.id} assigned to {who}"):
        q.assigned_to = who[:100]
        _step(session, q, "assign", who, actor.username)
    return q


def answer_query(session: Session, actor: Actor, query_id: int, *, text: str) -> DataQuery:
    """The site's answer (coordinator, investigator); the query becomes ``answered``."""
    require(actor, Permission.QUERY_ANSWER)
    q = get_query(session, actor, query_id)
    if q.status == "closed":
        raise InvalidInputError(f"query {q.id} is closed; ask the monitor to re-open it")
    body = _text(text, "answer")
    with audited(session, actor, f"query {q.id} answered: {body}"):
        q.status, q.answer, q.answered_at = "answered", body, utcnow()
        _step(session, q, "answer", body, actor.username)
    return q


def close_query(session: Session, actor: Actor, query_id: int, *, text: str = "") -> DataQuery:
    """Close (the opener, a data manager, or anyone who may open queries for an automatic one)."""
    q = get_query(session, actor, query_id)
    _may_close(actor, q)
    if q.status == "closed":
        raise InvalidInputError(f"query {q.id} is already closed")
    note = (text or "").strip() or "closed"
    with audited(session, actor, f"query {q.id} closed: {note}"):
        q.status, q.closed_at = "closed", utcnow()
        _step(session, q, "close", note, actor.username)
    return q


def reopen_query(session: Session, actor: Actor, query_id: int, *, text: str) -> DataQuery:
    """Re-open an answered or closed query with a new question."""
    q = get_query(session, actor, query_id)
    _may_close(actor, q)
    if q.status == "open":
        raise InvalidInputError(f"query {q.id} is already open")
    body = _text(text, "reason for re-opening")
    with audited(session, actor, f"query {q.id} re-opened: {body}"):
        q.status, q.closed_at = "open", None
        _step(session, q, "reopen", body, actor.username)
    return q


def query_dict(q: DataQuery, *, today: dt.date, trial_number: str = "") -> dict[str, Any]:
    opened = q.opened_at.date() if q.opened_at else today
    end = q.closed_at.date() if q.closed_at else today
    return {"id": q.id, "trial_number": trial_number, "table_name": q.table_name, "row_id": q.row_id,
            "field": q.field, "text": q.text, "status": q.status, "source": q.source, "check_key": q.check_key,
            "opened_by": q.opened_by, "assigned_to": q.assigned_to, "answer": q.answer,
            "opened_at": ts(q.opened_at),
            "answered_at": ts(q.answered_at),
            "closed_at": ts(q.closed_at),
            "age_days": max(0, (end - opened).days)}


def list_queries(session: Session, actor: Actor, *, participant: int | str | None = None,
                 site_code: str | None = None, status: str | None = None) -> list[tuple[DataQuery, str]]:
    """Queries with their participant's trial number, of one participant or the actor's sites."""
    stmt = select(DataQuery, Participant.trial_number).join(Participant, Participant.id == DataQuery.participant_id)
    if participant is not None:
        p = load_participant(session, actor, participant)
        stmt = stmt.where(DataQuery.participant_id == p.id)
    else:
        stmt = restrict_to_sites(stmt, actor, Participant.site_id)
        if site_code:
            stmt = stmt.join(Site, Site.id == Participant.site_id).where(Site.code == site_code.strip().upper())
    if status:
        if status not in QUERY_STATUSES:
            raise InvalidInputError(f"query status {status!r}; valid: {', '.join(QUERY_STATUSES)}")
        stmt = stmt.where(DataQuery.status == status)
    return [(q, tn) for q, tn in session.execute(stmt.order_by(DataQuery.id))]


def query_messages(session: Session, actor: Actor, query_id: int) -> list[QueryMessage]:
    q = get_query(session, actor, query_id)
    return list(session.scalars(select(QueryMessage).where(QueryMessage.query_id == q.id).order_by(QueryMessage.id)))


def query_counts(session: Session, actor: Actor) -> dict[int, dict[str, int]]:
    """Open and answered queries per participant id of the actor's sites (one grouped SELECT)."""
    stmt = (select(DataQuery.participant_id, DataQuery.status, func.count())
            .join(Participant, Participant.id == DataQuery.participant_id)
            .where(DataQuery.status != "closed").group_by(DataQuery.participant_id, DataQuery.status))
    out: dict[int, dict[str, int]] = {}
    for pid, status, n in session.execute(restrict_to_sites(stmt, actor, Participant.site_id)):
        out.setdefault(int(pid), {"open": 0, "answered": 0})[status] = int(n)
    return out


def query_summary_by_site(session: Session, actor: Actor, *, today: dt.date) -> list[dict[str, Any]]:
    """Per site: counts by status, and age (days) of the oldest and the median open query."""
    stmt = (select(Site.code, DataQuery.status, DataQuery.opened_at)
            .join(Participant, Participant.id == DataQuery.participant_id)
            .join(Site, Site.id == Participant.site_id))
    per: dict[str, dict[str, Any]] = {}
    for code, status, opened in session.execute(restrict_to_sites(stmt, actor, Participant.site_id)):
        d = per.setdefault(code, {"site": code, "open": 0, "answered": 0, "closed": 0, "_ages": []})
        d[status] += 1
        if status != "closed":
            d["_ages"].append(max(0, (today - opened.date()).days) if opened else 0)
    out = []
    for code in sorted(per):
        d = per[code]
        ages = sorted(d.pop("_ages"))
        d["oldest_open_days"] = ages[-1] if ages else None
        d["median_open_days"] = ages[len(ages) // 2] if ages else None
        out.append(d)
    return out


# --- edit checks --------------------------------------------------------------------------------


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


#: Repeating forms that grow with the trial (one row per value): after a write, the row-level edit
#: checks run on the rows that write touched, not on every row again (see :func:`run_edit_checks_for`).
INCREMENTAL_TABLES = frozenset({"lab_results", "adverse_events"})

#: Registry table -> the casebook parts built from it (what a write to it can change).
CASEBOOK_PARTS_OF_TABLE: Mapping[str, frozenset[str]] = {
    "participants": frozenset({"participant"}), "consents": frozenset({"consent"}),
    "screening_results": frozenset({"screening"}), "visits": frozenset({"visits", "imaging_analyses"}),
    "lab_results": frozenset({"labs"}), "adverse_events": frozenset({"adverse_events"}),
    "imaging_studies": frozenset({"imaging_analyses"}), "imaging_series": frozenset({"imaging_analyses"}),
}


#: The laboratory fields the edit checks read (the casebook's ``labs`` rows).
_LAB_FIELDS = ("id", "analyte", "value", "unit", "lln", "uln")


def _flushed_rows(session: Session, model: Any, ids: Collection[int], participant_id: int,
                  fields: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """The rows ``ids`` of ``model`` (in id order) from the session's identity map, as
    ``{field: value}``, when every one was inserted by this transaction (``dm_guard.INSERTED_KEY``),
    is there with those fields loaded, unexpired and unchanged since the flush that wrote it, and
    belongs to ``participant_id``; else ``None`` (read them).

    Why (issue 13, fast): the edit checks after a laboratory save re-read the row the same flush
    had just written; the object in the session holds exactly the values that flush sent. Only an
    inserted row: no other transaction can change it before this one commits. An updated row is
    read, because its flush wrote only the columns this session changed and the row may hold a
    concurrent correction of the others (PostgreSQL, READ COMMITTED).
    """
    from lutarterial.registry.dm_guard import INSERTED_KEY

    inserted = session.info.get(INSERTED_KEY) or set()
    table, wanted = model.__tablename__, set(fields)
    out = []
    for rid in sorted(ids):
        if (table, rid) not in inserted:
            return None
        obj = session.identity_map.get(identity_key(model, rid))
        if obj is None:
            return None
        state = sa_inspect(obj)
        if (state.modified or state.expired or not state.persistent or state.unloaded & wanted
                or obj.participant_id != participant_id):
            return None
        out.append({f: getattr(obj, f) for f in fields})
    return out


def build_casebook(session: Session, p: Participant, *,
                   only_rows: Mapping[str, Collection[int]] | None = None,
                   parts: Collection[str] | None = None) -> dict[str, Any]:
    """The participant's data as the plain dict the edit checks read (a few SELECTs, no JSON blobs
    but the latest screening record).

    ``only_rows`` (table name -> row ids) limits the tables of :data:`INCREMENTAL_TABLES` to those
    rows (an absent table: none of its rows); ``None`` loads everything. ``parts`` (casebook keys)
    loads only those parts (the others are empty); ``None`` loads all of them.
    """

    def want(part: str) -> bool:
        return parts is None or part in parts

    def limit(table: str, id_col: Any, stmt: Any) -> Any:
        if only_rows is None:
            return stmt
        ids = sorted(only_rows.get(table) or ())
        return stmt.where(id_col.in_(ids)) if ids else None

    cb: dict[str, Any] = {"participant": None, "consent": None, "screening": None, "visits": [], "labs": [],
                          "adverse_events": [], "imaging_analyses": []}
    if want("participant"):
        site = p.site
        cb["participant"] = {"id": p.id, "trial_number": p.trial_number, "sex": p.sex,
                             "year_of_birth": p.year_of_birth, "status": p.status,
                             "site_aliases": [site.code, site.name, site.city] if site else []}
    if want("consent"):
        consent = session.execute(select(Consent.id, Consent.signed_date).where(Consent.participant_id == p.id)
                                  .order_by(Consent.id.desc()).limit(1)).first()
        cb["consent"] = {"id": consent[0], "signed_date": _iso(consent[1])} if consent else None
    if want("screening"):
        sr = session.execute(select(ScreeningResult.id, ScreeningResult.as_of, ScreeningResult.record)
                             .where(ScreeningResult.participant_id == p.id)
                             .order_by(ScreeningResult.id.desc()).limit(1)).first()
        cb["screening"] = {"id": sr[0], "as_of": _iso(sr[1]), "record": sr[2]} if sr else None
    if want("visits"):
        cb["visits"] = [{"id": i, "kind": k, "number": n, "status": st, "visit_date": _iso(d), "activity_mbq": a}
                        for i, k, n, st, d, a in session.execute(
                            select(Visit.id, Visit.kind, Visit.number, Visit.status, Visit.visit_date,
                                   Visit.activity_mbq).where(Visit.participant_id == p.id).order_by(Visit.id))]
    lab_q = limit("lab_results", LabResult.id,
                  select(*(getattr(LabResult, f) for f in _LAB_FIELDS))
                  .where(LabResult.participant_id == p.id).order_by(LabResult.id))
    if want("labs") and lab_q is not None:
        flushed = (None if only_rows is None
                   else _flushed_rows(session, LabResult, only_rows.get("lab_results") or (), p.id, _LAB_FIELDS))
        cb["labs"] = flushed if flushed is not None else [
            dict(zip(_LAB_FIELDS, row)) for row in session.execute(lab_q)]
    ae_q = limit("adverse_events", AdverseEvent.id,
                 select(AdverseEvent.id, AdverseEvent.term, AdverseEvent.relatedness)
                 .where(AdverseEvent.participant_id == p.id).order_by(AdverseEvent.id))
    if want("adverse_events") and ae_q is not None:
        cb["adverse_events"] = [{"id": i, "term": t, "relatedness": r} for i, t, r in session.execute(ae_q)]
    if want("imaging_analyses"):
        studies: dict[int, dict[str, Any]] = {}
        for sid, sdate, vkind in session.execute(
                select(ImagingStudy.id, ImagingStudy.study_date, Visit.kind)
                .join(ImagingSeries, ImagingSeries.study_id == ImagingStudy.id)
                .join(Visit, Visit.id == ImagingSeries.visit_id)
                .where(ImagingStudy.participant_id == p.id, ImagingStudy.study_date.is_not(None))):
            studies.setdefault(sid, {"id": sid, "study_dates": {}})["study_dates"][vkind] = _iso(sdate)
        cb["imaging_analyses"] = list(studies.values())
    return cb


def open_check_query(session: Session, p: Participant, *, check_id: str, table_name: str | None,
                     row_id: int | None, field: str | None, text: str, looked_up: bool = False) -> DataQuery | None:
    """Open an automatic query unless one for the same check and target is open/answered, or was
    closed with the same text (already dealt with). Audited on behalf of the writing user.

    ``looked_up``: the caller has just read this participant's queries for this key in the same
    transaction and found none that settles it (skips the same SELECT).
    """
    key = f"{check_id}:{table_name}:{row_id}:{field or ''}"
    if not looked_up:
        for q in session.scalars(select(DataQuery).where(DataQuery.participant_id == p.id,
                                                         DataQuery.check_key == key)):
            if q.status != "closed" or q.text == text:
                return None
    with audited(session, context_actor(session), f"automatic edit check {check_id}: {text}"):
        q = DataQuery(participant_id=p.id, table_name=table_name, row_id=row_id, field=field, text=text,
                      status="open", source="check", check_key=key, opened_by=CHECK_OPENER)
        session.add(q)
        session.flush()
        _step(session, q, "open", text, CHECK_OPENER)
    return q


def run_edit_checks_for(session: Session, participant_id: int, *,
                        touched: Mapping[str, Collection[int]] | None = None) -> list[DataQuery]:
    """Evaluate the edit checks on one participant; open the new queries (after-write hook).

    ``touched`` (table -> row ids written by the write that triggers this run) makes the run
    incremental: only the checks that read a part of the casebook the write changed run
    (:func:`~lutarterial.datamanagement.checks.check_inputs`, :data:`CASEBOOK_PARTS_OF_TABLE`),
    and the checks on one row of a repeating form (laboratory values, adverse events,
    :data:`INCREMENTAL_TABLES`) only on the rows written. Same queries as a full run: a check
    whose inputs this write did not change was evaluated after the write that last changed them,
    and a row-level check's message depends only on its row (issue 13, fast: a save re-checked
    every laboratory value and cross-form rule of the participant, so saves got slower with every
    value). ``None``: everything (the data manager's "run edit checks", after rulebook changes).
    """
    checks = load_edit_checks()
    only = parts = None
    if touched is not None:
        # only the checks that read a casebook part this write changed; a check whose inputs did not
        # change finds what it found after the write that last changed them (and opened it then)
        changed = frozenset().union(*(CASEBOOK_PARTS_OF_TABLE.get(t, frozenset()) for t in touched))
        checks = tuple(c for c in checks if check_inputs(c) & changed)
        if not checks:
            return []
        parts = frozenset().union(*(check_inputs(c) for c in checks))
        only = {t: touched[t] for t in INCREMENTAL_TABLES if t in touched}
    p = session.get(Participant, participant_id)
    if p is None:
        return []
    findings = evaluate_checks(checks, build_casebook(session, p, only_rows=only, parts=parts),
                               plausible=default_plausible())
    opened = []
    # The participant's automatic queries in one SELECT: a finding that one of them already settles
    # (open/answered, or closed with the same text) skips open_check_query's own SELECT (issue 13, fast:
    # saves re-run every check, and the demo's open discrepancies made that one SELECT per finding).
    known: dict[str, list[tuple[str, str]]] = {}
    if findings:
        keys = sorted({f"{f.check_id}:{f.table}:{f.row_id}:{f.field or ''}" for f in findings})
        for key, status, qtext in session.execute(select(DataQuery.check_key, DataQuery.status, DataQuery.text)
                                                  .where(DataQuery.participant_id == p.id,
                                                         DataQuery.check_key.in_(keys))):
            known.setdefault(str(key), []).append((str(status), str(qtext)))
    for f in findings:
        text = f"[{f.check_id}] {f.message}"
        key = f"{f.check_id}:{f.table}:{f.row_id}:{f.field or ''}"
        if any(status != "closed" or qtext == text for status, qtext in known.get(key, ())):
            continue  # exactly open_check_query's rule (applied here to the keys read above)
        q = open_check_query(session, p, check_id=f.check_id, table_name=f.table, row_id=f.row_id, field=f.field,
                             text=text, looked_up=True)
        if q is not None:
            opened.append(q)
    return opened


def run_edit_checks(session: Session, actor: Actor, participant: int | str) -> list[DataQuery]:
    """Run the edit checks on demand (data manager, monitor, admin); returns the queries opened."""
    if not (can(actor, Permission.QUERY_OPEN) or can(actor, Permission.LOCK)):
        require(actor, Permission.QUERY_OPEN)
    p = load_participant(session, actor, participant)
    with audited(session, actor, f"edit checks run on {p.trial_number}"):
        return run_edit_checks_for(session, p.id)
