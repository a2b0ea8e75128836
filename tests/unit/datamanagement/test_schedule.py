"""Schedule of events: parsing the protocol's schedule block, planned dates, statuses (window edges)."""

from __future__ import annotations

import datetime as dt

import pytest

from lutarterial.datamanagement.schedule import VisitState, parse_schedule, plan_schedule, visit_status
from lutarterial.errors import ProtocolDefinitionError
from lutarterial.protocol.loader import all_protocols

D = dt.date
RAW = {"visits": [
    {"key": "iv_cycle_1", "kind": "iv_cycle", "number": 1, "history": True},
    {"key": "iah_cycle", "kind": "iah_cycle", "anchor": "enrolment", "target_day": 63, "window": [-14, 14]},
    {"key": "pet_after_iah", "kind": "pet_after_iah", "anchor": "iah_cycle", "target_day": 1, "window": [0, 2]},
]}


def test_every_packaged_protocol_has_a_valid_schedule_with_cycles_1_to_4() -> None:
    for p in all_protocols():
        keys = [r.key for r in p.schedule]
        assert {"iv_cycle_1", "iv_cycle_2", "iv_cycle_3", "iv_cycle_4", "pet_after_iv", "iah_cycle",
                "pet_after_iah", "follow_up_1"} <= set(keys), p.version


@pytest.mark.parametrize("bad, msg", [
    ({"visits": [{"key": "a", "kind": "nope", "anchor": "enrolment", "target_day": 1}]}, "kind"),
    ({"visits": [{"key": "a", "kind": "follow_up", "anchor": "later", "target_day": 1}]}, "anchor"),
    ({"visits": [{"key": "a", "kind": "follow_up", "anchor": "enrolment", "target_day": 1, "window": [1, 2]}]},
     "include the target day"),
    ({"visits": [{"key": "a", "kind": "follow_up", "anchor": "enrolment", "target_day": 1, "extra": 1}]}, "unknown"),
    ({"visits": [{"key": "a", "kind": "iv_cycle", "history": True, "target_day": 3}]}, "history"),
    ({"visits": []}, "non-empty"),
])
def test_bad_schedules_are_refused(bad: dict, msg: str) -> None:
    with pytest.raises(ProtocolDefinitionError, match=msg):
        parse_schedule(bad)


def test_planned_dates_follow_the_anchor_and_its_actual_date() -> None:
    rules = parse_schedule(RAW)
    plan = {p.rule.key: p for p in plan_schedule(rules, {"enrolment": D(2024, 1, 1)})}
    assert plan["iah_cycle"].target_date == D(2024, 3, 4)
    assert (plan["iah_cycle"].window_start, plan["iah_cycle"].window_end) == (D(2024, 2, 19), D(2024, 3, 18))
    assert plan["pet_after_iah"].target_date == D(2024, 3, 5)  # anchored on the IAH target while not done
    moved = {p.rule.key: p for p in plan_schedule(rules, {"enrolment": D(2024, 1, 1)},
                                                 {"iah_cycle": D(2024, 3, 10)})}
    assert moved["pet_after_iah"].target_date == D(2024, 3, 11)
    assert moved["iv_cycle_1"].target_date is None
    none = {p.rule.key: p for p in plan_schedule(rules, {"enrolment": None})}
    assert none["iah_cycle"].target_date is None and none["pet_after_iah"].target_date is None


def test_status_at_both_edges_of_the_window() -> None:
    rules = parse_schedule(RAW)
    iah = plan_schedule(rules, {"enrolment": D(2024, 1, 1)})[1]  # window 2024-02-19 .. 2024-03-18
    st = lambda **kw: visit_status(iah, **kw)  # noqa: E731
    assert st(today=D(2024, 3, 18)) is VisitState.DUE
    assert st(today=D(2024, 3, 19)) is VisitState.OVERDUE
    assert st(today=D(2024, 4, 1), done_date=D(2024, 2, 19)) is VisitState.DONE_IN_WINDOW
    assert st(today=D(2024, 4, 1), done_date=D(2024, 2, 18)) is VisitState.DONE_OUT_OF_WINDOW
    assert st(today=D(2024, 4, 1), done_date=D(2024, 3, 18)) is VisitState.DONE_IN_WINDOW
    assert st(today=D(2024, 4, 1), done_date=D(2024, 3, 19)) is VisitState.DONE_OUT_OF_WINDOW
    assert st(today=D(2024, 4, 1), recorded_status="missed") is VisitState.MISSED
    assert st(today=D(2024, 4, 1), recorded_status="cancelled") is VisitState.NOT_APPLICABLE
    assert st(today=D(2024, 4, 1), applicable=False) is VisitState.NOT_APPLICABLE
