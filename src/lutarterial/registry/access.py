"""Who may do what: the :class:`Actor` passed to every service function and the permission table.

Rules (checked by every service function; the web layer checks nothing itself but passes the
logged-in user's :class:`Actor`):

* a user sees only participants of the sites they are a member of; ``admin`` sees all sites;
* ``monitor`` is read-only everywhere;
* the identity key is readable by ``admin`` only;
* write permissions per role are in :data:`PERMISSIONS` (data, not code paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lutarterial.errors import AccessDeniedError
from lutarterial.registry.models import Role

__all__ = ["Actor", "Permission", "PERMISSIONS", "SYSTEM_ACTOR", "require", "require_site", "can",
           "restrict_to_sites", "ALL_SITES_ROLES", "READ_ONLY_ROLES"]


class Permission:
    """Names of write permissions (strings so they read well in the table and in messages)."""

    PARTICIPANT_WRITE = "participant.write"
    IDENTITY_WRITE = "identity.write"
    IDENTITY_READ = "identity.read"
    CONSENT_WRITE = "consent.write"
    SCREENING_WRITE = "screening.write"
    ENROLMENT_WRITE = "enrolment.write"
    VISIT_WRITE = "visit.write"
    LAB_WRITE = "lab.write"
    AE_WRITE = "ae.write"
    RECIST_WRITE = "recist.write"
    IMAGING_WRITE = "imaging.write"
    DOSIMETRY_WRITE = "dosimetry.write"
    USER_MANAGE = "user.manage"
    SITE_MANAGE = "site.manage"
    EXPORT = "data.export"
    # issue 13: data management
    QUERY_OPEN = "query.open"  # open, assign, close and re-open queries
    QUERY_ANSWER = "query.answer"  # the site answers
    SIGN = "record.sign"  # electronic signature of a casebook or form
    LOCK = "record.lock"  # lock and unlock a participant or form
    SDV = "record.verify"  # source-data verification marks


_C, _I, _P, _A = Role.COORDINATOR, Role.INVESTIGATOR, Role.PHYSICIST, Role.ADMIN

#: Role sets granted each permission. Reading study data of one's own sites needs no entry:
#: every active user with a site membership may read. Monitors appear in no write row.
PERMISSIONS: dict[str, frozenset[Role]] = {
    Permission.PARTICIPANT_WRITE: frozenset({_C, _I, _A}),
    # Coordinators register the identity key at inclusion but cannot read it back.
    Permission.IDENTITY_WRITE: frozenset({_C, _A}),
    Permission.IDENTITY_READ: frozenset({_A}),
    Permission.CONSENT_WRITE: frozenset({_C, _I, _A}),
    Permission.SCREENING_WRITE: frozenset({_C, _I, _A}),
    Permission.ENROLMENT_WRITE: frozenset({_I, _A}),
    Permission.VISIT_WRITE: frozenset({_C, _I, _P, _A}),
    Permission.LAB_WRITE: frozenset({_C, _I, _A}),
    Permission.AE_WRITE: frozenset({_C, _I, _A}),
    Permission.RECIST_WRITE: frozenset({_I, _A}),
    Permission.IMAGING_WRITE: frozenset({_I, _P, _A}),
    Permission.DOSIMETRY_WRITE: frozenset({_P, _A}),
    Permission.USER_MANAGE: frozenset({_A}),
    Permission.SITE_MANAGE: frozenset({_A}),
    # Bulk exports (site-scoped like every read): data managers/admin, monitors, investigators.
    Permission.EXPORT: frozenset({_A, Role.MONITOR, _I, Role.STATISTICIAN}),
    # issue 13: monitors and data managers raise and close queries, the site answers; only the
    # investigator signs; data managers lock; monitors verify source data.
    Permission.QUERY_OPEN: frozenset({Role.MONITOR, Role.DATA_MANAGER, _A}),
    Permission.QUERY_ANSWER: frozenset({_C, _I, _A}),
    Permission.SIGN: frozenset({_I}),
    Permission.LOCK: frozenset({Role.DATA_MANAGER, _A}),
    Permission.SDV: frozenset({Role.MONITOR, _A}),
}


#: Roles that see every site (issue 12: the statistician reads all sites, pseudonymised data only;
#: the identity key stays admin-only through ``IDENTITY_READ``).
ALL_SITES_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.STATISTICIAN})
#: Roles that never write study data (an actor holding only these is read-only).
READ_ONLY_ROLES: frozenset[Role] = frozenset({Role.MONITOR, Role.STATISTICIAN, Role.DATA_MANAGER})


@dataclass(frozen=True)
class Actor:
    """The authenticated user on whose behalf a service function runs.

    Build it with :func:`lutarterial.registry.services.actor_for` (from the database) rather
    than by hand, so roles and sites are the stored ones.
    """

    user_id: int | None
    username: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    site_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def all_sites(self) -> bool:
        """True for roles that see every site (admin, statistician)."""
        return bool(self.roles & ALL_SITES_ROLES)

    @property
    def read_only(self) -> bool:
        """True for a user whose only roles are read-only ones (monitor, statistician) or none."""
        return not (self.roles - READ_ONLY_ROLES)

    def sees_site(self, site_id: int) -> bool:
        return self.all_sites or site_id in self.site_ids

    def roles_text(self) -> str:
        return ",".join(sorted(r.value for r in self.roles))


#: Actor of changes made by the software itself (migrations seeding sites, first admin).
SYSTEM_ACTOR = Actor(user_id=None, username="system", roles=frozenset({Role.ADMIN}))


def can(actor: Actor, permission: str) -> bool:
    """Whether ``actor`` holds ``permission`` through any of its roles."""
    allowed = PERMISSIONS.get(permission)
    if allowed is None:
        raise KeyError(f"unknown permission {permission!r}")
    return bool(actor.roles & allowed)


def require(actor: Actor, permission: str) -> None:
    """Raise :class:`AccessDeniedError` unless ``actor`` holds ``permission``."""
    if not can(actor, permission):
        roles = actor.roles_text() or "no role"
        raise AccessDeniedError(f"user {actor.username!r} ({roles}) may not {permission.replace('.', ' ')}")


def restrict_to_sites(stmt: Any, actor: Actor, site_column: Any) -> Any:
    """Limit a SELECT to rows whose ``site_column`` is one of the actor's sites (admins: all).

    The one place where site scoping of queries is decided; an actor with no site sees nothing.
    """
    if actor.all_sites:
        return stmt
    return stmt.where(site_column.in_(sorted(actor.site_ids) or [-1]))


def require_site(actor: Actor, site_id: int, *, what: str = "this participant") -> None:
    """Raise :class:`AccessDeniedError` unless ``actor`` belongs to ``site_id`` (admins always do)."""
    if not actor.sees_site(site_id):
        raise AccessDeniedError(f"user {actor.username!r} is not a member of the site of {what}")
