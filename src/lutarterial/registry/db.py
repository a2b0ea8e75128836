"""Database connection, migrations and the unit-of-work session.

* Default URL: ``$LUTARTERIAL_DB`` or ``sqlite:///./data/lutarterial.db`` (the directory is
  created). PostgreSQL: ``postgresql+psycopg://user@host:5432/dbname`` (psycopg 3).
* Migrations are Alembic scripts shipped inside the package
  (``lutarterial/registry/migrations``), so :func:`upgrade` works from an installed wheel.
* SQLite is configured for a multi-user web server: WAL journal, foreign keys on, 30 s busy
  timeout, and write sessions that start with ``BEGIN IMMEDIATE`` so two writers queue instead of
  failing half-way (pysqlite's own transaction handling is replaced, as SQLAlchemy documents).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from lutarterial.errors import InvalidInputError

__all__ = [
    "DEFAULT_DB_URL",
    "default_db_url",
    "normalise_url",
    "make_engine",
    "upgrade",
    "current_revision",
    "head_revision",
    "Registry",
    "ReadOnlySession",
    "load_site_config",
]

DEFAULT_DB_URL = "sqlite:///./data/lutarterial.db"


def default_db_url() -> str:
    """``$LUTARTERIAL_DB`` when set, else the embedded SQLite file ``./data/lutarterial.db``."""
    return os.environ.get("LUTARTERIAL_DB") or DEFAULT_DB_URL


def normalise_url(url: str | None) -> str:
    """Validate a database URL; ``postgresql://`` and ``postgres://`` get the psycopg 3 driver."""
    url = (url or default_db_url()).strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInputError(
            f"database URL {url!r} is not valid; use sqlite:///path/to/file.db or "
            "postgresql+psycopg://user@host:5432/dbname"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInputError(f"database {parsed.get_backend_name()!r} is not supported (SQLite or PostgreSQL)")
    return url


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default :func:`default_db_url`) with the settings above."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        kwargs.setdefault("json_deserializer", json_loads)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if make_url(url).database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    pre_ping = kwargs.pop("pool_pre_ping", None)
    kwargs.setdefault("json_deserializer", json_loads)
    engine = create_engine(url, pool_pre_ping=bool(pre_ping), **kwargs)
    if pre_ping is None:  # default: ping a pooled connection only after it sat idle (below)
        _ping_when_idle(engine)
    return engine


