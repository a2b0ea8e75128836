"""Safety and response for LUTARTERIAL: CTCAE v5.0 lab grading, LUTATHERA dose decisions,
adverse-event tables and RECIST 1.1 (see docs/clinical.md).

Pure domain code: no I/O, no clock, no printing. Plots (``clinical.plots``) return PNG bytes and
import matplotlib lazily, so they are not re-exported here.
"""

from lutarterial.clinical.adverse_events import (
    AdverseEvent,
    parse_adverse_events,
    toxicity_table,
    worst_grade_per_patient_term,
)
from lutarterial.clinical.ctcae import LabGrade, grade_lab, load_ctcae_terms, term_for_test
from lutarterial.clinical.dosing import DoseDecision, decide_next_dose, parse_history
from lutarterial.clinical.recist import (
    RecistOptions,
    RecistResult,
    evaluate_recist,
    evaluate_recist_scopes,
    parse_recist_input,
)

__all__ = [
    "AdverseEvent",
    "parse_adverse_events",
    "toxicity_table",
    "worst_grade_per_patient_term",
    "LabGrade",
    "grade_lab",
    "load_ctcae_terms",
    "term_for_test",
    "DoseDecision",
    "decide_next_dose",
    "parse_history",
    "RecistOptions",
    "RecistResult",
    "evaluate_recist",
    "evaluate_recist_scopes",
    "parse_recist_input",
]
