"""Hospital data in over the API (issue 15): ``labs:import`` and ``screening:import``.

The file travels inside a JSON body (``content``: the CSV or NDJSON text, or the FHIR Bundle as a
JSON object), so the operations stay describable in the OpenAPI with one error model. The SHA-256
recorded is that of the CSV/NDJSON text (UTF-8) or, for a JSON object, of its canonical JSON form
(sorted keys, no spaces).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lutarterial.web.backend import WebUser
from lutarterial.web.deps import backend_of, current_user, require_csrf

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["imports"])
W = [Depends(require_csrf)]


class LabImportIn(BaseModel):
    content: str | dict[str, Any] = Field(description="CSV or NDJSON text, or a FHIR R4 Bundle (JSON object)")
    reason: str = Field(min_length=1, max_length=2000, description="why (recorded in the audit trail)")
    format: Literal["fhir", "ndjson", "csv"] | None = Field(default=None, description="default: detected")


class RowRefused(BaseModel):
    where: str
    reason: str


class LabImported(BaseModel):
    where: str
    trial_number: str
    analyte: str
    value: float
    unit: str
    value_canonical: float
    unit_canonical: str
    collected_date: str
    ctcae_term: str | None
    ctcae_grade: int | None


class LabImportOut(BaseModel):
    file_sha256: str
    format: str
    rows: int
    imported: int
    duplicates: int
    refused_count: int
    refused: list[RowRefused]
    imported_rows: list[LabImported]
    import_id: int | None


class ScreeningImportIn(BaseModel):
    bundle: dict[str, Any] = Field(description="FHIR R4 Bundle from the EHR holding the participant's Patient")
    reason: str = Field(min_length=1, max_length=2000, description="why (recorded in the audit trail)")
    as_of: dt.date | None = Field(default=None, description="screening date (default: the record's)")
    protocol_version: str | None = None


class ScreeningImportOut(BaseModel):
    screening_id: int
    trial_number: str
    overall: str
    protocol_version: str
    as_of: str
    bundle_sha256: str
    import_id: int


def _bytes(content: str | dict[str, Any]) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@router.post("/participants/{tn}/labs:import", response_model=LabImportOut, dependencies=W)
def labs_import(request: Request, tn: str, body: LabImportIn, user: WebUser = Depends(current_user)) -> Any:
    """Import a lab file for one participant: each value converted, CTCAE-graded and checked for
    plausibility; duplicates (same analyte, date and value) skipped; refused rows listed with the
    reason; all accepted rows written in one audited transaction."""
    from lutarterial.registry.imports import import_labs

    with backend_of(request).write() as s:
        return import_labs(s, user.actor, _bytes(body.content), reason=body.reason, fmt=body.format, participant=tn,
                           source_name="api").to_dict()


@router.post("/participants/{tn}/screening:import", status_code=201, response_model=ScreeningImportOut,
             dependencies=W)
def screening_import(request: Request, tn: str, body: ScreeningImportIn, user: WebUser = Depends(current_user)) -> Any:
    """Screen the participant from an EHR FHIR Bundle (the screening reader) and store the result with
    the bundle's SHA-256; the patient's identifiers are removed before storage."""
    from lutarterial.registry.imports import import_screening

    with backend_of(request).write() as s:
        return import_screening(s, user.actor, _bytes(body.bundle), participant=tn, reason=body.reason,
                                as_of=body.as_of, protocol_version=body.protocol_version, source_name="api")
