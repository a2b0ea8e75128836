"""The project's own screening record: a pydantic model at the edge, published as JSON Schema.

Why strict: a misspelt field (``"plateletes"``) must be an error naming the field, not a
silently missing value. Every field is optional unless the record cannot be identified
without it (``record_id``); anything not documented is ``null``/absent and screens as
``unknown``. The data dictionary is ``docs/screening-record.md``; the schema is generated
by :func:`json_schema` and committed as ``docs/screening-record.schema.json``.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lutarterial.eligibility.patient import (
    EVENT_TYPES,
    Administration,
    Event,
    Imaging,
    Measurement,
    PatientData,
    Scan,
)
from lutarterial.units import ANALYTES

__all__ = [
    "SCHEMA_ID",
    "ScreeningRecord",
    "json_schema",
    "MEASUREMENT_ANALYTES",
]

SCHEMA_ID = "https://lutarterial.org/schemas/screening-record/1.0.json"
#: Analytes a measurement may name: the unit-aware ones plus ECOG (a plain score).
MEASUREMENT_ANALYTES = tuple(sorted(ANALYTES)) + ("ecog",)
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")

AnalyteName = Literal[MEASUREMENT_ANALYTES]  # type: ignore[valid-type]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PatientInfo(_Strict):
    """Demographics."""

    birth_date: str | None = Field(None, description="YYYY-MM-DD, or partial YYYY-MM / YYYY")
    sex: Literal["female", "male", "other", "unknown"] | None = None
    menopausal_status: Literal["pre", "post"] | None = Field(None, description="women only: pre- or post-menopausal")

    @field_validator("birth_date")
    @classmethod
    def _partial_date(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _PARTIAL_DATE.match(v):
            raise ValueError("birth_date must be YYYY-MM-DD, YYYY-MM or YYYY")
        _parse_partial(v)
        return v


class Tumour(_Strict):
    """INC01 histology."""

    histologically_proven: bool | None = None
    differentiation: Literal["well", "poor"] | None = None
    primary_origin: str | None = Field(
        None,
        description="pancreas, stomach, duodenum, jejunum, ileum, small_intestine, appendix, colon, rectum, "
        "gastrointestinal, lung, other, unknown_primary",
    )


class Disease(_Strict):
    """INC02 progression / hepatic invasion."""

    progression_on_ssa: bool | None = Field(None, description="RECIST progression on cold somatostatin analogue")
    progression_date: _dt.date | None = None
    hepatic_invasion_percent: float | None = Field(None, ge=0, le=100, description="at diagnosis")


class Cycle(_Strict):
    """One LUTATHERA administration."""

    date: _dt.date | None = None
    route: Literal["IV", "IAH"] = "IV"
    activity_mbq: float | None = Field(None, gt=0, le=100000, allow_inf_nan=False,
                                       description="administered activity, MBq (physical limit 100 GBq)")
    dose_reduced_for_toxicity: bool | None = None
    cancelled_for_toxicity: bool | None = Field(None, description="planned cycle cancelled for toxicity (not given)")


class ScanRead(_Strict):
    """Routine 24 h 177Lu post-therapy scintigraphy read (EXC02)."""

    date: _dt.date | None = None
    residual_uptake: bool | None = None


class ImagingRead(_Strict):
    """Inclusion imaging read, RECIST 1.1 (INC04, EXC01, EXC04)."""

    date: _dt.date | None = None
    complete_response: bool | None = None
    liver_dominant_or_exclusive: bool | None = None
    recist_assessable: bool | None = None
    resectable: bool | None = None
    extrahepatic_dominant_or_threatening: bool | None = None


class MeasurementIn(_Strict):
    """A dated lab result, vital sign or score with the lab's own reference range."""

    analyte: AnalyteName  # type: ignore[valid-type]
    value: float = Field(allow_inf_nan=False)
    unit: str | None = Field(None, description="UCUM or usual lab unit (g/dL, G/L, umol/L, /mm3, ...); none for ECOG")
    date: _dt.date | None = None
    reference_low: float | None = Field(None, allow_inf_nan=False)
    reference_high: float | None = Field(None, allow_inf_nan=False, description="the ULN for ALT/AST")
    reference_unit: str | None = Field(None, description="unit of the reference range if not the result's")
    source: str | None = Field(None, description="lab or document reference")


class Liver(_Strict):
    """EXC05 contraindications to intra-arterial infusion and Child-Pugh inputs."""

    coagulation_disorder: bool | None = None
    portal_thrombosis: bool | None = None
    intrahepatic_biliary_dilatation: bool | None = None
    digestive_or_biliary_anastomosis_or_fistula: bool | None = None
    cirrhosis: bool | None = None
    child_pugh_score: int | None = Field(None, ge=5, le=15, description="stated score; else computed")
    ascites: Literal["none", "mild", "moderate_severe"] | None = None
    encephalopathy: Literal["none", "grade_1_2", "grade_3_4"] | None = None


