"""Adverse events: the record, worst grade per patient and term, and the toxicity table per cycle.

Cycles are labelled ``C1 IV`` ... ``C4 IV`` and ``IAH`` (every intra-arterial cycle pooled), because
the LUTARTERIAL question is whether the intra-arterial hepatic administration is as safe as the
intravenous ones. An event without an explicit cycle is attributed to the last administration on or
before its onset (events before the first administration are ``pre-treatment``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lutarterial.errors import InvalidInputError
from lutarterial.plausibility import check_canonical, check_date

__all__ = [
    "Relation",
    "AdverseEvent",
    "CycleAdministration",
    "parse_adverse_events",
    "assign_cycles",
    "worst_grade_per_patient_term",
    "toxicity_table",
    "RELATED",
    "lab_toxicities",
]


class Relation(str, Enum):
    """Investigator's causality assessment (common 5-point scale)."""

    NOT_RELATED = "not_related"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"
    NOT_ASSESSED = "not_assessed"  # laboratory toxicity graded automatically


#: Relations counted as "related to treatment" (adverse reaction).
RELATED = frozenset({Relation.POSSIBLE, Relation.PROBABLE, Relation.DEFINITE})


@dataclass(frozen=True)
class AdverseEvent:
    id: str
    patient: str
    term: str
    grade: int
    onset: dt.date
    end: dt.date | None = None
    serious: bool = False
    relation: Relation = Relation.NOT_RELATED
    route: str | None = None  # IV | IAH: route of the administration the event follows
    cycle: int | None = None

    def __post_init__(self) -> None:
        if not self.term.strip():
            raise InvalidInputError(f"adverse event {self.id}: term is empty")
        if not 1 <= self.grade <= 5:
            raise InvalidInputError(f"adverse event {self.id}: CTCAE grade {self.grade} must be 1-5")
        if self.end is not None and self.end < self.onset:
            raise InvalidInputError(f"adverse event {self.id}: end {self.end} before onset {self.onset}")
        if self.route is not None and self.route not in ("IV", "IAH"):
            raise InvalidInputError(f"adverse event {self.id}: route {self.route!r} must be IV or IAH")

    @property
    def related(self) -> bool:
        return self.relation in RELATED

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "patient": self.patient, "term": self.term, "grade": self.grade,
                "onset": self.onset.isoformat(), "end": self.end.isoformat() if self.end else None,
                "serious": self.serious, "relation": self.relation.value, "related": self.related,
                "route": self.route, "cycle": self.cycle}


@dataclass(frozen=True)
class CycleAdministration:
    patient: str
    date: dt.date
    cycle: int
    route: str


def _date(x: Any, where: str) -> dt.date:
    if not isinstance(x, str):
        raise InvalidInputError(f"{where}: {x!r} is not an ISO date (YYYY-MM-DD)")
    try:
        day = dt.date.fromisoformat(x)
    except ValueError:
        raise InvalidInputError(f"{where}: {x!r} is not an ISO date (YYYY-MM-DD)") from None
    return check_date(where, day)


