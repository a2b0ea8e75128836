"""Data management for the web layer (issue 13): thin calls of the registry's DM services that
return plain dicts, shared by the JSON routes (``routes/dm_api.py``) and the pages
(``routes/dm_pages.py``). The clock is read here, at the edge (``today()``), and passed in."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lutarterial.registry import services as sv
from lutarterial.registry.access import Permission, can
from lutarterial.registry.services._dm import ts
from lutarterial.web.backend import WebUser

__all__ = ["today", "schedule", "dashboard", "queries", "query_thread", "dm_overview", "banner",
           "query_counts_in", "write"]


def today(value: str | dt.date | None = None) -> dt.date:
    """The day statuses are computed for: ``value`` when given (ISO), else today in UTC."""
    if isinstance(value, dt.date):
        return value
    if value:
        from lutarterial.registry.services._common import as_date

        day = as_date(value, "today")
        assert day is not None
        return day
    return dt.datetime.now(dt.timezone.utc).date()


def schedule(be: Any, user: WebUser, tn: str, *, on: dt.date) -> list[dict[str, Any]]:
    with be.read() as s:
        return [v.to_dict() for v in sv.participant_schedule(s, user.actor, tn, today=on)]


def dashboard(be: Any, user: WebUser, *, on: dt.date, site: str | None = None) -> dict[str, Any]:
    with be.read() as s:
        out: dict[str, Any] = sv.schedule_dashboard(s, user.actor, today=on, site_code=site)
        out["queries_by_site"] = sv.query_summary_by_site(s, user.actor, today=on)
        out["today"] = on.isoformat()
        return out


def queries(be: Any, user: WebUser, *, on: dt.date, tn: str | None = None, site: str | None = None,
            status: str | None = None) -> list[dict[str, Any]]:
    with be.read() as s:
        return [sv.query_dict(q, today=on, trial_number=t)
                for q, t in sv.list_queries(s, user.actor, participant=tn, site_code=site, status=status)]


def query_thread(be: Any, user: WebUser, query_id: int, *, on: dt.date) -> dict[str, Any]:
    with be.read() as s:
        q = sv.get_query(s, user.actor, query_id)
        p = sv.get_participant(s, user.actor, q.participant_id)
        out = sv.query_dict(q, today=on, trial_number=p.trial_number)
        out["messages"] = [{"action": m.action, "text": m.text, "username": m.username,
                            "created_at": ts(m.created_at)}
                           for m in sv.query_messages(s, user.actor, query_id)]
        return out


def dm_overview(be: Any, user: WebUser, tn: str, *, on: dt.date) -> dict[str, Any]:
    """Everything the participant's data-management page shows, in one read transaction."""
    with be.read() as s:
        p = sv.get_participant(s, user.actor, tn)
        from sqlalchemy import select

        from lutarterial.registry.models import QueryMessage

        thread: dict[int, list[dict[str, Any]]] = {}
        for m in s.scalars(select(QueryMessage).where(QueryMessage.participant_id == p.id)  # one SELECT, no N+1
                           .order_by(QueryMessage.id)):
            thread.setdefault(m.query_id, []).append({"action": m.action, "text": m.text, "username": m.username,
                                                      "created_at": ts(m.created_at)})
        qs = []
        for q, t in sv.list_queries(s, user.actor, participant=p.id):
            d = sv.query_dict(q, today=on, trial_number=t)
            d["messages"] = thread.get(q.id, [])
            qs.append(d)
        forms = _forms(s, user, p)
        return {
            "trial_number": p.trial_number, "status": p.status, "participant_id": p.id,
            "schedule": [v.to_dict() for v in sv.participant_schedule(s, user.actor, p.id, today=on)],
            "queries": qs,
            "signatures": sv.list_signatures(s, user.actor, p.id),
            "locks": [sv.lock_dict(lk) for lk in sv.list_locks(s, user.actor, p.id)],
            "sdv": [sv.sdv_dict(m) for m in sv.list_sdv(s, user.actor, p.id)],
            "forms": forms,
            "meanings": list(sv.SIGNATURE_MEANINGS),
            "can_open": can(user.actor, Permission.QUERY_OPEN),
            "can_answer": can(user.actor, Permission.QUERY_ANSWER),
            "can_sign": can(user.actor, Permission.SIGN),
            "can_lock": can(user.actor, Permission.LOCK),
            "can_sdv": can(user.actor, Permission.SDV),
        }


