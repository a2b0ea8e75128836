"""CLI commands of the trial's answer: ``endpoint`` (primary), ``endpoint secondary`` and ``report``.

``lutarterial endpoint [--db URL --user NAME | --lesions FILE.csv] [--metric M] [--kind K] [--json]
[--report DIR] [--seed N] [--n-boot N]`` — the IAH/IV uptake endpoint (see ``docs/endpoint.md``).
``lutarterial endpoint secondary --db URL --user NAME --json`` — CONSORT flow, safety, response,
PFS and dosimetry. ``lutarterial report trial|participant`` — HTML and PDF reports.

Registry reads act on behalf of the registry user ``--user`` (its roles and sites decide what is
seen; a statistician sees all sites, pseudonymised). Output JSON is canonical: sorted keys and
floats with 12 significant digits, so the same data and seed give the same bytes.
"""

from __future__ import annotations

import csv
import shlex

from pathlib import Path
from typing import Any

import typer

from lutarterial.cli.formatting import human_number, human_range, human_value
from lutarterial.errors import InvalidInputError

__all__ = ["register", "read_lesions_csv"]

_DB_HELP = "Database URL (default: $LUTARTERIAL_DB or sqlite:///./data/lutarterial.db)."
_METRICS = ("suv_mean", "suv_max", "suv_peak", "tnr", "percent_ia")
_KINDS = ("lesion", "extrahepatic", "liver", "spleen", "kidney", "marrow")


def read_lesions_csv(path: Path, metric: str) -> list[Any]:
    """Rows of ``participant,voi,kind,iv_<metric>,iah_<metric>`` as LesionValue (values unparsed).

    Comma-separated only (a semicolon- or tab-separated file is refused by name); UTF-8 with or
    without BOM; any line endings; header names and cells stripped of surrounding whitespace,
    header names case-insensitive. Refused (``InvalidInputError``, with the line): a header naming a
    column twice, a row with more cells than the header (e.g. an unquoted decimal comma, which
    would shift the values), a row without participant or VOI, an unknown kind, and a
    participant/VOI pair given twice (whatever its kind), and two spellings of a
    participant that differ only in case or spaces. Blank, ``NA``, zero, negative or
    non-numeric values are passed on as read: the analysis excludes and lists them.
    """
    import io

    from lutarterial.statistics.ratios import LesionValue

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise InvalidInputError(f"{path}: not a text CSV file (NUL bytes)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] | None = None
        header_line = 0
        body: list[tuple[int, list[str]]] = []
        for cells in reader:
            if header is None:
                if not any(c.strip() for c in cells):
                    continue
                header, header_line = [c.strip().lower() for c in cells], reader.line_num
                continue
            body.append((reader.line_num, cells))
    except csv.Error as exc:
        raise InvalidInputError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
    if header is None:
        raise InvalidInputError(f"{path}: empty file (need a header participant,voi,kind,iv_<metric>,iah_<metric>)")
    if len(header) == 1:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "'|'")):
            if sep in header[0]:
                raise InvalidInputError(f"{path}: the columns are separated by {name}s; only comma-separated "
                                        "files are read (participant,voi,kind,iv_<metric>,iah_<metric>)")
    named = [c for c in header if c]
    dup = sorted({c for c in named if named.count(c) > 1})
    if dup:
        raise InvalidInputError(f"{path} line {header_line}: column(s) {', '.join(dup)} given twice")
    missing = [c for c in ("participant", "voi", "kind") if c not in header]
    if missing:
        raise InvalidInputError(f"{path}: missing column(s) {', '.join(missing)} (need participant,voi,kind)")
    have = sorted(m for m in _METRICS if f"iv_{m}" in header and f"iah_{m}" in header)
    if f"iv_{metric}" not in header or f"iah_{metric}" not in header:
        raise InvalidInputError(f"{path}: no iv_{metric}/iah_{metric} column pair; metrics in the file: "
                                f"{', '.join(have) or 'none'}")
    col = {c: header.index(c) for c in ("participant", "voi", "kind", f"iv_{metric}", f"iah_{metric}")}
    rows = []
    seen: dict[tuple[str, str], int] = {}
    spelling: dict[str, tuple[str, int]] = {}
    for i, cells in body:
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if len(cells) > len(header) and any(cells[len(header):]):
            raise InvalidInputError(f"{path} line {i}: {len(cells)} cells but the header has {len(header)} columns "
                                    "(a decimal comma? quote the value or use a decimal point)")
        r = {name: (cells[j] if j < len(cells) else "") for name, j in col.items()}
        if not r["participant"] or not r["voi"]:
            raise InvalidInputError(f"{path} line {i}: participant and voi are required")
        kind = r["kind"].lower()
        if kind not in (*_KINDS, "other"):
            raise InvalidInputError(f"{path} line {i}: kind {r['kind']!r}; valid: {', '.join(_KINDS)}, other")
        norm = " ".join(r["participant"].casefold().split())
        first = spelling.setdefault(norm, (r["participant"], i))
        if first[0] != r["participant"]:
            raise InvalidInputError(f"{path} line {i}: participant {r['participant']!r} differs from {first[0]!r} "
                                    f"(line {first[1]}) only in case or spaces: the same participant?")
        key = (r["participant"], " ".join(r["voi"].lower().split()))
        if key in seen:
            raise InvalidInputError(f"{path} line {i}: participant {r['participant']!r} VOI {r['voi']!r} "
                                    f"already given on line {seen[key]} (one row per participant and VOI)")
        seen[key] = i
        rows.append(LesionValue(r["participant"], r["voi"], kind, r[f"iv_{metric}"], r[f"iah_{metric}"]))
    return rows


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    v = value.strip().lower()
    if v not in choices:
        raise InvalidInputError(f"{name} {value!r}; valid: {', '.join(choices)}")
    return v


