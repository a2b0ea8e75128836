"""Sign-in throttling that cannot be used to lock other people out (issue 9).

The old rule (5 failures from anywhere lock the account for 15 minutes) let anyone lock any
account, the admin's included, with five anonymous guesses. The rules now, all read from the
``login_attempts`` table so every worker process agrees and a clear is seen everywhere at once:

1. **Per (account, client address) back-off.** After :data:`PAIR_FREE_FAILURES` consecutive
   failures of one username from one address, the next attempt from that pair must wait
   ``2 ** (n - PAIR_FREE_FAILURES)`` seconds after the last failure, capped at
   :data:`PAIR_MAX_WAIT_S`. Other addresses are not affected.
2. **Per client limit.** One address may fail at most :data:`CLIENT_MAX_FAILURES` times (all
   usernames together) in :data:`WINDOW`; then it waits until the oldest falls out of the window.
3. **Account lock** only when the failures on one username within :data:`WINDOW` come from at
   least :data:`LOCK_SOURCES` distinct addresses and number at least :data:`LOCK_FAILURES`
   (a distributed guessing attack), or by an administrator's decision (deactivation). The lock
   (``users.locked_until``, audited) lasts :data:`LOCKOUT`.
4. **Clearing.** Re-activating or unlocking a user deletes that username's recorded failures and
   lifts ``locked_until`` in the database: every process sees it at the next attempt.

Sources: OWASP ASVS 4.0 §2.2.1 (anti-automation without enabling denial of service), NIST SP
800-63B §5.2.2 (rate limiting; at most 100 consecutive failures per account).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lutarterial.errors import LutarterialError
from lutarterial.registry.models import LoginAttempt

__all__ = ["ThrottledError", "WINDOW", "PAIR_FREE_FAILURES", "PAIR_MAX_WAIT_S", "CLIENT_MAX_FAILURES",
           "LOCK_SOURCES", "LOCK_FAILURES", "LOCKOUT", "check_allowed", "record_attempt", "should_lock",
           "clear_failures"]

WINDOW = dt.timedelta(minutes=15)
PAIR_FREE_FAILURES = 3
PAIR_MAX_WAIT_S = 300
CLIENT_MAX_FAILURES = 30
LOCK_SOURCES = 3
LOCK_FAILURES = 10
LOCKOUT = dt.timedelta(minutes=15)


class ThrottledError(LutarterialError):
    """Too many failed sign-ins from this address (HTTP 429); says how long to wait."""

    http_status = 429


def _aware(v: dt.datetime) -> dt.datetime:
    return v if v.tzinfo is not None else v.replace(tzinfo=dt.timezone.utc)


def _pair_failures(session: Session, username: str, client: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Consecutive failures of (username, client) since its last success, within the window."""
    t = LoginAttempt.__table__
    last_ok = session.execute(select(func.max(t.c.occurred_at)).where(
        t.c.username == username, t.c.client_addr == client, t.c.success.is_(True))).scalar()
    start = since if last_ok is None or _aware(last_ok) < since else _aware(last_ok)
    n, last = session.execute(select(func.count(), func.max(t.c.occurred_at)).where(
        t.c.username == username, t.c.client_addr == client, t.c.success.is_(False),
        t.c.occurred_at > start)).one()
    return int(n or 0), (None if last is None else _aware(last))


def check_allowed(session: Session, username: str, client: str, *, now: dt.datetime) -> None:
    """Raise :class:`ThrottledError` when this (username, client) must wait; else return."""
    username, client = username.strip().lower()[:120], (client or "?")[:64]
    since = now - WINDOW
    t = LoginAttempt.__table__
    n_client, oldest = session.execute(select(func.count(), func.min(t.c.occurred_at)).where(
        t.c.client_addr == client, t.c.success.is_(False), t.c.occurred_at > since)).one()
    if int(n_client or 0) >= CLIENT_MAX_FAILURES and oldest is not None:
        wait = int((_aware(oldest) + WINDOW - now).total_seconds()) + 1
        raise ThrottledError(f"too many failed sign-ins from this address; try again in {max(wait, 1)} s")
    n, last = _pair_failures(session, username, client, since)
    if n >= PAIR_FREE_FAILURES and last is not None:
        need = min(2 ** (n - PAIR_FREE_FAILURES), PAIR_MAX_WAIT_S)
        left = need - (now - last).total_seconds()
        if left > 0:
            raise ThrottledError(f"too many failed sign-ins for {username!r} from this address; "
                                 f"try again in {int(left) + 1} s")


#: Attempts older than this are deleted (for the username being tried) so the table stays small.
KEEP = dt.timedelta(days=2)


def record_attempt(session: Session, username: str, client: str, *, success: bool, now: dt.datetime) -> None:
    name = username.strip().lower()[:120]
    t = LoginAttempt.__table__
    session.execute(delete(t).where(t.c.username == name, t.c.occurred_at < now - KEEP))
    session.add(LoginAttempt(username=name, client_addr=(client or "?")[:64], occurred_at=now, success=bool(success)))
    session.flush()


def should_lock(session: Session, username: str, *, now: dt.datetime) -> bool:
    """Whether the failures on ``username`` in the window come from enough distinct sources."""
    t = LoginAttempt.__table__
    n, sources = session.execute(select(func.count(), func.count(func.distinct(t.c.client_addr))).where(
        t.c.username == username.strip().lower(), t.c.success.is_(False),
        t.c.occurred_at > now - WINDOW)).one()
    return int(n or 0) >= LOCK_FAILURES and int(sources or 0) >= LOCK_SOURCES


def clear_failures(session: Session, username: str) -> int:
    """Forget the recorded failures of ``username`` (unlock / re-activation); every process sees it."""
    t = LoginAttempt.__table__
    res = session.execute(delete(t).where(t.c.username == username.strip().lower(), t.c.success.is_(False)))
    return int(res.rowcount or 0)
