"""Data-management guard on every registry write (issue 13): locks, signatures, SDV, follow-ups.

Installed, like the audit trail, on :class:`sqlalchemy.orm.Session` itself, so no write path can
go around it (web, CLI, demo, imports):

* **before each flush**: a change to a participant's data (any audited row that belongs to a
  participant, outside the data-management tables) is refused with :class:`RecordLockedError`
  (HTTP 423) when the participant, or that form, is locked; otherwise the electronic signatures
  that cover the changed data are voided and the SDV marks of the changed form/field cleared —
  in the same flush, so the void and the clearing are audited with the change that caused them;
* **after each outermost** :func:`~lutarterial.registry.audit.audited` **block**
  (:data:`~lutarterial.registry.audit.POST_WRITE_HOOKS`): the schedule of each touched
  participant is recomputed (audited when a planned date moves), a visit done outside its
  window opens a query, and the edit checks run; each finding opens a query (deduplicated).
  Nothing here ever blocks saving except a lock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, event, inspect, literal, select, union_all
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError
from lutarterial.registry.audit import POST_WRITE_HOOKS
from lutarterial.registry.models import (
    DM_TABLES,
    Audited,
    Participant,
    RecordLock,
    SdvMark,
    Signature,
    utcnow,
)

__all__ = ["RecordLockedError", "data_changes", "TOUCHED_KEY", "INSERTED_KEY"]

TOUCHED_KEY = "lutarterial.dm.touched"
#: (table, row id) of the participant-data rows this transaction inserted since the last follow-up:
#: no other transaction can see, let alone change, them before this one commits.
INSERTED_KEY = "lutarterial.dm.inserted"
#: Audited tables that are not participant data for locking/signing (job bookkeeping).
_NOT_DATA = DM_TABLES | {"analysis_jobs"}


class RecordLockedError(InvalidInputError):
    """A write to a locked participant or form: refused until a data manager unlocks it (HTTP 423)."""

    http_status = 423


def _changed_fields(obj: Any) -> set[str]:
    state = inspect(obj)
    return {a.key for a in state.mapper.column_attrs if state.attrs[a.key].history.has_changes()}


def data_changes(session: Session) -> list[tuple[str, Any, str, int | None, set[str]]]:
    """Pending changes of participant data: (action, object, table, participant id, changed fields)."""
    out: list[tuple[str, Any, str, int | None, set[str]]] = []
    for action, objs in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objs:
            if not isinstance(obj, Audited):
                continue
            table = obj.__tablename__  # type: ignore[attr-defined]
            if table in _NOT_DATA:
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            pid = obj.audit_participant_id
            if pid is None and not isinstance(obj, Participant):
                continue
            out.append((action, obj, table, pid, _changed_fields(obj) if action == "update" else set()))
    return out


def _row_id(obj: Any) -> int | None:
    value = getattr(obj, "id", None)
    return int(value) if isinstance(value, int) else None


def _covers(table_name: str | None, row_id: int | None, table: str, obj: Any) -> bool:
    """Whether a lock/signature on (table_name, row_id) covers this row (None table: whole participant)."""
    return table_name is None or (table_name == table and row_id == _row_id(obj))


def _active_kinds_statement() -> Any:
    lk, sig, sdv = RecordLock.__table__, Signature.__table__, SdvMark.__table__
    pids = bindparam("pids", expanding=True)

    def one(kind: str, table: Any, in_force: Any) -> Any:
        return select(literal(kind).label("kind")).where(table.c.participant_id.in_(pids), in_force).limit(1)

    parts = [one("lock", lk, lk.c.unlocked_at.is_(None)), one("signature", sig, sig.c.voided_at.is_(None)),
             one("sdv", sdv, sdv.c.cleared_at.is_(None))]
    return union_all(*(select(p.subquery().c.kind) for p in parts))


#: Which of lock / signature / SDV mark is in force for any of ``:pids`` (at most one row per kind).
_ACTIVE_KINDS = _active_kinds_statement()


@event.listens_for(Session, "before_flush")
def _guard(session: Session, flush_context: Any, instances: Any) -> None:
    changes = data_changes(session)
    if not changes:
        return
    pids = sorted({pid for _a, _o, _t, pid, _f in changes if pid is not None})
    if not pids:
        return
    with session.no_autoflush:
        # one Core SELECT says which of the three kinds are in force for these participants (most
        # writes find none): the ORM rows are read only for those (issue 13, fast: three ORM SELECTs
        # on every save)
        present = {kind for (kind,) in session.execute(_ACTIVE_KINDS, {"pids": pids})}
        if not present:
            return
        locks = list(session.scalars(select(RecordLock).where(RecordLock.participant_id.in_(pids),
                                                              RecordLock.unlocked_at.is_(None)))) \
            if "lock" in present else []
        for action, obj, table, pid, _fields in changes:
            for lock in locks:
                if lock.participant_id != pid:
                    continue
                if lock.table_name is None or (action != "create" and _covers(lock.table_name, lock.row_id, table, obj)):
                    p = session.get(Participant, pid)
                    what = (f"participant {p.trial_number if p else pid}" if lock.table_name is None
                            else f"{lock.table_name} #{lock.row_id} of {p.trial_number if p else pid}")
                    raise RecordLockedError(
                        f"{what} is locked (by {lock.locked_by} on {lock.locked_at:%Y-%m-%d}: {lock.lock_reason}); "
                        "nothing was saved. A data manager must unlock it, with a reason, first")
        now = utcnow()
        sigs = list(session.scalars(select(Signature).where(Signature.participant_id.in_(pids),
                                                            Signature.voided_at.is_(None)))) \
            if "signature" in present else []
        for sig in sigs:
            for action, obj, table, pid, fields in changes:
                if pid == sig.participant_id and _covers(sig.table_name, sig.row_id, table, obj):
                    sig.voided_at = now
                    sig.void_reason = (f"signed data changed: {action} of {table} #{_row_id(obj) or 'new'}"
                                       + (f" ({', '.join(sorted(fields))})" if fields else ""))
                    break
        marks = list(session.scalars(select(SdvMark).where(SdvMark.participant_id.in_(pids),
                                                           SdvMark.cleared_at.is_(None)))) \
            if "sdv" in present else []
        for mark in marks:
            for action, obj, table, pid, fields in changes:
                if action == "create" or table != mark.table_name or _row_id(obj) != mark.row_id:
                    continue
                top = (mark.field or "").split(".")[0]
                if mark.field is None or action == "delete" or top in fields:
                    mark.cleared_at = now
                    mark.cleared_reason = f"value changed ({action}{': ' + ', '.join(sorted(fields)) if fields else ''})"
                    break


#: Tables the schedule of events is computed from (enrolment date, protocol version of the
#: screening, visits done); a write that touches none of them cannot move a planned date.
SCHEDULE_INPUTS = frozenset({"participants", "enrolments", "screening_results", "visits"})


@event.listens_for(Session, "after_flush")
def _remember_touched(session: Session, flush_context: Any) -> None:
    changes = data_changes(session)
    if not changes:
        return
    # participant id -> table -> row ids written (ids exist after the flush)
    touched: dict[int, dict[str, set[int]]] = session.info.setdefault(TOUCHED_KEY, {})
    inserted: set[tuple[str, int]] = session.info.setdefault(INSERTED_KEY, set())
    for action, obj, table, pid, _fields in changes:
        if isinstance(obj, Participant) and obj.id is not None:
            pid = int(obj.id)
        if pid is None:
            continue
        rows = touched.setdefault(int(pid), {}).setdefault(table, set())
        rid = _row_id(obj)
        if rid is not None:
            rows.add(rid)
            if action == "create":
                inserted.add((table, rid))


def _follow_up(session: Session) -> None:
    """POST_WRITE_HOOK: schedule recomputation, out-of-window queries and edit checks, each only
    where the write could change its result (issue 13, fast: a laboratory value cannot move a
    planned visit, and only the rows written need their row-level checks)."""
    touched: dict[int, dict[str, set[int]]] = session.info.pop(TOUCHED_KEY, {})
    try:
        if not touched:
            return
        from lutarterial.registry.services.queries import run_edit_checks_for
        from lutarterial.registry.services.schedule import refresh_schedule_for

        for pid in sorted(touched):
            if SCHEDULE_INPUTS & touched[pid].keys():
                refresh_schedule_for(session, pid)
            run_edit_checks_for(session, pid, touched=touched[pid])
        # what the follow-ups wrote are DM rows: they touch no participant data, so no loop
        session.info.pop(TOUCHED_KEY, None)
    finally:
        session.info.pop(INSERTED_KEY, None)


POST_WRITE_HOOKS.append(_follow_up)


def today_utc() -> dt.date:
    """Today's date in UTC: the one clock read of data management (the edge)."""
    return dt.datetime.now(dt.timezone.utc).date()
