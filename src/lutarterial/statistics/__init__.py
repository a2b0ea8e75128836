"""Trial statistics on plain tables (pure: no registry, clock, files or printing).

* :mod:`~lutarterial.statistics.ratios` — the IAH/IV uptake endpoint: per-lesion log ratios,
  the patient-level primary estimand, a random-intercept mixed model, the per-lesion paired
  test (LUTIA-comparable), a cluster bootstrap (percentile and BCa) and per-patient rows.
* :mod:`~lutarterial.statistics.exact` — Clopper–Pearson exact binomial intervals.
* :mod:`~lutarterial.statistics.survival` — Kaplan–Meier (lifelines) with median, CI, numbers at risk.
* :mod:`~lutarterial.statistics.canonical` — byte-stable JSON (sorted keys, fixed float formatting).

A statistician can call these from a notebook on a CSV; the registry workflow
(:mod:`lutarterial.workflows.endpoints`) only assembles their input tables.
"""

from lutarterial.statistics.canonical import canonical_json, clean_number
from lutarterial.statistics.exact import BinomialCI, clopper_pearson
from lutarterial.statistics.ratios import (
    METRICS,
    Exclusion,
    LesionValue,
    analyse_ratios,
    build_log_ratios,
)
from lutarterial.statistics.survival import KaplanMeierSummary, kaplan_meier

__all__ = [
    "METRICS",
    "LesionValue",
    "Exclusion",
    "build_log_ratios",
    "analyse_ratios",
    "BinomialCI",
    "clopper_pearson",
    "KaplanMeierSummary",
    "kaplan_meier",
    "canonical_json",
    "clean_number",
]
