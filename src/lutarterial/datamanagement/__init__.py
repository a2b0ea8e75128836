"""Data management rules as pure functions over plain data (no database, no clock).

* :mod:`.schedule` — the schedule of events read from the protocol version file: visits with a
  target day relative to an anchor and a window; planned dates from anchor dates; a visit's
  status on a day passed in by the caller (``today`` is an argument, never read here).
* :mod:`.checks` — edit checks as data (``edit_checks.yaml``) and the one evaluator that runs
  them on a participant's casebook (plain dicts) and returns findings; the registry turns each
  finding into a query (deduplicated) and never blocks saving.

The registry (:mod:`lutarterial.registry.services.schedule`, ``queries``) stores and audits what
these functions compute.
"""

from lutarterial.datamanagement.checks import EditCheck, Finding, evaluate_checks, load_edit_checks
from lutarterial.datamanagement.schedule import (
    PlannedVisit,
    ScheduleRule,
    VisitState,
    parse_schedule,
    plan_schedule,
    visit_status,
)

__all__ = ["EditCheck", "Finding", "evaluate_checks", "load_edit_checks", "PlannedVisit", "ScheduleRule",
           "VisitState", "parse_schedule", "plan_schedule", "visit_status"]
