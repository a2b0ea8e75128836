"""Tamper evidence: edits, deletions and reorderings of audit rows made with raw SQL are detected."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from lutarterial.registry import Registry, services, verify_audit_chain
from lutarterial.registry.audit import drop_append_only_triggers

from .conftest import Team, enrolled_participant


def _tamper(reg: Registry, *statements: str) -> None:
    """Raw SQL on the connection, bypassing the ORM, after dropping the append-only triggers."""
    with reg.engine.begin() as conn:
        drop_append_only_triggers(conn)
        for sql in statements:
            conn.execute(text(sql))


def _report(reg: Registry):  # type: ignore[no-untyped-def]
    with reg.session(readonly=True) as s:
        return verify_audit_chain(s)


@pytest.fixture
def filled(reg: Registry, team: Team) -> int:
    enrolled_participant(reg, team)
    report = _report(reg)
    assert report.ok and report.rows_checked > 10
    return report.rows_checked


def test_intact_chain_verifies(reg: Registry, filled: int) -> None:
    report = _report(reg)
    assert report.ok and report.first_broken_id is None and len(report.head_hash) == 64


def test_edited_value_is_detected(reg: Registry, filled: int) -> None:
    _tamper(reg, "UPDATE audit_entries SET reason = 'nothing to see' WHERE id = 7")
    report = _report(reg)
    assert not report.ok and report.first_broken_id == 7 and "edited" in (report.problem or "")


def test_edited_value_with_recomputed_own_hash_is_detected_at_next_row(reg: Registry, filled: int) -> None:
    # A forger who recomputes the edited row's own hash still breaks the link of the next row.
    from lutarterial.registry.audit import compute_row_hash, key_for_session
    from lutarterial.registry.models import AuditEntry

    with reg.session(readonly=True) as s:
        row = s.get(AuditEntry, 7)
        assert row is not None
        data = {c: getattr(row, c) for c in AuditEntry.__table__.columns.keys()}
        key = key_for_session(s)  # a forger who even holds the audit key
    data["actor_username"] = "someone.else"
    forged = compute_row_hash(data["prev_hash"], data, key)
    _tamper(reg, f"UPDATE audit_entries SET actor_username = 'someone.else', row_hash = '{forged}' WHERE id = 7")
    report = _report(reg)
    assert not report.ok and report.first_broken_id == 8 and "previous row" in (report.problem or "")


def test_deleted_row_is_detected(reg: Registry, filled: int) -> None:
    _tamper(reg, "DELETE FROM audit_entries WHERE id = 5")
    report = _report(reg)
    assert not report.ok and report.first_broken_id == 6 and "deleted" in (report.problem or "")


def test_reordered_rows_are_detected(reg: Registry, filled: int) -> None:
    # Swap the positions of rows 3 and 4 (through a temporary id).
    _tamper(reg, "UPDATE audit_entries SET id = -4 WHERE id = 4", "UPDATE audit_entries SET id = 4 WHERE id = 3",
            "UPDATE audit_entries SET id = 3 WHERE id = -4")
    report = _report(reg)
    assert not report.ok and report.first_broken_id == 3


def test_deleted_last_row_shows_as_changed_head(reg: Registry, filled: int) -> None:
    head = _report(reg).head_hash
    _tamper(reg, f"DELETE FROM audit_entries WHERE id = {filled}")
    report = _report(reg)
    assert report.ok and report.rows_checked == filled - 1 and report.head_hash != head


def test_concurrent_registrations_get_distinct_numbers_and_a_linear_chain(reg: Registry, team: Team) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(4):
                with reg.session() as s:
                    services.register_participant(s, team.coord_bdx, site_code="BDX", reason="parallel")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with reg.session(readonly=True) as s:
        numbers = sorted(p.trial_number for p in services.list_participants(s, team.admin))
    assert numbers == [f"BDX-{i:03d}" for i in range(1, 17)]
    assert _report(reg).ok
