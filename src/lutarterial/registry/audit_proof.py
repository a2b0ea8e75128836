"""An audit trail that proves the data (issue 9): reconciliation, checkpoints, trigger check.

``lutarterial audit verify`` runs :func:`verify_registry`, which checks four things:

1. **Chain** (:func:`~lutarterial.registry.audit.verify_audit_chain`): positions 1..N without gap,
   each row linked to the previous hash, each hash recomputed (HMAC-SHA256 under the audit key
   for keyed entries). A rewritten row whose hashes were recomputed without the key fails here.
2. **Reconciliation** (:func:`reconcile`): replaying every audit entry (create: the new values;
   update: the changed values; delete: the row goes) rebuilds each audited table. The rebuilt
   state must equal the table's current rows, field by field. An ``UPDATE`` made around the
   application is a *changed* field (table, primary key, field, audited value, current value); an
   ``INSERT`` a row *not in the audit trail*; a ``DELETE`` a row *missing from the table*.
   Redacted columns are compared through their keyed digest. Columns absent from a row's
   audit entries (added by a later migration) are counted as unverified, not reported.
3. **Checkpoint** (:func:`append_checkpoint`, :func:`last_checkpoint`): an append-only JSON-lines
   file in the data directory, outside the database, receives ``{rows, head, at, source}`` on
   every verify, every export and every ``$LUTARTERIAL_AUDIT_CHECKPOINT_EVERY`` audit rows. The
   chain must still contain the checkpointed row count with the same hash at that position: a
   truncated trail, an emptied ``audit_entries`` or a rewritten history shows here.
4. **Triggers** (:func:`missing_triggers`): the append-only triggers must exist (SQLite:
   ``sqlite_master``; PostgreSQL: ``pg_trigger``); dropped triggers are reported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lutarterial.registry.audit import (
    REDACTED,
    AuditChainReport,
    _jsonable,
    key_for_session,
    redacted_digest,
    verify_audit_chain,
)
from lutarterial.registry.audit_key import data_dir_for_url
from lutarterial.registry.models import AuditEntry

__all__ = ["Discrepancy", "VerifyReport", "reconcile", "verify_registry", "append_checkpoint", "last_checkpoint",
           "checkpoint_path", "missing_triggers", "EXPECTED_TRIGGERS"]

EXPECTED_TRIGGERS: dict[str, tuple[str, ...]] = {
    "sqlite": ("audit_entries_no_update", "audit_entries_no_delete"),
    "postgresql": ("audit_entries_no_update_delete", "audit_entries_no_truncate"),
}


@dataclass(frozen=True)
class Discrepancy:
    """One difference between a table and its audit trail."""

    table: str
    row_id: str
    kind: str  # "changed" | "not_in_audit_trail" | "missing_from_table"
    field: str | None = None
    audited: Any = None
    current: Any = None

    def describe(self) -> str:
        if self.kind == "changed":
            return (f"{self.table} #{self.row_id} field {self.field}: audited {self.audited!r}, now {self.current!r} "
                    "(edited around the application)")
        if self.kind == "not_in_audit_trail":
            return f"{self.table} #{self.row_id}: row exists but was never audited (inserted around the application)"
        return f"{self.table} #{self.row_id}: audited row is missing (deleted around the application)"

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row_id": self.row_id, "kind": self.kind, "field": self.field,
                "audited": self.audited, "current": self.current}


@dataclass
class VerifyReport:
    chain: AuditChainReport
    discrepancies: list[Discrepancy] = field(default_factory=list)
    unverified_fields: int = 0
    checkpoint: dict[str, Any] | None = None
    checkpoint_problem: str | None = None
    missing_triggers: list[str] = field(default_factory=list)
    checkpoint_file: str = ""

    @property
    def ok(self) -> bool:
        return (self.chain.ok and not self.discrepancies and self.checkpoint_problem is None
                and not self.missing_triggers)

    def problems(self) -> list[str]:
        out = []
        if not self.chain.ok:
            out.append(f"chain broken at row {self.chain.first_broken_id}: {self.chain.problem}")
        if self.checkpoint_problem:
            out.append(self.checkpoint_problem)
        if self.missing_triggers:
            out.append("append-only triggers missing: " + ", ".join(self.missing_triggers)
                       + " (someone dropped them: audit rows could be edited or deleted)")
        out.extend(d.describe() for d in self.discrepancies)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**self.chain.to_dict(), "ok": self.ok, "chain_ok": self.chain.ok,
                "discrepancies": [d.to_dict() for d in self.discrepancies],
                "unverified_fields": self.unverified_fields, "checkpoint": self.checkpoint,
                "checkpoint_problem": self.checkpoint_problem, "missing_triggers": self.missing_triggers,
                "checkpoint_file": self.checkpoint_file, "problems": self.problems()}


# --- reconciliation ---------------------------------------------------------------------------


def _replay(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    t = AuditEntry.__table__
    state: dict[str, dict[str, dict[str, Any]]] = {}
    stmt = select(t.c.table_name, t.c.row_id, t.c.action, t.c.new_values).order_by(t.c.id)
    for table, row_id, action, new_values in session.connection().execution_options(yield_per=5000).execute(stmt):
        rows = state.setdefault(table, {})
        if action == "delete":
            rows.pop(row_id, None)
            continue
        values = json.loads(new_values) if new_values else {}
        if action == "create":
            rows[row_id] = dict(values)
        else:
            rows.setdefault(row_id, {}).update(values)
    return state


def _same(audited: Any, current: Any) -> bool:
    if audited == current:
        return True
    if isinstance(audited, (int, float)) and isinstance(current, (int, float)) \
            and not isinstance(audited, bool) and not isinstance(current, bool):
        return float(audited) == float(current)
    return False


def reconcile(session: Session, key: bytes | None = None) -> tuple[list[Discrepancy], int]:
    """Compare every audited table with the state rebuilt from the audit trail.

    Returns the discrepancies and the number of current fields the trail does not cover.
    """
    from lutarterial.registry.models import AUDITED_MODELS

    key = key if key is not None else key_for_session(session, create=False)
    state = _replay(session)
    out: list[Discrepancy] = []
    unverified = 0
    conn = session.connection()
    for model in AUDITED_MODELS:
        mapper = sa_inspect(model)
        table = model.__table__
        name = str(table.name)
        redact = set(getattr(model, "__audit_redact__", ()))
        cols = [(attr.key, attr.columns[0]) for attr in mapper.column_attrs]
        pk_cols = list(mapper.primary_key)
        expected = dict(state.get(name, {}))
        for rec in conn.execute(select(table)).mappings():
            row_id = "-".join(str(rec[c.name]) for c in pk_cols if rec[c.name] is not None)
            audited = expected.pop(row_id, None)
            if audited is None:
                out.append(Discrepancy(name, row_id, "not_in_audit_trail"))
                continue
            for attr_key, col in cols:
                if attr_key not in audited:
                    unverified += 1
                    continue
                value = rec[col.name]
                want = audited[attr_key]
                if attr_key in redact:
                    if want == REDACTED or key is None:
                        unverified += 1
                        continue
                    now = None if value is None else redacted_digest(_jsonable(value), key)
                    if now != want:
                        out.append(Discrepancy(name, row_id, "changed", attr_key, "<redacted>", "<redacted, differs>"))
                    continue
                now = _jsonable(value)
                if not _same(want, now):
                    out.append(Discrepancy(name, row_id, "changed", attr_key, want, now))
        for row_id in expected:
            out.append(Discrepancy(name, row_id, "missing_from_table"))
    return out, unverified


# --- checkpoints ------------------------------------------------------------------------------


def _db_label(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "memory").name
    label = f"{parsed.host or 'local'}-{parsed.port or 5432}-{parsed.database or ''}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)


def checkpoint_path(url: str) -> Path:
    """``<data dir>/audit-checkpoints.<database>.jsonl`` (one file per database)."""
    return data_dir_for_url(url) / f"audit-checkpoints.{_db_label(url)}.jsonl"


def append_checkpoint(url: str, rows: int, head: str, *, source: str) -> dict[str, Any]:
    """Append ``{rows, head, at, source}`` to the checkpoint file (created 0600, append-only use)."""
    path = checkpoint_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"rows": int(rows), "head": str(head), "source": source,
             "at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def last_checkpoint(url: str) -> dict[str, Any] | None:
    """The checkpoint with the most rows in the file (a later, shorter one cannot hide an earlier
    longer one), or ``None`` when there is no file yet."""
    path = checkpoint_path(url)
    if not path.exists():
        return None
    best: dict[str, Any] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            rows = int(entry["rows"])
        except (ValueError, KeyError, TypeError):
            continue
        if best is None or rows >= int(best["rows"]):
            best = entry
    return best


def _check_against(session: Session, cp: dict[str, Any], chain: AuditChainReport) -> str | None:
    rows, head = int(cp["rows"]), str(cp["head"])
    t = AuditEntry.__table__
    total = int(session.execute(select(text("count(*)")).select_from(t)).scalar() or 0)
    if total < rows:
        return (f"the audit trail has {total} rows but the checkpoint of {cp.get('at')} recorded {rows}: "
                f"{rows - total} audit rows were deleted (truncated or emptied table)")
    if rows == 0:
        return None
    at = session.execute(select(t.c.row_hash).where(t.c.id == rows)).scalar()
    if at != head:
        return (f"audit row {rows} no longer has the hash recorded by the checkpoint of {cp.get('at')}: "
                "the history up to it was rewritten")
    return None


# --- triggers ---------------------------------------------------------------------------------


def missing_triggers(session: Session) -> list[str]:
    conn = session.connection()
    dialect = conn.dialect.name
    want = EXPECTED_TRIGGERS.get(dialect, ())
    if dialect == "sqlite":
        have = {r[0] for r in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entries'"))}
    elif dialect == "postgresql":
        have = {r[0] for r in conn.execute(text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_entries'::regclass AND NOT tgisinternal "
            "AND tgenabled <> 'D'"))}
    else:  # pragma: no cover
        have = set()
    return [t for t in want if t not in have]


# --- all together -----------------------------------------------------------------------------


def verify_registry(session: Session, *, checkpoint: bool = True, source: str = "verify") -> VerifyReport:
    """Chain + reconciliation + checkpoint + triggers; appends a checkpoint when all is well."""
    url = session.get_bind().url.render_as_string(hide_password=False)
    key = key_for_session(session, create=False)
    chain = verify_audit_chain(session, key)
    report = VerifyReport(chain=chain, checkpoint_file=str(checkpoint_path(url)))
    report.discrepancies, report.unverified_fields = reconcile(session, key)
    cp = last_checkpoint(url)
    report.checkpoint = cp
    if cp is not None:
        report.checkpoint_problem = _check_against(session, cp, chain)
    report.missing_triggers = missing_triggers(session)
    if checkpoint and report.ok:
        try:
            append_checkpoint(url, chain.rows_checked, chain.head_hash, source=source)
        except OSError:  # pragma: no cover - read-only data directory
            pass
    return report


def checkpoint_after_export(session: Session, chain: AuditChainReport) -> None:
    """Exports record the head they were made from (when the chain is intact)."""
    if not chain.ok:
        return
    url = session.get_bind().url.render_as_string(hide_password=False)
    try:
        append_checkpoint(url, chain.rows_checked, chain.head_hash, source="export")
    except OSError:  # pragma: no cover
        pass
