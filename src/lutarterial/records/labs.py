"""Readers of hospital laboratory exports: FHIR R4 Bundles, NDJSON of Observations, French lab CSV.

An edge module (files in, plain rows out; no database, no clock). Every reader is tolerant and
reports per row: a row it cannot read becomes a :class:`RowProblem` naming the line or entry and
the reason, and never stops the other rows.

* **FHIR**: ``Observation`` resources (in a Bundle, or one per NDJSON line) with a LOINC code the
  registry knows (:data:`lutarterial.units.ANALYTES`), a ``valueQuantity`` (UCUM ``code`` or
  ``unit``), ``effectiveDateTime``/``effectivePeriod.start``/``issued`` and the reference range
  (``low``/``high``, the lab's LLN/ULN). ``entered-in-error``/``cancelled`` results are refused.
  The subject: a ``Patient`` of the Bundle (its identifiers) or ``Patient?identifier=`` references.
* **CSV** in the shape French hospital labs send: ``analyte,value,unit,lln,uln,date``; ``,`` or
  ``;`` separated (with ``;`` a decimal comma is read: ``12,5``); dates ``YYYY-MM-DD`` or
  ``DD/MM/YYYY`` (optionally with a time ``HH:MM``); analyte names in English or French
  (``plaquettes``, ``hémoglobine``, ``créatinine``, ``ALAT``...) or a ``loinc`` column; units such
  as ``G/L``, ``g/dL``, ``µmol/L``, ``UI/L``. Optional participant columns: ``trial_number``, or
  the identity key (``hospital_id``/``ipp``, ``family_name``, ``given_name``, ``birth_date``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from lutarterial.errors import InvalidInputError
from lutarterial.units import analyte_by_loinc, analyte_by_name

__all__ = ["LabRow", "RowProblem", "ParsedLabs", "parse_labs", "detect_format", "FRENCH_ANALYTES", "FORMATS"]

FORMATS = ("fhir", "ndjson", "csv")

#: French (and common hospital) analyte names -> registry analyte (lutarterial.units). Accents,
#: case and punctuation are ignored when matching. Source: the usual labels of French hospital
#: laboratory reports (NFS, bilan hépatique, bilan rénal).
FRENCH_ANALYTES: dict[str, str] = {
    "plaquettes": "platelets", "numeration plaquettaire": "platelets",
    "hemoglobine": "haemoglobin", "hb": "haemoglobin",
    "polynucleaires neutrophiles": "neutrophils", "neutrophiles": "neutrophils", "pnn": "neutrophils",
    "lymphocytes": "lymphocytes", "leucocytes": "wbc", "globules blancs": "wbc",
    "creatinine": "creatinine", "creatininemie": "creatinine",
    "alat": "alt", "alat tgp": "alt", "tgp": "alt", "asat": "ast", "asat tgo": "ast", "tgo": "ast",
    "bilirubine": "bilirubin", "bilirubine totale": "bilirubin",
    "albumine": "albumin", "albuminemie": "albumin",
    "inr": "inr", "temps de quick": "pt",
}

_IGNORED_STATUS = {"entered-in-error", "cancelled"}
_LOINC = {"http://loinc.org", "http://loinc.org/", "https://loinc.org", "urn:oid:2.16.840.1.113883.6.1"}
_DATE_FR = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2})[:h](\d{2})(?::(\d{2}))?)?$")
_DATE_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


@dataclass(frozen=True)
class LabRow:
    """One readable lab value (as reported; conversion, grading and plausibility come later)."""

    where: str  # "line 3", "entry 2 (Observation/abc)"
    analyte: str  # registry analyte name
    loinc: str | None
    value: float
    unit: str
    collected_date: dt.date
    collected_time: str | None = None  # "HH:MM[:SS]" when the source gave one
    lln: float | None = None
    uln: float | None = None
    trial_number: str | None = None
    identity: dict[str, str] = field(default_factory=dict)  # hospital_id, family_name, given_name, birth_date


@dataclass(frozen=True)
class RowProblem:
    where: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason}


@dataclass(frozen=True)
class ParsedLabs:
    format: str
    rows: tuple[LabRow, ...]
    problems: tuple[RowProblem, ...]


def _plain(text: str) -> str:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", " ", t).strip()


def _analyte(name: str | None, loinc: str | None) -> tuple[str | None, str | None]:
    """(registry analyte, LOINC) from a name and/or a LOINC code; (None, reason) if unknown."""
    if loinc:
        a = analyte_by_loinc(loinc)
        if a is not None:
            return a.name, None
    if name:
        a = analyte_by_name(name) or analyte_by_name(_plain(name).replace(" ", "_"))
        if a is None and _plain(name) in FRENCH_ANALYTES:
            a = analyte_by_name(FRENCH_ANALYTES[_plain(name)])
        if a is not None:
            return a.name, None
    shown = " / ".join(x for x in (name, f"LOINC {loinc}" if loinc else None) if x)
    return None, f"analyte {shown or '(none)'} is not one the registry records"


def _number(text: Any, what: str, decimal_comma: bool) -> float | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, bool):
        raise ValueError(f"{what} {text!r} is not a number")
    if isinstance(text, (int, float)):
        return float(text)
    t = str(text).strip().replace("\u00a0", "").replace(" ", "")
    if decimal_comma:
        t = t.replace(",", ".")
    if t.startswith(("<", ">", "≤", "≥")):
        raise ValueError(f"{what} {text!r} is censored (a bound, not a value)")
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{what} {text!r} is not a finite number")
    return v


def _when(text: str) -> tuple[dt.date, str | None]:
    t = text.strip()
    m = _DATE_ISO.match(t)
    try:
        if m:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            time = f"{m.group(4)}:{m.group(5)}" + (f":{m.group(6)}" if m.group(6) else "") if m.group(4) else None
            return d, time
        m = _DATE_FR.match(t)
        if m:
            d = dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            time = f"{int(m.group(4)):02d}:{m.group(5)}" + (f":{m.group(6)}" if m.group(6) else "") \
                if m.group(4) else None
            return d, time
    except ValueError:
        raise ValueError(f"date {text!r} does not exist") from None
    raise ValueError(f"date {text!r}: use YYYY-MM-DD or DD/MM/YYYY")


def detect_format(data: bytes | str) -> str:
    """``fhir`` (a JSON object), ``ndjson`` (one JSON object per line) or ``csv``."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("{"):
        first = head.split("\n", 1)[0].strip()
        if "\n" in head.strip() and first.endswith("}"):
            try:
                json.loads(first)
                return "ndjson"
            except ValueError:
                pass
        return "fhir"
    return "csv"


def parse_labs(data: bytes | str | dict[str, Any], fmt: str | None = None, origin: str = "") -> ParsedLabs:
    """Read a lab export; ``fmt`` (fhir, ndjson, csv) is detected when not given."""
    if isinstance(data, dict):
        return _fhir_resources(_bundle_entries(data, origin), "fhir", _patients(data))
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    fmt = (fmt or detect_format(text)).lower()
    if fmt not in FORMATS:
        raise InvalidInputError(f"lab file format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return _csv(text, origin)
    if fmt == "ndjson":
        resources: list[tuple[str, Any]] = []
        problems: list[RowProblem] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                resources.append((f"line {n}", json.loads(line)))
            except ValueError as exc:
                problems.append(RowProblem(f"line {n}", f"not valid JSON ({exc})"))
        parsed = _fhir_resources(resources, "ndjson", {})
        return ParsedLabs("ndjson", parsed.rows, tuple(problems) + parsed.problems)
    try:
        bundle = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"{origin or 'lab file'}: not valid JSON ({exc})") from None
    return _fhir_resources(_bundle_entries(bundle, origin), "fhir", _patients(bundle))


def _bundle_entries(bundle: Any, origin: str) -> list[tuple[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") not in ("Bundle", "Observation"):
        raise InvalidInputError(f"{origin or 'lab file'}: expected a FHIR Bundle (or one Observation)")
    if bundle.get("resourceType") == "Observation":
        return [("resource", bundle)]
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidInputError(f"{origin or 'lab file'}: Bundle.entry must be a list")
    return [(f"entry {i}", e.get("resource") if isinstance(e, dict) else None) for i, e in enumerate(entries, 1)]


def _patients(bundle: Any) -> dict[str, dict[str, str]]:
    """Reference key -> identity fields of each Patient in a Bundle."""
    out: dict[str, dict[str, str]] = {}
    for e in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "Patient":
            continue
        ident: dict[str, str] = {}
        ids = [i.get("value") for i in res.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
        if ids:
            ident["hospital_id"] = str(ids[0])
        names = [n for n in res.get("name") or [] if isinstance(n, dict)]
        if names:
            if names[0].get("family"):
                ident["family_name"] = str(names[0]["family"])
            given = names[0].get("given") or []
            if given:
                ident["given_name"] = str(given[0])
        if res.get("birthDate"):
            ident["birth_date"] = str(res["birthDate"])
        keys = [f"Patient/{res.get('id')}" if res.get("id") else "", str(e.get("fullUrl") or "")]
        keys += [f"Patient?identifier={v}" for v in ids]
        for k in keys:
            if k:
                out[k] = ident
    return out


def _subject_identity(res: dict[str, Any], patients: dict[str, dict[str, str]]) -> dict[str, str]:
    subj = res.get("subject") if isinstance(res.get("subject"), dict) else {}
    ref = str(subj.get("reference") or "")
    if ref in patients:
        return patients[ref]
    if "|" in ref and ref.startswith("Patient?identifier="):
        key = "Patient?identifier=" + ref.split("|", 1)[1]
        if key in patients:
            return patients[key]
        return {"hospital_id": ref.split("|", 1)[1]}
    if ref.startswith("Patient?identifier="):
        return {"hospital_id": ref.split("=", 1)[1]}
    ident = subj.get("identifier") if isinstance(subj.get("identifier"), dict) else None
    if ident and ident.get("value"):
        return {"hospital_id": str(ident["value"])}
    if len({id(v) for v in patients.values()}) == 1:
        return next(iter(patients.values()))
    return {}


def _fhir_resources(resources: list[tuple[str, Any]], fmt: str, patients: dict[str, dict[str, str]]) -> ParsedLabs:
    rows: list[LabRow] = []
    problems: list[RowProblem] = []
    for where, res in resources:
        if not isinstance(res, dict):
            problems.append(RowProblem(where, "no resource"))
            continue
        if res.get("resourceType") != "Observation":
            continue  # Patient, Practitioner, DiagnosticReport...: not lab values
        label = f"{where} (Observation/{res.get('id') or '?'})"
        try:
            rows.append(_observation(label, res, patients))
        except ValueError as exc:
            problems.append(RowProblem(label, str(exc)))
    return ParsedLabs(fmt, tuple(rows), tuple(problems))


def _observation(label: str, res: dict[str, Any], patients: dict[str, dict[str, str]]) -> LabRow:
    status = str(res.get("status") or "")
    if status in _IGNORED_STATUS:
        raise ValueError(f"status {status}: not a valid result")
    code = res.get("code") if isinstance(res.get("code"), dict) else {}
    codings = [c for c in code.get("coding") or [] if isinstance(c, dict)]
    loincs = [str(c.get("code")) for c in codings if c.get("system") in _LOINC and c.get("code")]
    name = code.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
    analyte, why = None, "no LOINC code"
    for lc in loincs or [None]:  # type: ignore[list-item]
        analyte, why = _analyte(None if loincs else name, lc)
        if analyte:
            break
    if analyte is None:
        analyte, why2 = _analyte(name, None) if name else (None, why)
        if analyte is None:
            raise ValueError(why or why2 or "unknown analyte")
    q = res.get("valueQuantity")
    if not isinstance(q, dict):
        raise ValueError("no valueQuantity (a numeric result with its unit)")
    if q.get("comparator"):
        raise ValueError(f"value is censored ({q.get('comparator')} {q.get('value')}), not a value")
    value = _number(q.get("value"), "value", False)
    if value is None:
        raise ValueError("valueQuantity has no value")
    unit = str(q.get("code") or q.get("unit") or "").strip()
    if not unit:
        raise ValueError("valueQuantity has no unit")
    when = res.get("effectiveDateTime") or (res.get("effectivePeriod") or {}).get("start") or res.get("issued")
    if not when:
        raise ValueError("no effectiveDateTime (collection time)")
    day, time = _when(str(when))
    lln = uln = None
    for rr in res.get("referenceRange") or []:
        if not isinstance(rr, dict):
            continue
        low, high = rr.get("low") or {}, rr.get("high") or {}
        lln = _number(low.get("value"), "reference low", False) if isinstance(low, dict) else None
        uln = _number(high.get("value"), "reference high", False) if isinstance(high, dict) else None
        break
    return LabRow(where=label, analyte=analyte, loinc=loincs[0] if loincs else None, value=value, unit=unit,
                  collected_date=day, collected_time=time, lln=lln, uln=uln,
                  identity=dict(_subject_identity(res, patients)))


_ID_COLUMNS = {"hospital_id": "hospital_id", "ipp": "hospital_id", "family_name": "family_name", "nom": "family_name",
               "given_name": "given_name", "prenom": "given_name", "birth_date": "birth_date",
               "date_de_naissance": "birth_date"}


def _csv(text: str, origin: str) -> ParsedLabs:
    try:
        return _csv_rows(text.replace("\r\n", "\n").replace("\r", "\n"), origin)
    except csv.Error as exc:  # e.g. a NUL byte or a broken quoted field: the file cannot be read
        raise InvalidInputError(f"{origin or 'lab file'}: not a readable CSV file ({exc})") from None


def _csv_rows(text: str, origin: str) -> ParsedLabs:
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ("\t" if "\t" in first else ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [_plain(h).replace(" ", "_") for h in next(reader)]
    except StopIteration:
        raise InvalidInputError(f"{origin or 'lab file'}: empty CSV") from None
    required = {"value", "unit", "date"}
    if not required <= set(header) or not ({"analyte", "loinc"} & set(header)):
        raise InvalidInputError(f"{origin or 'lab file'}: CSV header must have analyte (or loinc), value, unit, "
                                f"date (and optionally lln, uln, trial_number); found {', '.join(header)}")
    rows: list[LabRow] = []
    problems: list[RowProblem] = []
    decimal_comma = delimiter == ";"
    for n, cells in enumerate(reader, 2):
        if not any(c.strip() for c in cells):
            continue
        where = f"line {n}"
        rec = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}
        try:
            analyte, why = _analyte(rec.get("analyte") or None, rec.get("loinc") or None)
            if analyte is None:
                raise ValueError(why)
            value = _number(rec.get("value"), "value", decimal_comma)
            if value is None:
                raise ValueError("no value")
            if not rec.get("unit"):
                raise ValueError("no unit")
            day, time = _when(rec.get("date", ""))
            ident = {key: rec[col] for col, key in _ID_COLUMNS.items() if rec.get(col)}
            rows.append(LabRow(where=where, analyte=analyte, loinc=rec.get("loinc") or None, value=value,
                               unit=rec["unit"], collected_date=day, collected_time=time,
                               lln=_number(rec.get("lln"), "LLN", decimal_comma),
                               uln=_number(rec.get("uln"), "ULN", decimal_comma),
                               trial_number=(rec.get("trial_number") or "").upper() or None, identity=ident))
        except ValueError as exc:
            problems.append(RowProblem(where, str(exc)))
    return ParsedLabs("csv", tuple(rows), tuple(problems))
