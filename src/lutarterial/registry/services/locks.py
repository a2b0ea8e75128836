"""Record locking (data manager) and source-data verification marks (monitor).

A lock on a participant refuses every write to its data; a lock on a form refuses changes to
that row. The refusal is :class:`RecordLockedError` (HTTP 423, CLI exit 2), raised by the
session guard (:mod:`lutarterial.registry.dm_guard`) whatever the write path. Unlocking needs a
reason (audited).

An SDV mark records that a monitor compared a form (or one field) with the source; it stores the
hash of the verified value and is cleared automatically when that value changes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.registry.access import Actor, Permission, require
from lutarterial.registry.audit import audited, canonical_json
from lutarterial.registry.dm_guard import RecordLockedError
from lutarterial.registry.models import RecordLock, SdvMark, utcnow
from lutarterial.registry.services._common import load_participant
from lutarterial.registry.services._dm import ts, resolve_target, row_values

__all__ = ["RecordLockedError", "lock_record", "unlock_record", "list_locks", "active_lock",
           "mark_verified", "list_sdv", "lock_dict", "sdv_dict"]


def lock_record(session: Session, actor: Actor, participant: int | str, *, reason: str,
                table_name: str | None = None, row_id: int | None = None) -> RecordLock:
    """Lock a participant (no ``table_name``) or one form (data manager, admin)."""
    require(actor, Permission.LOCK)
    p = load_participant(session, actor, participant)
    table_name, rid, _f, _row = resolve_target(session, p, table_name, row_id)
    for lk in session.scalars(select(RecordLock).where(RecordLock.participant_id == p.id,
                                                       RecordLock.unlocked_at.is_(None))):
        if lk.table_name is None or (lk.table_name == table_name and lk.row_id == rid):
            raise InvalidInputError(f"{p.trial_number} {'is' if lk.table_name is None else 'form is'} already locked "
                                    f"(lock {lk.id})")
    if not reason or not str(reason).strip():
        raise InvalidInputError("a reason for the lock is required (audit trail)")
    with audited(session, actor, f"lock {p.trial_number} {table_name + ' #' + str(rid) if table_name else ''}: {reason}"):
        lk = RecordLock(participant_id=p.id, table_name=table_name, row_id=rid, locked_by=actor.username,
                        lock_reason=str(reason).strip())
        session.add(lk)
    return lk


def unlock_record(session: Session, actor: Actor, lock_id: int, *, reason: str) -> RecordLock:
    """Lift a lock, with a reason (audited)."""
    require(actor, Permission.LOCK)
    lk = session.get(RecordLock, int(lock_id))
    if lk is None:
        raise NotFoundError(f"lock {lock_id} does not exist")
    load_participant(session, actor, lk.participant_id)
    if lk.unlocked_at is not None:
        raise InvalidInputError(f"lock {lk.id} was already lifted")
    with audited(session, actor, f"unlock: {reason}" if reason and str(reason).strip() else None):
        lk.unlocked_at, lk.unlocked_by, lk.unlock_reason = utcnow(), actor.username, str(reason).strip()
    return lk


def list_locks(session: Session, actor: Actor, participant: int | str, *, active_only: bool = False) -> list[RecordLock]:
    p = load_participant(session, actor, participant)
    stmt = select(RecordLock).where(RecordLock.participant_id == p.id)
    if active_only:
        stmt = stmt.where(RecordLock.unlocked_at.is_(None))
    return list(session.scalars(stmt.order_by(RecordLock.id)))


def active_lock(session: Session, actor: Actor, participant: int | str) -> RecordLock | None:
    """The participant-level lock in force, if any."""
    for lk in list_locks(session, actor, participant, active_only=True):
        if lk.table_name is None:
            return lk
    return None


def lock_dict(lk: RecordLock) -> dict[str, Any]:
    return {"id": lk.id, "table_name": lk.table_name, "row_id": lk.row_id, "locked_by": lk.locked_by,
            "locked_at": ts(lk.locked_at), "lock_reason": lk.lock_reason,
            "unlocked_by": lk.unlocked_by, "unlocked_at": ts(lk.unlocked_at),
            "unlock_reason": lk.unlock_reason, "active": lk.unlocked_at is None}


# --- SDV ----------------------------------------------------------------------------------------


def _value_of(row: Any, field: str | None) -> Any:
    values = row_values(row)
    if field is None:
        return values
    cur: Any = values
    for part in field.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def mark_verified(session: Session, actor: Actor, participant: int | str, *, table_name: str, row_id: int,
                  field: str | None = None) -> SdvMark:
    """Mark a form (or one field) source-verified (monitor, admin)."""
    require(actor, Permission.SDV)
    p = load_participant(session, actor, participant)
    if not table_name:
        raise InvalidInputError("source-data verification needs the form (table and row)")
    table_name_, rid, field, row = resolve_target(session, p, table_name, row_id, field)
    digest = hashlib.sha256(canonical_json(_value_of(row, field)).encode("utf-8")).hexdigest()
    with audited(session, actor, f"source data verified: {p.trial_number} {table_name_} #{rid}"
                                 f"{'.' + field if field else ''}"):
        mark = SdvMark(participant_id=p.id, table_name=table_name_, row_id=rid, field=field, value_hash=digest,
                       verified_by=actor.username)
        session.add(mark)
    return mark


def list_sdv(session: Session, actor: Actor, participant: int | str) -> list[SdvMark]:
    p = load_participant(session, actor, participant)
    return list(session.scalars(select(SdvMark).where(SdvMark.participant_id == p.id).order_by(SdvMark.id)))


def sdv_dict(m: SdvMark) -> dict[str, Any]:
    return {"id": m.id, "table_name": m.table_name, "row_id": m.row_id, "field": m.field,
            "verified_by": m.verified_by, "verified_at": ts(m.verified_at),
            "cleared_at": ts(m.cleared_at), "cleared_reason": m.cleared_reason,
            "active": m.cleared_at is None}