def _forms(s: Any, user: WebUser, p: Any) -> list[dict[str, Any]]:
    """The participant's forms (table, row, label) for the target pickers."""
    out = [{"table_name": "participants", "row_id": p.id, "label": f"Registration {p.trial_number}"}]
    for c in sv.list_visits(s, user.actor, p.id):
        out.append({"table_name": "visits", "row_id": c.id, "label": f"Visit {c.kind} {c.number} ({c.visit_date or c.planned_date or 'undated'})"})
    for sr in sv.list_screenings(s, user.actor, p.id):
        out.append({"table_name": "screening_results", "row_id": sr.id, "label": f"Screening {sr.as_of}"})
    for lab in sv.list_labs(s, user.actor, p.id):
        out.append({"table_name": "lab_results", "row_id": lab.id,
                    "label": f"Lab {lab.analyte} {lab.value:g} {lab.unit} ({lab.collected_date})"})
    for ae in sv.list_adverse_events(s, user.actor, p.id):
        out.append({"table_name": "adverse_events", "row_id": ae.id, "label": f"AE {ae.term} ({ae.onset_date})"})
    for r in sv.list_recist(s, user.actor, p.id):
        out.append({"table_name": "recist_assessments", "row_id": r.id, "label": f"RECIST {r.assessment_date}"})
    return out


def banner(be: Any, user: WebUser | None, participant: int | str) -> dict[str, Any]:
    """Signatures, lock and open queries shown on every participant page (§11.50: with the data).

    ``participant``: the database id or a trial number (access-checked as everywhere).
    """
    if user is None:
        return {}
    from lutarterial.registry.services._common import load_participant_row

    with be.quick() as s:
        return banner_in(s, user, load_participant_row(s, user.actor, participant, extra=banner_columns()))


def _banner_statements() -> tuple[Any, Any, str]:
    from sqlalchemy import bindparam, func, select

    from lutarterial.registry.models import DataQuery, Participant, RecordLock, Signature
    from lutarterial.registry.services._common import participant_row_columns

    sig, lk, q, p = Signature.__table__, RecordLock.__table__, DataQuery.__table__, Participant.__table__
    in_force = (lk.c.participant_id == p.c.id, lk.c.unlocked_at.is_(None), lk.c.table_name.is_(None))
    extra = participant_row_columns("dm_banner", (
        select(func.count()).select_from(q).where(q.c.participant_id == p.c.id, q.c.status != "closed")
        .scalar_subquery().label("banner_open_queries"),
        select(lk.c.id).where(*in_force).order_by(lk.c.id).limit(1).scalar_subquery().label("banner_lock_id"),
        select(func.count()).select_from(sig).where(sig.c.participant_id == p.c.id)
        .scalar_subquery().label("banner_signatures")))
    return (select(sig).where(sig.c.participant_id == bindparam("pid")).order_by(sig.c.id),
            select(lk).where(lk.c.id == bindparam("lock_id"), lk.c.unlocked_at.is_(None)), extra)  # still in force


_BANNER: tuple[Any, Any, str] | None = None


def banner_columns() -> str:
    """The ``extra`` name for :func:`~lutarterial.registry.services._common.load_participant_row` that
    reads what :func:`banner_in` needs (open queries, the lock in force, whether any signature exists)
    in the participant's own SELECT (issue 13, fast: three more round trips on every page)."""
    global _BANNER
    if _BANNER is None:
        _BANNER = _banner_statements()
    return _BANNER[2]


def banner_in(s: Any, user: WebUser, p: Any) -> dict[str, Any]:
    """:func:`banner` inside an open read session, for a participant row read (and access-checked for
    ``user``) by ``load_participant_row(..., extra=banner_columns())``: the signatures and the lock
    are read only when there are some. The same content as ``list_signatures(verify=False)``, the
    participant-level lock in force and the count of queries not closed."""
    banner_columns()
    assert _BANNER is not None
    sigs_of, lock_by_id, _extra = _BANNER
    del user  # the caller checked access when it loaded ``p``
    sigs = [sv.signature_dict(row) for row in s.execute(sigs_of, {"pid": p.id})] if p.banner_signatures else []
    lock = (s.execute(lock_by_id, {"lock_id": p.banner_lock_id}).first()
            if p.banner_lock_id is not None else None)
    return {"signatures": sigs, "lock": sv.lock_dict(lock) if lock else None,
            "open_queries": int(p.banner_open_queries or 0)}


def query_counts_in(s: Any, user: WebUser, names: dict[int, str] | None = None) -> dict[str, dict[str, int]]:
    """Open/answered query counts per trial number of the user's sites (one grouped SELECT), inside
    an open read session; ``names`` (participant id -> trial number, e.g. the rows just listed)
    saves the lookup of the trial numbers."""
    from sqlalchemy import select

    from lutarterial.registry.models import Participant

    counts = sv.query_counts(s, user.actor)
    if not counts:
        return {}
    if names is None or not set(counts) <= set(names):
        names = dict(s.execute(select(Participant.id, Participant.trial_number)
                               .where(Participant.id.in_(sorted(counts)))).all())
    return {names[pid]: c for pid, c in counts.items() if pid in names}


def write(be: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one DM service in a write unit of work; returns a JSON-ready summary of the row."""
    with be.write() as s:
        row = fn(s, *args, **kwargs)
        s.flush()
        return {"id": getattr(row, "id", None)} if row is not None and not isinstance(row, list) else \
            {"opened": [q.id for q in row or []]}
