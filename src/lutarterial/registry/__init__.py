"""The trial registry: database model, migrations, audit trail, access control, services, exports.

Entry points for the web app and the CLI::

    from lutarterial.registry import Registry, services, upgrade
    upgrade(url)                                  # schema + sites (idempotent)
    registry = Registry.open(url)                 # refuses an out-of-date schema
    with registry.session() as s:                 # one unit of work, commits at the end
        actor = services.authenticate(s, "alice", password)    # Actor or None
        p = services.register_participant(s, actor, site_code="BDX", reason="new patient")

See ``docs/registry.md``.
"""

from lutarterial.registry import dm_guard  # noqa: F401  (issue 13: locks, signatures, SDV on every write)
from lutarterial.registry import services
from lutarterial.registry.access import SYSTEM_ACTOR, Actor, Permission, can
from lutarterial.registry.audit import AuditChainReport, verify_audit_chain
from lutarterial.registry.db import DEFAULT_DB_URL, Registry, default_db_url, make_engine, upgrade
from lutarterial.registry.models import ParticipantStatus, Role, VisitKind, VisitStatus

__all__ = [
    "services",
    "Actor",
    "SYSTEM_ACTOR",
    "Permission",
    "can",
    "AuditChainReport",
    "verify_audit_chain",
    "DEFAULT_DB_URL",
    "Registry",
    "default_db_url",
    "make_engine",
    "upgrade",
    "ParticipantStatus",
    "Role",
    "VisitKind",
    "VisitStatus",
]
