"""Shared fixtures: throwaway SQLite and PostgreSQL databases for the registry and the web app.

Fixtures (use them; do not open ``./data/lutarterial.db`` in tests):

``sqlite_url``          a fresh, empty SQLite database URL (file in ``tmp_path``).
``postgres_url``        a fresh, empty PostgreSQL database URL (``postgresql+psycopg://``).
``registry_url``        parametrized over ``sqlite`` and ``postgres``: a fresh database already at
                        the newest schema with the four sites (BDX, PES, NIM, TLS). Copied from a
                        per-session template, so it costs milliseconds per test.
``upgraded_sqlite_url`` / ``upgraded_postgres_url``: the same for one backend only.

PostgreSQL: the server on 127.0.0.1:5432 (user ``postgres``, trust auth) when it answers; otherwise
a private server is started with ``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` in a
temporary directory on a free port, and stopped at the end of the session. Every database created
is dropped at the end. Tests are skipped (with the reason) only when no PostgreSQL binaries exist.
Set ``LUTARTERIAL_TEST_PG`` to a server URL (without database) to use another server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# issue 9: one audit key for the whole test session (databases are copied from per-session
# templates, so a key file next to each copy would not match the template's rows). Tests of the
# key file itself remove this variable with monkeypatch.
os.environ.setdefault("LUTARTERIAL_AUDIT_KEY", "test-session-audit-key-" + "k" * 40)


def _try_connect(url: str) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://") + "/postgres",
                             connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _PrivateServer:
    """A throwaway PostgreSQL cluster owned by this test session."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="lutarterial-pg-"))
        self.port = _free_port()
        self.prefix: list[str] = []
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # initdb refuses to run as root
            user = "postgres" if shutil.which("runuser") and _user_exists("postgres") else "nobody"
            self.prefix = ["runuser", "-u", user, "--"]
            shutil.chown(self.dir, user=user)
        self.data = self.dir / "data"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                  str(self.dir / "log.txt"), "-w", "-t", "60", "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        import pwd

        pwd.getpwnam(name)
        return True
    except (KeyError, ImportError):
        return False


def _postgres_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """A reachable server plus the databases this session created on it (dropped at the end)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.created: list[str] = []
        self._template: str | None = None

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(self.base_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres",
                               autocommit=True, connect_timeout=10)

    def create_database(self, template: str | None = None) -> str:
        name = f"lutarterial_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.created.append(name)
        return f"{self.base_url}/{name}"

    def upgraded_database(self) -> str:
        if self._template is None:
            from lutarterial.registry.db import upgrade

            url = self.create_database()
            upgrade(url)
            self._template = url.rsplit("/", 1)[1]
        return self.create_database(template=self._template)

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in reversed(self.created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this session (see module docstring)."""
    base = os.environ.get("LUTARTERIAL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432").rstrip("/")
    private: _PrivateServer | None = None
    if not _try_connect(base):
        bindir = _postgres_bindir()
        if bindir is None:
            pytest.skip("PostgreSQL tests need a server: none answers on 127.0.0.1:5432 and no PostgreSQL "
                        "binaries (initdb, pg_ctl) are installed; run `bash scripts/bootstrap.sh --system`")
        private = _PrivateServer(bindir)
        base = private.start()
        deadline = time.monotonic() + 30
        while not _try_connect(base):
            if time.monotonic() > deadline:
                private.stop()
                raise RuntimeError(f"private PostgreSQL server at {base} did not answer")
            time.sleep(0.2)
    server = PostgresServer(base)
    try:
        yield server
    finally:
        try:
            server.drop_all()
        finally:
            if private is not None:
                private.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database URL."""
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database URL (dropped at the end of the session)."""
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lutarterial.registry.db import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def upgraded_sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite database at the newest schema, with the configured sites."""
    target = tmp_path / "registry.db"
    shutil.copyfile(_sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def upgraded_postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh PostgreSQL database at the newest schema, with the configured sites."""
    return postgres_server.upgraded_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest) -> str:
    """A fresh upgraded database, once on SQLite and once on PostgreSQL."""
    name = "upgraded_sqlite_url" if request.param == "sqlite" else "upgraded_postgres_url"
    return str(request.getfixturevalue(name))
