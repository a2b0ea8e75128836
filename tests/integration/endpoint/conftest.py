"""Fixture of the endpoint/report tests: a registry with users of each relevant role and uptake analyses."""

from __future__ import annotations

import pytest

from lutarterial.registry import Registry, services
from lutarterial.registry.access import SYSTEM_ACTOR
from lutarterial.registry.audit import audited
from lutarterial.registry.models import SiteMembership, User, UserRole
from lutarterial.registry.passwords import hash_password
from lutarterial.registry.services import actor_by_username

PASSWORD = "correct horse battery"
_HASH = hash_password(PASSWORD)
_USERS = (("admin", "admin", None), ("stat", "statistician", None), ("inv.bdx", "investigator", "BDX"),
          ("phys.bdx", "physicist", "BDX"), ("phys.tls", "physicist", "TLS"))


def _voi(name: str, kind: str, iv: float | None, iah: float | None) -> dict:
    return {"name": name, "kind": kind, "iv": {"suv_mean": iv, "suv_max": iv and iv * 2},
            "iah": {"suv_mean": iah, "suv_max": iah and iah * 2}}


@pytest.fixture
def db(upgraded_sqlite_url: str) -> str:
    reg = Registry.open(upgraded_sqlite_url)
    try:
        with reg.session() as s:
            ids = {site.code: site.id for site in services.list_sites(s)}
            with audited(s, SYSTEM_ACTOR, "test users"):
                for name, role, site in _USERS:
                    u = User(username=name, password_hash=_HASH)
                    s.add(u)
                    s.flush()
                    s.add(UserRole(user_id=u.id, role=role))
                    if site:
                        s.add(SiteMembership(user_id=u.id, site_id=ids[site]))
        with reg.session() as s:
            phys_bdx, phys_tls = actor_by_username(s, "phys.bdx"), actor_by_username(s, "phys.tls")
            admin = actor_by_username(s, "admin")
            data = {("BDX", phys_bdx): [[_voi("lesion 1", "lesion", 10, 15), _voi("lesion 2", "lesion", 8, 10),
                                         _voi("liver", "liver", 5, 6)],
                                        [_voi("lesion 1", "lesion", 10, 20), _voi("lesion 2", "lesion", 0, 10)]],
                    ("TLS", phys_tls): [[_voi("lesion A", "lesion", 6, 9), _voi("lesion B", "lesion", 7, 7.7)]]}
            for (site, actor), analyses in data.items():
                p = services.register_participant(s, admin, site_code=site, reason="test")
                for k, vois in enumerate(analyses):
                    services.attach_imaging_analysis(s, actor, p.trial_number, kind="pet_iah_vs_iv",
                                                     result={"vois": vois}, reason=f"analysis {k}")
            p3 = services.register_participant(s, admin, site_code="BDX", reason="test")
            services.attach_imaging_analysis(s, phys_bdx, p3.trial_number, kind="pet_iah_vs_iv",
                                             result={"vois": [_voi("lesion 1", "lesion", 4, 5)]}, reason="a")
            services.attach_imaging_analysis(s, phys_bdx, p3.trial_number, kind="other_kind",
                                             result={"note": "not an uptake analysis"}, reason="b")
    finally:
        reg.dispose()
    return upgraded_sqlite_url


