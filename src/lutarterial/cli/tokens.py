"""``lutarterial token create|list|revoke``: personal API tokens, from the command line.

Like the other registry commands, these run with the operating-system user's authority over
the database (recorded as ``cli:<os user>`` in the audit trail) on behalf of ``--user``.
The plain token is printed once by ``create`` and never stored.
"""

from __future__ import annotations

import typer

from lutarterial.cli.registry import _DB_HELP, _cli_actor, _print_json, _session

__all__ = ["register"]

token_app = typer.Typer(help="Personal API tokens (Authorization: Bearer) for scripts.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    user: str = typer.Option(..., "--user", help="The user the token acts for (with their roles and sites)."),
    name: str = typer.Option(..., "--name", help="A name for the token, unique per user (e.g. nightly-labs)."),
    scope: str = typer.Option(..., "--scope", help="read (GET only) or write."),
    site: list[str] = typer.Option([], "--site", help="Restrict to this site of the user (repeatable; default: all)."),
    expires_days: int = typer.Option(None, "--expires-days", help="Days of validity (1-3650; default: no expiry)."),
    reason: str = typer.Option("API token created", "--reason", help="Reason recorded in the audit trail."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (includes the token)."),
) -> None:
    """Create a token and print it ONCE (only its SHA-256 is stored)."""
    from lutarterial.registry.tokens import create_token

    with _session(db) as s:
        info, plain = create_token(s, _cli_actor(), username=user, name=name, scope=scope.strip().lower(),
                                   reason=reason, sites=site or None, expires_days=expires_days)
        out = {**info.to_dict(), "token": plain}
    if as_json:
        _print_json(out)
        return
    typer.echo(f"token {out['name']!r} for {out['username']} (scope {out['scope']}, sites "
               f"{', '.join(out['sites'] or ['all of the user'])}, expires {out['expires_at'] or 'never'}):")
    typer.echo(plain)
    typer.echo("store it now in a secret store: it is not shown again", err=True)


@token_app.command("list")
def token_list(
    user: str = typer.Option(None, "--user", help="Only this user's tokens (default: every user's)."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List tokens (name, prefix, scope, sites, created, expires, last used, status); never the secrets."""
    from lutarterial.registry.tokens import list_tokens

    with _session(db, readonly=True) as s:
        rows = [t.to_dict() for t in list_tokens(s, _cli_actor(), username=user)]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("no API tokens")
    for t in rows:
        typer.echo(f"{t['id']:>4}  {t['username']:<16} {t['name']:<24} lut_{t['prefix']}_…  {t['scope']:<5} "
                   f"{','.join(t['sites'] or ['*']):<8} created {t['created_at']}  expires {t['expires_at'] or 'never'}"
                   f"  last used {t['last_used_at'] or 'never'}  {t['status']}")


@token_app.command("revoke")
def token_revoke(
    user: str = typer.Option(..., "--user", help="The token's user."),
    name: str = typer.Option(..., "--name", help="The token's name."),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Revoke a token: it stops working (within 2 s on running servers)."""
    from lutarterial.registry.tokens import revoke_token

    with _session(db) as s:
        out = revoke_token(s, _cli_actor(), username=user, name=name, reason=reason).to_dict()
    if as_json:
        _print_json(out)
    else:
        typer.echo(f"token {out['name']!r} of {out['username']} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
