"""Schedule of events as data: visits, target days relative to an anchor, windows, statuses.

The protocol version file holds a ``schedule`` block (see ``protocol/versions/v*.yaml``)::

    schedule:
      source: ...
      visits:
        - {key: iah_cycle, kind: iah_cycle, label: IAH LUTATHERA cycle,
           anchor: enrolment, target_day: 63, window: [-14, 14]}
        - {key: pet_after_iah, kind: pet_after_iah, anchor: iah_cycle, target_day: 1, window: [0, 2]}
        - {key: iv_cycle_1, kind: iv_cycle, number: 1, history: true}

``anchor`` is ``enrolment`` or the key of an earlier visit of the schedule: that visit's actual
date when done, else its planned target date. ``history`` visits happened before enrolment
(screening, the 4 standard IV cycles): they have no planned date, only documentation.

Pure: ``today`` is always passed in; nothing here reads a clock or a database.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lutarterial.errors import ProtocolDefinitionError

__all__ = ["ScheduleRule", "PlannedVisit", "VisitState", "BASE_ANCHORS", "parse_schedule", "plan_schedule",
           "visit_status", "in_window"]

#: Anchors that are not visits of the schedule.
BASE_ANCHORS = ("enrolment",)
_KINDS = ("screening", "iv_cycle", "pet_after_iv", "iah_cycle", "pet_after_iah", "follow_up", "end_of_study")
_KEYS = {"key", "kind", "number", "label", "anchor", "target_day", "window", "history", "interpretation"}


class VisitState(str, enum.Enum):
    """Status of one scheduled visit on a given day."""

    DUE = "due"
    OVERDUE = "overdue"
    DONE_IN_WINDOW = "done_in_window"
    DONE_OUT_OF_WINDOW = "done_out_of_window"
    MISSED = "missed"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    """One visit of the schedule. Window days are relative to the target day (``-7`` .. ``+7``)."""

    key: str
    kind: str
    number: int = 1
    label: str = ""
    anchor: str | None = None
    target_day: int | None = None
    window_before_days: int = 0
    window_after_days: int = 0
    history: bool = False
    interpretation: str = ""


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    """A rule resolved for one participant: target date and window (``None`` while the anchor is unknown)."""

    rule: ScheduleRule
    anchor_date: dt.date | None
    target_date: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None


def _fail(where: str, message: str) -> ProtocolDefinitionError:
    return ProtocolDefinitionError(f"{where}: {message}")


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"{value!r} must be a whole number of days")
    return value


def parse_schedule(raw: Any, where: str = "schedule") -> tuple[ScheduleRule, ...]:
    """Validate a ``schedule`` block and return its rules in file order.

    Refuses unknown keys, unknown visit kinds, duplicate keys, an anchor that is neither a base
    anchor nor an *earlier* visit (so anchors never form a cycle), and windows that exclude the
    target day.
    """
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not isinstance(raw.get("visits"), list) or not raw["visits"]:
        raise _fail(where, "must be a mapping with a non-empty 'visits' list")
    rules: list[ScheduleRule] = []
    seen: set[str] = set()
    for i, v in enumerate(raw["visits"]):
        w = f"{where} visit {i + 1}"
        if not isinstance(v, dict):
            raise _fail(w, "must be a mapping")
        unknown = set(v) - _KEYS
        if unknown:
            raise _fail(w, f"unknown keys {sorted(unknown)}")
        key = v.get("key")
        if not isinstance(key, str) or not key.strip():
            raise _fail(w, "'key' is required")
        if key in seen:
            raise _fail(w, f"duplicate key {key!r}")
        kind = v.get("kind")
        if kind not in _KINDS:
            raise _fail(w, f"kind {kind!r}; valid: {', '.join(_KINDS)}")
        number = _int(v.get("number", 1), w)
        history = bool(v.get("history", False))
        anchor = v.get("anchor")
        target = v.get("target_day")
        window = v.get("window", [0, 0])
        if history:
            if anchor is not None or target is not None:
                raise _fail(w, "a history visit has no anchor or target day")
            before = after = 0
        else:
            if anchor not in BASE_ANCHORS and anchor not in seen:
                raise _fail(w, f"anchor {anchor!r} must be one of {list(BASE_ANCHORS)} or an earlier visit key")
            target = _int(target, w)
            if not isinstance(window, list) or len(window) != 2:
                raise _fail(w, "window must be [days before, days after], e.g. [-7, 7]")
            before, after = _int(window[0], w), _int(window[1], w)
            if before > 0 or after < 0:
                raise _fail(w, f"window {window} must include the target day (first <= 0 <= second)")
        seen.add(key)
        rules.append(ScheduleRule(key=key, kind=kind, number=number, label=str(v.get("label") or key),
                                  anchor=anchor, target_day=target, window_before_days=before,
                                  window_after_days=after, history=history,
                                  interpretation=str(v.get("interpretation") or "")))
    return tuple(rules)


def plan_schedule(rules: Sequence[ScheduleRule], anchors: Mapping[str, dt.date | None],
                  done_dates: Mapping[str, dt.date | None] | None = None) -> tuple[PlannedVisit, ...]:
    """Planned dates and windows of every rule.

    ``anchors``: base anchor dates (``{"enrolment": date}``). ``done_dates``: actual dates of
    visits already done, by rule key: a visit used as an anchor anchors by its actual date when
    done, else by its planned target date (so moving the IAH cycle moves what follows it).
    """
    done = done_dates or {}
    resolved: dict[str, dt.date | None] = {k: anchors.get(k) for k in BASE_ANCHORS}
    out: list[PlannedVisit] = []
    for r in rules:
        if r.history or r.anchor is None or r.target_day is None:
            out.append(PlannedVisit(r, None, None, None, None))
            resolved[r.key] = done.get(r.key)
            continue
        a = resolved.get(r.anchor)
        if a is None:
            out.append(PlannedVisit(r, None, None, None, None))
            resolved[r.key] = done.get(r.key)
            continue
        target = a + dt.timedelta(days=r.target_day)
        out.append(PlannedVisit(r, a, target, target + dt.timedelta(days=r.window_before_days),
                                target + dt.timedelta(days=r.window_after_days)))
        resolved[r.key] = done.get(r.key) or target
    return tuple(out)


def in_window(planned: PlannedVisit, day: dt.date) -> bool:
    """Whether ``day`` falls inside the visit's window (bounds included); no window: True."""
    if planned.window_start is None or planned.window_end is None:
        return True
    return planned.window_start <= day <= planned.window_end


def visit_status(planned: PlannedVisit, *, today: dt.date, done_date: dt.date | None = None,
                 recorded_status: str | None = None, applicable: bool = True) -> VisitState:
    """The status of one visit on ``today``.

    * not applicable: the participant is not (or no longer) followed, or the visit was cancelled;
    * missed: recorded as missed;
    * done in / out of window: a done date inside / outside ``[window_start, window_end]``
      (history visits and visits without a window count as in window);
    * overdue: not done and ``today`` is after the window's end;
    * due: not done, window not yet over (including visits whose anchor is not yet known).
    """
    if recorded_status == "cancelled":
        return VisitState.NOT_APPLICABLE
    if recorded_status == "missed":
        return VisitState.MISSED
    if done_date is not None:
        return VisitState.DONE_IN_WINDOW if in_window(planned, done_date) else VisitState.DONE_OUT_OF_WINDOW
    if not applicable:
        return VisitState.NOT_APPLICABLE
    if planned.window_end is not None and today > planned.window_end:
        return VisitState.OVERDUE
    return VisitState.DUE
