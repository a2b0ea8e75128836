"""CLI commands of the registry: ``db upgrade``, ``user add``, ``audit verify|export``, ``export csv|odm``.

The database is ``--db URL``, else ``$LUTARTERIAL_DB``, else ``sqlite:///./data/lutarterial.db``.
Commands run with the operating-system user's authority (whoever can run them can open the
database file or has the PostgreSQL credentials), recorded in the audit trail as
``cli:<os user>`` with the admin role; every change still needs a reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from lutarterial.registry.access import Actor

__all__ = ["register"]

_DB_HELP = "Database URL (default: $LUTARTERIAL_DB or sqlite:///./data/lutarterial.db)."


def _cli_actor() -> Actor:
    import getpass

    from lutarterial.registry.access import Actor
    from lutarterial.registry.models import Role

    try:
        who = getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        who = "unknown"
    return Actor(user_id=None, username=f"cli:{who}", roles=frozenset({Role.ADMIN}))


def _open(db: str | None):  # type: ignore[no-untyped-def]
    from lutarterial.registry.db import Registry

    return Registry.open(db)


@contextmanager
def _session(db: str | None, readonly: bool = False) -> Iterator[Any]:
    """One unit of work on the registry at ``db``; the engine is disposed afterwards."""
    registry = _open(db)
    try:
        with registry.session(readonly=readonly) as s:
            yield s
    finally:
        registry.dispose()


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


db_app = typer.Typer(help="Database schema (Alembic migrations shipped with the package).", no_args_is_help=True)
user_app = typer.Typer(help="Registry users (roles, sites, passwords).", no_args_is_help=True)
audit_app = typer.Typer(help="Audit trail: verify the hash chain, export it.", no_args_is_help=True)
export_app = typer.Typer(help="Export registry data: CSV per table or CDISC ODM 1.3.2 XML.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    sites: Path = typer.Option(None, "--sites", help="JSON list of sites {code, name, city} (default: packaged)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create or migrate the database to the newest schema and make sure the sites exist."""
    from lutarterial.registry.db import load_site_config, normalise_url, upgrade

    url = normalise_url(db)
    revision = upgrade(url, sites=load_site_config(sites) if sites else None)
    if as_json:
        _print_json({"database": _safe_url(url), "revision": revision})
    else:
        typer.echo(f"database {_safe_url(url)} is at revision {revision}")


