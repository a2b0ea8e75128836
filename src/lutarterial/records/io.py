"""Reading screening records from files: own JSON, NDJSON, FHIR R4 Bundles, directories.

Why auto-detection: coordinators export from different systems; a FHIR Bundle is known by
``"resourceType": "Bundle"``, anything else must be the project's own record. Invalid
input raises :class:`~lutarterial.errors.InvalidInputError` naming the file, the line and
the field; :func:`iter_records` can instead yield a :class:`RecordError` and carry on, so
one bad line does not stop a cohort (it is logged, never silently dropped).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pydantic import ValidationError

from lutarterial.eligibility.patient import PatientData
from lutarterial.errors import InvalidInputError, LutarterialError, NotFoundError
from lutarterial.records.fhir import bundle_to_patient, bundle_to_patients, is_fhir_bundle
from lutarterial.records.schema import ScreeningRecord

__all__ = [
    "Record",
    "RecordError",
    "parse_record",
    "parse_records",
    "parse_json_text",
    "parse_json_text_many",
    "load_records",
    "iter_records",
    "RECORD_SUFFIXES",
    "ndjson_ranges",
    "read_ndjson_range",
]

#: What ``load_records`` yields: the own-format model or (from FHIR) the domain view.
Record = Union[ScreeningRecord, PatientData]
RECORD_SUFFIXES = (".json", ".ndjson", ".jsonl")


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record that could not be read: where it was and what to fix."""

    origin: str
    message: str


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(f"{loc or 'record'}: {err.get('msg')}")
    more = "" if exc.error_count() <= 5 else f" (+{exc.error_count() - 5} more)"
    return "; ".join(parts) + more


def parse_record(data: Any, origin: str = "") -> Record:
    """One record from parsed JSON: a FHIR Bundle or an own-format screening record."""
    if is_fhir_bundle(data):
        return bundle_to_patient(data, origin)
    if isinstance(data, dict) and "resourceType" in data:
        raise InvalidInputError(
            f"{origin or 'input'}: FHIR {data.get('resourceType')} given; screening reads a Bundle holding the Patient"
        )
    if not isinstance(data, dict):
        raise InvalidInputError(f"{origin or 'input'}: a record must be a JSON object")
    try:
        return ScreeningRecord.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"{origin or 'record'}: invalid screening record: {_validation_message(exc)}") from None


def parse_records(data: Any, origin: str = "") -> list[Record]:
    """Every record in parsed JSON: one own-format record, or each patient of a FHIR Bundle."""
    if is_fhir_bundle(data):
        return list(bundle_to_patients(data, origin))
    return [parse_record(data, origin)]


def parse_json_text_many(text: str, origin: str = "") -> list[Record]:
    """Every record in one JSON text (a multi-patient FHIR Bundle gives several)."""
    if '"resourceType"' not in text:
        return [parse_json_text(text, origin)]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_records(data, origin)


def parse_json_text(text: str, origin: str = "") -> Record:
    """One record from JSON text (the fast path for NDJSON lines)."""
    if '"resourceType"' not in text:
        try:
            return ScreeningRecord.model_validate_json(text)
        except ValidationError as exc:
            if any(e.get("type") == "json_invalid" for e in exc.errors()):
                raise InvalidInputError(f"{origin}: not valid JSON") from None
            raise InvalidInputError(f"{origin or 'record'}: invalid screening record: {_validation_message(exc)}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_record(data, origin)


def _iter_file(path: Path) -> Iterator[Record | RecordError]:
    name = str(path)
    try:
        if path.suffix.lower() in (".ndjson", ".jsonl"):
            with path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    origin = f"{name}:{lineno}"
                    try:
                        yield from parse_json_text_many(line, origin)
                    except LutarterialError as exc:
                        yield RecordError(origin, str(exc))
            return
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield RecordError(name, f"cannot read file: {exc}")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield RecordError(name, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
        return
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        origin = name if not isinstance(data, list) else f"{name}[{index}]"
        try:
            yield from parse_records(item, origin)
        except LutarterialError as exc:
            yield RecordError(origin, str(exc))


def iter_records(path: str | Path) -> Iterator[Record | RecordError]:
    """Records (or :class:`RecordError` for unreadable ones) from a file or a directory.

    A directory is read recursively in sorted path order, taking ``.json``, ``.ndjson`` and
    ``.jsonl`` files. A ``.json`` file holds one record, a list of records, or a FHIR Bundle.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in RECORD_SUFFIXES)
        for f in files:
            yield from _iter_file(f)
        return
    if not p.exists():
        raise NotFoundError(f"no such file or directory: {p}")
    yield from _iter_file(p)


def load_records(path: str | Path) -> Iterator[Record]:
    """Records from ``path``; the first unreadable record raises :class:`InvalidInputError`."""
    for item in iter_records(path):
        if isinstance(item, RecordError):
            raise InvalidInputError(f"{item.origin}: {item.message}" if not item.message.startswith(item.origin)
                                    else item.message)
        yield item


# -- NDJSON in byte ranges (issue 10, speed) ----------------------------------------------------
#
# Why: a parallel screening of a large NDJSON file had its parent process read every line as
# text and pickle it to a worker. With ranges the parent only finds line ends (bytes.count) and
# each worker reads, decodes and splits its own range, giving exactly the (origin, line) pairs
# that reading the file in text mode gives: universal newlines (\r\n and \r end a line too),
# each line with its "\n", blank lines skipped but counted, origins "FILE:LINE".


def _line_ends(block: bytes) -> int:
    n = block.count(b"\n")
    if b"\r" in block:  # a lone \r ends a line too (universal newlines); \r\n is one end
        n += block.count(b"\r") - block.count(b"\r\n")
    return n


def ndjson_ranges(path: str | Path, target_bytes: int = 4 << 20) -> Iterator[tuple[int, int, int]]:
    """``(offset, length, first line number)`` of consecutive pieces of an NDJSON file.

    Each piece but the last ends just after a ``\n`` and holds about ``target_bytes`` (more
    when one line is longer); together they cover the file.
    """
    with open(path, "rb") as fh:
        offset, lineno = 0, 1
        while True:
            fh.seek(offset)
            block = fh.read(target_bytes)
            if not block:
                return
            if len(block) == target_bytes:
                end = block.rfind(b"\n")
                while end < 0:  # a line longer than the target: read on to its end
                    more = fh.read(target_bytes)
                    if not more:
                        end = len(block) - 1
                        break
                    found = more.find(b"\n")
                    block += more if found < 0 else more[: found + 1]
                    end = len(block) - 1 if found >= 0 else -1
                block = block[: end + 1]
            yield offset, len(block), lineno
            offset += len(block)
            lineno += _line_ends(block)


def read_ndjson_range(path: str, offset: int, length: int, first_lineno: int) -> list[tuple[str, str]]:
    """The non-blank lines of one piece of ``path`` as ``(f"{path}:{line}", line)``, as text mode reads them.

    Raises :class:`UnicodeDecodeError` for bytes that are not UTF-8 (the caller reports it).
    """
    with open(path, "rb") as fh:
        fh.seek(offset)
        text = fh.read(length).decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.splitlines(True)
    if len(lines) != text.count("\n") + (not text.endswith("\n") and text != ""):
        # other characters that splitlines takes as line ends (\f, \x1c, \u2028, ...): text mode does not
        parts = text.split("\n")
        last = parts.pop()
        lines = [p + "\n" for p in parts] + ([last] if last else [])
    return [(f"{path}:{n}", line) for n, line in enumerate(lines, first_lineno) if line and not line.isspace()]
