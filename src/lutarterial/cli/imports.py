"""``lutarterial import labs|screening``: hospital data into the registry (issue 15).

The command acts as the registry user ``--user`` (that user's roles and sites apply, and the audit
trail names them); like the other registry commands it relies on the operating-system user's
authority over the database (whoever runs it can open the database). One file is one transaction:
all of its accepted rows, or (on a crash) nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from lutarterial.cli.formatting import human_number
from lutarterial.cli.registry import _DB_HELP, _print_json, _session

__all__ = ["register"]

import_app = typer.Typer(help="Import hospital data: lab results (FHIR, NDJSON, CSV), screening records (FHIR).",
                         no_args_is_help=True)


def _actor(s: Any, username: str) -> Any:
    from lutarterial.registry.services import actor_by_username

    return actor_by_username(s, username)


def _read(path: Path) -> bytes:
    from lutarterial.errors import InvalidInputError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None


@import_app.command("labs")
def import_labs_cmd(
    file: Path = typer.Argument(..., help="FHIR R4 Bundle (.json), NDJSON of Observations, or lab CSV."),
    user: str = typer.Option(..., "--user", help="Registry user to act as (their roles and sites apply)."),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    fmt: str = typer.Option(None, "--format", help="fhir, ndjson or csv (default: detected)."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import lab values: converted, CTCAE-graded, plausibility-checked, duplicates skipped;
    refused rows listed with their reason. CSV rows name the participant by trial_number
    (or, for administrators only, by the identity key: hospital_id, or names + birth_date)."""
    from lutarterial.registry.imports import import_labs

    data = _read(file)
    with _session(db) as s:
        summary = import_labs(s, _actor(s, user), data, reason=reason, fmt=fmt, source_name=file.name).to_dict()
    if as_json:
        _print_json(summary)
        return
    typer.echo(f"{file.name} ({summary['format']}, sha256 {summary['file_sha256'][:12]}…): {summary['rows']} rows, "
               f"{summary['imported']} imported, {summary['duplicates']} duplicates skipped, "
               f"{summary['refused_count']} refused")
    for r in summary["imported_rows"]:
        grade = "" if r["ctcae_grade"] is None else f"  CTCAE grade {r['ctcae_grade']} ({r['ctcae_term']})"
        typer.echo(f"  + {r['trial_number']} {r['collected_date']} {r['analyte']} = {human_number(r['value'])} "
                   f"{r['unit']} ({human_number(r['value_canonical'])} {r['unit_canonical']}){grade}")
    for r in summary["refused"]:
        typer.echo(f"  - {r['where']}: {r['reason']}")


@import_app.command("screening")
def import_screening_cmd(
    file: Path = typer.Argument(..., help="FHIR R4 Bundle of the participant's EHR record (JSON)."),
    participant: str = typer.Option(..., "--participant", help="Trial number, e.g. BDX-001."),
    user: str = typer.Option(..., "--user", help="Registry user to act as (their roles and sites apply)."),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    as_of: str = typer.Option(None, "--as-of", help="Screening date YYYY-MM-DD (default: the record's)."),
    protocol_version: str = typer.Option(None, "--protocol-version", help="Default: the version in force."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Screen a participant from an EHR FHIR Bundle (the screening reader) and store the result
    with the bundle's SHA-256; the patient's identifiers are removed before storage."""
    from lutarterial.registry.imports import import_screening

    data = _read(file)
    with _session(db) as s:
        out = import_screening(s, _actor(s, user), data, participant=participant, reason=reason, as_of=as_of,
                               protocol_version=protocol_version, source_name=file.name)
    if as_json:
        _print_json(out)
    else:
        typer.echo(f"{out['trial_number']}: screening {out['screening_id']} {out['overall']} "
                   f"(protocol {out['protocol_version']}, as of {out['as_of']}; bundle sha256 {out['bundle_sha256']})")


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
