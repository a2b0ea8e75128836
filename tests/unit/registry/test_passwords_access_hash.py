"""Unit tests: password hashing, permission table, canonical JSON and the row hash."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutarterial.errors import AccessDeniedError, InvalidInputError
from lutarterial.registry.access import PERMISSIONS, Actor, Permission, can, require, require_site
from lutarterial.registry.audit import GENESIS_HASH, canonical_json, compute_row_hash
from lutarterial.registry.db import normalise_url
from lutarterial.registry.models import Role
from lutarterial.registry.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password


def test_password_hash_roundtrip_salt_and_refusals() -> None:
    h1, h2 = hash_password("correct horse"), hash_password("correct horse")
    assert h1 != h2 and h1.startswith("scrypt$")  # per-user random salt
    assert "correct horse" not in h1
    assert verify_password("correct horse", h1) and verify_password("correct horse", h2)
    assert not verify_password("correct horsf", h1)
    assert not verify_password("correct horse", "garbage") and not verify_password("x", "md5$1$2$3$ab$cd")
    with pytest.raises(InvalidInputError):
        hash_password("a" * (MIN_PASSWORD_LENGTH - 1))
    assert verify_password("a" * MIN_PASSWORD_LENGTH, hash_password("a" * MIN_PASSWORD_LENGTH))


def test_monitor_has_no_write_permission_and_identity_is_admin_only() -> None:
    monitor = Actor(1, "m", frozenset({Role.MONITOR}), frozenset({1}))
    # Monitors write no study data; their own monitoring acts (queries, SDV marks) are annotations.
    monitoring = (Permission.QUERY_OPEN, Permission.SDV)
    writes = [p for p in PERMISSIONS if p not in (Permission.IDENTITY_READ, Permission.EXPORT, *monitoring)]
    assert writes and not any(can(monitor, p) for p in writes)
    assert all(can(monitor, p) for p in monitoring)
    assert monitor.read_only
    assert PERMISSIONS[Permission.IDENTITY_READ] == {Role.ADMIN}
    for role in Role:
        actor = Actor(1, "u", frozenset({role}), frozenset({1}))
        assert can(actor, Permission.IDENTITY_READ) == (role is Role.ADMIN)
    with pytest.raises(AccessDeniedError, match="may not"):
        require(monitor, Permission.VISIT_WRITE)
    with pytest.raises(KeyError):
        can(monitor, "no.such.permission")


def test_site_membership() -> None:
    coord = Actor(1, "c", frozenset({Role.COORDINATOR}), frozenset({1, 2}))
    require_site(coord, 2)
    with pytest.raises(AccessDeniedError):
        require_site(coord, 3)
    require_site(Actor(2, "a", frozenset({Role.ADMIN})), 3)


def test_canonical_json_is_order_independent_and_typed() -> None:
    assert canonical_json({"b": 1, "a": [dt.date(2024, 1, 2)]}) == '{"a":["2024-01-02"],"b":1}'
    aware = dt.datetime(2024, 1, 2, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert canonical_json(aware) == '"2024-01-02T12:00:00Z"'
    assert canonical_json("Nîmes") == '"Nîmes"'
    assert canonical_json(float("nan")) == '"nan"'


_ROW = {"id": 3, "occurred_at": "2024-01-01T00:00:00.000000Z", "actor_user_id": 2, "actor_username": "u",
        "actor_roles": "coordinator", "site_id": 1, "table_name": "visits", "row_id": "5", "participant_id": 4,
        "action": "update", "old_values": '{"a":1}', "new_values": '{"a":2}', "reason": "typo"}


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(_ROW)), value=st.one_of(st.integers(), st.text(max_size=20), st.none()))
def test_any_change_of_a_hashed_field_changes_the_hash(key: str, value: object) -> None:
    base = compute_row_hash(GENESIS_HASH, _ROW)
    changed = {**_ROW, key: value}
    if changed[key] == _ROW[key]:
        return
    assert compute_row_hash(GENESIS_HASH, changed) != base


def test_hash_depends_on_previous_hash_and_ignores_stored_hashes() -> None:
    h = compute_row_hash(GENESIS_HASH, _ROW)
    assert compute_row_hash("1" * 64, _ROW) != h
    assert compute_row_hash(GENESIS_HASH, {**_ROW, "row_hash": "x", "prev_hash": "y"}) == h
    assert len(h) == 64


def test_database_urls() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(InvalidInputError):
        normalise_url("oracle://h/db")


def test_default_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from lutarterial.registry.db import DEFAULT_DB_URL, default_db_url

    monkeypatch.delenv("LUTARTERIAL_DB", raising=False)
    assert default_db_url() == DEFAULT_DB_URL == "sqlite:///./data/lutarterial.db"
    monkeypatch.setenv("LUTARTERIAL_DB", "postgresql://x@y/z")
    assert default_db_url() == "postgresql://x@y/z"
