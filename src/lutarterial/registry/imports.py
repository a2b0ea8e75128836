"""Hospital data into the registry: lab files and EHR screening bundles (issue 15).

One file = one unit of work: every accepted lab value is written through
:func:`~lutarterial.registry.services.study_data.record_lab` (converted by the units layer,
CTCAE-graded, audited with the import's reason and the file's SHA-256 prefix), plus one audited
``data_imports`` row holding the summary. The caller's session commits once at the end, so a
crash leaves nothing half-imported. A refused row never blocks the others: it is listed with
its reason.

Checks per row, in order: participant resolved (trial number, or the identity key, which only
roles allowed to read identities may use, and which is never stored on the lab row); analyte
known; plausible value (:func:`lutarterial.plausibility.check_quantity`); unit convertible;
duplicate (same participant, analyte, collection date and value, in the registry or earlier in
the same file: skipped and counted); then the registry's own validation and access rules.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError, InvalidInputError, LutarterialError
from lutarterial.records.labs import LabRow, parse_labs
from lutarterial.registry.access import Actor, Permission, can, require
from lutarterial.registry.audit import audited
from lutarterial.registry.models import DataImport, LabResult, Participant, ParticipantIdentity

__all__ = ["LabImportSummary", "import_labs", "import_screening", "pseudonymise_bundle", "sha256_of"]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class LabImportSummary:
    file_sha256: str
    format: str
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    imported_rows: list[dict[str, Any]] = field(default_factory=list)
    import_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file_sha256": self.file_sha256, "format": self.format, "rows": self.rows,
                "imported": self.imported, "duplicates": self.duplicates, "refused_count": len(self.refused),
                "refused": self.refused, "imported_rows": self.imported_rows, "import_id": self.import_id}


def _resolve(session: Session, actor: Actor, row: LabRow, forced: str | None,
             cache: dict[str, Participant]) -> Participant:
    from lutarterial.registry.services._common import load_participant

    if forced is not None:
        if row.trial_number and row.trial_number != forced.strip().upper():
            raise InvalidInputError(f"row is for {row.trial_number}, not {forced.strip().upper()}")
        key = forced.strip().upper()
        if key not in cache:
            cache[key] = load_participant(session, actor, key)
        return cache[key]
    if row.trial_number:
        if row.trial_number not in cache:
            cache[row.trial_number] = load_participant(session, actor, row.trial_number)
        return cache[row.trial_number]
    ident = row.identity
    if not ident:
        raise InvalidInputError("no participant: give a trial_number column (or the identity key, admins only)")
    if not can(actor, Permission.IDENTITY_READ):
        raise AccessDeniedError("matching by identity key (hospital ID, name, birth date) is for administrators only; "
                                "give the trial_number")
    stmt = select(ParticipantIdentity)
    if ident.get("hospital_id"):
        stmt = stmt.where(ParticipantIdentity.hospital_id == ident["hospital_id"].strip())
    elif ident.get("family_name") and ident.get("given_name") and ident.get("birth_date"):
        try:
            born = dt.date.fromisoformat(ident["birth_date"].strip())
        except ValueError:
            raise InvalidInputError("identity birth_date must be YYYY-MM-DD") from None
        stmt = stmt.where(ParticipantIdentity.family_name.ilike(ident["family_name"].strip()),
                          ParticipantIdentity.given_name.ilike(ident["given_name"].strip()),
                          ParticipantIdentity.birth_date == born)
    else:
        raise InvalidInputError("identity key incomplete: hospital_id, or family_name + given_name + birth_date")
    found = list(session.scalars(stmt.limit(2)))
    if len(found) != 1:
        raise InvalidInputError("the identity key matches no participant" if not found
                                else "the identity key matches several participants")
    # the matched identity must agree with the other identity fields given
    rec = found[0]
    if ident.get("birth_date") and rec.birth_date.isoformat() != ident["birth_date"].strip()[:10]:
        raise InvalidInputError("the identity key's birth date does not match the registry's")
    return load_participant(session, actor, rec.participant_id)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def import_labs(session: Session, actor: Actor, data: bytes, *, reason: str, fmt: str | None = None,
                participant: str | None = None, source_name: str = "") -> LabImportSummary:
    """Import one lab file (bytes as received); see the module docstring. ``participant``
    forces every row onto that trial number (the API route); rows naming another are refused."""
    from lutarterial.plausibility import check_quantity, kinds
    from lutarterial.registry.services.study_data import record_lab
    from lutarterial.units import ANALYTES, to_canonical

    require(actor, Permission.LAB_WRITE)
    if not reason or not reason.strip():
        raise InvalidInputError("a reason for the import is required (audit trail)")
    cache: dict[str, Participant] = {}
    if participant is not None:  # the route's participant must exist and be visible: else 404 for the file
        from lutarterial.registry.services._common import load_participant

        cache[participant.strip().upper()] = load_participant(session, actor, participant.strip().upper())
    digest = sha256_of(data)
    parsed = parse_labs(data, fmt, origin=source_name)
    summary = LabImportSummary(file_sha256=digest, format=parsed.format,
                               rows=len(parsed.rows) + len(parsed.problems))
    summary.refused.extend(p.to_dict() for p in parsed.problems)
    seen: set[tuple[int, str, dt.date, float]] = set()
    plausible_kinds = set(kinds())
    # oldest first, so each value's CTCAE baseline is the earliest earlier value
    for row in sorted(parsed.rows, key=lambda r: (r.collected_date, r.collected_time or "")):
        try:
            p = _resolve(session, actor, row, participant, cache)
            if row.analyte in plausible_kinds:
                canonical = check_quantity(row.analyte, row.value, row.unit, name=row.analyte)
            else:
                canonical = to_canonical(ANALYTES[row.analyte], row.value, row.unit)
            key = (p.id, row.analyte, row.collected_date, round(canonical, 9))
            existing = session.scalars(select(LabResult.value_canonical).where(
                LabResult.participant_id == p.id, LabResult.analyte == row.analyte,
                LabResult.collected_date == row.collected_date))
            if key in seen or any(_same(v, canonical) for v in existing):
                summary.duplicates += 1
                continue
            lab = record_lab(session, actor, p.trial_number, analyte=row.analyte, loinc=row.loinc, value=row.value,
                             unit=row.unit, collected_date=row.collected_date, lln=row.lln, uln=row.uln,
                             reason=f"{reason.strip()} [lab import {digest[:12]}, {row.where}]")
            seen.add(key)
        except LutarterialError as exc:
            summary.refused.append({"where": row.where, "reason": str(exc)})
            continue
        summary.imported += 1
        summary.imported_rows.append({
            "where": row.where, "trial_number": p.trial_number, "analyte": lab.analyte, "value": lab.value,
            "unit": lab.unit, "value_canonical": lab.value_canonical, "unit_canonical": lab.unit_canonical,
            "collected_date": lab.collected_date.isoformat(), "ctcae_term": lab.ctcae_term,
            "ctcae_grade": lab.ctcae_grade})
    participants = {r["trial_number"] for r in summary.imported_rows}
    with audited(session, actor, f"{reason.strip()} [lab import {digest[:12]}]"):
        rec = DataImport(kind="labs", file_format=parsed.format, sha256=digest, source_name=source_name[:200],
                         participant_id=next(iter(cache.values())).id if len(participants) == 1 and cache else None,
                         summary={k: v for k, v in summary.to_dict().items() if k != "imported_rows"})
        session.add(rec)
    summary.import_id = rec.id
    return summary


# --- screening records from the EHR -----------------------------------------------------------

#: Patient elements that identify a person: removed before the bundle is stored as study data.
_PATIENT_IDENTIFYING = ("identifier", "name", "telecom", "address", "contact", "photo", "text", "link",
                        "generalPractitioner", "managingOrganization")
#: Resources about people other than the patient, never read by screening: dropped.
_DROP_TYPES = {"Practitioner", "PractitionerRole", "RelatedPerson", "Person", "Organization", "Location"}


def pseudonymise_bundle(bundle: dict[str, Any]) -> dict[str, Any]:
    """A copy of a FHIR Bundle without the patient's direct identifiers (name, identifiers,
    contact details), without resources about other people, and without narrative ``text``."""
    out = copy.deepcopy(bundle)
    entries = []
    for e in out.get("entry") or []:
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(res, dict):
            if res.get("resourceType") in _DROP_TYPES:
                continue
            res.pop("text", None)
            if res.get("resourceType") == "Patient":
                for k in _PATIENT_IDENTIFYING:
                    res.pop(k, None)
        entries.append(e)
    out["entry"] = entries
    return out


def import_screening(session: Session, actor: Actor, data: bytes, *, participant: str, reason: str,
                     as_of: dt.date | str | None = None, protocol_version: str | None = None,
                     source_name: str = "") -> dict[str, Any]:
    """Screen a participant from an EHR FHIR R4 Bundle (the screening reader) and store it, with the
    bundle's SHA-256 (of the bytes as received) in ``data_imports``. Returns the screening summary."""
    from lutarterial.records.fhir import is_fhir_bundle
    from lutarterial.registry.services.participants import screen_participant

    digest = sha256_of(data)
    try:
        bundle = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{source_name or 'screening bundle'}: not valid JSON ({exc})") from None
    if not is_fhir_bundle(bundle):
        raise InvalidInputError(f"{source_name or 'input'}: not a FHIR Bundle")
    clean = pseudonymise_bundle(bundle)
    row = screen_participant(session, actor, participant, clean, reason=f"{reason.strip()} [EHR bundle {digest[:12]}]",
                             as_of=as_of, protocol_version=protocol_version)
    summary = {"screening_id": row.id, "trial_number": participant.strip().upper(), "overall": row.overall,
               "protocol_version": row.protocol_version, "as_of": row.as_of.isoformat(), "bundle_sha256": digest}
    with audited(session, actor, f"{reason.strip()} [EHR bundle {digest[:12]}]"):
        rec = DataImport(kind="screening", file_format="fhir", sha256=digest, participant_id=row.participant_id,
                         screening_result_id=row.id, source_name=source_name[:200], summary=summary)
        session.add(rec)
    summary["import_id"] = rec.id
    return summary
