"""Screening a cohort: the screening log, the CONSORT screening box, parallel batches.

Why here: the same counts feed the CLI, the web app and the registry, so they are computed
once, purely (no file or terminal I/O). A record that cannot be read is counted as
``unreadable`` with its reason: never silently dropped.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Union

from lutarterial.eligibility.engine import screen_patient
from lutarterial.eligibility.patient import PatientData
from lutarterial.eligibility.results import CriterionResult, ScreeningResult, Status, result_json
from lutarterial.errors import InvalidInputError, LutarterialError
from lutarterial.protocol.loader import Protocol, load_protocol, version_in_force

__all__ = ["UNREADABLE", "LOG_FIELDS", "CohortSummary", "log_row", "error_row", "Outcome", "ScreenedChunk",
           "screen_texts", "screen_texts_parallel", "screen_texts_chunks", "Unit", "LogBlock", "screen_units"]

#: Prefix of a text item standing for a source that could not be read (the rest is the reason).
UNREADABLE = "\x00unreadable:"
#: Columns of the screening log CSV.
LOG_FIELDS = ("record", "origin", "protocol_version", "as_of", "verdict", "failed", "unknown", "reasons")


_FAIL, _UNKNOWN = Status.FAIL, Status.UNKNOWN


def log_row(result: ScreeningResult, origin: str = "") -> dict[str, str]:
    """One screening-log line: which criteria failed or are unknown, and why.

    One pass over the criteria; the verdict follows from the same two lists exactly as
    :func:`lutarterial.eligibility.results.verdict_of` defines it (asserted in the tests).
    """
    failed: list[CriterionResult] = []
    unknown: list[CriterionResult] = []
    for c in result.criteria:
        st = c[1]
        if st is _FAIL:
            failed.append(c)
        elif st is _UNKNOWN:
            unknown.append(c)
    verdict = "ineligible" if failed else "incomplete" if unknown else "eligible"
    return {
        "record": result.record_id,
        "origin": origin,
        "protocol_version": result.protocol_version,
        "as_of": result.as_of.isoformat(),
        "verdict": verdict,
        "failed": " ".join([c[0] for c in failed]),
        "unknown": " ".join([c[0] for c in unknown]),
        "reasons": " | ".join([f"{c[0]}: {c[2]}" for c in failed + unknown]),
    }


def error_row(origin: str, message: str) -> dict[str, str]:
    """A screening-log line for a record that could not be read or screened."""
    return {"record": "", "origin": origin, "protocol_version": "", "as_of": "", "verdict": "unreadable",
            "failed": "", "unknown": "", "reasons": message}


@dataclass
class CohortSummary:
    """The CONSORT screening box: records assessed, verdicts, and failures per criterion.

    A record failing several criteria counts once under each (the usual CONSORT
    "reasons for exclusion" list, which is therefore not additive).
    """

    assessed: int = 0
    unreadable: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    failed_by_criterion: Counter[str] = field(default_factory=Counter)
    unknown_by_criterion: Counter[str] = field(default_factory=Counter)
    protocol_versions: Counter[str] = field(default_factory=Counter)

    def add_row(self, row: dict[str, str]) -> None:
        """Count one screening-log row (works identically for rows built in worker processes)."""
        if row["verdict"] == "unreadable":
            self.unreadable += 1
            return
        self.assessed += 1
        self.verdicts[row["verdict"]] += 1
        self.protocol_versions[row["protocol_version"]] += 1
        for cid in row["failed"].split():
            self.failed_by_criterion[cid] += 1
        for cid in row["unknown"].split():
            self.unknown_by_criterion[cid] += 1

    def merge(self, other: CohortSummary) -> None:
        """Add the counts of ``other`` (a summary of other rows, e.g. from a worker process)."""
        self.assessed += other.assessed
        self.unreadable += other.unreadable
        self.verdicts.update(other.verdicts)
        self.failed_by_criterion.update(other.failed_by_criterion)
        self.unknown_by_criterion.update(other.unknown_by_criterion)
        self.protocol_versions.update(other.protocol_versions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "assessed": self.assessed,
            "unreadable": self.unreadable,
            "eligible": self.verdicts.get("eligible", 0),
            "ineligible": self.verdicts.get("ineligible", 0),
            "incomplete": self.verdicts.get("incomplete", 0),
            "protocol_versions": dict(sorted(self.protocol_versions.items())),
            "failed_by_criterion": dict(sorted(self.failed_by_criterion.items())),
            "unknown_by_criterion": dict(sorted(self.unknown_by_criterion.items())),
        }


#: Per record: (JSON line or None, screening-log row).
Outcome = tuple[str | None, dict[str, str]]


def _protocol_for(as_of: _dt.date, version: str | None, cache: dict[Any, Protocol]) -> Protocol:
    key = version if version is not None else as_of
    p = cache.get(key)
    if p is None:
        p = cache[key] = load_protocol(version) if version is not None else version_in_force(as_of)
    return p


def screen_texts(
    items: Iterable[tuple[str, str]],
    *,
    as_of: _dt.date | None,
    protocol_version: str | None,
    want_json: bool = True,
) -> list[Outcome]:
    """Screen JSON texts ``(origin, text)``: own-format records or FHIR Bundles.

    ``as_of=None`` uses each record's ``screening_date``. Errors become ``unreadable`` rows.
    """
    from lutarterial.records.fast import patient_from_json  # the edge readers
    from lutarterial.records.io import parse_json_text_many

    cache: dict[Any, Protocol] = {}
    out: list[Outcome] = []
    for origin, text in items:
        if text.startswith(UNREADABLE):
            out.append((None, error_row(origin, f"{origin}: {text[len(UNREADABLE):]}")))
            continue
        # Own-format records in the plain shape skip the pydantic model (records.fast: same result);
        # anything else, FHIR included, goes through the full reader.
        patient = patient_from_json(text) if '"resourceType"' not in text else None
        if patient is not None:
            records: Any = (patient,)
        else:
            try:
                records = parse_json_text_many(text, origin)
            except LutarterialError as exc:
                out.append((None, _error(origin, exc)))
                continue
        for rec in records:
            try:
                patient = rec if isinstance(rec, PatientData) else rec.to_patient()
                day = as_of or patient.screening_date
                if day is None:
                    raise InvalidInputError(f"record {patient.record_id!r} has no screening_date; give --as-of")
                # Without JSON only the log row is kept: passes need no reason (eligibility.quick).
                result = screen_patient(patient, as_of=day, protocol=_protocol_for(day, protocol_version, cache),
                                        detail=want_json)
            except LutarterialError as exc:
                out.append((None, _error(origin, exc)))
                continue
            out.append((result_json(result) if want_json else None,
                        log_row(result, origin)))
    return out


def _error(origin: str, exc: Exception) -> dict[str, str]:
    message = str(exc)
    return error_row(origin, message if origin in message else f"{origin}: {message}")


def _chunked(items: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    for it in items:
        chunk.append(it)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class ScreenedChunk:
    """One chunk of screened texts in compact form (what a worker process sends back).

    ``ndjson`` holds the JSON lines of the chunk's readable records, each ending in ``\\n``,
    in input order (a JSON line never contains a raw newline: ``json.dumps`` escapes it).
    ``rows`` holds one screening-log row per outcome, as a tuple in :data:`LOG_FIELDS` order.
    Why: pickling one string and a list of flat tuples costs the parent far less than
    unpickling thousands of separate lines and dicts; the CLI writes ``ndjson`` as one block.
    """

    ndjson: str
    rows: list[tuple[str, ...]]
    has_json: bool = True

    def outcomes(self) -> list[Outcome]:
        """The chunk as :data:`Outcome` pairs, identical to what :func:`screen_texts` returns."""
        lines = iter(self.ndjson.split("\n"))
        out: list[Outcome] = []
        for r in self.rows:
            row = dict(zip(LOG_FIELDS, r))
            out.append((None if not self.has_json or r[4] == "unreadable" else next(lines), row))
        return out

    def row_dicts(self) -> list[dict[str, str]]:
        return [dict(zip(LOG_FIELDS, r)) for r in self.rows]


def _screen_chunk(
    chunk: list[tuple[str, str]], as_of: _dt.date | None, protocol_version: str | None, want_json: bool
) -> ScreenedChunk:
    outs = screen_texts(chunk, as_of=as_of, protocol_version=protocol_version, want_json=want_json)
    lines = [line for line, _row in outs if line is not None]
    return ScreenedChunk("\n".join(lines) + "\n" if lines else "", [tuple(row.values()) for _line, row in outs],
                         want_json)


def _pool_context() -> Any:
    """'fork' where the platform has it (workers inherit the loaded protocols and imports: no re-import)."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return multiprocessing.get_context()


