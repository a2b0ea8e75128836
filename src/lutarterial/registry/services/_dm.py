"""Helpers shared by the data-management services: form targets, the audit actor of follow-ups."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.registry.access import SYSTEM_ACTOR, Actor
from lutarterial.registry.audit import _INFO_KEY, _jsonable
from lutarterial.registry.models import AUDITED_MODELS, DM_TABLES, Participant

__all__ = ["DATA_MODELS", "resolve_target", "context_actor", "row_values", "ts"]


def ts(value: Any) -> str | None:
    """A stored date-time as ISO 8601 UTC with ``Z`` (SQLite returns naive UTC values)."""
    return None if value is None else str(_jsonable(value))

#: Tables of participant data that queries, signatures, locks and SDV may point at.
DATA_MODELS: dict[str, Any] = {
    m.__tablename__: m for m in AUDITED_MODELS  # type: ignore[attr-defined]
    if m.__tablename__ not in DM_TABLES and m.__tablename__ != "analysis_jobs"  # type: ignore[attr-defined]
    and (m is Participant or "participant_id" in m.__table__.columns)  # type: ignore[attr-defined]
}


def row_values(row: Any) -> dict[str, Any]:
    """Column values of a row as canonical JSON-ready values."""
    return {c.key: _jsonable(getattr(row, c.key)) for c in row.__table__.columns}


def resolve_target(session: Session, p: Participant, table_name: str | None, row_id: Any,
                   field: str | None = None) -> tuple[str | None, int | None, str | None, Any]:
    """Validate a (table, row, field) target inside participant ``p``; returns it and the row.

    No table: the participant as a whole (a field then needs the table). The field may be a
    column or a dotted path under a JSON column (``record.patient.sex``).
    """
    if not table_name:
        if field:
            raise InvalidInputError("a field needs its form (table and row)")
        return None, None, None, None
    model = DATA_MODELS.get(table_name)
    if model is None:
        raise InvalidInputError(f"form {table_name!r} unknown; valid: {', '.join(sorted(DATA_MODELS))}")
    if table_name == "participants":
        row_id = p.id if row_id in (None, "") else row_id
    try:
        rid = int(row_id)
    except (TypeError, ValueError):
        raise InvalidInputError(f"row id {row_id!r} of {table_name} is not an integer") from None
    row = session.get(model, rid)
    owner = getattr(row, "id", None) if model is Participant else getattr(row, "participant_id", None)
    if row is None or owner != p.id:
        raise NotFoundError(f"{table_name} #{rid} is not a record of {p.trial_number}")
    field = (field or "").strip() or None
    if field is not None and field.split(".")[0] not in model.__table__.columns:
        raise InvalidInputError(f"{table_name} has no field {field!r}")
    return table_name, rid, field, row


def context_actor(session: Session) -> Actor:
    """The actor of the audit context in force (follow-ups are audited on its behalf)."""
    ctx = session.info.get(_INFO_KEY)
    return ctx.actor if ctx is not None else SYSTEM_ACTOR
