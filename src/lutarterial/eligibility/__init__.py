"""Eligibility screening: three-valued rules per criterion ID, derived measures, ``screen``."""

from lutarterial.eligibility.derived import age_years, child_pugh_pugh1973, crcl_cockcroft_gault_1976
from lutarterial.eligibility.engine import screen, screen_patient, unwired_criteria
from lutarterial.eligibility.patient import Administration, Event, Imaging, Measurement, PatientData, Scan
from lutarterial.eligibility.results import CriterionResult, Evidence, ScreeningResult, Status, Verdict
from lutarterial.eligibility.rules import RULES
from lutarterial.protocol.loader import available_versions

__all__ = [
    "Administration",
    "CriterionResult",
    "Event",
    "Evidence",
    "Imaging",
    "Measurement",
    "PatientData",
    "RULES",
    "Scan",
    "ScreeningResult",
    "Status",
    "Verdict",
    "age_years",
    "available_versions",
    "child_pugh_pugh1973",
    "crcl_cockcroft_gault_1976",
    "screen",
    "screen_patient",
    "unwired_criteria",
]
