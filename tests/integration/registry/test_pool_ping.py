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


def test_quick_engine_of_its_own_for_reads(registry_url: str) -> None:
    """A server's registry gives quick reads an engine whose connections stay in autocommit
    (PostgreSQL): reads through it see committed data, writes through the registry are unchanged,
    and both engines are closed with the registry. SQLite has none (a quick read is a local
    transaction). An engine on another database is refused."""
    from sqlalchemy import func, select

    from lutarterial.registry.db import Registry, make_engine, quick_engine_for
    from lutarterial.registry.models import Site
    from lutarterial.registry.services import ensure_sites

    quick = quick_engine_for(registry_url, pool_size=2)
    if registry_url.startswith("sqlite"):
        assert quick is None
    else:
        assert quick is not None and quick.url == make_engine(registry_url).url
    reg = Registry.open(make_engine(registry_url), quick_engine=quick)
    try:
        assert reg.quick_engine is (quick or reg.engine)
        with reg.session() as s:
            ensure_sites(s, [{"code": "QQQ", "name": "quick", "city": ""}])
        with reg.quick_connection() as conn:
            assert conn.execute(select(func.count()).select_from(Site).where(Site.code == "QQQ")).scalar() == 1
            if quick is not None:  # no BEGIN: the driver connection is in autocommit
                assert conn.connection.dbapi_connection.autocommit is True
        with reg.quick_read() as s:
            assert s.scalar(select(Site.name).where(Site.code == "QQQ")) == "quick"
    finally:
        reg.dispose()
    if quick is not None:
        assert quick.pool.checkedin() == 0  # disposed with the registry
        other = registry_url.rsplit("/", 1)[0] + "/postgres"
        with pytest.raises(ValueError, match="same database"):
            Registry(make_engine(registry_url), quick_engine=quick_engine_for(other))


def test_quick_connection_without_an_engine_of_its_own(registry_url: str) -> None:
    """The CLI's registry (no quick engine): on PostgreSQL the shared connection is switched to
    autocommit for the read and back afterwards (a later write session still commits atomically)."""
    from sqlalchemy import func, select

    from lutarterial.registry.db import Registry
    from lutarterial.registry.models import Site
    from lutarterial.registry.services import ensure_sites

    reg = Registry.open(registry_url)
    try:
        with reg.quick_connection() as conn:
            n = conn.execute(select(func.count()).select_from(Site)).scalar()
            if not registry_url.startswith("sqlite"):
                assert conn.connection.dbapi_connection.autocommit is True
        with pytest.raises(RuntimeError):
            with reg.session() as s:
                ensure_sites(s, [{"code": "QQR", "name": "rolled back", "city": ""}])
                s.flush()
                raise RuntimeError("abort")
        with reg.quick_connection() as conn:
            assert conn.execute(select(func.count()).select_from(Site)).scalar() == n
    finally:
        reg.dispose()


def test_quick_engine_connections_are_read_only_on_the_server(postgres_url: str) -> None:
    """Whatever reaches the quick engine (a data-modifying CTE, an UPDATE through the connection)
    is refused by PostgreSQL itself: in autocommit nothing would roll it back. Reads work; the
    registry's own engine still writes; an ``options`` of the URL is kept."""
    from sqlalchemy import exc, func, select

    from lutarterial.registry.db import Registry, make_engine, quick_engine_for, upgrade
    from lutarterial.registry.models import Site

    upgrade(postgres_url)
    quick = quick_engine_for(postgres_url, pool_size=1)
    assert quick is not None
    reg = Registry.open(make_engine(postgres_url), quick_engine=quick)
    try:
        with reg.quick_connection() as conn:
            before = conn.execute(select(func.count()).select_from(Site)).scalar()
            assert conn.execute(text("SHOW default_transaction_read_only")).scalar() == "on"
            for sql in ("UPDATE sites SET name = name || 'x'",
                        "WITH gone AS (DELETE FROM sites RETURNING id) SELECT count(*) FROM gone"):
                with pytest.raises(exc.DBAPIError, match="read-only transaction"):
                    conn.execute(text(sql))
        with reg.quick_read() as s:
            with pytest.raises(exc.DBAPIError, match="read-only transaction"):
                s.connection().execute(text("UPDATE sites SET name = name || 'x'"))
        with reg.session() as s:  # the main engine is not read-only
            s.execute(text("SELECT 1"))
            assert s.connection().execute(text("SHOW default_transaction_read_only")).scalar() == "off"
        with reg.quick_connection() as conn:
            assert conn.execute(select(func.count()).select_from(Site)).scalar() == before
    finally:
        reg.dispose()
    sep = "&" if "?" in postgres_url else "?"
    with_options = quick_engine_for(postgres_url + sep + "options=-c%20statement_timeout%3D12345", pool_size=1)
    assert with_options is not None
    try:
        with with_options.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "12345ms"
            assert conn.execute(text("SHOW default_transaction_read_only")).scalar() == "on"
    finally:
        with_options.dispose()


def test_quick_engine_keeps_pgoptions(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit ``options`` makes libpq ignore PGOPTIONS: the quick engine carries it over, so
    both engines run with the same server settings (search_path, statement_timeout)."""
    from lutarterial.registry.db import make_engine, quick_engine_for

    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=4321")
    quick, main = quick_engine_for(postgres_url, pool_size=1), make_engine(postgres_url)
    assert quick is not None
    try:
        for engine, read_only in ((main, "off"), (quick, "on")):
            with engine.connect() as conn:
                assert conn.execute(text("SHOW statement_timeout")).scalar() == "4321ms"
                assert conn.execute(text("SHOW default_transaction_read_only")).scalar() == read_only
    finally:
        quick.dispose()
        main.dispose()
