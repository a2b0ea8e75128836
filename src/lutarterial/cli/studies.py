"""CLI: ``study import|list|analyse`` and ``batch analyse`` (issue 11).

Unlike the administrative registry commands, these act as a registry user: ``--user NAME``
authenticates (password prompted, or the first line of stdin with ``--password-stdin``) and
that user's role and sites are enforced exactly as in the web application (a physicist imports
and analyses for the participants of their sites; a monitor cannot write). Failed logins count
towards the account lockout like web logins.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lutarterial.cli.formatting import human_number, human_value

if TYPE_CHECKING:
    from lutarterial.registry.access import Actor

__all__ = ["register", "login", "print_analysis"]

_DB_HELP = "Database URL (default: $LUTARTERIAL_DB or sqlite:///./data/lutarterial.db)."
_USER_HELP = "Registry user to act as (password prompted, or --password-stdin)."
_STORE_HELP = "Content-addressed file store (default: $LUTARTERIAL_STORE or <data dir>/store)."

study_app = typer.Typer(help="Imaging studies of a participant: import DICOM/NIfTI, list, analyse.",
                        no_args_is_help=True)
batch_app = typer.Typer(help="Cohort analyses on Dask distributed (a manifest of participants).",
                        no_args_is_help=True)


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def login(registry: Any, username: str, password_stdin: bool) -> Actor:
    """Authenticate ``username`` against the registry (same rules and lockout as the web login)."""
    from lutarterial.errors import AccessDeniedError
    from lutarterial.registry import services

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"Password for {username}", hide_input=True)
    with registry.session() as s:
        actor = services.authenticate(s, username, password)
    if actor is None:
        raise AccessDeniedError(f"login failed for user {username!r} (wrong password, locked or inactive account)")
    return actor


def _open(db: str | None) -> Any:
    from lutarterial.registry.db import Registry, normalise_url

    return Registry.open(normalise_url(db))


def _store(db: str | None, store: Path | None) -> Path:
    from lutarterial.registry.db import normalise_url
    from lutarterial.workflows.store import store_root

    return store_root(normalise_url(db), store)


def _series_table(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in ("modality", "acquired", "route", "h after admin", "files", "status"):
        t.add_column(c)
    t.add_column("series UID", overflow="fold")
    for r in rows:
        t.add_row(r["modality"], str(r.get("acquisition_time") or ""), r.get("route") or "",
                  human_value(r.get("time_after_admin_h")),
                  str(r.get("n_files")), str(r.get("status", "")), r["series_instance_uid"])
    Console().print(t)


@study_app.command("import")
def study_import(
    paths: list[Path] = typer.Argument(..., help="DICOM folders/files, zips, NIfTI label maps (+ names.json)."),
    participant: str = typer.Option(..., "--participant", help="Trial number, e.g. BDX-001."),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    user: str = typer.Option(..., "--user", help=_USER_HELP),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    route: str = typer.Option(None, "--route", help="iv or iah (default: from the linked or same-day visit)."),
    visit: int = typer.Option(None, "--visit", help="Visit id to link the series to (route from its kind)."),
    store: Path = typer.Option(None, "--store", help=_STORE_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Import a participant's studies into the store and the registry (identical files: nothing changes)."""
    from lutarterial.workflows.studies import import_study

    reg = _open(db)
    try:
        actor = login(reg, user, password_stdin)
        with reg.session() as s:
            rep = import_study(s, actor, participant, [str(p) for p in paths], store=_store(db, store), reason=reason,
                               route=route, visit_id=visit)
    finally:
        reg.dispose()
    if as_json:
        _echo_json(rep.to_dict())
        return
    _series_table(f"{rep.participant}: {rep.files_new} new file(s), {rep.files_unchanged} unchanged", rep.series)
    for i in rep.ignored:
        typer.echo(f"ignored: {i}")


