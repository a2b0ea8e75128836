"""CLI commands for eligibility screening: ``lutarterial screen`` and ``lutarterial protocols``.

``screen`` never reads the clock: the screening date is ``--as-of`` or, when absent, each
record's own ``screening_date`` (a record with neither is an error naming the record).
A single record prints its criteria; a cohort (a directory, an NDJSON file, a JSON array or
several files) shows a progress bar on stderr and writes ``screening-log.csv`` and
``screening-summary.json`` (the CONSORT screening box) into ``--out`` (default: the current
directory).
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]

_COHORT_SUFFIXES = (".ndjson", ".jsonl")


def _parse_date(text: str | None):
    import datetime as dt

    from lutarterial.errors import InvalidInputError

    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"--as-of {text!r} is not a date; use YYYY-MM-DD") from None


def _files(path: Path) -> list[Path]:
    """The record files of ``path``: itself, or those under a directory in sorted order."""
    from lutarterial.errors import NotFoundError
    from lutarterial.records.io import RECORD_SUFFIXES

    if path.is_dir():
        return sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in RECORD_SUFFIXES)
    if path.exists():
        return [path]
    raise NotFoundError(f"no such file or directory: {path}")


def _texts(path: Path):
    """(origin, JSON text) for every record under ``path`` (file or directory)."""
    for f in _files(path):
        yield from _file_texts(f)


def _file_texts(f: Path):
    import json

    from lutarterial.eligibility.cohort import UNREADABLE

    if f.suffix.lower() in _COHORT_SUFFIXES:
        with f.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield f"{f}:{lineno}", line
        return
    try:
        text = f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield str(f), UNREADABLE + f"cannot read file: {exc}"  # logged as unreadable; the cohort goes on
        return
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            yield str(f), text  # reported as unreadable with the parser's message
            return
        for i, item in enumerate(items):
            yield f"{f}[{i}]", json.dumps(item)
    else:
        yield str(f), text


def _units(paths: list[Path], chunk_size: int = 2000):
    """Units of screening work in input order (issue 10, speed).

    An NDJSON file is cut into byte ranges that the worker reads itself
    (``records.io.read_ndjson_range``: the same (origin, line) pairs as :func:`_texts`), so this
    process neither decodes nor pickles the lines; other files give lists of up to ``chunk_size``
    texts, read here as before.
    """
    from lutarterial.records.io import ndjson_ranges, read_ndjson_range

    batch: list[tuple[str, str]] = []
    for path in paths:
        for f in _files(path):
            if f.suffix.lower() not in _COHORT_SUFFIXES:
                for item in _file_texts(f):
                    batch.append(item)
                    if len(batch) >= chunk_size:
                        yield batch
                        batch = []
                continue
            if batch:
                yield batch
                batch = []
            for offset, length, lineno in ndjson_ranges(f):
                yield read_ndjson_range, (str(f), offset, length, lineno)
    if batch:
        yield batch


def _count(paths: list[Path]) -> int | None:
    try:
        return sum(1 for p in paths for _ in _texts_light(p))
    except Exception:  # noqa: BLE001 - counting is only for the progress bar
        return None


def _texts_light(path: Path):
    if path.is_dir():
        from lutarterial.records.io import RECORD_SUFFIXES

        for f in path.rglob("*"):
            if f.is_file() and f.suffix.lower() in RECORD_SUFFIXES:
                yield from _texts_light(f)
    elif path.suffix.lower() in _COHORT_SUFFIXES:
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield 1
    else:
        yield 1


def _print_single(result, console) -> None:
    from rich.table import Table

    colour = {"eligible": "green", "ineligible": "red", "incomplete": "yellow"}[result.verdict.value]
    console.print(
        f"[bold]{result.record_id}[/bold]  protocol v{result.protocol_version}  as of {result.as_of.isoformat()}  "
        f"verdict: [bold {colour}]{result.verdict.value}[/bold {colour}]"
    )
    table = Table(show_lines=False)
    table.add_column("criterion")
    table.add_column("status")
    table.add_column("reason", overflow="fold")
    styles = {"pass": "green", "fail": "red", "unknown": "yellow"}
    for c in result.criteria:
        table.add_row(c.id, f"[{styles[c.status.value]}]{c.status.value}[/]", c.reason)
    console.print(table)
    if result.missing:
        console.print("[bold]missing:[/bold]")
        for m in result.missing:
            console.print(f"  - {m}")


def _print_summary(summary: dict, console, log_path: Path | None, summary_path: Path | None) -> None:
    from rich.table import Table

    table = Table(title="Screening (CONSORT screening box)")
    table.add_column("item")
    table.add_column("records", justify="right")
    for key in ("assessed", "eligible", "ineligible", "incomplete", "unreadable"):
        table.add_row(key, str(summary[key]))
    for cid, n in summary["failed_by_criterion"].items():
        table.add_row(f"  excluded by {cid}", str(n))
    console.print(table)
    if log_path is None:
        console.print("no files written: give --out DIR for screening-log.csv and screening-summary.json")
    else:
        console.print(f"screening log: {log_path}\nsummary: {summary_path}")


def screen_command(
    files: list[Path] = typer.Argument(..., help="Record files (own JSON, FHIR Bundle JSON, NDJSON) or directories."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Screening date YYYY-MM-DD. Default: each record's own screening_date."
    ),
    protocol_version: str | None = typer.Option(
        None, "--protocol-version", help="Protocol version to apply. Default: the default version (1), or the one a "
                                         "site's configuration sets in the registry."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per record per line on stdout."),
    out: Path | None = typer.Option(
        None, "--out", help="Directory for screening-log.csv and screening-summary.json (cohorts); without it "
                            "no file is written (issue 10: nothing lands in the current directory)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes for a cohort."),
) -> None:
    """Screen records against the LUTARTERIAL eligibility criteria."""
    import csv
    import json
    import sys

    from rich.console import Console

    from lutarterial.eligibility.cohort import LOG_FIELDS, CohortSummary, screen_units
    from lutarterial.eligibility.engine import screen
    from lutarterial.errors import InvalidInputError
    from lutarterial.protocol.loader import load_protocol
    from lutarterial.records.io import parse_json_text_many

    day = _parse_date(as_of)
    if protocol_version is not None:
        load_protocol(protocol_version)  # fail early, listing the versions
    cohort = len(files) > 1 or any(f.is_dir() or f.suffix.lower() in _COHORT_SUFFIXES for f in files)
    items = None
    single = None
    if not cohort:
        items = list(_texts(files[0]))
        if len(items) == 1:
            records = parse_json_text_many(items[0][1], items[0][0])
            single = records[0] if len(records) == 1 else None
        cohort = single is None
    console = Console(soft_wrap=False)
    if not cohort:
        result = screen(single, as_of=day, protocol_version=protocol_version)
        if json_out:
            sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        else:
            _print_single(result, console)
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    import contextlib

    log_path = summary_path = None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"cannot create output directory {out}: {exc}") from None
        log_path, summary_path = out / "screening-log.csv", out / "screening-summary.json"
    total = _count(files)
    summary = CohortSummary()

    def units():
        if items is not None:
            yield from (items[i:i + 2000] for i in range(0, len(items), 2000))
        else:
            yield from _units(files)

    err = Console(stderr=True)
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(log_path.open("w", newline="", encoding="utf-8")) if log_path is not None else None
        progress = stack.enter_context(Progress(TextColumn("screening"), BarColumn(), MofNCompleteColumn(),
                                                TimeRemainingColumn(), console=err, transient=True))
        if fh is not None:
            csv.writer(fh).writerow(LOG_FIELDS)
        task = progress.add_task("screen", total=total)
        try:
            for block in screen_units(units(), as_of=day, protocol_version=protocol_version, want_json=json_out,
                                      want_csv=fh is not None, jobs=jobs):
                if fh is not None:
                    fh.write(block.csv)
                summary.merge(block.summary)
                if json_out:
                    for reason in block.unreadable:
                        err.print(f"unreadable: {reason}", markup=False, highlight=False)
                    if block.ndjson:
                        sys.stdout.write(block.ndjson)
                progress.advance(task, block.rows)
        except UnicodeDecodeError:
            # A worker read bytes that are not UTF-8: report them exactly as reading the files as text does.
            for f in files:
                for _ in _texts(f):
                    pass
            raise
    summary_dict = summary.to_dict()
    if summary_path is not None:
        summary_path.write_text(json.dumps(summary_dict, indent=2) + "\n", encoding="utf-8")
    if not json_out:
        _print_summary(summary_dict, console, log_path, summary_path)
    if summary.unreadable:
        where = f"see {log_path}" if log_path is not None else "give --out DIR to keep the screening log"
        err.print(f"{summary.unreadable} record(s) could not be read; {where}", highlight=False)
        raise typer.Exit(1)


def protocols_command(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the packaged protocol versions: source, effective date (if known), which is the default and why."""
    import json
    import sys

    from rich.console import Console
    from rich.table import Table

    from lutarterial.protocol.loader import all_protocols, default_reason

    rows = [{"version": p.version, "default": p.default,
             "effective_date": p.effective_date.isoformat() if p.effective_date else None,
             "effective_date_known": p.effective_date_known, "source": p.source_document, "seen": p.source_seen,
             "criteria": len(p.criteria), "title": p.title,
             "applies": (f"by default: {default_reason(p)}" if p.default else
                         f"only with --protocol-version {p.version} or from the effective date a site's "
                         "configuration sets (registry, audited)")}
            for p in all_protocols()]
    if json_out:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title="Protocol versions")
    for col in ("version", "default", "effective date", "source (seen)", "criteria", "applies"):
        table.add_column(col, overflow="fold")
    for r in rows:
        eff = r["effective_date"] if r["effective_date_known"] else "not known"
        table.add_row(r["version"], "yes" if r["default"] else "no", eff, f"{r['source']} (seen {r['seen']})",
                      str(r["criteria"]), r["applies"])
    Console().print(table)


def schema_command(
    out: Path | None = typer.Option(None, "--out", help="Write the schema to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of the own-format screening record (docs/screening-record.schema.json)."""
    import json
    import sys

    from lutarterial.records.schema import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("screen")(screen_command)
    app.command("protocols")(protocols_command)
    app.command("screening-schema")(schema_command)