def _need(**options: Any) -> None:
    missing = [f"--{k}" for k, v in options.items() if v in (None, "")]
    if missing:
        raise InvalidInputError(f"{' and '.join(missing)} required (--user NAME: a registry user; --out DIR)")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - printing only
        return url


def _command_line(args: list[str]) -> str:
    return "lutarterial " + " ".join(shlex.quote(a) for a in args)


def _registry(db: str | None) -> Any:
    from lutarterial.registry.db import Registry

    return Registry.open(db)


def _print_human(res: dict[str, Any]) -> None:
    def ci(x: Any) -> str:
        return human_range(*x) if x else "n/a"

    def num(x: Any, fmt: str = "") -> str:
        """4 significant digits (issue 10), or a format such as ``.0%``; ``n/a`` for a missing value."""
        return "n/a" if x is None else format(x, fmt) if fmt else human_number(x)

    p, m, pl, b = res["primary"], res["mixed_model"], res["per_lesion_paired"], res["bootstrap"]
    typer.echo(f"IAH/IV {res['metric']} ratio, {res['kind']} VOIs: {res['n_patients']} participants, "
               f"{res['n_lesions']} VOIs, {len(res['excluded'])} excluded")
    typer.echo(f"  primary (patient-level t):  GMR {num(p['gmr'])}  95% CI {ci(p['ci95'])}  p {num(p['p_value'])}")
    mm = (f"GMR {num(m['gmr'])}  95% CI {ci(m['ci95'])}  p {num(m['p_value'])}" if m["converged"]
          else f"not reported: {m.get('reason', 'did not converge')}")
    typer.echo(f"  mixed model (REML):         {mm}")
    typer.echo(f"  per-lesion paired t:        GMR {num(pl['gmr'])}  95% CI {ci(pl['ci95'])}  "
               f"p {num(pl['p_value'])}")
    typer.echo(f"  cluster bootstrap ({b['n_boot']}, seed {b['seed']}): percentile {ci(b['percentile']['ci95'])}  "
               f"BCa {ci(b['bca']['ci95'])}")
    fl, fp = p["fraction_lesions_above_1"], p["fraction_patients_above_1"]
    typer.echo(f"  ratio > 1: {num(fl['fraction'], '.0%')} of VOIs ({fl['k']}/{fl['n']}, exact 95% CI "
               f"{ci(fl['ci95'])}), {num(fp['fraction'], '.0%')} of participants ({fp['k']}/{fp['n']}, "
               f"exact 95% CI {ci(fp['ci95'])})")
    for e in res["excluded"]:
        typer.echo(f"  excluded {e['participant']} / {e['voi']}: {e['reason']}")
    for key in ("primary", "mixed_model"):
        if res[key].get("reason"):
            typer.echo(f"  note ({key}): {res[key]['reason']}")


