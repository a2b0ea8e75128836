"""``lutarterial session list|end``: administrators see and end sign-in sessions (issue 9).

Ending takes effect at the session's next request in every web worker (the web checks the
session row on each request). ``user set-password``, ``user set-active --inactive`` and role or
site changes end a user's sessions by themselves.
"""

from __future__ import annotations

import json

import typer

from lutarterial.errors import InvalidInputError

__all__ = ["register"]

_DB_HELP = "Database URL (default: $LUTARTERIAL_DB or sqlite:///./data/lutarterial.db)."

session_app = typer.Typer(help="Sign-in sessions of the web app: list, end.", no_args_is_help=True)


@session_app.command("list")
def session_list(
    all_: bool = typer.Option(False, "--all", help="Also ended sessions (with why they ended)."),
    user: str = typer.Option(None, "--user", help="Only this username."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List sessions, newest first (never the tokens)."""
    from lutarterial.cli.registry import _cli_actor, _session
    from lutarterial.registry.user_sessions import list_sessions

    with _session(db, readonly=True) as s:
        rows = [x.to_dict() for x in list_sessions(s, _cli_actor(), active_only=not all_, username=user)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no sessions")
    for r in rows:
        state = "active" if r["active"] else f"ended {r['ended_at']} ({r['ended_reason']})"
        typer.echo(f"{r['id']:>6}  {r['username']:<20} since {r['created_at']}  last {r['last_seen_at']}  "
                   f"{r['client_addr'] or '?':<15} {state}")


@session_app.command("end")
def session_end(
    session_id: int = typer.Argument(None, help="Session id (from `session list`)."),
    user: str = typer.Option(None, "--user", help="End every session of this username instead."),
    reason: str = typer.Option("ended by administrator", "--reason", help="Recorded with the session."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """End one session (ID) or all sessions of a user (--user NAME)."""
    from lutarterial.cli.registry import _cli_actor, _find_user, _session
    from lutarterial.registry.access import Permission, require
    from lutarterial.registry.user_sessions import end_session_by_id, end_user_sessions

    if (session_id is None) == (user is None):
        raise InvalidInputError("give a session ID or --user NAME (one of them)")
    actor = _cli_actor()
    with _session(db) as s:
        if user is not None:
            require(actor, Permission.USER_MANAGE)
            n = end_user_sessions(s, _find_user(s, user).id, reason=f"ended by {actor.username}: {reason}")
            msg = f"{n} session(s) of {user} ended"
        else:
            if not 0 < session_id < 2**63:
                raise InvalidInputError(f"session id {session_id} is out of range")
            ended = end_session_by_id(s, actor, session_id, reason=reason)
            msg = f"session {session_id} ended" if ended else f"session {session_id} had already ended"
    typer.echo(msg)


def register(app: typer.Typer) -> None:
    app.add_typer(session_app, name="session")
