"""Fixtures of the registry integration tests: an open registry and actors of each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lutarterial.registry import Registry, services
from lutarterial.registry.access import SYSTEM_ACTOR, Actor
from lutarterial.registry.audit import audited
from lutarterial.registry.models import Role, SiteMembership, User, UserRole
from lutarterial.registry.passwords import hash_password


@dataclass(frozen=True)
class Team:
    admin: Actor
    coord_bdx: Actor
    inv_bdx: Actor
    phys_bdx: Actor
    mon_bdx: Actor
    coord_tls: Actor
    inv_tls: Actor
    mon_tls: Actor


@pytest.fixture
def reg(registry_url: str) -> Iterator[Registry]:
    registry = Registry.open(registry_url)
    yield registry
    registry.dispose()


def _actor(name: str, role: Role, site_ids: set[int], uid: int) -> Actor:
    return Actor(user_id=uid, username=name, roles=frozenset({role}), site_ids=frozenset(site_ids))


_HASH = hash_password("correct horse battery")  # computed once: scrypt is deliberately slow

_TEAM = (("admin", Role.ADMIN, None), ("coord.bdx", Role.COORDINATOR, "BDX"), ("inv.bdx", Role.INVESTIGATOR, "BDX"),
         ("phys.bdx", Role.PHYSICIST, "BDX"), ("mon.bdx", Role.MONITOR, "BDX"), ("coord.tls", Role.COORDINATOR, "TLS"),
         ("inv.tls", Role.INVESTIGATOR, "TLS"), ("mon.tls", Role.MONITOR, "TLS"))


@pytest.fixture
def team(reg: Registry) -> Team:
    """One stored user per role and site (password "correct horse battery"), as Actors."""
    actors = []
    with reg.session() as s:
        ids = {site.code: site.id for site in services.list_sites(s)}
        with audited(s, SYSTEM_ACTOR, "test team"):
            for name, role, site in _TEAM:
                user = User(username=name, password_hash=_HASH)
                s.add(user)
                s.flush()
                s.add(UserRole(user_id=user.id, role=role.value))
                if site:
                    s.add(SiteMembership(user_id=user.id, site_id=ids[site]))
                actors.append(_actor(name, role, {ids[site]} if site else set(), user.id))
    return Team(*actors)


ELIGIBLE_RESULT = {"verdict": "eligible", "protocol_version": "test", "criteria": [], "missing": []}


def enrolled_participant(reg: Registry, team: Team, site: str = "BDX") -> int:
    """Register, consent, screen (stored result) and enrol one participant; returns its id."""
    coord = team.coord_bdx if site == "BDX" else team.coord_tls
    inv = team.inv_bdx if site == "BDX" else team.inv_tls
    with reg.session() as s:
        p = services.register_participant(s, coord, site_code=site, reason="new participant")
        services.record_consent(s, coord, p.id, version="v1.0", signed_date="2024-01-10", reason="consent signed")
        services.record_screening(s, coord, p.id, record={"record_id": "x"}, result=ELIGIBLE_RESULT,
                                  protocol_version="test", as_of="2024-01-12", reason="screening")
        services.enrol(s, inv, p.id, enrolled_date="2024-01-15", reason="eligible")
        return p.id