def register(app: typer.Typer) -> None:
    """Add ``endpoint`` (with ``secondary``) and ``report`` (``trial``, ``participant``) to the root app."""
    endpoint_app = typer.Typer(help="The IAH/IV uptake endpoint (primary) and the secondary endpoints.",
                               invoke_without_command=True)
    report_app = typer.Typer(help="Trial and participant reports (HTML and PDF).", no_args_is_help=True)

    @endpoint_app.callback(invoke_without_command=True)
    def endpoint(
        ctx: typer.Context,
        db: str = typer.Option(None, "--db", help=_DB_HELP),
        user: str = typer.Option(None, "--user", help="Registry user on whose behalf the registry is read."),
        lesions: Path = typer.Option(None, "--lesions", help="CSV: participant,voi,kind,iv_<metric>,iah_<metric>."),
        metric: str = typer.Option("suv_mean", "--metric", help="suv_mean|suv_max|suv_peak|tnr|percent_ia."),
        kind: str = typer.Option("lesion", "--kind", help="lesion|extrahepatic|liver|spleen|kidney|marrow."),
        as_json: bool = typer.Option(False, "--json", help="Canonical JSON (sorted keys, fixed float format)."),
        report: Path = typer.Option(None, "--report", help="Also write report.html and report.pdf into DIR."),
        seed: int = typer.Option(None, "--seed", help="Bootstrap seed (numpy default_rng)."),
        n_boot: int = typer.Option(None, "--n-boot", help="Bootstrap resamples (100-200000)."),
    ) -> None:
        """IAH/IV uptake ratio pooled over participants: primary (patient-level t), mixed model,
        per-lesion paired t, cluster bootstrap (percentile, BCa) and per-participant rows."""
        if ctx.invoked_subcommand is not None:
            return
        from lutarterial.statistics.canonical import canonical_json
        from lutarterial.statistics.ratios import DEFAULT_N_BOOT, DEFAULT_SEED, analyse_ratios, build_log_ratios

        metric = _check_choice(metric, _METRICS, "metric")
        kind = _check_choice(kind, _KINDS, "kind")
        seed = DEFAULT_SEED if seed is None else seed
        n_boot = DEFAULT_N_BOOT if n_boot is None else n_boot
        if lesions is not None and (db or user):
            raise InvalidInputError("give either --lesions FILE.csv or --db URL --user NAME, not both")
        args = ["endpoint"]
        snapshot = None
        if lesions is not None:
            rows = read_lesions_csv(lesions, metric)
            res = analyse_ratios(rows, metric=metric, kind=kind, seed=seed, n_boot=n_boot)
            log_ratios = build_log_ratios(rows, kind=kind)[0]
            args += ["--lesions", str(lesions)]
            source = f"CSV file {lesions}"
        else:
            if not user:
                raise InvalidInputError("give --lesions FILE.csv, or --db URL with --user NAME (a registry user)")
            from lutarterial.registry.services import actor_by_username
            from lutarterial.workflows.endpoints import data_snapshot, lesion_values

            reg = _registry(db)
            try:
                with reg.session(readonly=True) as s:
                    actor = actor_by_username(s, user)
                    rows, _, _ = lesion_values(s, actor, metric)
                    res = analyse_ratios(rows, metric=metric, kind=kind, seed=seed, n_boot=n_boot)
                    log_ratios = build_log_ratios(rows, kind=kind)[0]
                    snapshot = data_snapshot(s, actor)
                url = _redact(str(reg.engine.url))
            finally:
                reg.dispose()
            args += ["--db", url, "--user", user]
            source = f"registry {url}"
        args += ["--metric", metric, "--kind", kind, "--seed", str(seed), "--n-boot", str(n_boot)]
        if report is not None:
            from lutarterial.reports import write_endpoint_report

            write_endpoint_report(report, res, source=source, snapshot=snapshot, log_ratios=log_ratios,
                                  command=_command_line(args + ["--report", str(report)]))
        if as_json:
            typer.echo(canonical_json(res))
        else:
            _print_human(res)
            if report is not None:
                typer.echo(f"report: {report / 'report.html'}, {report / 'report.pdf'}")

    @endpoint_app.command("secondary")
    def secondary(
        db: str = typer.Option(None, "--db", help=_DB_HELP),
        user: str = typer.Option(None, "--user", help="Registry user on whose behalf the registry is read (required)."),
        as_json: bool = typer.Option(False, "--json", help="Canonical JSON."),
        seed: int = typer.Option(None, "--seed", help="Bootstrap seed for the dosimetry comparison."),
        n_boot: int = typer.Option(None, "--n-boot", help="Bootstrap resamples (100-200000)."),
    ) -> None:
        """CONSORT flow, safety (worst CTCAE grade by phase), RECIST response (ORR/DCR, exact CIs),
        PFS and hepatic PFS (Kaplan-Meier), dosimetry per GBq IAH vs IV cycles."""
        from lutarterial.statistics.canonical import canonical_json
        from lutarterial.statistics.ratios import DEFAULT_N_BOOT, DEFAULT_SEED
        from lutarterial.registry.services import actor_by_username
        from lutarterial.workflows.endpoints import secondary_endpoints

        _need(user=user)

        reg = _registry(db)
        try:
            with reg.session(readonly=True) as s:
                actor = actor_by_username(s, user)
                res = secondary_endpoints(s, actor, seed=DEFAULT_SEED if seed is None else seed,
                                          n_boot=DEFAULT_N_BOOT if n_boot is None else n_boot)
        finally:
            reg.dispose()
        if as_json:
            typer.echo(canonical_json(res))
            return
        c = res["consort"]
        typer.echo(f"screened {c['screened']}, ineligible {c['ineligible']}, incomplete {c['incomplete']}, enrolled "
                   f"{c['enrolled']}, PET pair {c['pet_pair_done']}, IAH given {c['iah_given']}, analysed "
                   f"{c['analysed']}, withdrawn {c['withdrawn']}")
        for scope in ("whole_body", "liver_only"):
            r = res["response"][scope]
            typer.echo(f"{scope}: n {r['n']}, ORR {r['orr']['k']}/{r['orr']['n']}, DCR {r['dcr']['k']}/{r['dcr']['n']}")
        for name in ("pfs", "hepatic_pfs"):
            k = res["survival"][name]
            typer.echo(f"{name}: n {k['n']}, events {k['events']}, median "
                       f"{human_value(k['median']) if k['median'] is not None else 'not reached'}")

    @report_app.command("trial")
    def report_trial(
        db: str = typer.Option(None, "--db", help=_DB_HELP),
        user: str = typer.Option(None, "--user", help="Registry user on whose behalf the registry is read (required)."),
        out: Path = typer.Option(None, "--out", help="Directory for report.html and report.pdf (required)."),
        seed: int = typer.Option(None, "--seed", help="Bootstrap seed."),
        n_boot: int = typer.Option(None, "--n-boot", help="Bootstrap resamples (100-200000)."),
        metric: str = typer.Option("suv_mean", "--metric", help="Primary metric."),
    ) -> None:
        """The trial report: answer on page 1, methods, every table, figures, data snapshot, versions."""
        from lutarterial.statistics.ratios import DEFAULT_N_BOOT, DEFAULT_SEED
        from lutarterial.workflows.reports import build_trial_report

        _need(user=user, out=out)
        metric = _check_choice(metric, _METRICS, "metric")
        seed = DEFAULT_SEED if seed is None else seed
        n_boot = DEFAULT_N_BOOT if n_boot is None else n_boot
        reg = _registry(db)
        try:
            url = _redact(str(reg.engine.url))
            cmd = _command_line(["report", "trial", "--db", url, "--user", user, "--out", str(out), "--seed",
                                 str(seed), "--n-boot", str(n_boot), "--metric", metric])
            with reg.session(readonly=True) as s:
                paths = build_trial_report(s, user, out, seed=seed, n_boot=n_boot, metric=metric, command=cmd,
                                           source=f"registry {url}, read as user {user}")
        finally:
            reg.dispose()
        typer.echo("\n".join(str(p) for p in paths))

    @report_app.command("participant")
    def report_participant(
        trial_number: str = typer.Argument(..., help="Trial number, e.g. BDX-005."),
        db: str = typer.Option(None, "--db", help=_DB_HELP),
        user: str = typer.Option(None, "--user", help="Registry user on whose behalf the registry is read (required)."),
        out: Path = typer.Option(None, "--out", help="Directory for the participant's PDF and HTML (required)."),
    ) -> None:
        """One participant's report for the medical file (pseudonymised: trial number only)."""
        from lutarterial.workflows.reports import build_participant_report

        _need(user=user, out=out)
        reg = _registry(db)
        try:
            from lutarterial.web.settings import data_dir_for

            figure_dir = data_dir_for(str(reg.engine.url.render_as_string(hide_password=False))) / "figures"
            with reg.session(readonly=True) as s:
                paths = build_participant_report(s, user, trial_number, out, figure_dir=figure_dir)
        finally:
            reg.dispose()
        typer.echo("\n".join(str(p) for p in paths))

    app.add_typer(endpoint_app, name="endpoint")
    app.add_typer(report_app, name="report")

