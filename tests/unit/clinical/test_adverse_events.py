"""Adverse events: worst grade per patient/term, cycle attribution, toxicity table per cycle."""

from __future__ import annotations

import datetime as dt

import pytest

from lutarterial.clinical.adverse_events import (
    AdverseEvent,
    CycleAdministration,
    Relation,
    assign_cycles,
    parse_adverse_events,
    toxicity_table,
    worst_grade_per_patient_term,
)
from lutarterial.errors import InvalidInputError

D = dt.date


def ae(i, patient, term, grade, onset, **kw):
    return AdverseEvent(i, patient, term, grade, onset, **kw)


ADMINS = [
    CycleAdministration("P1", D(2025, 1, 1), 1, "IV"),
    CycleAdministration("P1", D(2025, 3, 1), 2, "IAH"),
    CycleAdministration("P1", D(2025, 5, 1), 3, "IV"),
    CycleAdministration("P2", D(2025, 1, 10), 1, "IV"),
]


def test_worst_grade_per_patient_and_term_is_case_insensitive():
    events = [ae("a", "P1", "Nausea", 1, D(2025, 1, 2)), ae("b", "P1", "nausea", 3, D(2025, 3, 2), serious=True),
              ae("c", "P2", "Nausea", 2, D(2025, 1, 11), relation=Relation.PROBABLE)]
    rows = worst_grade_per_patient_term(events)
    assert [(r["patient"], r["worst_grade"], r["serious"], r["related"]) for r in rows] == [
        ("P1", 3, True, False), ("P2", 2, False, True)]
    assert rows[0]["events"] == ["a", "b"]


def test_cycle_attribution_by_onset_and_explicit_cycle():
    events = [ae("pre", "P1", "Fatigue", 1, D(2024, 12, 20)), ae("c1", "P1", "Fatigue", 1, D(2025, 1, 1)),
              ae("iah", "P1", "Abdominal pain", 3, D(2025, 3, 5)), ae("x", "P1", "Fatigue", 2, D(2025, 6, 1), cycle=1)]
    labels = {e.id: c for e, c in assign_cycles(events, ADMINS)}
    assert labels == {"pre": "pre-treatment", "c1": "C1 IV", "iah": "IAH", "x": "C1 IV"}


def test_toxicity_table_counts_each_patient_once_per_term_and_cycle_at_worst_grade():
    events = [ae("a", "P1", "Nausea", 1, D(2025, 1, 2)), ae("b", "P1", "Nausea", 3, D(2025, 1, 5)),
              ae("c", "P2", "Nausea", 2, D(2025, 1, 12)), ae("d", "P1", "Nausea", 2, D(2025, 3, 2))]
    t = toxicity_table(events, ADMINS)
    assert t["cycles"] == ["C1 IV", "IAH", "any cycle"]
    row = t["rows"][0]
    assert row["cycles"]["C1 IV"]["patients"] == 2
    assert row["cycles"]["C1 IV"]["by_grade"] == {"1": 0, "2": 1, "3": 1, "4": 0, "5": 0}
    assert row["cycles"]["C1 IV"]["grade_3_or_more"] == 1
    assert row["cycles"]["IAH"]["patients"] == 1 and row["cycles"]["IAH"]["by_grade"]["2"] == 1
    assert row["cycles"]["any cycle"]["by_grade"]["3"] == 1 and row["cycles"]["any cycle"]["patients"] == 2


def test_related_only_filter():
    events = [ae("a", "P1", "Nausea", 3, D(2025, 1, 2), relation=Relation.UNLIKELY),
              ae("b", "P2", "Nausea", 1, D(2025, 1, 12), relation=Relation.DEFINITE)]
    t = toxicity_table(events, ADMINS, related_only=True)
    assert t["rows"][0]["cycles"]["any cycle"]["patients"] == 1


def test_invalid_events_are_rejected_with_reasons():
    with pytest.raises(InvalidInputError, match="1-5"):
        ae("a", "P1", "Nausea", 6, D(2025, 1, 2))
    with pytest.raises(InvalidInputError, match="before onset"):
        ae("a", "P1", "Nausea", 2, D(2025, 1, 2), end=D(2025, 1, 1))
    with pytest.raises(InvalidInputError, match="relation"):
        parse_adverse_events({"adverse_events": [{"term": "Nausea", "grade": 1, "onset": "2025-01-01", "relation": "maybe"}]})
    events, admins = parse_adverse_events({"patient": "P9", "administrations": [{"date": "2025-01-01", "cycle": 1, "route": "iah"}],
                                           "adverse_events": [{"term": "Nausea", "grade": 1, "onset": "2025-01-03"}]})
    assert events[0].patient == "P9" and admins[0].route == "IAH"
