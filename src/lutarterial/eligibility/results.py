"""Three-valued screening results: every criterion is pass, fail or unknown, with why.

Why three values: missing data is not a failure and not a pass. A coordinator must see
which criteria still need data (``unknown`` with ``needs``), and a regulator must see
the evidence behind each ``pass``/``fail``.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from enum import Enum
from json.encoder import encode_basestring as _encode_str  # type: ignore[attr-defined]
from typing import Any, NamedTuple

__all__ = ["Status", "Verdict", "Evidence", "CriterionResult", "ScreeningResult", "combine", "verdict_of",
           "result_json"]


class Status(str, Enum):
    """Outcome of one criterion: ``pass`` = satisfied (inclusion met / exclusion absent)."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"

    #: C-level hash, consistent with ``Status.PASS == "pass"`` (Enum's own ``__hash__`` is a Python
    #: function, which made every hash of a result tuple call back into Python; profiled).
    __hash__ = str.__hash__


class Verdict(str, Enum):
    """Outcome of a screening: any fail -> ineligible; else any unknown -> incomplete."""

    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    INCOMPLETE = "incomplete"


#: Members as module constants: ``Status.FAIL`` goes through the Enum metaclass (~100 ns a
#: lookup, profiled); these are the same objects.
_PASS, _FAIL, _UNKNOWN = Status.PASS, Status.FAIL, Status.UNKNOWN
_ELIGIBLE, _INELIGIBLE, _INCOMPLETE = Verdict.ELIGIBLE, Verdict.INELIGIBLE, Verdict.INCOMPLETE


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
    if _FAIL in parts:
        return _FAIL
    if _UNKNOWN in parts:
        return _UNKNOWN
    return _PASS


def verdict_of(criteria: tuple[CriterionResult, ...] | list[CriterionResult]) -> Verdict:
    """The record's verdict from its criteria (the issue's rule, nothing else)."""
    statuses = [c[1] for c in criteria]
    if _FAIL in statuses:
        return _INELIGIBLE
    if _UNKNOWN in statuses:
        return _INCOMPLETE
    return _ELIGIBLE


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
            if c[1] is _UNKNOWN:
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
        return [c.id for c in self.criteria if c[1] is _FAIL]

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


# -- the JSON line (``screen --json``), written directly ----------------------------------------
#
# Why: ``json.dumps(result.to_dict(), ensure_ascii=False)`` built ~80 small dicts per record and
# was ~35 % of the CPU time of a cohort screening (profiled). The functions below write the
# *same bytes* (default separators, ``ensure_ascii=False``, floats by ``repr``, NaN/Infinity
# as the json module writes them) straight from the result tuples, caching encoded strings
# and whole criteria whose evidence holds no numbers (flags and texts repeat across records).
# ``tests/unit/eligibility/test_golden_output.py`` checks byte identity on a varied corpus.

_STR_CACHE: dict[str, str] = {}
_CRITERION_CACHE: dict[CriterionResult, str] = {}
_CACHE_LIMIT = 50_000
_dumps = json.JSONEncoder(ensure_ascii=False).encode  # the same encoder json.dumps uses for these options


def _s(text: str) -> str:
    """JSON string literal of ``text`` (cached: labels, reasons and units repeat)."""
    hit = _STR_CACHE.get(text)
    if hit is None:
        if type(text) is not str:  # a str subclass (enum): encode exactly as json.dumps does
            return _v(text)
        if len(_STR_CACHE) > _CACHE_LIMIT:
            _STR_CACHE.clear()
        hit = _STR_CACHE[text] = _encode_str(text)
    return hit


def _v(value: Any) -> str:
    """JSON of an evidence value, as ``json.dumps`` writes it."""
    t = type(value)
    if t is str:
        return _s(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if t is float:
        if value != value:
            return "NaN"
        if value == _INF:
            return "Infinity"
        if value == -_INF:
            return "-Infinity"
        return float.__repr__(value)
    if t is int:
        return int.__repr__(value)
    return _dumps(value)  # anything else: exactly json.dumps (which raises for non-JSON types)


_INF = float("inf")
#: Value types whose equality cannot merge distinct JSON texts (1 == 1.0 == True, 0.0 == -0.0 can).
_TEXT_TYPES = frozenset({str, type(None), bool})


_EVIDENCE_CACHE: dict[Evidence, str] = {}


def _evidence_json(e: Evidence) -> str:
    label, value, unit, date, source, note = e
    cacheable = type(value) in _TEXT_TYPES
    if cacheable:
        hit = _EVIDENCE_CACHE.get(e)
        if hit is not None:
            return hit
    out = '{"label": ' + _s(label) + ', "value": ' + _v(value)
    if unit is not None:
        out += ', "unit": ' + (_s(unit) if type(unit) is str else _v(unit))
    if date is not None:
        out += ', "date": "' + date.isoformat() + '"'
    if source:
        out += ', "source": ' + _s(source)
    if note:
        out += ', "note": ' + _s(note)
    out += "}"
    if cacheable:
        if len(_EVIDENCE_CACHE) > _CACHE_LIMIT:
            _EVIDENCE_CACHE.clear()
        _EVIDENCE_CACHE[e] = out
    return out


def _criterion_json(c: CriterionResult) -> str:
    cid, status, reason, evidence, _needs = c
    cacheable = all(type(e[1]) in _TEXT_TYPES for e in evidence)
    if cacheable:
        hit = _CRITERION_CACHE.get(c)
        if hit is not None:
            return hit
    out = ('{"id": ' + _s(cid) + ', "status": ' + _s(status.value) + ', "reason": ' + _s(reason)
           + ', "evidence": [' + ", ".join([_evidence_json(e) for e in evidence]) + "]}")
    if cacheable:
        if len(_CRITERION_CACHE) > _CACHE_LIMIT:
            _CRITERION_CACHE.clear()
        _CRITERION_CACHE[c] = out
    return out


def result_json(result: ScreeningResult) -> str:
    """``json.dumps(result.to_dict(), ensure_ascii=False)``, byte for byte, about 3x faster."""
    criteria = result.criteria
    missing = result.missing
    return ('{"record": ' + _v(result.record_id) + ', "protocol_version": ' + _v(result.protocol_version)
            + ', "as_of": "' + result.as_of.isoformat() + '", "verdict": "' + verdict_of(criteria).value
            + '", "criteria": [' + ", ".join([_criterion_json(c) for c in criteria]) + '], "missing": ['
            + ", ".join([_s(m) for m in missing]) + "]}")