class CardiacEvent(_Strict):
    type: EventType  # type: ignore[valid-type]
    date: _dt.date | None = None


class Cardiac(_Strict):
    """EXC03 and EXC07."""

    carcinoid_heart_disease: bool | None = None
    antihypertensive_treatment: bool | None = None
    events: list[CardiacEvent] | None = Field(
        None, description="cardiovascular events (any date); [] = history reviewed, none; null = not documented"
    )


class Administrative(_Strict):
    """INC09-INC11, EXC08-EXC12 flags."""

    informed_consent_signed: bool | None = None
    informed_consent_date: _dt.date | None = None
    social_security: bool | None = None
    contraception_agreed: bool | None = None
    legal_protection: bool | None = None
    unable_to_consent: bool | None = None
    pregnant: bool | None = None
    breastfeeding: bool | None = None
    other_interventional_trial: bool | None = None
    mri_contraindicated: bool | None = None
    lutathera_contraindicated: bool | None = None


class ScreeningRecord(_Strict):
    """One patient's screening data in the project's own format (see docs/screening-record.md)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True,
        json_schema_extra={"$id": SCHEMA_ID},
    )

    record_id: str = Field(min_length=1, max_length=200)
    screening_date: _dt.date | None = Field(None, description="default screening (as-of) date")
    site: str | None = None
    patient: PatientInfo = PatientInfo()
    tumour: Tumour = Tumour()
    disease: Disease = Disease()
    lutathera_cycles: list[Cycle] | None = Field(None, description="null = not documented; [] = none given")
    post_therapy_scans: list[ScanRead] | None = None
    inclusion_imaging: list[ImagingRead] | None = None
    measurements: list[MeasurementIn] = []
    liver: Liver = Liver()
    cardiac: Cardiac = Cardiac()
    administrative: Administrative = Administrative()

    def to_patient(self) -> PatientData:
        """The source-neutral domain view the screening engine reads."""
        facts: dict[str, Any] = {}
        for part in (self.tumour, self.disease, self.liver, self.administrative):
            for k, v in part.__dict__.items():
                if v is not None:
                    facts[k] = v
        for k in ("carcinoid_heart_disease", "antihypertensive_treatment"):
            v = getattr(self.cardiac, k)
            if v is not None:
                facts[k] = v
        birth, precision = (None, "day")
        if self.patient.birth_date:
            birth, precision = _parse_partial(self.patient.birth_date)
        src = ""  # own-format data: the record itself is the source (FHIR data name their resource)
        return PatientData(
            record_id=self.record_id,
            birth_date=birth,
            birth_date_precision=precision,
            sex=self.patient.sex,
            menopausal_status=self.patient.menopausal_status,
            screening_date=self.screening_date,
            facts=facts,
            # MeasurementIn's fields are Measurement's, in the same order (asserted below): the
            # tuple is built from the model's __dict__ in C (profiled: 15 attribute reads per result).
            measurements=tuple(
                _measurement(m.__dict__.values()) if m.source else _measurement((*m.__dict__.values(),)[:-1] + (src,))
                for m in self.measurements
            ),
            lutathera=None if self.lutathera_cycles is None else tuple(
                Administration(c.date, c.route, c.activity_mbq, c.dose_reduced_for_toxicity, c.cancelled_for_toxicity, src)
                for c in self.lutathera_cycles
            ),
            scans=None if self.post_therapy_scans is None else tuple(
                Scan(s.date, s.residual_uptake, src) for s in self.post_therapy_scans
            ),
            imaging=None if self.inclusion_imaging is None else tuple(
                Imaging(i.date, i.complete_response, i.liver_dominant_or_exclusive, i.recist_assessable, i.resectable,
                        i.extrahepatic_dominant_or_threatening, src)
                for i in self.inclusion_imaging
            ),
            cardiovascular_events=None if self.cardiac.events is None else tuple(
                Event(e.type, e.date, src) for e in self.cardiac.events
            ),
            source_format="lutarterial",
        )


_measurement = Measurement._make
if tuple(MeasurementIn.model_fields) != Measurement._fields:  # pragma: no cover - a guard for future edits
    raise RuntimeError("MeasurementIn and Measurement fields differ; update ScreeningRecord.to_patient")


def _parse_partial(text: str) -> tuple[_dt.date, str]:
    parts = text.split("-")
    try:
        if len(parts) == 3:
            return _dt.date.fromisoformat(text), "day"
        if len(parts) == 2:
            return _dt.date(int(parts[0]), int(parts[1]), 1), "month"
        return _dt.date(int(parts[0]), 1, 1), "year"
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :class:`ScreeningRecord`, as published in docs/."""
    schema = ScreeningRecord.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
