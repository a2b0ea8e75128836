"""Access control: cross-site reads and writes refused, monitors read-only, identity admin-only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import itertools

import pytest
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError
from lutarterial.registry import Registry, services
from lutarterial.registry.access import Actor

from .conftest import Team, enrolled_participant

_N = itertools.count(10)

READS: dict[str, Callable[[Session, Actor, int], Any]] = {
    "get_participant": lambda s, a, p: services.get_participant(s, a, p),
    "list_visits": lambda s, a, p: services.list_visits(s, a, p),
    "list_labs": lambda s, a, p: services.list_labs(s, a, p),
    "list_adverse_events": lambda s, a, p: services.list_adverse_events(s, a, p),
    "list_recist": lambda s, a, p: services.list_recist(s, a, p),
    "list_analyses": lambda s, a, p: services.list_analyses(s, a, p),
    "list_screenings": lambda s, a, p: services.list_screenings(s, a, p),
    "timeline": lambda s, a, p: services.participant_timeline(s, a, p),
    "audit_trail": lambda s, a, p: services.participant_audit_trail(s, a, p),
}

WRITES: dict[str, Callable[[Session, Actor, int], Any]] = {
    "update_participant": lambda s, a, p: services.update_participant(s, a, p, sex="F", reason="r"),
    "record_consent": lambda s, a, p: services.record_consent(s, a, p, version="v2", signed_date="2024-02-01",
                                                              reason="r"),
    "record_visit": lambda s, a, p: services.record_visit(s, a, p, kind="follow_up", number=next(_N), reason="r"),
    "record_lab": lambda s, a, p: services.record_lab(s, a, p, analyte="platelets", value=200, unit="10*9/L",
                                                      collected_date="2024-03-01", reason="r"),
    "record_adverse_event": lambda s, a, p: services.record_adverse_event(s, a, p, term="Nausea", grade=1,
                                                                          onset_date="2024-03-01", reason="r"),
    "record_recist": lambda s, a, p: services.record_recist(s, a, p, assessment_date="2024-05-01", response="SD",
                                                            reason="r"),
    "attach_imaging_analysis": lambda s, a, p: services.attach_imaging_analysis(s, a, p, kind="k", result={},
                                                                                reason="r"),
    "attach_dosimetry_analysis": lambda s, a, p: services.attach_dosimetry_analysis(s, a, p, kind="k", result={},
                                                                                    reason="r"),
}

#: Which role may perform each write on a participant of its own site.
ALLOWED_WRITES = {
    "coord_bdx": {"update_participant", "record_consent", "record_visit", "record_lab", "record_adverse_event"},
    "inv_bdx": {"update_participant", "record_consent", "record_visit", "record_lab", "record_adverse_event",
                "record_recist", "attach_imaging_analysis"},
    "phys_bdx": {"record_visit", "attach_imaging_analysis", "attach_dosimetry_analysis"},
    "mon_bdx": set(),
    "admin": set(WRITES),
}


def test_write_matrix_on_own_site(reg: Registry, team: Team) -> None:
    """Every (role, write) pair on a participant of the role's own site: allowed or refused."""
    pid = enrolled_participant(reg, team)
    outcome: dict[tuple[str, str], bool] = {}
    for who in sorted(ALLOWED_WRITES):
        for write in sorted(WRITES):
            try:
                with reg.session() as s:
                    assert WRITES[write](s, getattr(team, who), pid) is not None
                outcome[(who, write)] = True
            except AccessDeniedError:
                outcome[(who, write)] = False
    expected = {(who, write): write in ALLOWED_WRITES[who] for who in ALLOWED_WRITES for write in WRITES}
    assert outcome == expected


def test_cross_site_reads_and_writes_are_refused(reg: Registry, team: Team) -> None:
    tls = enrolled_participant(reg, team, site="TLS")
    bdx = enrolled_participant(reg, team, site="BDX")
    with reg.session() as s:
        trial_number = services.get_participant(s, team.admin, tls).trial_number
        for actor in (team.coord_bdx, team.inv_bdx, team.phys_bdx, team.mon_bdx):
            for name, read in READS.items():
                with pytest.raises(AccessDeniedError):
                    read(s, actor, tls)
                with pytest.raises(AccessDeniedError):  # by trial number too
                    services.get_participant(s, actor, trial_number)
            for name, write in WRITES.items():
                with pytest.raises(AccessDeniedError):
                    write(s, actor, tls)
            assert [p.id for p in services.list_participants(s, actor)] == [bdx]
            with pytest.raises(AccessDeniedError):
                services.list_participants(s, actor, site_code="TLS")
            assert all(e.site_id != services.get_site(s, "TLS").id for e in services.audit_trail(s, actor))
        with pytest.raises(AccessDeniedError):
            services.register_participant(s, team.coord_bdx, site_code="TLS", reason="r")
        # the own-site reads work
        for read in READS.values():
            read(s, team.mon_bdx, bdx)
        assert {p.id for p in services.list_participants(s, team.admin)} == {tls, bdx}


