"""Schedule of events per participant: planned dates stored at enrolment, statuses, site dashboard.

The rules are the protocol version's ``schedule`` block (the version of the screening that led
to enrolment); :mod:`lutarterial.datamanagement.schedule` computes, this module stores
(``schedule_entries``, audited) and reads. Recomputation runs after every write that touches
the participant (:mod:`lutarterial.registry.dm_guard`): a planned date only changes, and is only
audited, when an anchor moved. ``today`` is always a parameter; the web/CLI edge passes the date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.datamanagement.schedule import PlannedVisit, ScheduleRule, VisitState, plan_schedule, visit_status
from lutarterial.registry.access import Actor, restrict_to_sites
from lutarterial.registry.audit import audited
from lutarterial.registry.models import (
    Enrolment,
    Participant,
    ParticipantStatus,
    ScheduleEntry,
    ScreeningResult,
    Site,
    Visit,
    VisitStatus,
)
from lutarterial.registry.services._common import load_participant
from lutarterial.registry.services._dm import context_actor

__all__ = ["ScheduledVisit", "participant_schedule", "schedule_dashboard", "refresh_schedule_for",
           "schedule_rules_for"]

_FOLLOWED = (ParticipantStatus.ENROLLED.value, ParticipantStatus.TREATED.value)


@dataclass(frozen=True)
class ScheduledVisit:
    """One line of a participant's schedule on a given day."""

    key: str
    label: str
    kind: str
    number: int
    anchor: str | None
    target_date: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None
    visit_id: int | None
    visit_date: dt.date | None
    status: str  # VisitState value
    history: bool
    documented_by: str = ""  # "visit", "screening record" or ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(self).items()}


def _protocol_version(session: Session, p: Participant, enrol: Enrolment | None) -> str | None:
    sr = None
    if enrol is not None:
        sr = session.get(ScreeningResult, enrol.screening_result_id)
    if sr is None:
        sr = session.scalars(select(ScreeningResult).where(ScreeningResult.participant_id == p.id)
                             .order_by(ScreeningResult.id.desc()).limit(1)).first()
    return sr.protocol_version if sr is not None else None


def schedule_rules_for(version: str | None) -> tuple[ScheduleRule, ...]:
    from lutarterial.protocol.loader import available_versions, load_protocol

    if version is None or version not in available_versions():
        version = available_versions()[-1]
    return tuple(load_protocol(version).schedule)


def _visit_for(visits: list[Visit], rule: ScheduleRule) -> Visit | None:
    for v in visits:
        if v.kind == rule.kind and v.number == rule.number:
            return v
    return None


def _done_dates(rules: tuple[ScheduleRule, ...], visits: list[Visit]) -> dict[str, dt.date | None]:
    out: dict[str, dt.date | None] = {}
    for r in rules:
        v = _visit_for(visits, r)
        if v is not None and v.status == VisitStatus.DONE.value:
            out[r.key] = v.visit_date
    return out


def refresh_schedule_for(session: Session, participant_id: int) -> None:
    """Recompute one participant's planned dates (after a write; audited only when a date moves).

    A visit recorded as done outside its window opens a query (deduplicated).
    """
    p = session.get(Participant, participant_id)
    if p is None:
        return
    enrol = session.scalars(select(Enrolment).where(Enrolment.participant_id == p.id)).first()
    if enrol is None:
        return
    version = _protocol_version(session, p, enrol) or ""
    rules = schedule_rules_for(version)
    visits = list(session.scalars(select(Visit).where(Visit.participant_id == p.id)))
    plan = plan_schedule(rules, {"enrolment": enrol.enrolled_date}, _done_dates(rules, visits))
    existing = {e.visit_key: e for e in session.scalars(select(ScheduleEntry)
                                                         .where(ScheduleEntry.participant_id == p.id))}
    updates: list[tuple[ScheduleEntry | None, PlannedVisit]] = []
    for pv in plan:
        if pv.rule.history:
            continue
        e = existing.get(pv.rule.key)
        values = (pv.anchor_date, pv.target_date, pv.window_start, pv.window_end)
        if e is None or (e.anchor_date, e.target_date, e.window_start, e.window_end) != values:
            updates.append((e, pv))
    actor = context_actor(session)
    if updates:
        moved = ", ".join(pv.rule.key for e, pv in updates if e is not None)
        why = (f"schedule recomputed from protocol {version}: anchor changed ({moved})" if moved
               else f"schedule computed from protocol {version} at enrolment")
        with audited(session, actor, why):
            for e, pv in updates:
                if e is None:
                    session.add(ScheduleEntry(participant_id=p.id, visit_key=pv.rule.key, kind=pv.rule.kind,
                                              number=pv.rule.number, anchor=pv.rule.anchor,
                                              anchor_date=pv.anchor_date, target_date=pv.target_date,
                                              window_start=pv.window_start, window_end=pv.window_end,
                                              protocol_version=version))
                else:
                    e.anchor_date, e.target_date = pv.anchor_date, pv.target_date
                    e.window_start, e.window_end = pv.window_start, pv.window_end
                    e.protocol_version = version
    from lutarterial.registry.services.queries import open_check_query

    for pv in plan:
        v = _visit_for(visits, pv.rule)
        if v is None or v.status != VisitStatus.DONE.value or v.visit_date is None or pv.rule.history:
            continue
        state = visit_status(pv, today=v.visit_date, done_date=v.visit_date)
        if state is VisitState.DONE_OUT_OF_WINDOW:
            open_check_query(session, p, check_id="SCH-WINDOW", table_name="visits", row_id=v.id,
                             field="visit_date",
                             text=f"{pv.rule.label} done {v.visit_date} outside its window "
                                  f"{pv.window_start} .. {pv.window_end} (target {pv.target_date}, "
                                  f"day {pv.rule.target_day} after {pv.rule.anchor}): please confirm the date "
                                  "or document the deviation")


