"""Server-side sessions (issue 9): a sign-in is a row; the cookie carries only a random token.

Why: a stateless signed cookie cannot be revoked, so a cookie copied before a logout, a password
change or a deactivation kept working. Now:

* :func:`start_session` makes a 256-bit random token and stores only its SHA-256 (a copy of the
  database gives no usable cookie), with the client address and user agent.
* :func:`session_user_id` is the per-request check: one SELECT by the unique ``token_hash``
  index. A row with ``ended_at`` set, idle longer than ``idle_s`` or older than ``max_age_s`` is
  refused (and ended with that reason, so the admin list shows why).
* :func:`end_user_sessions` is called by the registry services on password change,
  deactivation and role / site-membership change (web and CLI alike), and by logout and the
  admin commands; it takes effect at the next request of every worker process.

The rows are not audited (they change on every sign-in); ends carry ``ended_reason``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from lutarterial.errors import NotFoundError
from lutarterial.registry.access import Actor, Permission, require
from lutarterial.registry.models import User, UserSession

__all__ = ["SessionInfo", "hash_token", "start_session", "check_session", "apply_update", "session_user_id", "end_session", "end_user_sessions",
           "end_session_by_id", "list_sessions", "TOUCH_EVERY_S"]

#: ``last_seen_at`` is written at most this often per session (an UPDATE per request would make
#: every read a write); the idle timeout is therefore exact to within this many seconds.
TOUCH_EVERY_S = 60


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(v: dt.datetime) -> dt.datetime:
    return v if v.tzinfo is not None else v.replace(tzinfo=dt.timezone.utc)


def hash_token(token: str) -> str:
    """SHA-256 hex of a session token (what the table stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """One session as the admin list shows it (never the token)."""

    id: int
    user_id: int
    username: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    ended_at: dt.datetime | None
    ended_reason: str | None
    client_addr: str
    user_agent: str

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def to_dict(self) -> dict[str, Any]:
        def iso(v: dt.datetime | None) -> str | None:
            return None if v is None else _aware(v).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        return {"id": self.id, "user_id": self.user_id, "username": self.username, "active": self.active,
                "created_at": iso(self.created_at), "last_seen_at": iso(self.last_seen_at),
                "ended_at": iso(self.ended_at), "ended_reason": self.ended_reason,
                "client_addr": self.client_addr, "user_agent": self.user_agent}


def start_session(session: Session, user_id: int, *, client_addr: str = "", user_agent: str = "",
                  now: dt.datetime | None = None) -> str:
    """Create a session row for ``user_id``; returns the token to put in the cookie."""
    now = now or _now()
    token = secrets.token_urlsafe(32)
    session.add(UserSession(token_hash=hash_token(token), user_id=int(user_id), created_at=now, last_seen_at=now,
                            client_addr=str(client_addr or "")[:64], user_agent=str(user_agent or "")[:300]))
    session.flush()
    return token


_t = UserSession.__table__
#: Built once (its cache key too): this SELECT runs on every request (issue 13, fast).
_BY_TOKEN_HASH = (select(_t.c.id, _t.c.user_id, _t.c.created_at, _t.c.last_seen_at, _t.c.ended_at)
                  .where(_t.c.token_hash == bindparam("h")))


def check_session(session: Session | Connection, token: str, *, idle_s: float, max_age_s: float,
                  now: dt.datetime | None = None) -> tuple[int | None, int | None, dict[str, Any] | None]:
    """``(user_id, session_id, pending_update)`` for ``token``: one indexed SELECT, no write.

    ``user_id`` is ``None`` for an unknown, ended or timed-out session. ``pending_update`` is the
    column values to write with :func:`apply_update` (a timed-out session is ended with the
    reason; a live one has ``last_seen_at`` refreshed at most every :data:`TOUCH_EVERY_S`), so the
    caller may do the read in a read-only transaction and the rare write in a short write one.
    """
    if not token or not isinstance(token, str) or len(token) > 200:
        return None, None, None
    now = now or _now()
    row = session.execute(_BY_TOKEN_HASH, {"h": hash_token(token)}).first()
    if row is None or row.ended_at is not None:
        return None, None, None
    created, seen = _aware(row.created_at), _aware(row.last_seen_at)
    if (now - created).total_seconds() > max_age_s:
        return None, int(row.id), {"ended_at": now, "ended_reason": "absolute timeout"}
    if (now - seen).total_seconds() > idle_s:
        return None, int(row.id), {"ended_at": now, "ended_reason": "idle timeout"}
    if (now - seen).total_seconds() > TOUCH_EVERY_S:
        return int(row.user_id), int(row.id), {"last_seen_at": now}
    return int(row.user_id), int(row.id), None


def apply_update(session: Session, session_id: int, values: dict[str, Any]) -> None:
    """Write what :func:`check_session` asked for (never revives an ended session)."""
    t = UserSession.__table__
    session.execute(update(t).where(t.c.id == int(session_id), t.c.ended_at.is_(None)).values(**values))


def session_user_id(session: Session, token: str, *, idle_s: float, max_age_s: float,
                    now: dt.datetime | None = None) -> int | None:
    """:func:`check_session` plus :func:`apply_update` in one (writable) session."""
    uid, sid, pending = check_session(session, token, idle_s=idle_s, max_age_s=max_age_s, now=now)
    if sid is not None and pending:
        apply_update(session, sid, pending)
    return uid


def end_session(session: Session, token: str, *, reason: str = "logout", now: dt.datetime | None = None) -> bool:
    """End the session of ``token`` (logout); True when a live session was ended."""
    t = UserSession.__table__
    res = session.execute(update(t).where(t.c.token_hash == hash_token(token), t.c.ended_at.is_(None))
                          .values(ended_at=now or _now(), ended_reason=reason[:200]))
    return bool(res.rowcount)


def end_user_sessions(session: Session, user_id: int, *, reason: str, now: dt.datetime | None = None) -> int:
    """End every live session of ``user_id``; returns how many were ended."""
    t = UserSession.__table__
    res = session.execute(update(t).where(t.c.user_id == int(user_id), t.c.ended_at.is_(None))
                          .values(ended_at=now or _now(), ended_reason=reason[:200]))
    return int(res.rowcount or 0)


def end_session_by_id(session: Session, actor: Actor, session_id: int, *, reason: str) -> bool:
    """An admin ends one session by its id (from :func:`list_sessions`)."""
    require(actor, Permission.USER_MANAGE)
    t = UserSession.__table__
    if session.execute(select(t.c.id).where(t.c.id == int(session_id))).first() is None:
        raise NotFoundError(f"session {session_id} does not exist")
    res = session.execute(update(t).where(t.c.id == int(session_id), t.c.ended_at.is_(None))
                          .values(ended_at=_now(), ended_reason=f"ended by {actor.username}: {reason}"[:200]))
    return bool(res.rowcount)


def list_sessions(session: Session, actor: Actor, *, active_only: bool = True, username: str | None = None,
                  limit: int = 500) -> list[SessionInfo]:
    """Sessions, newest first (admins only)."""
    require(actor, Permission.USER_MANAGE)
    stmt = (select(UserSession, User.username).join(User, User.id == UserSession.user_id)
            .order_by(UserSession.id.desc()).limit(limit))
    if active_only:
        stmt = stmt.where(UserSession.ended_at.is_(None))
    if username:
        stmt = stmt.where(User.username == username.strip().lower())
    return [SessionInfo(id=s.id, user_id=s.user_id, username=name, created_at=s.created_at,
                        last_seen_at=s.last_seen_at, ended_at=s.ended_at, ended_reason=s.ended_reason,
                        client_addr=s.client_addr, user_agent=s.user_agent)
            for s, name in session.execute(stmt)]