def quick_engine_for(url: str, **kwargs: Any) -> Engine | None:
    """For PostgreSQL, an engine (``make_engine`` with ``kwargs``) whose connections are in autocommit,
    for :meth:`Registry.quick_read`; None for SQLite (a quick read there is a local transaction).

    Its connections are read-only on the server (``default_transaction_read_only``, set at connection
    start: no extra round trip): whatever reaches them — a data-modifying CTE, ``connection().execute``
    of an UPDATE — is refused by PostgreSQL itself, since in autocommit nothing would roll it back.
    Options given in the URL or in ``PGOPTIONS`` (``search_path``, ``statement_timeout``) still apply.
    A connection pooler must pass the ``options`` startup parameter on (PgBouncer refuses it unless
    listed in ``ignore_startup_parameters``, and then drops it: the read-only guard is lost, not the
    reads).
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return None
    connect_args = dict(kwargs.pop("connect_args", None) or {})
    # the options libpq would use otherwise (the URL's, else PGOPTIONS: an explicit ``options``
    # makes libpq ignore PGOPTIONS, so it is carried over, as the main engine applies it)
    options = str(connect_args.get("options") or make_url(url).query.get("options")
                  or os.environ.get("PGOPTIONS") or "")
    connect_args["options"] = (options + " -c default_transaction_read_only=on").strip()
    return make_engine(url, isolation_level="AUTOCOMMIT", connect_args=connect_args, **kwargs)


#: A pooled PostgreSQL connection idle longer than this is checked (``SELECT 1``) before use.
IDLE_PING_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling (SQLAlchemy's "custom pre-ping" recipe) for connections that
    sat idle in the pool for :data:`IDLE_PING_S` seconds or more: a dead one (database restarted,
    idle connection dropped by a firewall) is replaced before the request uses it. A connection in
    steady use is not pinged: ``pool_pre_ping`` cost one more round trip on every checkout, twice
    per web request (issue 13, fast). A connection that dies between two uses less than 10 s apart
    fails that one request, and the pool then replaces it (SQLAlchemy invalidates it on the error).
    """
    import time

    from sqlalchemy import exc

    @event.listens_for(engine, "connect")
    def _fresh(dbapi_conn: Any, record: Any) -> None:
        record.info["lutarterial_used_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_conn: Any, record: Any) -> None:
        record.info["lutarterial_used_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        used = record.info.get("lutarterial_used_at")
        if used is not None and time.monotonic() - used < IDLE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as err:  # noqa: BLE001 - any failure of the ping means: use another connection
            raise exc.DisconnectionError(f"pooled connection unusable: {err}") from err
        if not alive:
            raise exc.DisconnectionError("pooled connection did not answer")


def json_loads(text: str | bytes) -> Any:
    """``json.loads`` with the same result, 5x faster on large values (pydantic-core's parser):
    stored analyses and audit values are tens of kilobytes. A text it refuses that ``json`` reads
    (a lone surrogate escape) goes through ``json.loads``."""
    from pydantic_core import from_json

    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("lutarterial.registry") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def load_site_config(path: str | os.PathLike[str] | None = None) -> list[dict[str, str]]:
    """Sites to create: ``path`` (JSON list of {code, name, city}), ``$LUTARTERIAL_SITES``, or the
    packaged default (Bordeaux BDX, Pessac PES, Nîmes NIM, Toulouse TLS)."""
    source = path or os.environ.get("LUTARTERIAL_SITES")
    try:
        if source:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        else:
            data = json.loads((resources.files("lutarterial.registry") / "sites.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"site configuration {source}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(s, dict) and "code" in s and "name" in s for s in data):
        raise InvalidInputError("site configuration must be a JSON list of objects with 'code' and 'name'")
    return [{"code": str(s["code"]), "name": str(s["name"]), "city": str(s.get("city", ""))} for s in data]


def upgrade(url: str | None = None, *, sites: list[dict[str, str]] | None = None) -> str:
    """Bring the database at ``url`` to the newest schema and make sure the configured sites exist.

    Idempotent; returns the revision reached. Site creation is audited (actor ``system``).
    """
    from alembic import command

    from lutarterial.registry.locks import registry_lock

    url = normalise_url(url)
    with registry_lock(url, "upgrade"):  # two upgrades at once: the second waits, then finds nothing to do
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                command.upgrade(_alembic_config(conn), "head")
            from lutarterial.registry.services import ensure_sites

            registry = Registry(engine)
            with registry.session() as session:
                ensure_sites(session, load_site_config() if sites is None else sites)
            return head_revision()
        finally:
            engine.dispose()


class ReadOnlySession(Session):
    """A session for reading only: any flush with changes, and any INSERT/UPDATE/DELETE statement,
    raises instead of running (on PostgreSQL read sessions run in autocommit, so a write there would
    be kept, not rolled back with the session)."""


def _refuse(what: str) -> None:
    raise InvalidInputError(f"{what} in a read-only session refused: writes go through a write session "
                            "(Registry.session())")


@event.listens_for(ReadOnlySession, "before_flush", insert=True)
def _no_flush_in_read(session: Session, flush_context: Any, instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        _refuse("a write (flush)")


@event.listens_for(ReadOnlySession, "do_orm_execute", insert=True)
def _no_dml_in_read(state: Any) -> None:
    from sqlalchemy import TextClause

    stmt = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        _refuse(f"{type(stmt).__name__.upper()} statement")
    if isinstance(stmt, TextClause) and stmt.text.lstrip().split(None, 1)[:1] and \
            stmt.text.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE", "CREATE", "DROP",
                                                            "ALTER", "TRUNCATE", "GRANT", "REVOKE"}:
        _refuse("SQL " + stmt.text.lstrip().split(None, 1)[0].upper())


class Registry:
    """An open database: an engine plus a session factory.

    ``with registry.session() as s:`` is one unit of work: it commits when the block ends
    normally and rolls back on any exception. Use one per web request.
    """

    def __init__(self, engine_or_url: Engine | str | None = None, *, quick_engine: Engine | None = None) -> None:
        self.engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
        is_sqlite = self.engine.dialect.name == "sqlite"
        if quick_engine is not None and (is_sqlite or quick_engine.url != self.engine.url):
            raise ValueError("quick_engine must be a PostgreSQL engine on the same database as the registry's")
        write_bind = self.engine.execution_options(sqlite_begin="IMMEDIATE") if is_sqlite else self.engine
        self._write = sessionmaker(bind=write_bind, expire_on_commit=False)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        # PostgreSQL quick reads run in autocommit: no BEGIN / ROLLBACK round trips (two of the dozen
        # a web page cost; issue 13, fast). For a few statements that need no common snapshot, what
        # they see is unchanged: PostgreSQL's default READ COMMITTED gives every statement its own
        # snapshot inside a transaction too. No server-side cursor (it needs a transaction), and no
        # write (ReadOnlySession refuses: in autocommit a write would be kept, not rolled back).
        # SQLite: a transaction as in any read (a local BEGIN costs nothing), writes refused the same way.
        # A server gives quick reads an engine of their own whose connections stay in autocommit
        # (``quick_engine_for``): switching a shared connection to autocommit and back on every
        # checkout cost as much as the two round trips it saved (363 against 218 us of CPU for
        # one indexed read, 6 Dec 2026). Without one, the shared engine switches per checkout.
        self._quick_engine = quick_engine
        if is_sqlite:
            quick_bind = self.engine
        elif quick_engine is not None:
            quick_bind = quick_engine
        else:
            quick_bind = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._quick = sessionmaker(bind=quick_bind, expire_on_commit=False, class_=ReadOnlySession)

    @property
    def quick_engine(self) -> Engine:
        """The engine whose pool serves :meth:`quick_read` (the registry's own unless one was given)."""
        return self._quick_engine or self.engine

    @classmethod
    def open(cls, url: str | Engine | None = None, *, check_schema: bool = True,
             quick_engine: Engine | None = None) -> Registry:
        """Open ``url``; refuse a database whose schema is not at the packaged head revision."""
        registry = cls(url, quick_engine=quick_engine)
        if check_schema:
            current = current_revision(registry.engine)
            if current != head_revision():
                registry.dispose()
                raise InvalidInputError(
                    f"database schema is at {current or 'nothing (empty database)'}, "
                    f"this version needs {head_revision()}: run `lutarterial db upgrade`"
                )
        return registry

    @contextlib.contextmanager
    def quick_read(self) -> Iterator[Session]:
        """A session for a few independent reads (a web page's data), writes refused
        (:class:`ReadOnlySession`); on PostgreSQL in autocommit (no BEGIN/ROLLBACK round trips)."""
        with self._quick() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextlib.contextmanager
    def quick_connection(self) -> Iterator[Connection]:
        """A Core connection for one or two reads that need no ORM (the session cookie's check on
        every web request): :meth:`quick_read` without the session object. The caller must not write
        (on PostgreSQL it is in autocommit: a write would be kept)."""
        with self.quick_engine.connect() as conn:
            if self._quick_engine is None and self.engine.dialect.name != "sqlite":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                yield conn
            finally:
                conn.rollback()

    @contextlib.contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work that commits on success, rolls back on error."""
        factory = self._read if readonly else self._write
        with factory() as session:
            try:
                yield session
                if readonly:
                    session.rollback()
                else:
                    session.commit()
            except BaseException:
                session.rollback()
                raise

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        self.engine.dispose()
        if self._quick_engine is not None:
            self._quick_engine.dispose()