def _record_cycles(session: Session, p: Participant) -> list[dt.date]:
    sr = session.scalars(select(ScreeningResult).where(ScreeningResult.participant_id == p.id)
                         .order_by(ScreeningResult.id.desc()).limit(1)).first()
    if sr is None:
        return []
    dates = []
    for c in (sr.record or {}).get("lutathera_cycles") or []:
        if not isinstance(c, dict) or c.get("cancelled_for_toxicity") or str(c.get("route", "IV")).upper() != "IV":
            continue
        try:
            dates.append(dt.date.fromisoformat(str(c.get("date"))[:10]))
        except ValueError:
            continue
    return sorted(dates)


def participant_schedule(session: Session, actor: Actor, participant: int | str, *,
                         today: dt.date) -> list[ScheduledVisit]:
    """The participant's schedule on ``today``: planned dates, windows, documented dates, statuses.

    IV cycles 1-4 (history) are documented by a visit row, else by the screening record's
    LUTATHERA cycle list; screening by the first screening. Visits not done are not applicable
    once the participant is withdrawn, completed or not enrolled.
    """
    p = load_participant(session, actor, participant)
    enrol = session.scalars(select(Enrolment).where(Enrolment.participant_id == p.id)).first()
    rules = schedule_rules_for(_protocol_version(session, p, enrol))
    visits = list(session.scalars(select(Visit).where(Visit.participant_id == p.id)))
    anchors = {"enrolment": enrol.enrolled_date if enrol else None}
    plan = plan_schedule(rules, anchors, _done_dates(rules, visits))
    cycles = _record_cycles(session, p)
    first_screen = session.scalars(select(ScreeningResult.as_of).where(ScreeningResult.participant_id == p.id)
                                   .order_by(ScreeningResult.id).limit(1)).first()
    applicable = p.status in _FOLLOWED
    out: list[ScheduledVisit] = []
    for pv in plan:
        r = pv.rule
        v = _visit_for(visits, r)
        done = v.visit_date if v is not None and v.status == VisitStatus.DONE.value else None
        by = "visit" if done else ""
        if done is None and r.history:
            if r.kind == "iv_cycle" and len(cycles) >= r.number:
                done, by = cycles[r.number - 1], "screening record"
            elif r.kind == "screening" and first_screen is not None:
                done, by = first_screen, "screening"
        recorded = v.status if v is not None else None
        state = visit_status(pv, today=today, done_date=done, recorded_status=recorded,
                             applicable=applicable or (r.history and p.status != ParticipantStatus.WITHDRAWN.value))
        out.append(ScheduledVisit(r.key, r.label, r.kind, r.number, r.anchor, pv.target_date, pv.window_start,
                                  pv.window_end, v.id if v is not None else None, done, state.value, r.history, by))
    return out


def schedule_dashboard(session: Session, actor: Actor, *, today: dt.date, site_code: str | None = None,
                       horizon_days: int = 28) -> dict[str, list[dict[str, Any]]]:
    """Upcoming (window opens within ``horizon_days``, or open now) and overdue visits of the
    actor's sites, from the stored planned dates (three queries whatever the number of participants)."""
    stmt = (select(ScheduleEntry, Participant.trial_number, Site.code)
            .join(Participant, Participant.id == ScheduleEntry.participant_id)
            .join(Site, Site.id == Participant.site_id)
            .where(Participant.status.in_(_FOLLOWED), ScheduleEntry.window_end.is_not(None)))
    stmt = restrict_to_sites(stmt, actor, Participant.site_id)
    if site_code:
        stmt = stmt.where(Site.code == site_code.strip().upper())
    rows = session.execute(stmt.order_by(ScheduleEntry.window_start, Participant.trial_number)).all()
    pids = sorted({e.participant_id for e, _tn, _s in rows})
    visits: dict[tuple[int, str, int], Visit] = {}
    if pids:
        for v in session.scalars(select(Visit).where(Visit.participant_id.in_(pids))):
            visits[(v.participant_id, v.kind, v.number)] = v
    labels = {r.key: r.label for r in schedule_rules_for(None)}
    upcoming, overdue = [], []
    horizon = today + dt.timedelta(days=horizon_days)
    for e, tn, site in rows:
        v = visits.get((e.participant_id, e.kind, e.number))
        if v is not None and v.status in (VisitStatus.DONE.value, VisitStatus.MISSED.value,
                                          VisitStatus.CANCELLED.value):
            continue
        item = {"trial_number": tn, "site": site, "visit_key": e.visit_key, "label": labels.get(e.visit_key, e.visit_key),
                "target_date": e.target_date.isoformat() if e.target_date else None,
                "window_start": e.window_start.isoformat() if e.window_start else None,
                "window_end": e.window_end.isoformat() if e.window_end else None}
        assert e.window_end is not None and e.window_start is not None
        if today > e.window_end:
            overdue.append({**item, "status": VisitState.OVERDUE.value, "days_overdue": (today - e.window_end).days})
        elif e.window_start <= horizon:
            upcoming.append({**item, "status": VisitState.DUE.value, "days_to_target": (e.target_date - today).days
                             if e.target_date else None})
    return {"upcoming": upcoming, "overdue": overdue}
