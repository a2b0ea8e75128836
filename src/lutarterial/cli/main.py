"""The ``lutarterial`` command: a thin shell over the domain packages and the registry.

Each command group lives in its own module exposing ``register(app)``; command bodies
import their heavy dependencies lazily so ``lutarterial --help`` stays fast.
Errors derived from :class:`~lutarterial.errors.LutarterialError` become a one-line
message on stderr and exit code 2 (3 for access denied); never a traceback.
"""

from __future__ import annotations

import sys

import typer

from lutarterial import __version__
from lutarterial.cli import clinical, dosimetry, eligibility, imaging, registry, web
from lutarterial.cli import imports as _imports, tokens as _tokens  # issue 15
from lutarterial.cli import endpoints as _endpoints  # issue 12
from lutarterial.cli import studies as _studies  # issue 11
from lutarterial.cli import sessions as _sessions  # issue 9
from lutarterial.cli import settings as _settings  # issue 10
from lutarterial.cli import pbpk as _pbpk  # issue 14
from lutarterial.cli import dm as _dm  # issue 13
from lutarterial.cli.numbers import guard_numbers
from lutarterial.errors import LutarterialError

__all__ = ["app", "run"]

app = typer.Typer(
    name="lutarterial",
    help="LUTARTERIAL trial software: screening, imaging, dosimetry, safety/response, registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lutarterial {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """LUTARTERIAL trial software."""


for _module in (eligibility, imaging, dosimetry, clinical, registry, web, _tokens, _imports, _endpoints, _studies,
                _sessions, _settings, _pbpk, _dm):
    _module.register(app)
guard_numbers(app)  # issue 9: no NaN/inf/negative/implausible number reaches a command


def run(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into clear messages and exit codes."""
    try:
        app(args=argv, prog_name="lutarterial")
    except LutarterialError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - database/OS/decoding errors: one line, exit 2 (issue 9)
        from lutarterial.cli.errors import handle

        sys.exit(handle(exc))
