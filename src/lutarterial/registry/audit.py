"""Audit trail: who changed what, when (UTC), from which value to which, and why.

How it is made impossible to change data without an audit row:

* Every ORM flush of an :class:`~lutarterial.registry.models.Audited` object (insert, update,
  delete) is inspected by session event listeners installed on :class:`sqlalchemy.orm.Session`
  itself, so they apply to *every* session in the process, including ones the web layer creates.
* A flush with such changes is refused unless it runs inside :func:`audited` (an actor and a
  non-empty reason): :class:`~lutarterial.errors.InvalidInputError`.
* Bulk ORM ``insert()/update()/delete()`` statements on audited tables are refused outright,
  since they bypass per-row inspection.
* Audit rows are written in the same transaction as the change (``after_flush``), so the
  change and its audit row commit or roll back together.
* The audit table is append-only at the database level (triggers raise on UPDATE/DELETE on both
  PostgreSQL and SQLite) and hash-chained: ``row_hash = sha256(prev_hash + canonical JSON of the
  row)``. :func:`verify_audit_chain` recomputes the chain and reports the first broken row, so
  an edit, a deletion or a reordering made with raw SQL (after dropping the triggers) is found.

Raw SQL on the database connection bypasses the ORM; database privileges are the defence
there (the application role needs no UPDATE/DELETE on ``audit_entries``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import TextClause

from lutarterial.errors import InvalidInputError
from lutarterial.registry.access import Actor
from lutarterial.registry.models import AuditEntry, Audited, Participant, Site

__all__ = [
    "GENESIS_HASH",
    "AuditContext",
    "AuditChainReport",
    "audited",
    "canonical_json",
    "compute_row_hash",
    "verify_audit_chain",
    "install_append_only_triggers",
    "drop_append_only_triggers",
    "REDACTED",
]

GENESIS_HASH = "0" * 64
REDACTED = "<redacted>"
_INFO_KEY = "lutarterial.audit_context"
_MAX_REASON = 2000


@dataclass(frozen=True)
class AuditContext:
    """Actor and reason applying to every change flushed while the context is active."""

    actor: Actor
    reason: str


#: Called after the flush that ends an outermost :func:`audited` block, still inside it (so what
#: they change is audited with the same actor and reason, in the same transaction): the
#: data-management follow-ups (schedule recomputation, edit checks; issue 13,
#: :mod:`lutarterial.registry.dm_guard`). Each takes the session.
POST_WRITE_HOOKS: list[Callable[[Session], None]] = []


@contextlib.contextmanager
def audited(session: Session, actor: Actor, reason: str | None) -> Iterator[Session]:
    """Allow changes in ``session`` on behalf of ``actor`` for ``reason``; flushes on exit.

    A missing or blank reason is refused (:class:`InvalidInputError`) before anything changes.
    Nested use keeps the outer context's actor but the innermost reason.
    """
    if reason is None or not str(reason).strip():
        raise InvalidInputError("a reason for the change is required (audit trail)")
    reason = str(reason).strip()
    if len(reason) > _MAX_REASON:
        raise InvalidInputError(f"reason is too long ({len(reason)} > {_MAX_REASON} characters)")
    previous = session.info.get(_INFO_KEY)
    session.info[_INFO_KEY] = AuditContext(actor, reason)
    try:
        yield session
        try:
            session.flush()
            if previous is None and POST_WRITE_HOOKS:
                for hook in POST_WRITE_HOOKS:
                    hook(session)
                session.flush()
        except IntegrityError as exc:
            raise InvalidInputError(
                f"the change conflicts with existing data (duplicate or missing reference): {exc.orig}"
            ) from None
    finally:
        if previous is None:
            session.info.pop(_INFO_KEY, None)
        else:
            session.info[_INFO_KEY] = previous


# --- canonical values -------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces, UTF-8 text: the byte-stable form that is hashed."""
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _row_payload(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "occurred_at", "actor_user_id", "actor_username", "actor_roles", "site_id",
            "table_name", "row_id", "participant_id", "action", "old_values", "new_values", "reason")
    out = {k: row.get(k) for k in keys}
    if row.get("hash_alg"):  # keyed entries also bind their marker (no silent downgrade)
        out["hash_alg"] = row["hash_alg"]
    return out


#: ``hash_alg`` of keyed entries (issue 9); ``None`` marks the plain SHA-256 entries written before.
KEYED_ALG = "hmac-sha256"