def screen_texts_chunks(
    items: Iterable[tuple[str, str]],
    *,
    as_of: _dt.date | None,
    protocol_version: str | None,
    want_json: bool = True,
    jobs: int = 1,
    chunk_size: int = 2000,
) -> Iterator[ScreenedChunk]:
    """Screen texts over ``jobs`` processes; yields :class:`ScreenedChunk` objects in input order.

    Each worker screens a whole chunk and returns it compacted (one NDJSON string plus flat
    log tuples); at most ``2 * jobs`` chunks are in flight, so memory stays bounded.
    """
    if jobs <= 1:
        for chunk in _chunked(items, chunk_size):
            yield _screen_chunk(chunk, as_of, protocol_version, want_json)
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_pool_context()) as pool:
        pending = []
        for chunk in _chunked(items, chunk_size):
            pending.append(pool.submit(_screen_chunk, chunk, as_of, protocol_version, want_json))
            while len(pending) > 2 * jobs:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def screen_texts_parallel(
    items: Iterable[tuple[str, str]],
    *,
    as_of: _dt.date | None,
    protocol_version: str | None,
    want_json: bool = True,
    jobs: int = 1,
    chunk_size: int = 2000,
) -> Iterator[list[Outcome]]:
    """Like :func:`screen_texts` over ``jobs`` processes; yields chunks of outcomes in input order."""
    if jobs <= 1:
        for chunk in _chunked(items, chunk_size):
            yield screen_texts(chunk, as_of=as_of, protocol_version=protocol_version, want_json=want_json)
        return
    for sc in screen_texts_chunks(items, as_of=as_of, protocol_version=protocol_version, want_json=want_json,
                                  jobs=jobs, chunk_size=chunk_size):
        yield sc.outcomes()