def test_monitor_cannot_write_anything(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        with pytest.raises(AccessDeniedError):
            services.register_participant(s, team.mon_bdx, site_code="BDX", reason="r")
        with pytest.raises(AccessDeniedError):
            services.withdraw_consent(s, team.mon_bdx, pid, withdrawal_date="2024-05-01", reason="r")
        with pytest.raises(AccessDeniedError):
            services.enrol(s, team.mon_bdx, pid, enrolled_date="2024-05-01", reason="r")
        with pytest.raises(AccessDeniedError):
            services.screen_participant(s, team.mon_bdx, pid, {}, as_of="2024-05-01", reason="r")
        visit = services.record_visit(s, team.coord_bdx, pid, kind="follow_up", reason="r")
        for kind in ("visit",):
            with pytest.raises(AccessDeniedError):
                services.update_record(s, team.mon_bdx, kind, visit.id, {"notes": "x"}, reason="r")
            with pytest.raises(AccessDeniedError):
                services.delete_record(s, team.mon_bdx, kind, visit.id, reason="r")
        with pytest.raises(AccessDeniedError):
            services.create_user(s, team.mon_bdx, username="eve", password="password123", roles=["admin"],
                                 reason="r")


def test_identity_is_readable_by_admin_only(reg: Registry, team: Team) -> None:
    with reg.session() as s:
        p = services.register_participant(
            s, team.coord_bdx, site_code="BDX", reason="new",
            identity=services.IdentityInput("Durand", "Paul", "1958-07-14", "H-42"))
        for actor in (team.coord_bdx, team.inv_bdx, team.phys_bdx, team.mon_bdx, team.coord_tls):
            with pytest.raises(AccessDeniedError):
                services.get_identity(s, actor, p.id)
        ident = services.get_identity(s, team.admin, p.id)
        assert (ident.family_name, ident.hospital_id, ident.birth_date.isoformat()) == ("Durand", "H-42", "1958-07-14")
        with pytest.raises(AccessDeniedError):  # a coordinator cannot overwrite it either
            services.set_identity(s, team.coord_bdx, p.id, services.IdentityInput("X", "Y", "1950-01-01", "Z"),
                                  reason="r")
        services.set_identity(s, team.admin, p.id, services.IdentityInput("Durand", "Paul", "1958-07-15", "H-42"),
                              reason="birth date typo")
        assert services.get_identity(s, team.admin, p.id).birth_date.isoformat() == "1958-07-15"


def test_users_login_and_deactivation(reg: Registry, team: Team) -> None:
    with reg.session() as s:
        u = services.create_user(s, team.admin, username="Alice", password="s3cret-pass", roles=["investigator"],
                                 site_codes=["BDX", "PES"], reason="new investigator")
        assert u.username == "alice" and "s3cret" not in u.password_hash
        uid = u.id
    with reg.session() as s:
        actor = services.authenticate(s, "alice", "s3cret-pass")
        assert actor is not None and actor.site_ids == {services.get_site(s, "BDX").id, services.get_site(s, "PES").id}
        assert services.authenticate(s, "alice", "wrong-pass") is None
        assert services.authenticate(s, "nobody", "s3cret-pass") is None
        services.set_user_active(s, team.admin, uid, False, reason="left the trial")
    with reg.session() as s:
        assert services.authenticate(s, "alice", "s3cret-pass") is None
        with pytest.raises(AccessDeniedError):
            services.actor_for(s, uid)


def test_account_locks_only_after_failures_from_several_addresses(reg: Registry, team: Team) -> None:
    """Issue 9: one address cannot lock an account; failures from LOCK_SOURCES addresses can,
    and re-activation clears the lock and the recorded failures in the database."""
    import datetime as dt

    from lutarterial.registry import throttle
    from lutarterial.registry.services.people import LOCKOUT

    t0 = dt.datetime(2025, 1, 1, 9, 0, tzinfo=dt.timezone.utc)
    step = dt.timedelta(seconds=throttle.PAIR_MAX_WAIT_S + 1)  # past any back-off of the pair
    t = t0
    for i in range(throttle.LOCK_FAILURES + 2):  # many failures, one address: no account lock
        with reg.session(readonly=True) as s:  # as the web app does: a read-only session
            t = t0 + step * i
            assert services.authenticate(s, "inv.bdx", "wrong password", now=t, client="10.0.0.1") is None
    with reg.session(readonly=True) as s:  # the pair waits; the same account from elsewhere works
        with pytest.raises(throttle.ThrottledError):
            services.authenticate(s, "inv.bdx", "correct horse battery", now=t, client="10.0.0.1")
        assert services.authenticate(s, "inv.bdx", "correct horse battery", now=t, client="10.0.0.9") is not None
    # a distributed attack: LOCK_FAILURES failures from LOCK_SOURCES addresses lock the account
    t1 = t + dt.timedelta(hours=1)
    gap = dt.timedelta(seconds=2)  # each address fails at most 4 times: a 1 s back-off at most
    for i in range(throttle.LOCK_FAILURES):
        with reg.session(readonly=True) as s:
            services.authenticate(s, "inv.bdx", "wrong", now=t1 + gap * (i // throttle.LOCK_SOURCES),
                                  client=f"192.0.2.{i % throttle.LOCK_SOURCES}")
    tl = t1 + gap * (throttle.LOCK_FAILURES // throttle.LOCK_SOURCES + 1)
    with reg.session(readonly=True) as s:
        assert services.authenticate(s, "inv.bdx", "correct horse battery", now=tl, client="10.0.0.9") is None
        assert services.authenticate(s, "inv.bdx", "correct horse battery", now=tl + LOCKOUT * 1.01,
                                     client="10.0.0.9") is not None
    for i in range(throttle.LOCK_FAILURES):
        with reg.session(readonly=True) as s:
            services.authenticate(s, "inv.bdx", "wrong", now=tl + LOCKOUT * 2 + gap * (i // throttle.LOCK_SOURCES),
                                  client=f"198.51.100.{i % throttle.LOCK_SOURCES}")
    with reg.session(readonly=True) as s:
        assert services.authenticate(s, "inv.bdx", "correct horse battery", now=tl + LOCKOUT * 2 + gap * 5,
                                     client="10.0.0.9") is None  # locked again
    with reg.session() as s:  # an admin lifts the lock by re-activating the account
        services.set_user_active(s, team.admin, team.inv_bdx.user_id, True, reason="user called the help desk")
    with reg.session(readonly=True) as s:
        assert services.authenticate(s, "inv.bdx", "correct horse battery", now=tl + LOCKOUT * 2 + gap * 5,
                                     client="198.51.100.0") is not None
        reasons = [e.reason for e in services.audit_trail(s, team.admin, table="users", limit=100)]
    assert any("locked" in r for r in reasons)


def test_site_summary_and_identity_erasure(reg: Registry, team: Team) -> None:
    enrolled_participant(reg, team, "BDX")
    enrolled_participant(reg, team, "TLS")
    with reg.session() as s:
        p = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new",
                                          identity=services.IdentityInput("Roux", "Anne", "1955-02-03", "H-7"))
        assert services.site_summary(s, team.mon_bdx) == {"BDX": {"enrolled": 1, "registered": 1}}
        summary = services.site_summary(s, team.admin)
        assert summary["TLS"] == {"enrolled": 1} and summary["NIM"] == {} and set(summary) == {"BDX", "PES", "NIM", "TLS"}
        with pytest.raises(AccessDeniedError):
            services.erase_identity(s, team.coord_bdx, p.id, reason="GDPR request")
        services.erase_identity(s, team.admin, p.id, reason="GDPR erasure request 2025-01")
        from lutarterial.errors import NotFoundError

        with pytest.raises(NotFoundError):
            services.get_identity(s, team.admin, p.id)
        trail = services.participant_audit_trail(s, team.admin, p.id)
        erased = [e for e in trail if e.table_name == "participant_identities" and e.action == "delete"]
        assert erased and "Roux" not in (erased[0].old_values or "")