def compute_row_hash(prev_hash: str, row: dict[str, Any], key: bytes | None = None) -> str:
    """Hash of ``prev_hash`` followed by the canonical JSON of the row's content: HMAC-SHA256
    under ``key`` for keyed entries (``hash_alg == "hmac-sha256"``), plain SHA-256 for the
    entries written before the keyed chain (``hash_alg`` NULL)."""
    data = (prev_hash + canonical_json(_row_payload(row))).encode("utf-8")
    if row.get("hash_alg") == KEYED_ALG:
        if key is None:
            raise InvalidInputError("the audit key is needed to compute a keyed audit hash")
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def redacted_digest(value: Any, key: bytes) -> str:
    """What the audit trail stores for a redacted column (identity, password hash): a keyed
    digest of the value, so reconciliation can check it without the trail revealing it."""
    return "hmac:" + hmac.new(key, b"redacted\0" + canonical_json(value).encode("utf-8"),
                              hashlib.sha256).hexdigest()


def key_for_session(session: Session, *, create: bool = True) -> bytes | None:
    """The audit key of the database this session is bound to (:mod:`lutarterial.registry.audit_key`)."""
    from lutarterial.registry.audit_key import audit_key

    return audit_key(session.get_bind().url.render_as_string(hide_password=False), create=create)


def _utc_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- session guard and writer -----------------------------------------------------------------


def _redact(value: Any, key: bytes | None) -> Any:
    if value is None:
        return None
    return REDACTED if key is None else redacted_digest(_jsonable(value), key)


def _column_values(obj: Any, key: bytes | None = None) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    redact = set(getattr(obj, "__audit_redact__", ()))
    out: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        value = getattr(obj, attr.key)
        out[attr.key] = _redact(value, key) if attr.key in redact else _jsonable(value)
    return out


