"""``lutarterial import labs|screening``: hospital data into the registry (issue 15)."""

from __future__ import annotations

import typer

__all__ = ["register"]

import_app = typer.Typer(help="Import hospital data: lab results (FHIR, NDJSON, CSV), screening records (FHIR).",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
