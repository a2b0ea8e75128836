"""Database-wide named locks for one-off jobs that must not run twice at once (issue 9):
``db upgrade`` and ``demo``. Two such processes on one database used to crash ("database is
locked") or duplicate the demo data; now the second waits for the first, then finds the work
done (both jobs are idempotent) and does nothing.

* PostgreSQL: a session-level ``pg_advisory_lock`` on a dedicated connection (released on exit,
  or by the server if the process dies).
* SQLite: an exclusive ``flock`` on ``<database file>.<name>.lock`` (released on exit or when the
  process dies; in-memory databases need none).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

__all__ = ["registry_lock"]


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"lutarterial:{name}".encode()).digest()[:7], "big")


@contextlib.contextmanager
def registry_lock(url: str, name: str, *, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the database-wide lock ``name`` for the block (waits for another holder)."""
    from lutarterial.registry.db import make_engine, normalise_url

    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        import fcntl

        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'"))
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _key(name)})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                conn.commit()
    finally:
        engine.dispose()