@db_app.command("current")
def db_current(db: str = typer.Option(None, "--db", help=_DB_HELP)) -> None:
    """Print the database's schema revision and the packaged head revision."""
    from lutarterial.registry.db import current_revision, head_revision, make_engine

    engine = make_engine(db)
    try:
        typer.echo(f"current: {current_revision(engine) or 'empty'}  head: {head_revision()}")
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="Login name (lowercase letters, digits, . _ -)."),
    role: list[str] = typer.Option(..., "--role", help="coordinator, investigator, physicist, monitor or admin; repeatable."),
    site: list[str] = typer.Option([], "--site", help="Site code (e.g. BDX); repeatable. Not needed for admin."),
    full_name: str = typer.Option("", "--full-name", help="Full name shown in the audit trail views."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from the first line of stdin."),
    reason: str = typer.Option("user account created", "--reason", help="Reason recorded in the audit trail."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create a user. The password is prompted (hidden, twice) or read from stdin; never echoed."""
    from lutarterial.registry import services

    password = _read_password(password_stdin)
    with _session(db) as s:
        user = services.create_user(s, _cli_actor(), username=username, password=password, roles=role,
                                    site_codes=site, full_name=full_name, reason=reason)
        info = {"id": user.id, "username": user.username, "roles": sorted(r.role for r in user.roles),
                "sites": sorted(m.site.code for m in user.memberships)}
    if as_json:
        _print_json(info)
    else:
        typer.echo(f"user {info['username']} created (roles: {', '.join(info['roles'])}; "
                   f"sites: {', '.join(info['sites']) or 'all (admin)'})")


@user_app.command("list")
def user_list(db: str = typer.Option(None, "--db", help=_DB_HELP),
              as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List users with roles, sites and active flag."""
    from lutarterial.registry import services

    with _session(db, readonly=True) as s:
        rows = [{"id": u.id, "username": u.username, "active": u.active,
                 "roles": sorted(r.role for r in u.roles), "sites": sorted(m.site.code for m in u.memberships)}
                for u in services.list_users(s, _cli_actor())]
    if as_json:
        _print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "username", "roles", "sites", "active")
    for r in rows:
        table.add_row(str(r["id"]), r["username"], ", ".join(r["roles"]), ", ".join(r["sites"]), str(r["active"]))
    Console().print(table)


@user_app.command("set-active")
def user_set_active(
    username: str = typer.Argument(...),
    active: bool = typer.Option(..., "--active/--inactive", help="Activate or deactivate the account."),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Activate or deactivate a user (users are never deleted)."""
    from lutarterial.registry import services

    with _session(db) as s:
        user = _find_user(s, username)
        services.set_user_active(s, _cli_actor(), user.id, active, reason=reason)
    typer.echo(f"user {username} {'activated' if active else 'deactivated'}")


@user_app.command("set-password")
def user_set_password(
    username: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    reason: str = typer.Option("password reset by administrator", "--reason"),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Set a new password for a user (prompted twice, hidden, or from stdin)."""
    from lutarterial.registry import services

    password = _read_password(password_stdin)
    with _session(db) as s:
        user = _find_user(s, username)
        services.set_password(s, _cli_actor(), user.id, password, reason=reason)
    typer.echo(f"password of {username} changed")


@user_app.command("unlock")
def user_unlock(
    username: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Lift a sign-in lock and forget the user's failed sign-ins (every web worker sees it at once)."""
    from lutarterial.registry import services

    with _session(db) as s:
        user = _find_user(s, username)
        services.unlock_user(s, _cli_actor(), user.id, reason=reason)
    typer.echo(f"user {username} unlocked")


def _find_user(session, username: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from lutarterial.errors import NotFoundError
    from lutarterial.registry.models import User

    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise NotFoundError(f"user {username!r} does not exist")
    return user


@audit_app.command("verify")
def audit_verify(db: str = typer.Option(None, "--db", help=_DB_HELP),
                 as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Prove the data: hash chain (keyed), every audited table reconciled with the replayed
    audit trail, the last checkpoint outside the database, the append-only triggers.

    Exit 0 when all hold (a checkpoint is then appended); 1 with every problem listed otherwise;
    2 when the database cannot be read.
    """
    from sqlalchemy.exc import DBAPIError

    from lutarterial.errors import InvalidInputError
    from lutarterial.registry.audit_proof import verify_registry

    try:
        with _session(db, readonly=True) as s:
            report = verify_registry(s)
    except DBAPIError as exc:
        raise InvalidInputError(f"cannot read the database: {str(exc.orig).splitlines()[0]}") from None
    if as_json:
        _print_json(report.to_dict())
    elif report.ok:
        cp = report.checkpoint
        typer.echo(f"audit trail intact: {report.chain.rows_checked} rows, head {report.chain.head_hash}; "
                   f"every audited row matches the trail"
                   + (f"; consistent with the checkpoint of {cp['at']} ({cp['rows']} rows)" if cp else "")
                   + (f"; {report.unverified_fields} fields not covered by the trail" if report.unverified_fields
                      else ""))
    else:
        problems = report.problems()
        typer.echo(f"audit verification FAILED ({len(problems)} problems):", err=True)
        for line in problems[:200]:
            typer.echo(f"  - {line}", err=True)
        if len(problems) > 200:
            typer.echo(f"  ... and {len(problems) - 200} more (use --json)", err=True)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    out: Path = typer.Option(..., "--out", help="CSV file to write."),
    participant: str = typer.Option(None, "--participant", help="Only this participant (trial number)."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Export the audit trail (all, or one participant's) as CSV with old and new values."""
    from lutarterial.registry.exports import write_audit_csv

    with _session(db, readonly=True) as s:
        path = write_audit_csv(s, _cli_actor(), out, participant=participant)
    typer.echo(f"audit trail written to {path}")


@export_app.command("csv")
def export_csv_cmd(
    out: Path = typer.Option(..., "--out", help="Directory, or a file ending in .zip."),
    site: str = typer.Option(None, "--site", help="Only this site's participants."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """One CSV per table plus manifest.json (SHA-256 per file, audit chain head)."""
    from lutarterial.registry.exports import export_csv

    with _session(db, readonly=True) as s:
        path = export_csv(s, _cli_actor(), out, site_code=site)
    typer.echo(f"CSV export written to {path}")


@export_app.command("odm")
def export_odm_cmd(
    out: Path = typer.Option(..., "--out", help="XML file to write."),
    site: str = typer.Option(None, "--site", help="Only this site's participants."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """CDISC ODM 1.3.2 XML: metadata, clinical data per participant and the audit records."""
    from lutarterial.registry.exports import export_odm

    with _session(db, readonly=True) as s:
        path = export_odm(s, _cli_actor(), out, site_code=site)
    typer.echo(f"ODM export written to {path}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(db_app, name="db")
    app.add_typer(user_app, name="user")
    app.add_typer(audit_app, name="audit")
    app.add_typer(export_app, name="export")
