"""Audit trail search for the paginated, filterable audit pages (issue 13).

Filters by participant, user, table and date range (UTC days, inclusive), newest first, with the
total count so pages can be numbered. Site scoping is the registry's (``restrict_to_sites``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError
from lutarterial.registry.access import Actor, restrict_to_sites
from lutarterial.registry.models import AuditEntry
from lutarterial.registry.services._common import as_date, load_participant, require_active_actor

__all__ = ["search_audit"]

MAX_PAGE = 500


def search_audit(session: Session, actor: Actor, *, participant: int | str | None = None, username: str | None = None,
                 table: str | None = None, date_from: dt.date | str | None = None,
                 date_to: dt.date | str | None = None, limit: int = 50,
                 offset: int = 0, count_cap: int | None = None) -> tuple[list[AuditEntry], int]:
    """(rows newest first, total matching) of the audit rows the actor may read.

    ``count_cap``: count at most ``count_cap + 1`` rows (a total above ``count_cap`` means "more
    than that"). Why: counting reads every matching index entry, and the trail only grows; a page
    needs the exact number only while it is small enough to page through (issue 13, fast).
    """
    require_active_actor(actor)
    stmt = restrict_to_sites(select(AuditEntry.id), actor, AuditEntry.site_id)
    if participant not in (None, ""):
        p = load_participant(session, actor, participant)  # type: ignore[arg-type]
        stmt = stmt.where(AuditEntry.participant_id == p.id)
    if username and username.strip():
        stmt = stmt.where(AuditEntry.actor_username == username.strip())
    if table and table.strip():
        stmt = stmt.where(AuditEntry.table_name == table.strip())
    start = as_date(date_from, "from date", required=False)
    end = as_date(date_to, "to date", required=False)
    if start and end and end < start:
        raise InvalidInputError(f"to date {end} is before from date {start}")
    if start:
        stmt = stmt.where(AuditEntry.occurred_at >= start.isoformat())
    if end:
        stmt = stmt.where(AuditEntry.occurred_at < (end + dt.timedelta(days=1)).isoformat())
    counted = stmt if count_cap is None else stmt.limit(max(0, int(count_cap)) + 1)
    total = int(session.scalar(select(func.count()).select_from(counted.subquery())) or 0)
    limit = max(1, min(int(limit), MAX_PAGE))
    ids = stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(max(0, int(offset))).subquery()
    rows = list(session.scalars(select(AuditEntry).join(ids, ids.c.id == AuditEntry.id)
                                .order_by(AuditEntry.id.desc())))
    return rows, total