def _changes(obj: Any, key: bytes | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    redact = set(getattr(obj, "__audit_redact__", ()))
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if not hist.has_changes():
            continue
        before = hist.deleted[0] if hist.deleted else None
        after = hist.added[0] if hist.added else None
        if _jsonable(before) == _jsonable(after):
            continue
        if attr.key in redact:
            old[attr.key] = _redact(before, key)
            new[attr.key] = _redact(after, key)
        else:
            old[attr.key] = _jsonable(before)
            new[attr.key] = _jsonable(after)
    return old, new


def _pending_changes(session: Session) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for obj in session.new:
        if isinstance(obj, Audited):
            out.append(("create", obj))
    for obj in session.dirty:
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            out.append(("update", obj))
    for obj in session.deleted:
        if isinstance(obj, Audited):
            out.append(("delete", obj))
    return out


@event.listens_for(Session, "before_flush")
def _refuse_unaudited(session: Session, flush_context: Any, instances: Any) -> None:
    if not _pending_changes(session):
        return
    if session.info.get(_INFO_KEY) is None:
        raise InvalidInputError(
            "change refused: registry data can only be changed through the registry services, "
            "with an actor and a reason (audit trail)"
        )
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # Serialise audited writers *before* their data rows are written: a transaction that
        # extends the chain must not wait on another's uncommitted rows while holding the chain
        # (no deadlock), and two transactions never extend the same head. Released at commit.
        conn.execute(text("SELECT pg_advisory_xact_lock(7468221066)"))
        flush_context.attributes[_LOCKED_IN_FLUSH] = True


#: Set on a flush (its UOWTransaction) whose before_flush took the writers' lock: the chain head read
#: in the same flush's after_flush needs no second lock call (one round trip less per save).
_LOCKED_IN_FLUSH = "lutarterial.audit.writer_lock"


def lock_writers(session: Session) -> None:
    """Take the audited writers' lock now, at the top level of the transaction (issue 9).

    PostgreSQL: the transaction-scoped advisory lock that :func:`_refuse_unaudited` takes at the
    first audited flush; taking it before reading "the next number" (a trial number, a chain
    position) makes read-then-insert race-free under READ COMMITTED, and taking it outside any
    savepoint keeps it (a lock taken inside a savepoint that rolls back is released with it).
    SQLite: write sessions already begin with ``BEGIN IMMEDIATE`` (one writer at a time).
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7468221066)"))


_TEXT_DML = re.compile(r"^\s*(?:WITH\b.*?\)\s*)?(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+\"?(\w+)",
                       re.IGNORECASE | re.DOTALL)


def _registry_tables() -> frozenset[str]:
    from lutarterial.registry.models import AUDITED_MODELS

    return frozenset({m.__tablename__ for m in AUDITED_MODELS} | {AuditEntry.__tablename__})


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_dml(state: ORMExecuteState) -> None:
    if isinstance(state.statement, TextClause):
        match = _TEXT_DML.match(state.statement.text)
        if match and match.group(2).lower() in _registry_tables():
            raise InvalidInputError(f"raw SQL {match.group(1).split()[0].upper()} on {match.group(2)} refused: "
                                    "use the registry services (audit trail)")
        return
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    for mapper in state.all_mappers:
        if issubclass(mapper.class_, (Audited, AuditEntry)):
            raise InvalidInputError(
                f"bulk {('insert', 'update', 'delete')[[state.is_insert, state.is_update, state.is_delete].index(True)]}"
                f" on {mapper.class_.__tablename__} refused: use the registry services (audit trail)"
            )


def _site_of(session: Session, obj: Any, participant_id: int | None, cache: dict[int, int | None]) -> int | None:
    if isinstance(obj, Site):
        return obj.id
    if isinstance(obj, Participant):
        return obj.site_id
    if participant_id is None:
        return None
    if participant_id not in cache:
        loaded = session.identity_map.get(identity_key(Participant, participant_id))
        if loaded is not None and "site_id" in loaded.__dict__:  # in this session, not expired: no SELECT
            cache[participant_id] = loaded.site_id
            return cache[participant_id]
        cache[participant_id] = session.connection().execute(
            select(Participant.__table__.c.site_id).where(Participant.__table__.c.id == participant_id)
        ).scalar_one_or_none()
    return cache[participant_id]


def _chain_head(session: Session, flush_context: Any = None) -> tuple[int, str]:
    conn = session.connection()
    held = flush_context is not None and flush_context.attributes.get(_LOCKED_IN_FLUSH)
    if conn.dialect.name == "postgresql" and not held:  # re-entrant; taken by this flush's before_flush
        conn.execute(text("SELECT pg_advisory_xact_lock(7468221066)"))
    table = AuditEntry.__table__
    last = conn.execute(select(table.c.id, table.c.row_hash).order_by(table.c.id.desc()).limit(1)).first()
    return (0, GENESIS_HASH) if last is None else (int(last[0]), str(last[1]))


@event.listens_for(Session, "after_flush")
def _write_audit_rows(session: Session, flush_context: Any) -> None:
    changes = _pending_changes(session)
    if not changes:
        return
    ctx: AuditContext | None = session.info.get(_INFO_KEY)
    if ctx is None:  # pragma: no cover - before_flush already refused
        raise InvalidInputError("change refused: no audit context")
    stamp = _utc_stamp()
    key = key_for_session(session)
    last_id, prev_hash = _chain_head(session, flush_context)
    rows: list[dict[str, Any]] = []
    site_cache: dict[int, int | None] = {}
    for action, obj in changes:
        if action == "create":
            old, new = None, _column_values(obj, key)
        elif action == "update":
            old, new = _changes(obj, key)
            if not new:
                continue
        else:
            old, new = _column_values(obj, key), None
        participant_id = obj.audit_participant_id
        pk = inspect(obj).mapper.primary_key_from_instance(obj)
        row = {
            "id": last_id + 1,
            "occurred_at": stamp,
            "actor_user_id": ctx.actor.user_id,
            "actor_username": ctx.actor.username,
            "actor_roles": ctx.actor.roles_text(),
            "site_id": _site_of(session, obj, participant_id, site_cache),
            "table_name": obj.__tablename__,
            "row_id": "-".join(str(v) for v in pk if v is not None),
            "participant_id": participant_id,
            "action": action,
            "old_values": None if old is None else canonical_json(old),
            "new_values": None if new is None else canonical_json(new),
            "reason": ctx.reason,
        }
        row["hash_alg"] = KEYED_ALG
        row["prev_hash"] = prev_hash
        row["row_hash"] = prev_hash = compute_row_hash(prev_hash, row, key)
        last_id += 1
        rows.append(row)
    if rows:
        session.connection().execute(AuditEntry.__table__.insert(), rows)
        every = _checkpoint_every()
        if every and (last_id // every) > ((last_id - len(rows)) // every):
            session.info[_CHECKPOINT_KEY] = (last_id, prev_hash)  # written after the commit


_CHECKPOINT_KEY = "lutarterial.audit_checkpoint_due"


def _checkpoint_every() -> int:
    """Audit rows between automatic checkpoints (``$LUTARTERIAL_AUDIT_CHECKPOINT_EVERY``, 200)."""
    import os

    try:
        return max(0, int(os.environ.get("LUTARTERIAL_AUDIT_CHECKPOINT_EVERY", "200")))
    except ValueError:
        return 200


@event.listens_for(Session, "after_commit")
def _periodic_checkpoint(session: Session) -> None:
    due = session.info.pop(_CHECKPOINT_KEY, None)
    if due is None:
        return
    try:
        from lutarterial.registry.audit_proof import append_checkpoint

        append_checkpoint(session.get_bind().url.render_as_string(hide_password=False), due[0], due[1],
                          source="periodic")
    except OSError:  # pragma: no cover - the data directory is not writable: verify still works
        pass


@event.listens_for(Session, "after_rollback")
def _forget_checkpoint(session: Session) -> None:
    session.info.pop(_CHECKPOINT_KEY, None)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditChainReport:
    """Outcome of :func:`verify_audit_chain`: ``ok`` or the first broken row and why."""

    ok: bool
    rows_checked: int
    first_broken_id: int | None = None
    problem: str | None = None
    head_hash: str = GENESIS_HASH

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows_checked": self.rows_checked, "first_broken_id": self.first_broken_id,
                "problem": self.problem, "head_hash": self.head_hash}


def verify_audit_chain(session: Session, key: bytes | None = None) -> AuditChainReport:
    """Recompute the hash chain in ``id`` order and report the first row that does not fit.

    Detects an edited row (its hash no longer matches its content), a deleted row (a gap in the
    positions, or the next row's ``prev_hash`` no longer matching), a reordered or inserted row
    (position or ``prev_hash`` mismatch), and a truncated tail is visible as a shorter chain
    whose ``head_hash`` differs from one recorded earlier.
    """
    table = AuditEntry.__table__
    prev_hash = GENESIS_HASH
    expected_id = 1
    checked = 0
    keyed_seen = False
    if key is None:
        key = key_for_session(session, create=False)
    result = session.connection().execution_options(yield_per=2000).execute(select(table).order_by(table.c.id))
    for rec in result.mappings():
        row = dict(rec)
        rid = int(row["id"])
        if rid != expected_id:
            return AuditChainReport(False, checked, rid,
                                    f"audit row {rid} found where row {expected_id} was expected "
                                    "(a row was deleted or inserted)", prev_hash)
        if row["prev_hash"] != prev_hash:
            return AuditChainReport(False, checked, rid,
                                    f"audit row {rid} does not link to the previous row's hash "
                                    "(a row before it was changed, deleted or reordered)", prev_hash)
        if row.get("hash_alg") == KEYED_ALG:
            keyed_seen = True
            if key is None:
                return AuditChainReport(False, checked, rid,
                                        f"audit row {rid} is keyed but the audit key is not available "
                                        "($LUTARTERIAL_AUDIT_KEY or the data directory's audit_key)", prev_hash)
        elif row.get("hash_alg") is None and keyed_seen:
            return AuditChainReport(False, checked, rid,
                                    f"audit row {rid} is an unkeyed entry after keyed ones (its hash was "
                                    "recomputed without the key: the row was rewritten)", prev_hash)
        elif row.get("hash_alg") is not None:
            return AuditChainReport(False, checked, rid, f"audit row {rid} has an unknown hash algorithm "
                                    f"{row.get('hash_alg')!r}", prev_hash)
        if not hmac.compare_digest(compute_row_hash(prev_hash, row, key).encode(),
                                   str(row["row_hash"]).encode("utf-8", "replace")):
            return AuditChainReport(False, checked, rid,
                                    f"audit row {rid} content does not match its hash (the row was edited)",
                                    prev_hash)
        prev_hash = row["row_hash"]
        expected_id += 1
        checked += 1
    return AuditChainReport(True, checked, None, None, prev_hash)


# --- append-only triggers ---------------------------------------------------------------------

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def install_append_only_triggers(conn: Any) -> None:
    """Create triggers that make ``audit_entries`` refuse UPDATE and DELETE (and TRUNCATE on PG)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(_PG_FUNCTION))
        conn.execute(text("CREATE TRIGGER audit_entries_no_update_delete BEFORE UPDATE OR DELETE "
                          "ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()"))
        conn.execute(text("CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE "
                          "ON audit_entries FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()"))
    elif conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.execute(text(
                f"CREATE TRIGGER audit_entries_no_{op.lower()} BEFORE {op} ON audit_entries "
                f"BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: {op} refused'); END"
            ))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise InvalidInputError(f"database {conn.dialect.name!r} is not supported (SQLite or PostgreSQL)")


def drop_append_only_triggers(conn: Any) -> None:
    """Remove the append-only triggers (migration downgrade; tamper tests)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_update_delete ON audit_entries"))
        conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries"))
        conn.execute(text("DROP FUNCTION IF EXISTS audit_entries_append_only()"))
    else:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_delete"))
