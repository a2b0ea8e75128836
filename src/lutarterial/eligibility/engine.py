"""``screen``: one record, one date, one protocol version -> a :class:`ScreeningResult`.

Why no clock: the screening date is an input (``as_of``), so a screening can be replayed
years later and give the same answer for the same data and protocol version.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Protocol as _TypingProtocol

from lutarterial.eligibility.context import Context
from lutarterial.eligibility.patient import PatientData
from lutarterial.eligibility.quick import quick_check
from lutarterial.eligibility.results import CriterionResult, ScreeningResult, Status
from lutarterial.eligibility.rules import RULES
from lutarterial.errors import InvalidInputError, ProtocolDefinitionError
from lutarterial.protocol.loader import Protocol, load_protocol, version_in_force

__all__ = ["screen", "screen_patient", "unwired_criteria"]


class _Convertible(_TypingProtocol):
    def to_patient(self) -> PatientData: ...


def unwired_criteria(protocol: Protocol) -> list[str]:
    """Criterion IDs of ``protocol`` with no registered rule (must be empty)."""
    return [c.id for c in protocol.criteria if c.id not in RULES]


_WIRED: dict[int, tuple[Protocol, tuple]] = {}


def _rules_for(protocol: Protocol) -> tuple:
    """(criterion, rule) pairs of ``protocol``, checked once per protocol object."""
    hit = _WIRED.get(id(protocol))
    if hit is None or hit[0] is not protocol:
        missing = unwired_criteria(protocol)
        if missing:
            raise ProtocolDefinitionError(f"protocol version {protocol.version}: no rule for {', '.join(missing)}")
        hit = _WIRED[id(protocol)] = (protocol, tuple((c, RULES[c.id]) for c in protocol.criteria))
    return hit[1]


def _resolve_protocol(as_of: _dt.date, version: str | Protocol | None) -> Protocol:
    if isinstance(version, Protocol):
        return version
    if version is None:
        return version_in_force(as_of)
    return load_protocol(str(version))


_QUICK_WIRED: dict[int, tuple[Protocol, tuple]] = {}


def _quick_rules_for(protocol: Protocol) -> tuple:
    """(criterion, rule, quick check or None, the bare pass result) of ``protocol``, once per protocol object."""
    hit = _QUICK_WIRED.get(id(protocol))
    if hit is None or hit[0] is not protocol:
        hit = _QUICK_WIRED[id(protocol)] = (protocol, tuple(
            (c, fn, quick_check(c), CriterionResult(c.id, Status.PASS, ""))
            for c, fn in _rules_for(protocol)))
    return hit[1]


def screen_patient(patient: PatientData, *, as_of: _dt.date, protocol: Protocol, detail: bool = True) -> ScreeningResult:
    """Evaluate every criterion of ``protocol`` for ``patient`` on ``as_of``.

    ``detail=False`` (the screening log, which shows only failed and unknown criteria): a
    criterion whose quick check (:mod:`lutarterial.eligibility.quick`) finds it plainly met is
    ``pass`` with no reason and no evidence; every other criterion is evaluated in full, so
    statuses, verdicts and the reasons of failed and unknown criteria are those of ``detail=True``.
    """
    ctx = Context(patient, as_of, protocol)
    if detail:
        results = tuple(fn(c, ctx) for c, fn in _rules_for(protocol))
    else:
        results = tuple(passed if quick is not None and quick(ctx) else fn(c, ctx)
                        for c, fn, quick, passed in _quick_rules_for(protocol))
    return ScreeningResult(record_id=patient.record_id, protocol_version=protocol.version, as_of=as_of, criteria=results)


def screen(
    record: PatientData | _Convertible | dict[str, Any],
    *,
    as_of: _dt.date | str | None = None,
    protocol_version: str | Protocol | None = None,
) -> ScreeningResult:
    """Screen one record.

    ``record``: a :class:`PatientData`, anything with ``to_patient()`` (the own-format
    :class:`lutarterial.records.ScreeningRecord`, a FHIR import), or an own-format/FHIR dict.
    ``as_of``: the screening date (a date or ``YYYY-MM-DD``); when ``None`` the record's own ``screening_date`` is used,
    and if it has none an :class:`InvalidInputError` is raised (the clock is never read).
    ``protocol_version``: explicit version; default is the version in force on ``as_of``.
    """
    if isinstance(record, dict):
        from lutarterial.records.io import parse_record  # edge reader; imported lazily

        record = parse_record(record)
    patient = record if isinstance(record, PatientData) else record.to_patient()
    if as_of is None:
        as_of = patient.screening_date
        if as_of is None:
            raise InvalidInputError(
                f"record {patient.record_id!r} has no screening_date; give the screening date (--as-of / as_of)"
            )
    if isinstance(as_of, str):
        try:
            as_of = _dt.date.fromisoformat(as_of)
        except ValueError:
            raise InvalidInputError(f"as_of {as_of!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(as_of, _dt.datetime) or not isinstance(as_of, _dt.date):
        raise InvalidInputError(f"as_of must be a date, got {as_of!r}")
    protocol = _resolve_protocol(as_of, protocol_version)
    return screen_patient(patient, as_of=as_of, protocol=protocol)