def _objects(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``doc[key]`` as a list of JSON objects (absent or null: empty); anything else names the key."""
    items = doc.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidInputError(f"{key} must be a list of objects, got {type(items).__name__}")
    for k, it in enumerate(items):
        if not isinstance(it, dict):
            raise InvalidInputError(f"{key}[{k}] must be an object, got {type(it).__name__}")
    return items


def parse_adverse_events(doc: dict[str, Any]) -> tuple[list[AdverseEvent], list[CycleAdministration]]:
    """Read ``{"patient"?, "administrations": [...], "adverse_events": [...]}`` (docs/clinical.md)."""
    if not isinstance(doc, dict):
        raise InvalidInputError("adverse-event input must be a JSON object")
    default_patient = doc.get("patient")
    admins = []
    for k, a in enumerate(_objects(doc, "administrations")):
        w = f"administrations[{k}]"
        route = str(a.get("route", "")).upper()
        if route not in ("IV", "IAH"):
            raise InvalidInputError(f"{w}: route must be IV or IAH")
        if not isinstance(a.get("cycle"), int) or isinstance(a.get("cycle"), bool):
            raise InvalidInputError(f"{w}: cycle must be an integer")
        check_canonical("cycle_number", a["cycle"], name=f"{w}: cycle")
        admins.append(CycleAdministration(str(a.get("patient", default_patient)), _date(a.get("date"), w), a["cycle"], route))
    events = []
    for k, e in enumerate(_objects(doc, "adverse_events")):
        w = f"adverse_events[{k}]"
        g = e.get("grade")
        if not isinstance(g, int) or isinstance(g, bool) or not 1 <= g <= 5:
            raise InvalidInputError(f"{w}: grade {g!r} must be an integer 1-5")
        rel = str(e.get("relation", "not_related")).lower().replace(" ", "_")
        try:
            relation = Relation(rel)
        except ValueError:
            raise InvalidInputError(f"{w}: relation {rel!r} must be one of {[r.value for r in Relation]}") from None
        route = e.get("route")
        events.append(AdverseEvent(
            id=str(e.get("id", f"AE{k + 1}")), patient=str(e.get("patient", default_patient)), term=str(e.get("term", "")),
            grade=g, onset=_date(e.get("onset"), w), end=_date(e["end"], w) if e.get("end") else None,
            serious=bool(e.get("serious", False)), relation=relation, route=str(route).upper() if route else None,
            cycle=e.get("cycle"),
        ))
    return events, admins


def lab_toxicities(doc: dict[str, Any], *, require_baseline: bool = False, with_assumed: bool = False) -> Any:
    """CTCAE-graded laboratory toxicities (grade >= 1) from ``doc["labs"]`` as adverse events.

    Returns the events and the labs that could not be graded (with the reason), so that a
    toxicity table never silently drops a value; with ``with_assumed`` also the ids of the labs
    graded with their missing baseline assumed normal (see :func:`~lutarterial.clinical.ctcae.grade_lab`).
    """
    from lutarterial.clinical.ctcae import grade_lab

    default_patient = doc.get("patient")
    events: list[AdverseEvent] = []
    ungraded: list[dict[str, Any]] = []
    assumed: list[str] = []
    labs = doc.get("labs")
    if labs is not None and not isinstance(labs, list):
        raise InvalidInputError(f"labs must be a list of objects, got {type(labs).__name__}")
    for k, lab in enumerate(labs or []):
        w = f"labs[{k}]"
        if not isinstance(lab, dict):
            raise InvalidInputError(f"{w}: must be an object")
        num = {f: lab.get(f) if isinstance(lab.get(f), (int, float)) and not isinstance(lab.get(f), bool) else None
               for f in ("value", "lln", "uln", "baseline")}
        g = grade_lab(str(lab.get("test", "")), num["value"], lab.get("unit"), lln=num["lln"], uln=num["uln"],
                      baseline=num["baseline"], baseline_unit=lab.get("baseline_unit"), id=lab.get("id"),
                      require_baseline=require_baseline)
        lab_id = str(lab.get("id", f"lab{k + 1}"))
        if g.baseline_assumed:
            assumed.append(lab_id)
        if g.grade is None:
            ungraded.append({"id": lab_id, "test": g.test, "reason": g.reason})
        elif g.grade >= 1 and g.term:
            events.append(AdverseEvent(
                id=f"lab:{lab_id}", patient=str(lab.get("patient", default_patient)), term=g.term, grade=g.grade,
                onset=_date(lab.get("date"), w), relation=Relation.NOT_ASSESSED,
            ))
    if with_assumed:
        return events, ungraded, assumed
    return events, ungraded


def assign_cycles(events: Iterable[AdverseEvent], admins: Sequence[CycleAdministration]) -> list[tuple[AdverseEvent, str]]:
    """Pair every event with its cycle label (``C2 IAH``), from the record or from the onset date."""
    by_patient: dict[str, list[CycleAdministration]] = {}
    for a in sorted(admins, key=lambda a: a.date):
        by_patient.setdefault(a.patient, []).append(a)
    out = []
    for e in events:
        pa = by_patient.get(e.patient, [])
        if e.cycle is not None:
            match = [a for a in pa if a.cycle == e.cycle]
            route = e.route or (match[0].route if match else None)
            out.append((e, _label(e.cycle, route)))
            continue
        before = [a for a in pa if a.date <= e.onset]
        if before:
            a = before[-1]
            out.append((e, _label(a.cycle, a.route)))
        elif pa:
            out.append((e, "pre-treatment"))
        else:
            out.append((e, f"{e.route}" if e.route else "unassigned"))
    return out


def _label(cycle: int, route: str | None) -> str:
    """``C1 IV`` ... ``C4 IV``; every intra-arterial hepatic cycle is pooled as ``IAH``."""
    if route == "IAH":
        return "IAH"
    return f"C{cycle} {route}" if route else f"C{cycle}"


def worst_grade_per_patient_term(events: Iterable[AdverseEvent]) -> list[dict[str, Any]]:
    """The worst CTCAE grade of each term for each patient (the usual safety-table unit)."""
    worst: dict[tuple[str, str], list[AdverseEvent]] = {}
    for e in events:
        worst.setdefault((e.patient, e.term.strip().lower()), []).append(e)
    rows = []
    for (patient, _), evs in sorted(worst.items()):
        top = max(evs, key=lambda e: e.grade)
        rows.append({"patient": patient, "term": top.term, "worst_grade": top.grade,
                     "serious": any(e.serious for e in evs), "related": any(e.related for e in evs),
                     "events": [e.id for e in evs]})
    return rows


def _cycle_key(label: str) -> tuple[int, str]:
    if label.startswith("C") and label[1:].split(" ")[0].isdigit():
        return int(label[1:].split(" ")[0]), label
    order = {"pre-treatment": -1, "IAH": 10**5}
    return order.get(label, 10**6), label


def toxicity_table(
    events: Iterable[AdverseEvent], admins: Sequence[CycleAdministration], *, related_only: bool = False
) -> dict[str, Any]:
    """Per term and cycle: patients by worst grade (1-5), any grade and grade >= 3.

    Each patient counts once per term and cycle, at their worst grade in that cycle.
    """
    pairs = [(e, c) for e, c in assign_cycles(events, admins) if not related_only or e.related]
    cycles = sorted({c for _, c in pairs}, key=_cycle_key)
    worst: dict[tuple[str, str, str], int] = {}
    names: dict[str, str] = {}
    for e, c in pairs:
        key = e.term.strip().lower()
        names.setdefault(key, e.term)
        k = (key, c, e.patient)
        worst[k] = max(worst.get(k, 0), e.grade)
        ka = (key, "any cycle", e.patient)
        worst[ka] = max(worst.get(ka, 0), e.grade)
    rows = []
    for key in sorted(names):
        row: dict[str, Any] = {"term": names[key], "cycles": {}}
        for c in [*cycles, "any cycle"]:
            grades = [g for (t, cc, _), g in worst.items() if t == key and cc == c]
            row["cycles"][c] = {
                "patients": len(grades),
                "by_grade": {str(g): sum(1 for x in grades if x == g) for g in range(1, 6)},
                "grade_3_or_more": sum(1 for x in grades if x >= 3),
            }
        rows.append(row)
    return {"cycles": [*cycles, "any cycle"], "related_only": related_only, "rows": rows}
