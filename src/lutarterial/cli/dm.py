"""CLI of data management (issue 13): ``dm rules | dictionary | schedule | dashboard | queries | checks | lock | unlock``.

Same authority as the other registry commands (``cli:<os user>``, admin role). A write refused by
a lock is ``error: ...`` and exit 2 (``RecordLockedError``), like any invalid input.
"""

from __future__ import annotations

import json
from typing import Any

import typer

__all__ = ["register"]

_DB = typer.Option(None, "--db", help="Database URL (default: $LUTARTERIAL_DB or sqlite:///./data/lutarterial.db).")
_TODAY = typer.Option(None, "--today", help="Statuses on this day (YYYY-MM-DD; default: today, UTC).")
_JSON = typer.Option(False, "--json", help="JSON instead of a table.")


def _today(value: str | None) -> Any:
    from lutarterial.web.dm import today

    return today(value)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "-")) for r in rows)) for c in cols}
    typer.echo("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        typer.echo("  ".join(str(r.get(c) if r.get(c) is not None else "-").ljust(widths[c]) for c in cols))


def register(app: typer.Typer) -> None:
    dm = typer.Typer(help="Data management: schedule of events, queries and edit checks, locks.", no_args_is_help=True)
    app.add_typer(dm, name="dm")

    @dm.command("rules")
    def rules(protocol_version: str = typer.Option(None, "--protocol-version", help="default: the latest"),
              as_json: bool = _JSON) -> None:
        """Print the schedule of events (from the protocol file) and the edit checks (data)."""
        from lutarterial.datamanagement.checks import load_edit_checks
        from lutarterial.registry.services.schedule import schedule_rules_for

        sched = [{"key": r.key, "kind": r.kind, "number": r.number, "anchor": r.anchor, "target_day": r.target_day,
                  "window": None if r.history else f"{r.window_before_days:+d}..{r.window_after_days:+d}",
                  "history": r.history} for r in schedule_rules_for(protocol_version)]
        checks = [{"id": c.id, "type": c.type, "title": c.title} for c in load_edit_checks()]
        if as_json:
            typer.echo(json.dumps({"schedule": sched, "edit_checks": checks}, indent=2))
            return
        _table(sched, ["key", "kind", "number", "anchor", "target_day", "window", "history"])
        typer.echo("")
        _table(checks, ["id", "type", "title"])

    @dm.command("dictionary")
    def dictionary(out: str = typer.Option(..., "--out", help="CSV file to write (REDCap data dictionary format)")) -> None:
        """Export the screening record's data dictionary as a REDCap-style CSV."""
        from pathlib import Path

        from lutarterial.datamanagement.dictionary import redcap_csv
        from lutarterial.web.forms import dictionary_fields

        text = redcap_csv(dictionary_fields())
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"{path}: {text.count(chr(10)) - 1} fields")

    @dm.command("schedule")
    def schedule(trial_number: str, today: str = _TODAY, db: str = _DB, as_json: bool = _JSON) -> None:
        """A participant's planned dates, windows and visit statuses."""
        from lutarterial.cli.registry import _cli_actor, _session
        from lutarterial.registry import services

        with _session(db, readonly=True) as s:
            rows = [v.to_dict() for v in services.participant_schedule(s, _cli_actor(), trial_number,
                                                                      today=_today(today))]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            _table(rows, ["key", "target_date", "window_start", "window_end", "visit_date", "status"])

    @dm.command("dashboard")
    def dashboard(site: str = typer.Option(None, "--site"), today: str = _TODAY, db: str = _DB,
                  as_json: bool = _JSON) -> None:
        """Upcoming and overdue visits, and queries per site."""
        from lutarterial.cli.registry import _cli_actor, _session
        from lutarterial.registry import services

        on = _today(today)
        with _session(db, readonly=True) as s:
            board: dict[str, Any] = services.schedule_dashboard(s, _cli_actor(), today=on, site_code=site)
            board["queries_by_site"] = services.query_summary_by_site(s, _cli_actor(), today=on)
        if as_json:
            typer.echo(json.dumps(board, indent=2))
            return
        typer.echo(f"Overdue on {on}:")
        _table(board["overdue"], ["trial_number", "label", "window_start", "window_end", "days_overdue"])
        typer.echo("\nUpcoming:")
        _table(board["upcoming"], ["trial_number", "label", "target_date", "window_start", "window_end"])
        typer.echo("\nQueries per site:")
        _table(board["queries_by_site"], ["site", "open", "answered", "closed", "oldest_open_days"])

    @dm.command("queries")
    def queries(participant: str = typer.Option(None, "--participant"), site: str = typer.Option(None, "--site"),
                status: str = typer.Option(None, "--status", help="open, answered or closed"), db: str = _DB,
                as_json: bool = _JSON) -> None:
        """List queries (discrepancies) with their age in days."""
        from lutarterial.cli.registry import _cli_actor, _session
        from lutarterial.registry import services

        on = _today(None)
        with _session(db, readonly=True) as s:
            rows = [services.query_dict(q, today=on, trial_number=tn) for q, tn in
                    services.list_queries(s, _cli_actor(), participant=participant, site_code=site, status=status)]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            _table(rows, ["id", "trial_number", "status", "source", "table_name", "field", "age_days", "text"])

    @dm.command("checks")
    def checks(trial_number: str, db: str = _DB) -> None:
        """Run the edit checks on a participant now; prints the queries opened (deduplicated)."""
        from lutarterial.cli.registry import _cli_actor, _session
        from lutarterial.registry import services

        with _session(db) as s:
            opened = services.run_edit_checks(s, _cli_actor(), trial_number)
            typer.echo(f"{len(opened)} new quer{'y' if len(opened) == 1 else 'ies'}")
            for q in opened:
                typer.echo(f"  #{q.id} {q.text}")

    @dm.command("lock")
    def lock(trial_number: str, reason: str = typer.Option(..., "--reason"),
             form: str = typer.Option(None, "--form", help="TABLE:ROW (e.g. lab_results:12); default: whole participant"),
             db: str = _DB) -> None:
        """Lock a participant or one form (writes refused until unlocked)."""
        from lutarterial.cli.registry import _cli_actor, _session
        from lutarterial.errors import InvalidInputError
        from lutarterial.registry import services

        table, row = (None, None)
        if form:
            table, _, raw = form.partition(":")
            if not raw.isdigit():
                raise InvalidInputError(f"--form {form!r}: expected TABLE:ROW, e.g. lab_results:12")
            row = int(raw)
        with _session(db) as s:
            lk = services.lock_record(s, _cli_actor(), trial_number, reason=reason, table_name=table, row_id=row)
            s.flush()
            typer.echo(f"lock {lk.id}: {trial_number}{' ' + form if form else ''} locked")

    @dm.command("unlock")
    def unlock(lock_id: int, reason: str = typer.Option(..., "--reason"), db: str = _DB) -> None:
        """Lift a lock, with a reason (audited)."""
        from lutarterial.cli.registry import _cli_actor, _session
        from lutarterial.registry import services

        with _session(db) as s:
            services.unlock_record(s, _cli_actor(), lock_id, reason=reason)
            typer.echo(f"lock {lock_id} lifted")
