"""Alembic environment: runs on the connection given by ``lutarterial.registry.db.upgrade``,
or on ``sqlalchemy.url`` / ``$LUTARTERIAL_DB`` when Alembic is called directly."""

from __future__ import annotations

from alembic import context

from lutarterial.registry.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from lutarterial.registry.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `lutarterial db upgrade`")
run_migrations_online()
