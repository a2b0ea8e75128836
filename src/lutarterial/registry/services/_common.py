"""Helpers shared by the service modules: lookups with access checks, value validation."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError, InvalidInputError, NotFoundError
from lutarterial.registry.access import Actor, require_site
from lutarterial.registry.models import Participant

__all__ = ["ParticipantHiddenError", "load_participant", "load_participant_row", "flush_like_orm",
           "participant_row_columns", "participant_row_extra", "as_date", "as_float", "as_optional_text",
           "require_active_actor"]


def require_active_actor(actor: Actor) -> None:
    if not actor.roles:
        raise AccessDeniedError(f"user {actor.username!r} has no role")


class ParticipantHiddenError(AccessDeniedError):
    """Another site's participant. Still an access denial for the registry (CLI exit 3), but the
    web answers it exactly like a missing one (404, same message: no trial number), so ids
    cannot be enumerated (issue 9)."""

    http_status = 404
    public_kind = "NotFoundError"


#: Built once (its cache key too): every participant page and API call looks one up (issue 13, fast).
_BY_TRIAL_NUMBER = select(Participant).where(Participant.trial_number == bindparam("tn"))


def _not_found_message(participant: int | str) -> str:
    return f"participant {participant!r} does not exist"


def load_participant(session: Session, actor: Actor, participant: int | str, *, for_update: bool = False) -> Participant:
    """The participant by database id or trial number, if ``actor`` may see its site.

    An unknown id raises :class:`NotFoundError`; a participant of another site raises
    :class:`ParticipantHiddenError` with the very same message (what the user typed, never the
    stored trial number), which the web answers as 404 like a missing one.
    """
    require_active_actor(actor)
    if isinstance(participant, Participant):
        obj: Participant | None = participant
    else:
        by_id, ref = _reference(participant)
        obj = session.get(Participant, ref) if by_id else session.scalars(_BY_TRIAL_NUMBER, {"tn": ref}).first()
    if obj is None:
        raise NotFoundError(_not_found_message(participant))
    _require_visible(actor, obj.site_id, obj.trial_number, participant)
    return obj


def _reference(participant: Any) -> tuple[bool, Any]:
    """``(True, id)`` for a database id (an int or digits), ``(False, TRIAL-NUMBER)`` for a trial number
    (stripped, upper case); anything else is refused."""
    if isinstance(participant, int) or (isinstance(participant, str) and participant.isdigit()):
        return True, int(participant)
    if isinstance(participant, str):
        return False, participant.strip().upper()
    raise InvalidInputError(f"participant reference {participant!r} must be an id or a trial number")


def _require_visible(actor: Actor, site_id: int, trial_number: str, asked: Any) -> None:
    try:
        require_site(actor, site_id, what=f"participant {trial_number}")
    except AccessDeniedError:
        raise ParticipantHiddenError(_not_found_message(asked)) from None


_P = Participant.__table__.c
_ROW_COLS = (_P.id, _P.trial_number, _P.site_id, _P.status, _P.sex, _P.year_of_birth, _P.created_at)
#: Prebuilt Core reads of one participant's own columns (no ORM object, no joined site), by id or by
#: trial number, each with the caller's extra columns (``extra``: name -> column expressions), built
#: once: the read-only pages and the JSON API look a participant up on every request (issue 13, fast).
_ROW_STMTS: dict[tuple[bool, str], Any] = {}
_EXTRAS: dict[str, tuple[Any, ...]] = {"": ()}


def participant_row_columns(name: str, columns: tuple[Any, ...]) -> str:
    """Register extra columns (e.g. labelled scalar subqueries correlated on ``participants.id``) that
    :func:`load_participant_row` ``(extra=name)`` reads in the same SELECT; returns ``name``."""
    _EXTRAS[name] = columns
    return name


def participant_row_extra(name: str) -> tuple[Any, ...]:
    """The columns registered as ``name`` (to build a combined set under another name)."""
    return _EXTRAS[name]


def _row_stmt(by_id: bool, extra: str) -> Any:
    key = (by_id, extra)
    stmt = _ROW_STMTS.get(key)
    if stmt is None:
        where = _P.id == bindparam("pid") if by_id else _P.trial_number == bindparam("tn")
        stmt = _ROW_STMTS[key] = select(*_ROW_COLS, *_EXTRAS[extra]).where(where)
    return stmt


def flush_like_orm(session: Session) -> None:
    """Flush pending changes before a Core read, as an ORM SELECT would (autoflush): a Core read on
    the session's connection then sees what this session has added or changed."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()


def load_participant_row(session: Session, actor: Actor, participant: int | str, *, extra: str = "") -> Any:
    """:func:`load_participant` for read-only use: the participant's columns as a Core row (attribute
    access: ``row.id``, ``row.trial_number``, ``row.site_id``, ``row.status``, ``row.sex``,
    ``row.year_of_birth``, ``row.created_at``, and the columns registered as ``extra`` with
    :func:`participant_row_columns`), with exactly the same lookups, access check and errors, and no
    ORM object (cheaper; nothing can be written through it)."""
    require_active_actor(actor)
    by_id, ref = _reference(participant)
    row = session.execute(_row_stmt(by_id, extra), {"pid" if by_id else "tn": ref}).first()
    if row is None:
        raise NotFoundError(_not_found_message(participant))
    _require_visible(actor, row.site_id, row.trial_number, participant)
    return row


def as_date(value: Any, name: str, *, required: bool = True, not_future: bool = False) -> dt.date | None:
    """A date from a ``date`` or ISO text; refuses datetimes' hidden time zones and bad text.

    Dates before 1900 are refused (issue 9: a collection date of year 1 was stored); with
    ``not_future`` also dates after tomorrow (UTC; one day of slack for time zones), for things
    that have happened (collection, onset, signature, assessment).
    """
    if value is None or value == "":
        if required:
            raise InvalidInputError(f"{name} is required (YYYY-MM-DD)")
        return None
    if isinstance(value, dt.datetime):
        raise InvalidInputError(f"{name} must be a date, not a date and time")
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise InvalidInputError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None
    from lutarterial.plausibility import check_date

    latest = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1) if not_future else None
    return check_date(name, day, not_after=latest, not_after_label="today (a date that has not happened yet)")


def as_float(value: Any, name: str, *, required: bool = True, minimum: float | None = None,
             maximum: float | None = None) -> float | None:
    if value is None or value == "":
        if required:
            raise InvalidInputError(f"{name} is required")
        return None
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} {value!r} is not a number") from None
    if not math.isfinite(out):
        raise InvalidInputError(f"{name} must be a finite number")
    if minimum is not None and out < minimum:
        raise InvalidInputError(f"{name} {out} is below the minimum {minimum}")
    if maximum is not None and out > maximum:
        raise InvalidInputError(f"{name} {out} is above the maximum {maximum}")
    return out


def as_optional_text(value: Any, name: str, *, max_length: int = 200) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) > max_length:
        raise InvalidInputError(f"{name} is longer than {max_length} characters")
    return text
