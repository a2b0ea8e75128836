"""What the screening engine knows about one patient: frozen, source-neutral domain types.

The many small per-datum records (:class:`Measurement`, :class:`Administration`, ...) are
typed ``NamedTuple`` classes rather than frozen dataclasses: equally immutable, and about ten
times cheaper to build, which matters when a cohort of 100,000 records is screened
(profiled: frozen-dataclass ``__init__`` was the largest single cost).

Why a separate domain type: the engine must not care whether the data came from the
project's own JSON record or from a FHIR R4 Bundle. Both readers (``lutarterial.records``)
build a :class:`PatientData`; the rules read only this. ``None`` always means *not
documented* (which screens as ``unknown``), never *no* or *zero*.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "Measurement",
    "Administration",
    "Scan",
    "Imaging",
    "Event",
    "PatientData",
    "FACT_NAMES",
    "EVENT_TYPES",
]

#: Cardiovascular event types of EXC07 (the vocabulary of records and of the FHIR code table).
EVENT_TYPES = (
    "heart_failure",
    "myocardial_infarction",
    "stroke",
    "uncontrolled_hypertension",
    "pulmonary_embolism",
    "revascularisation",
    "unstable_angina",
    "uncontrolled_arrhythmia",
    "significant_bradycardia",
)

#: Every fact name a record may carry, with the Python type of its value.
FACT_NAMES: Mapping[str, type | tuple[type, ...]] = MappingProxyType(
    {
        "histologically_proven": bool,
        "differentiation": str,  # "well" | "poor"
        "primary_origin": str,
        "progression_on_ssa": bool,
        "progression_date": _dt.date,
        "hepatic_invasion_percent": (int, float),
        "contraception_agreed": bool,
        "informed_consent_signed": bool,
        "informed_consent_date": _dt.date,
        "social_security": bool,
        "carcinoid_heart_disease": bool,
        "coagulation_disorder": bool,
        "portal_thrombosis": bool,
        "intrahepatic_biliary_dilatation": bool,
        "digestive_or_biliary_anastomosis_or_fistula": bool,
        "cirrhosis": bool,
        "child_pugh_score": int,
        "ascites": str,  # "none" | "mild" | "moderate_severe"
        "encephalopathy": str,  # "none" | "grade_1_2" | "grade_3_4"
        "antihypertensive_treatment": bool,
        "legal_protection": bool,
        "unable_to_consent": bool,
        "pregnant": bool,
        "breastfeeding": bool,
        "other_interventional_trial": bool,
        "mri_contraindicated": bool,
        "lutathera_contraindicated": bool,
    }
)


class Measurement(NamedTuple):
    """A dated quantitative result with its unit and the lab's own reference range.

    ``analyte`` is a name from :data:`lutarterial.units.ANALYTES` or ``"ecog"``.
    ``reference_unit`` defaults to ``unit`` (FHIR ranges carry their own unit).
    """

    analyte: str
    value: float
    unit: str | None
    date: _dt.date | None
    reference_low: float | None = None
    reference_high: float | None = None
    reference_unit: str | None = None
    source: str = ""


class Administration(NamedTuple):
    """One LUTATHERA administration (or a planned one cancelled for toxicity)."""

    date: _dt.date | None
    route: str = "IV"
    activity_mbq: float | None = None
    dose_reduced_for_toxicity: bool | None = None
    cancelled_for_toxicity: bool | None = None
    source: str = ""


class Scan(NamedTuple):
    """A routine post-therapy 24 h 177Lu scintigraphy read."""

    date: _dt.date | None
    residual_uptake: bool | None
    source: str = ""


class Imaging(NamedTuple):
    """The inclusion imaging read (RECIST 1.1)."""

    date: _dt.date | None
    complete_response: bool | None = None
    liver_dominant_or_exclusive: bool | None = None
    recist_assessable: bool | None = None
    resectable: bool | None = None
    extrahepatic_dominant_or_threatening: bool | None = None
    source: str = ""


class Event(NamedTuple):
    """A dated clinical event (EXC07 vocabulary: :data:`EVENT_TYPES`)."""

    kind: str
    date: _dt.date | None
    source: str = ""


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PatientData:
    """Everything screening uses about one patient; ``None`` = not documented.

    ``birth_date_precision`` is ``"day"``, ``"month"`` or ``"year"`` (FHIR allows partial
    dates; ``birth_date`` then holds the first possible day). ``lutathera``,
    ``scans``, ``imaging`` and ``cardiovascular_events`` are ``None`` when that part of the
    history was not documented, and an empty tuple when it was documented as empty.
    ``cardiovascular_history_complete`` is false when the events listed are only those a
    source happened to code (FHIR): they can exclude, but their absence cannot clear EXC07.
    """

    record_id: str
    birth_date: _dt.date | None = None
    birth_date_precision: str = "day"
    sex: str | None = None  # "female" | "male" | other values screen as unknown where sex matters
    menopausal_status: str | None = None  # "pre" | "post"
    screening_date: _dt.date | None = None
    facts: Mapping[str, Any] = field(default_factory=_empty)
    fact_sources: Mapping[str, str] = field(default_factory=_empty)
    measurements: tuple[Measurement, ...] = ()
    lutathera: tuple[Administration, ...] | None = None
    scans: tuple[Scan, ...] | None = None
    imaging: tuple[Imaging, ...] | None = None
    cardiovascular_events: tuple[Event, ...] | None = None
    cardiovascular_history_complete: bool = True
    source_format: str = "lutarterial"

    def fact(self, name: str) -> Any:
        """The value of a documented fact, or ``None``."""
        return self.facts.get(name)