# -- units of work, screened straight into log text (issue 10, speed) ----------------------------

#: A unit of work for :func:`screen_units`: a list of ``(origin, text)`` items, or ``(reader, args)``
#: that the worker calls to get them (``lutarterial.records.io.read_ndjson_range``: the worker
#: reads its own byte range of an NDJSON file, so the parent neither reads nor pickles the texts).
Unit = Union[list[tuple[str, str]], tuple[Callable[..., list[tuple[str, str]]], tuple[Any, ...]]]


@dataclass(frozen=True)
class LogBlock:
    """One unit screened, ready to write: what a worker process sends back to the CLI.

    ``csv``: the unit's screening-log lines exactly as ``csv.writer`` writes :data:`LOG_FIELDS`
    rows (empty when not wanted); ``ndjson``: its JSON lines, each ending in ``\\n``;
    ``summary``: its counts (to :meth:`CohortSummary.merge`); ``unreadable``: the reasons of its
    unreadable rows, in order; ``rows``: how many log rows. Why: the parent then only writes
    strings and adds counts; all per-record work happens in the workers.
    """

    csv: str
    ndjson: str
    summary: CohortSummary
    unreadable: tuple[str, ...]
    rows: int


def _screen_unit(unit: Unit, as_of: _dt.date | None, protocol_version: str | None, want_json: bool,
                 want_csv: bool) -> LogBlock:
    items = unit if isinstance(unit, list) else unit[0](*unit[1])
    outs = screen_texts(items, as_of=as_of, protocol_version=protocol_version, want_json=want_json)
    summary = CohortSummary()
    unreadable: list[str] = []
    for _line, row in outs:
        summary.add_row(row)
        if row["verdict"] == "unreadable":
            unreadable.append(row["reasons"])
    text = ""
    if want_csv:
        buf = io.StringIO(newline="")
        csv.writer(buf).writerows([tuple(row.values()) for _line, row in outs])
        text = buf.getvalue()
    lines = [line for line, _row in outs if line is not None]
    return LogBlock(text, "\n".join(lines) + "\n" if lines else "", summary, tuple(unreadable), len(outs))


def _prepare() -> None:
    """Load the readers and the protocol versions once, before worker processes fork from this one."""
    import lutarterial.records.fast  # noqa: F401
    import lutarterial.records.io  # noqa: F401
    from lutarterial.protocol.loader import all_protocols

    all_protocols()


def screen_units(
    units: Iterable[Unit],
    *,
    as_of: _dt.date | None,
    protocol_version: str | None,
    want_json: bool = True,
    want_csv: bool = True,
    jobs: int = 1,
) -> Iterator[LogBlock]:
    """Screen units of work over ``jobs`` processes; yields one :class:`LogBlock` per unit, in order.

    The rows, JSON lines and counts are those of :func:`screen_texts` on the units' items in
    order; at most ``2 * jobs`` units are in flight, so memory stays bounded.
    """
    _prepare()
    if jobs <= 1:
        for unit in units:
            yield _screen_unit(unit, as_of, protocol_version, want_json, want_csv)
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_pool_context()) as pool:
        pending = []
        for unit in units:
            pending.append(pool.submit(_screen_unit, unit, as_of, protocol_version, want_json, want_csv))
            while len(pending) > 2 * jobs:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()
