"""Every audit row of a create names the created row (its primary key), on SQLite and PostgreSQL.

Creates are audited in ``after_flush``, when the database has assigned the keys; several objects
created in one flush (where the keys come back from one multi-row INSERT) and composite keys are
covered.
"""

from __future__ import annotations

import json

from sqlalchemy import inspect, select

from lutarterial.registry import Registry, services, verify_audit_chain
from lutarterial.registry.access import SYSTEM_ACTOR
from lutarterial.registry.audit import audited
from lutarterial.registry.models import AUDITED_MODELS, AuditEntry, SiteMembership, User, UserRole

from .conftest import Team, enrolled_participant


def _pk_text(model: type, values: dict[str, object]) -> str:
    return "-".join(str(values[c.key]) for c in inspect(model).primary_key)


def test_every_create_audit_row_names_its_row(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        services.record_visit(s, team.coord_bdx, pid, kind="iv_cycle", number=1, status="done",
                              visit_date="2024-02-01", activity_mbq=7400.0, reason="cycle 1")
        bdx = services.get_site(s, "BDX").id
        with audited(s, SYSTEM_ACTOR, "three users in one flush"):
            users = [User(username=f"batch{i}", password_hash="x") for i in range(3)]
            s.add_all(users)
            s.flush()  # one flush inserting three rows
            s.add_all([UserRole(user_id=u.id, role="monitor") for u in users])
            s.add_all([SiteMembership(user_id=u.id, site_id=bdx) for u in users])  # composite keys, same flush
    by_table = {m.__tablename__: m for m in AUDITED_MODELS}
    with reg.session(readonly=True) as s:
        creates = s.scalars(select(AuditEntry).where(AuditEntry.action == "create").order_by(AuditEntry.id)).all()
        assert len(creates) > 20
        seen_tables = set()
        for row in creates:
            assert row.row_id, f"audit row {row.id} ({row.table_name} create) has no row id"
            model = by_table[row.table_name]
            new = json.loads(row.new_values)
            assert row.row_id == _pk_text(model, new), row.id
            assert s.get(model, tuple(new[c.key] for c in inspect(model).primary_key)) is not None
            seen_tables.add(row.table_name)
        assert {"participants", "consents", "visits", "users", "user_roles", "site_memberships"} <= seen_tables
        # three users of one flush: three distinct row ids
        batch = [r for r in creates if r.table_name == "users" and json.loads(r.new_values)["username"].startswith("batch")]
        assert len({r.row_id for r in batch}) == 3
        assert verify_audit_chain(s).ok
