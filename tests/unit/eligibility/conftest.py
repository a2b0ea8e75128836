"""Fixtures: one hand-written, fully eligible own-format record and helpers to vary it."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

AS_OF = dt.date(2024, 6, 3)  # protocol version 2 in force
LAB_DAY = "2024-05-27"


def base_record() -> dict[str, Any]:
    """Eligible on 2024-06-03: every criterion documented and passing."""
    return {
        "record_id": "BDX-0001",
        "screening_date": "2024-06-03",
        "site": "Bordeaux",
        "patient": {"birth_date": "1960-03-15", "sex": "male"},
        "tumour": {"histologically_proven": True, "differentiation": "well", "primary_origin": "ileum"},
        "disease": {"progression_on_ssa": True, "progression_date": "2023-06-01", "hepatic_invasion_percent": 30},
        "lutathera_cycles": [
            {"date": d, "route": "IV", "activity_mbq": 7400, "dose_reduced_for_toxicity": False,
             "cancelled_for_toxicity": False}
            for d in ("2023-09-01", "2023-10-27", "2023-12-22", "2024-02-16")
        ],
        "post_therapy_scans": [{"date": "2024-02-17", "residual_uptake": True}],
        "inclusion_imaging": [{"date": "2024-05-20", "complete_response": False, "liver_dominant_or_exclusive": True,
                               "recist_assessable": True, "resectable": False,
                               "extrahepatic_dominant_or_threatening": False}],
        "measurements": [
            {"analyte": "haemoglobin", "value": 11.0, "unit": "g/dL", "date": LAB_DAY},
            {"analyte": "neutrophils", "value": 3.0, "unit": "G/L", "date": LAB_DAY},
            {"analyte": "platelets", "value": 200000, "unit": "/mm3", "date": LAB_DAY},
            {"analyte": "creatinine", "value": 80, "unit": "umol/L", "date": LAB_DAY},
            {"analyte": "weight", "value": 70, "unit": "kg", "date": LAB_DAY},
            {"analyte": "alt", "value": 30, "unit": "U/L", "date": LAB_DAY, "reference_high": 40},
            {"analyte": "ast", "value": 30, "unit": "U/L", "date": LAB_DAY, "reference_high": 40},
            {"analyte": "albumin", "value": 40, "unit": "g/L", "date": LAB_DAY},
            {"analyte": "lvef", "value": 60, "unit": "%", "date": "2024-05-01"},
            {"analyte": "systolic_bp", "value": 130, "unit": "mm[Hg]", "date": LAB_DAY},
            {"analyte": "diastolic_bp", "value": 80, "unit": "mm[Hg]", "date": LAB_DAY},
            {"analyte": "ecog", "value": 1, "date": LAB_DAY},
        ],
        "liver": {"coagulation_disorder": False, "portal_thrombosis": False, "intrahepatic_biliary_dilatation": False,
                  "digestive_or_biliary_anastomosis_or_fistula": False, "cirrhosis": False},
        "cardiac": {"carcinoid_heart_disease": False, "antihypertensive_treatment": True, "events": []},
        "administrative": {"informed_consent_signed": True, "informed_consent_date": "2024-05-30",
                           "social_security": True, "contraception_agreed": True, "legal_protection": False,
                           "unable_to_consent": False, "other_interventional_trial": False,
                           "mri_contraindicated": False, "lutathera_contraindicated": False},
    }


def set_lab(record: dict[str, Any], analyte: str, value: float, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    """Replace every result of ``analyte`` by one result (same date unless given)."""
    r = copy.deepcopy(record)
    old = [m for m in r["measurements"] if m["analyte"] == analyte]
    r["measurements"] = [m for m in r["measurements"] if m["analyte"] != analyte]
    m = {"analyte": analyte, "value": value, "date": LAB_DAY}
    if old:
        m.update({k: v for k, v in old[0].items() if k not in ("value", "unit")})
    if unit is not None:
        m["unit"] = unit
    elif old and "unit" in old[0]:
        m["unit"] = old[0]["unit"]
    m.update(extra)
    m = {k: v for k, v in m.items() if v is not None}
    r["measurements"].append(m)
    return r


@pytest.fixture
def record() -> dict[str, Any]:
    return base_record()


@pytest.fixture
def lab():
    """``lab(record, analyte, value, unit=None, **fields)`` -> a copy with that one result."""
    return set_lab


@pytest.fixture
def crit():
    """``crit(record, "INC07", as_of=..., version=...)`` -> that CriterionResult."""
    from lutarterial.eligibility import screen
    from lutarterial.records import parse_record

    def run(rec: dict[str, Any], cid: str, as_of: dt.date = AS_OF, version: str | None = None):
        return screen(parse_record(rec), as_of=as_of, protocol_version=version).criterion(cid)

    return run
