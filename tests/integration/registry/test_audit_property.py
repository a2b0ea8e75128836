"""Property: any single-field change to any audit row, made with raw SQL, is detected at that row."""

from __future__ import annotations

import functools
import shutil
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lutarterial.registry import Registry, services, upgrade, verify_audit_chain
from lutarterial.registry.access import Actor
from lutarterial.registry.models import AuditEntry, Role

COLUMNS = [c.name for c in AuditEntry.__table__.columns if c.name != "id"]


@functools.lru_cache(maxsize=1)
def _source_db() -> tuple[Path, int]:
    """A SQLite registry with a realistic audit trail (built once per test session)."""
    path = Path(tempfile.mkdtemp(prefix="lutarterial-prop-")) / "source.db"
    upgrade(f"sqlite:///{path}")
    reg = Registry.open(f"sqlite:///{path}")
    admin = Actor(None, "prop", frozenset({Role.ADMIN}))
    with reg.session() as s:
        for site in ("BDX", "NIM"):
            p = services.register_participant(s, admin, site_code=site, reason="new", sex="F")
            services.record_consent(s, admin, p.id, version="v1", signed_date="2024-01-01", reason="signed")
            v = services.record_visit(s, admin, p.id, kind="follow_up", planned_date="2024-05-01", reason="plan")
            services.update_record(s, admin, "visit", v.id, {"notes": "moved"}, reason="patient asked")
    with reg.session(readonly=True) as s:
        n = verify_audit_chain(s).rows_checked
    reg.dispose()
    return path, n


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_single_field_tampering_is_detected_at_the_row(data: st.DataObject) -> None:
    source, n = _source_db()
    row = data.draw(st.integers(min_value=1, max_value=n), label="row")
    column = data.draw(st.sampled_from(COLUMNS), label="column")
    target = Path(tempfile.mkdtemp(prefix="lutarterial-prop-")) / "t.db"
    shutil.copyfile(source, target)
    try:
        conn = sqlite3.connect(target)
        conn.execute("DROP TRIGGER audit_entries_no_update")
        old = conn.execute(f"SELECT {column} FROM audit_entries WHERE id = ?", (row,)).fetchone()[0]
        new = data.draw(st.one_of(st.text(min_size=1, max_size=12), st.integers(-5, 10**6)).filter(
            lambda v: str(v) != str(old)), label="new value")
        if column == "row_hash":  # unique column: a clash with another row's hash is not the point here
            new = f"{new}-forged"
        conn.execute(f"UPDATE audit_entries SET {column} = ? WHERE id = ?", (new, row))
        conn.commit()
        conn.close()
        reg = Registry.open(f"sqlite:///{target}")
        with reg.session(readonly=True) as s:
            report = verify_audit_chain(s)
        reg.dispose()
        assert not report.ok and report.first_broken_id == row, (column, report)
    finally:
        shutil.rmtree(target.parent, ignore_errors=True)