@study_app.command("list")
def study_list(
    participant: str = typer.Option(..., "--participant", help="Trial number, e.g. BDX-001."),
    user: str = typer.Option(..., "--user", help=_USER_HELP, envvar="LUTARTERIAL_USER"),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The participant's imported studies and series (modality, date, route, time after administration)."""
    from lutarterial.workflows.studies import list_studies

    reg = _open(db)
    try:
        actor = login(reg, user, password_stdin)
        with reg.session(readonly=True) as s:
            studies = list_studies(s, actor, participant)
    finally:
        reg.dispose()
    if as_json:
        _echo_json({"participant": participant.upper(), "studies": studies})
        return
    if not studies:
        typer.echo(f"{participant.upper()}: no imaging study imported")
    for st in studies:
        _series_table(f"study {st['study_instance_uid']} ({st['study_date'] or 'no date'})", st["series"])


def _outcome_lines(stored: list[Any]) -> list[str]:
    out = []
    for x in stored:
        if x.status == "reproduced":
            out.append(f"{x.kind}: reproduced (analysis {x.id}: identical numbers)")
        elif x.status == "new":
            out.append(f"{x.kind}: stored as analysis {x.id}")
        else:
            out.append(f"{x.kind}: analysis {x.id} supersedes {x.superseded_id} ({x.status}: {x.message})")
    return out


@study_app.command("analyse")
def study_analyse(
    participant: str = typer.Option(..., "--participant", help="Trial number, e.g. BDX-001."),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    user: str = typer.Option(..., "--user", help=_USER_HELP),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    iv_series: str = typer.Option(None, "--iv-series", help="SeriesInstanceUID of the IV PET (if several)."),
    iah_series: str = typer.Option(None, "--iah-series", help="SeriesInstanceUID of the IAH PET (if several)."),
    voi: list[Path] = typer.Option([], "--voi", help="VOIs for the PET studies (one for both, or IV then IAH)."),
    names: Path = typer.Option(None, "--names", help="names.json for --voi (label -> name, kind, lobe)."),
    spect_series: list[str] = typer.Option([], "--spect-series", help="SPECT time-point series UIDs (repeatable)."),
    calibration: Path = typer.Option(None, "--calibration", help="SPECT calibration registry CSV (default: packaged)."),
    only: str = typer.Option(None, "--only", help="uptake or dosimetry (default: both)."),
    store: Path = typer.Option(None, "--store", help=_STORE_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """IAH-vs-IV uptake and SPECT-measured IAH-cycle dosimetry from the stored series; stored whole."""
    from lutarterial.errors import InvalidInputError
    from lutarterial.workflows.analyse import per_voi_table, store_outcomes
    import shutil
    import tempfile

    from lutarterial.workflows.plan import compute_plan, materialise_plan, plan_analyses

    if names and not voi:
        raise InvalidInputError("--names goes with --voi (stored VOI series bring their own names.json)")
    if only not in (None, "uptake", "dosimetry"):
        raise InvalidInputError("--only: uptake or dosimetry")
    reg = _open(db)
    st = _store(db, store)
    try:
        actor = login(reg, user, password_stdin)
        tmp_parent = st / "tmp"
        tmp_parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="analyse-", dir=tmp_parent))
        try:
            with reg.session(readonly=True) as s:
                plan = plan_analyses(s, actor, participant, iv_series=iv_series, iah_series=iah_series,
                                     voi=[str(v) for v in voi], names=str(names) if names else None,
                                     spect_series=list(spect_series),
                                     calibration=str(calibration) if calibration else None,
                                     uptake=only != "dosimetry", dosimetry=only != "uptake")
                paths = materialise_plan(s, plan, st, tmp)
            outcomes = compute_plan(plan, paths, png=True)  # no transaction held while computing
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        from lutarterial.registry.db import normalise_url
        from lutarterial.web.settings import data_dir_for

        with reg.session() as s:
            stored = store_outcomes(s, actor, participant, outcomes, reason=reason,
                                    figures_dir=data_dir_for(normalise_url(db)) / "figures")
    finally:
        reg.dispose()
    doc = {"participant": plan.participant, "plan": plan.to_dict(), "analyses": [x.to_dict() for x in stored]}
    for o in outcomes:
        if o.kind == "pet_iah_vs_iv":
            doc["per_voi"] = per_voi_table(o.result)
            doc["summary"] = o.result.get("summary")
        else:
            doc["dosimetry"] = [{"voi": v["voi"], "model": v["model"], "teff_h": v["teff_h"], "dose_gy": v["dose_gy"]}
                                for v in o.result["vois"]]
            doc["cumulative"] = o.result["cumulative"]
    if as_json:
        _echo_json(doc)
        return
    from rich.console import Console

    print_analysis(doc, _outcome_lines(stored) + plan.notes, Console())


def print_analysis(doc: dict[str, Any], lines: list[str], con: Any) -> None:
    """The text form of ``study analyse``: uptake and dose tables (4 significant digits), then ``lines``."""
    from rich.table import Table

    if "per_voi" in doc:
        t = Table(title=f"{doc['participant']}: IAH vs IV 68Ga PET (SUVmean)")
        for c in ("VOI", "IV", "IAH", "IAH/IV"):
            t.add_column(c)
        for r in doc["per_voi"]:
            t.add_row(r["voi"], *(human_value(r[k]) for k in ("iv_suv_mean", "iah_suv_mean", "ratio_suv_mean")))
        con.print(t)
    if "dosimetry" in doc:
        t = Table(title=f"{doc['participant']}: IAH-cycle 177Lu dose (SPECT-measured)")
        for c in ("VOI", "model", "Teff (h)", "dose (Gy)"):
            t.add_column(c)
        for r in doc["dosimetry"]:
            t.add_row(r["voi"], r["model"], human_value(r["teff_h"]), human_value(r["dose_gy"]))
        con.print(t)
    for line in lines:
        con.print(line)


@batch_app.command("analyse")
def batch_analyse(
    manifest: Path = typer.Argument(..., help="CSV: participant,iv,iv_voi,iah,iah_voi,names[,spect][,calibration]."),
    reason: str = typer.Option(..., "--reason", help="Reason recorded in the audit trail."),
    user: str = typer.Option(..., "--user", help=_USER_HELP),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    scheduler: str = typer.Option(None, "--scheduler", help="Address of a running dask scheduler (tcp://host:8786)."),
    workers: int = typer.Option(2, "--workers", min=1, help="LocalCluster worker processes (without --scheduler)."),
    retries: int = typer.Option(2, "--retries", min=0, help="Retries of a task lost to a worker failure."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Analyse every participant of a manifest on Dask; results written here (the client) only."""
    from lutarterial.workflows.batch import read_manifest, run_batch

    rows = read_manifest(manifest)
    reg = _open(db)
    try:
        actor = login(reg, user, password_stdin)
        summary = run_batch(reg, actor, rows, reason=reason, scheduler=scheduler, workers=workers, retries=retries,
                            progress=not as_json)
    finally:
        reg.dispose()
    if as_json:
        _echo_json(summary.to_dict())
    else:
        for r in summary.done:
            typer.echo(f"{r['participant']}: " + "; ".join(
                f"{a['kind']} {a['status']} (analysis {a['id']})" for a in r["analyses"]))
        for f in summary.failed:
            typer.echo(f"FAILED {f['participant']}: {f['error']}", err=True)
        typer.echo(f"{len(summary.done)} analysed, {len(summary.failed)} failed, {human_number(summary.seconds)} s "
                   f"on {summary.cluster}")
    if summary.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``study`` and ``batch`` to the root app."""
    app.add_typer(study_app, name="study")
    app.add_typer(batch_app, name="batch")
