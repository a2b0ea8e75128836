"""Issue 13 (fast): PostgreSQL connections are pinged before use only after sitting idle in the pool
(``IDLE_PING_S``), not on every checkout; a connection that died while idle is still replaced
before a request uses it. JSON columns read back exactly as written (the faster parser)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from lutarterial.registry import db as dbmod


@pytest.mark.postgres
def test_idle_connection_killed_by_the_server_is_replaced(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = dbmod.make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as c:
            first = c.execute(text("select pg_backend_pid()")).scalar()
        # kill the pooled connection from another one, as a database restart would
        other = dbmod.make_engine(postgres_url, pool_size=1, max_overflow=0)
        with other.connect() as c:
            c.execute(text("select pg_terminate_backend(:p)"), {"p": first})
            c.commit()
        other.dispose()
        monkeypatch.setattr(dbmod, "IDLE_PING_S", 0.0)  # "idle long enough": the next checkout pings
        with engine.connect() as c:  # the dead connection is found by the ping and replaced
            second = c.execute(text("select pg_backend_pid()")).scalar()
        assert second != first
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_busy_connection_is_not_pinged(postgres_url: str) -> None:
    engine = dbmod.make_engine(postgres_url, pool_size=1, max_overflow=0)
    pings: list[int] = []
    real = engine.dialect.do_ping
    engine.dialect.do_ping = lambda conn: pings.append(1) or real(conn)  # type: ignore[method-assign]
    try:
        for _ in range(5):
            with engine.connect() as c:
                c.execute(text("select 1"))
        assert pings == []  # used within IDLE_PING_S of its last use: no extra round trip
    finally:
        engine.dialect.do_ping = real  # type: ignore[method-assign]
        engine.dispose()


@pytest.mark.parametrize("value", ['{"a": [1, 2.5, "é"], "b": null}', '123456789012345678901234567890', '1e400',
                                   '"\\ud800"', '{"x": 0.1, "x": 0.2}'])
def test_json_loads_matches_the_standard_parser(value: str) -> None:
    import json

    got, want = dbmod.json_loads(value), json.loads(value)
    assert got == want or (isinstance(got, float) and math.isinf(got) and got == want)
    assert dbmod.json_loads(value.encode("utf-8", "surrogatepass")) == want


def test_quick_read_refuses_writes(registry_url: str) -> None:
    """A quick read (autocommit on PostgreSQL) must never write: ORM flush, Core and text DML refused,
    nothing stored; reads work and see committed data."""
    from sqlalchemy import func, insert, select

    from lutarterial.errors import InvalidInputError
    from lutarterial.registry.db import Registry, upgrade
    from lutarterial.registry.models import Site

    upgrade(registry_url)
    reg = Registry(registry_url)
    try:
        with reg.session(readonly=True) as s:
            before = s.scalar(select(func.count()).select_from(Site))
        with reg.quick_read() as s:
            assert s.scalar(select(func.count()).select_from(Site)) == before
            s.add(Site(code="ZZZ", name="nowhere"))
            with pytest.raises(InvalidInputError, match="read-only session"):
                s.flush()
            s.rollback()
            with pytest.raises(InvalidInputError, match="read-only session"):
                s.execute(insert(Site).values(code="ZZY", name="nowhere"))
            with pytest.raises(InvalidInputError, match="read-only session"):
                s.execute(text("INSERT INTO sites (code, name) VALUES ('ZZX', 'nowhere')"))
        with reg.session(readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(Site)) == before
    finally:
        reg.dispose()
