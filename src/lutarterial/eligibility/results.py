"""Three-valued screening results: every criterion is pass, fail or unknown, with why.

Why three values: missing data is not a failure and not a pass. A coordinator must see
which criteria still need data (``unknown`` with ``needs``), and a regulator must see
the evidence behind each ``pass``/``fail``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

__all__ = ["Status", "Verdict", "Evidence", "CriterionResult", "ScreeningResult", "combine", "verdict_of"]


class Status(str, Enum):
    """Outcome of one criterion: ``pass`` = satisfied (inclusion met / exclusion absent)."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


class Verdict(str, Enum):
    """Outcome of a screening: any fail -> ineligible; else any unknown -> incomplete."""

    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    INCOMPLETE = "incomplete"


class Evidence(NamedTuple):
    """One datum used (or set aside) by a criterion, as shown to the coordinator."""

    label: str
    value: Any = None
    unit: str | None = None
    date: _dt.date | None = None
    source: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        label, value, unit, date, source, note = self  # tuple unpacking: the hot path of --json
        d: dict[str, Any] = {"label": label, "value": value}
        if unit is not None:
            d["unit"] = unit
        if date is not None:
            d["date"] = date.isoformat()
        if source:
            d["source"] = source
        if note:
            d["note"] = note
        return d


class CriterionResult(NamedTuple):
    """The result of one criterion with a human reason, its evidence and what is missing."""

    id: str
    status: Status
    reason: str
    evidence: tuple[Evidence, ...] = ()
    needs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        cid, status, reason, evidence, _needs = self
        return {"id": cid, "status": status.value, "reason": reason, "evidence": [e.to_dict() for e in evidence]}


def combine(parts: list[Status] | tuple[Status, ...]) -> Status:
    """Conjunction in Kleene logic: any fail -> fail; else any unknown -> unknown; else pass."""
    if Status.FAIL in parts:
        return Status.FAIL
    if Status.UNKNOWN in parts:
        return Status.UNKNOWN
    return Status.PASS


def verdict_of(criteria: tuple[CriterionResult, ...] | list[CriterionResult]) -> Verdict:
    """The record's verdict from its criteria (the issue's rule, nothing else)."""
    statuses = [c.status for c in criteria]
    if Status.FAIL in statuses:
        return Verdict.INELIGIBLE
    if Status.UNKNOWN in statuses:
        return Verdict.INCOMPLETE
    return Verdict.ELIGIBLE


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """A record screened against one protocol version on one date."""

    record_id: str
    protocol_version: str
    as_of: _dt.date
    criteria: tuple[CriterionResult, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.criteria)

    @property
    def missing(self) -> list[str]:
        """What is needed to resolve every ``unknown`` criterion, prefixed by its ID."""
        out: list[str] = []
        for c in self.criteria:
            if c.status is Status.UNKNOWN:
                for need in c.needs or (c.reason,):
                    out.append(f"{c.id}: {need}")
        return out

    def criterion(self, criterion_id: str) -> CriterionResult:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(criterion_id)

    @property
    def failed(self) -> list[str]:
        return [c.id for c in self.criteria if c.status is Status.FAIL]

    def to_dict(self) -> dict[str, Any]:
        """The issue's JSON shape (one object per record in ``screen --json``)."""
        return {
            "record": self.record_id,
            "protocol_version": self.protocol_version,
            "as_of": self.as_of.isoformat(),
            "verdict": self.verdict.value,
            "criteria": [c.to_dict() for c in self.criteria],
            "missing": self.missing,
        }
