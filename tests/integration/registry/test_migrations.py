"""Migrations: upgrade from an empty database on SQLite and PostgreSQL, schema = models, triggers."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lutarterial.errors import InvalidInputError
from lutarterial.registry import Registry, services, upgrade
from lutarterial.registry.db import current_revision, head_revision, make_engine
from lutarterial.registry.models import Base


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def test_upgrade_from_empty_creates_schema_sites_and_is_idempotent(empty_url: str) -> None:
    engine = make_engine(empty_url)
    assert current_revision(engine) is None
    with pytest.raises(InvalidInputError, match="db upgrade"):
        Registry.open(empty_url)
    assert upgrade(empty_url) == head_revision()
    assert current_revision(engine) == head_revision()
    assert upgrade(empty_url) == head_revision()  # idempotent: sites not duplicated
    reg = Registry.open(empty_url)
    with reg.session(readonly=True) as s:
        assert [site.code for site in services.list_sites(s)] == ["BDX", "NIM", "PES", "TLS"]
        from lutarterial.registry.audit import verify_audit_chain

        report = verify_audit_chain(s)
        assert report.ok and report.rows_checked == 4  # one audited create per site, none on re-run
    # The migrated schema is exactly the models' schema (no drift between migration and ORM).
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    reg.dispose()
    engine.dispose()


def test_audit_table_refuses_update_and_delete_at_database_level(registry_url: str) -> None:
    engine = make_engine(registry_url)
    for sql in ("UPDATE audit_entries SET reason = 'x' WHERE id = 1", "DELETE FROM audit_entries WHERE id = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reason FROM audit_entries WHERE id = 1")).scalar_one() != "x"
    engine.dispose()


def test_custom_site_configuration(sqlite_url: str) -> None:
    upgrade(sqlite_url, sites=[{"code": "LYO", "name": "HCL", "city": "Lyon"}])
    reg = Registry.open(sqlite_url)
    with reg.session(readonly=True) as s:
        assert [site.code for site in services.list_sites(s)] == ["LYO"]
    reg.dispose()
    with pytest.raises(InvalidInputError, match="three capital letters"):
        upgrade(sqlite_url, sites=[{"code": "lyon", "name": "HCL"}])


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not supported"):
        make_engine("mysql://localhost/x")
    with pytest.raises(InvalidInputError, match="not valid"):
        make_engine("not a url")


def test_downgrade_to_empty_and_upgrade_again(empty_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from lutarterial.registry.db import _alembic_config

    upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert upgrade(empty_url) == head_revision()
    assert "audit_entries" in inspect(engine).get_table_names()
    engine.dispose()
