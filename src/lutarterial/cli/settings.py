"""``lutarterial setting show|set`` and ``lutarterial site-protocol list|set`` (issue 10).

Registry settings (e.g. ``ctcae_require_baseline``) and a site's effective date for a protocol
version; both audited (the CLI acts as ``cli:<os user>`` with the admin role, like ``user``).
"""

from __future__ import annotations

import json

import typer

__all__ = ["register"]

_DB_HELP = "Database URL (default: $LUTARTERIAL_DB or sqlite:///./data/lutarterial.db)."

setting_app = typer.Typer(help="Registry settings (e.g. ctcae_require_baseline), audited.", no_args_is_help=True)
site_protocol_app = typer.Typer(help="Protocol version in force per site (effective date, source), audited.",
                                no_args_is_help=True)


@setting_app.command("show")
def setting_show(
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every known setting with its value (default when never set) and meaning."""
    from lutarterial.cli.registry import _session
    from lutarterial.registry.services.settings import SETTINGS, get_setting

    with _session(db, readonly=True) as s:
        rows = [{"key": k, "value": get_setting(s, k), "default": d, "meaning": m} for k, (_t, d, m) in SETTINGS.items()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['key']} = {json.dumps(r['value'])}  (default {json.dumps(r['default'])}): {r['meaning']}")


@setting_app.command("set")
def setting_set(
    key: str = typer.Argument(..., help="Setting key, e.g. ctcae_require_baseline."),
    value: str = typer.Argument(..., help="New value (true/false for switches)."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit trail)."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Change a registry setting (audited)."""
    from lutarterial.cli.registry import _cli_actor, _session
    from lutarterial.registry.services.settings import set_setting

    with _session(db) as s:
        row = set_setting(s, _cli_actor(), key, value, reason=reason)
        typer.echo(f"{row.key} = {json.dumps(row.value)}")


@site_protocol_app.command("list")
def site_protocol_list(
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Configured effective dates per site (without one, the packaged default version applies)."""
    from lutarterial.cli.registry import _session
    from lutarterial.registry.models import Site
    from lutarterial.registry.services.settings import site_protocol_configs

    with _session(db, readonly=True) as s:
        rows = [{"site": s.get(Site, r.site_id).code, "protocol_version": r.protocol_version,  # type: ignore[union-attr]
                 "effective_date": r.effective_date.isoformat(), "source": r.source}
                for r in site_protocol_configs(s)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no site configuration: the default protocol version applies everywhere (see `lutarterial protocols`)")
    for r in rows:
        typer.echo(f"{r['site']}: version {r['protocol_version']} from {r['effective_date']} ({r['source']})")


@site_protocol_app.command("set")
def site_protocol_set(
    site: str = typer.Argument(..., help="Site code, e.g. BDX."),
    version: str = typer.Argument(..., help="Protocol version, e.g. 2."),
    effective_date: str = typer.Argument(..., help="Date from which it applies at the site (YYYY-MM-DD)."),
    source: str = typer.Option(..., "--source", help="Document that sets the date (e.g. ethics approval of amendment 2)."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit trail)."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Set the date from which a protocol version applies at a site (audited)."""
    from lutarterial.cli.registry import _cli_actor, _session
    from lutarterial.registry.services.settings import set_site_protocol

    with _session(db) as s:
        row = set_site_protocol(s, _cli_actor(), site, protocol_version=version, effective_date=effective_date,
                                source=source, reason=reason)
        typer.echo(f"{site.upper()}: version {row.protocol_version} from {row.effective_date.isoformat()}")


def register(app: typer.Typer) -> None:
    app.add_typer(setting_app, name="setting")
    app.add_typer(site_protocol_app, name="site-protocol")
