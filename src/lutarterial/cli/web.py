"""CLI commands for the web part: ``lutarterial serve`` and ``lutarterial demo``."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def _db_url(db: str | None) -> str:
    from lutarterial.web.settings import default_db_url

    if db is None:
        return default_db_url()
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).as_posix()}"  # a plain path means a SQLite file


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""

    @app.command("serve")
    def serve(
        db: str = typer.Option(None, "--db", help="Database URL (postgresql+psycopg://…) or SQLite file path. "
                               "Default: SQLite at ./data/lutarterial.db."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback by default)."),
        demo: bool = typer.Option(False, "--demo", help="Seed the demo users and synthetic participants first."),
        workers: int = typer.Option(None, "--workers", min=1, max=16, help="Server processes, each with its own "
                                    "listening socket (SO_REUSEPORT); sync code on each one's event loop unless "
                                    "LUTARTERIAL_WEB_THREADS is set. Default: "
                                    "LUTARTERIAL_WEB_WORKERS, else one per CPU core (at most 8). 1: one process."),
    ) -> None:
        """Serve the registry web application and REST API (OpenAPI at /openapi.json)."""
        import os

        import uvicorn

        from lutarterial.web.app import create_app
        from lutarterial.web.server import (MULTI_WORKER_THREADS, balance_enabled, check_port_free, default_workers,
                                            serve_processes)

        url = _db_url(db)
        workers = workers or default_workers()
        check_port_free(host, port)  # before seeding, upgrading or printing "serving …"
        if workers > 1:
            balance_enabled()  # a wrong LUTARTERIAL_WEB_BALANCE is refused before anything starts
        if demo:
            from lutarterial.web.demo import print_summary, seed_demo

            print_summary(seed_demo(url), url, port=port, host=host)
        application = create_app(url, demo=demo)  # upgrades the schema, creates the secret key
        if workers > 1:  # issue 13 (fast): one process per core; each worker builds its app from the env
            application.state.backend.close()
            typer.echo(f"serving {_redact(url)} on http://{host}:{port}/ with {workers} worker processes"
                       "  (Ctrl-C to stop)")
            env = {"LUTARTERIAL_DB": url, "LUTARTERIAL_WEB_DEMO": "1" if demo else ""}
            if not os.environ.get("LUTARTERIAL_WEB_THREADS", "").strip():
                env["LUTARTERIAL_WEB_THREADS"] = str(MULTI_WORKER_THREADS)
            code = serve_processes(env, host, port, workers)
            if code:
                raise typer.Exit(code)
            return
        typer.echo(f"serving {_redact(url)} on http://{host}:{port}/  (Ctrl-C to stop)")
        uvicorn.run(application, host=host, port=port, log_level="warning")

    @app.command("demo")
    def demo(
        db: str = typer.Option(None, "--db", help="Database URL or SQLite file path (default ./data/lutarterial.db)."),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Create/upgrade the database, seed demo users and synthetic participants at every stage,
        verify the audit chain and print how to browse it. Safe to run twice."""
        from lutarterial.web.demo import print_summary, seed_demo

        url = _db_url(db)
        summary = seed_demo(url)
        if json_out:
            import json

            typer.echo(json.dumps(summary.to_dict(), indent=2))
        else:
            print_summary(summary, url)


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - printing only
        return url
