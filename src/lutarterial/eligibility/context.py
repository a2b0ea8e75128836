"""Choosing which data a criterion may use: windows, anchors, conflicts and units.

Why one place: every lab-based criterion must apply the same rules, and a coordinator must
be able to read them once. A value is usable when it is dated, not after the screening
date, after the window's anchor (e.g. the 4th LUTATHERA cycle) and young enough; the most
recent usable date wins; two different values on that date are a conflict (``unknown``,
never a silent choice); a unit we cannot interpret is ``unknown`` naming the unit.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from lutarterial.eligibility.patient import Administration, Measurement, PatientData
from lutarterial.eligibility.results import Evidence
from lutarterial.errors import ImplausibleValueError, UnitError
from lutarterial.plausibility import check_quantity, limits_for, plausibility_table
from lutarterial.protocol.loader import Protocol, Window
from lutarterial.units import ANALYTES, convert

__all__ = ["Pick", "Context", "compare", "months_before", "describe_window", "selection_key"]

T = TypeVar("T")
_isclose = math.isclose

_ANCHOR_LABEL = {
    "fourth_lutathera_cycle": "the 4th LUTATHERA cycle",
    "first_lutathera_cycle": "the first LUTATHERA cycle",
    "last_lutathera_cycle": "the last LUTATHERA cycle",
}


def compare(value: float, operator: str, limit: float) -> bool:
    """``value operator limit`` with equality up to float noise from unit conversion."""
    if _isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12):
        return operator in (">=", "<=", "==")
    # An if-chain, not a dict of all four comparisons built per call (profiled: ~14 calls a record).
    if operator == "<" or operator == "<=":
        return value < limit
    if operator == ">" or operator == ">=":
        return value > limit
    if operator == "==":
        return False
    raise KeyError(operator)


def months_before(day: _dt.date, months: int) -> _dt.date:
    """The same calendar day ``months`` earlier (clamped to the month's end)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    for d in (day.day, 30, 29, 28):
        try:
            return _dt.date(y, m, min(day.day, d))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def describe_window(window: Window) -> str:
    """Human form of a window, e.g. 'after the 4th LUTATHERA cycle, at most 28 days old'."""
    parts = []
    if window.anchor:
        parts.append(f"after {_ANCHOR_LABEL[window.anchor]}")
    if window.max_age_days is not None:
        parts.append(f"at most {window.max_age_days} days before the screening date")
    if window.max_age_months is not None:
        parts.append(f"within {window.max_age_months} months before the screening date")
    return ", ".join(parts) or "on or before the screening date"


@lru_cache(maxsize=4096)
def _oldest(as_of: _dt.date, max_age_days: int | None, max_age_months: int | None) -> _dt.date | None:
    """The oldest date a window of these ages allows on ``as_of`` (``None``: no age limit)."""
    oldest = None
    if max_age_days is not None:
        oldest = as_of - _dt.timedelta(days=max_age_days)
    if max_age_months is not None:
        m_oldest = months_before(as_of, max_age_months)
        oldest = m_oldest if oldest is None else max(oldest, m_oldest)
    return oldest


_SELECTION_KEYS: dict[int, tuple[Window, tuple]] = {}


def selection_key(window: Window) -> tuple:
    """The fields of ``window`` that decide which items are usable (all but its ``interpretation`` text).

    Windows of different criteria that are equal on these fields select the same items, so
    per-screening caches are keyed on them (cached per window object).
    """
    hit = _SELECTION_KEYS.get(id(window))
    if hit is None or hit[0] is not window:
        key = (window.anchor, window.strictly_after_anchor, window.max_age_days, window.max_age_months,
               window.min_days_after_anchor, window.max_days_after_anchor)
        hit = _SELECTION_KEYS[id(window)] = (window, key)
    return hit[1]


class Pick(NamedTuple):
    """The outcome of choosing one value: ``value`` set, or ``reason`` saying why not."""

    value: Any = None
    canonical_unit: str | None = None
    item: Any = None
    reason: str = ""
    need: str = ""
    evidence: tuple[Evidence, ...] = ()

    @property
    def ok(self) -> bool:
        return self.item is not None and not self.reason


class Context:
    """One screening: the patient, the date, the protocol and derived treatment anchors."""

    def __init__(self, patient: PatientData, as_of: _dt.date, protocol: Protocol) -> None:
        self.patient = patient
        self.as_of = as_of
        self.protocol = protocol
        by: dict[str, list[Measurement]] = {}
        for m in patient.measurements:
            by.setdefault(m.analyte, []).append(m)
        self._by_analyte = by
        self._bounds_cache: dict[int, tuple[_dt.date | None, _dt.date | None]] = {}
        #: Per-screening memo for selections shared by several rules (e.g. the inclusion imaging).
        self.memo: dict[Any, Any] = {}
        self.given_iv: tuple[Administration, ...] | None = None
        self.cycle_dates_known = False
        if patient.lutathera is not None:
            given = [
                a for a in patient.lutathera
                if a.cancelled_for_toxicity is not True and a.route.upper() == "IV"
                and (a.date is None or a.date <= as_of)
            ]
            self.cycle_dates_known = all(a.date is not None for a in given)
            if self.cycle_dates_known:
                given.sort(key=lambda a: a.date)  # type: ignore[arg-type, return-value]
            self.given_iv = tuple(given)

    # -- treatment anchors -------------------------------------------------------------
    def anchor_date(self, anchor: str) -> _dt.date | None:
        """Date of a treatment anchor, or ``None`` when it cannot be established."""
        cycles = self.given_iv
        if not cycles or not self.cycle_dates_known:
            return None
        if anchor == "first_lutathera_cycle":
            return cycles[0].date
        if anchor == "last_lutathera_cycle":
            return cycles[-1].date
        if anchor == "fourth_lutathera_cycle":
            return cycles[3].date if len(cycles) >= 4 else None
        raise KeyError(anchor)

    # -- generic dated selection ---------------------------------------------------------
    def pick_dated(
        self,
        items: Sequence[T],
        window: Window,
        label: str,
        date_of: Callable[[T], _dt.date | None],
        source_of: Callable[[T], str],
    ) -> tuple[list[T], list[Evidence], str, str]:
        """Items on the most recent usable date; plus notes on those set aside.

        Returns (items, notes, reason, need); ``reason`` is empty on success.
        """
        notes: list[Evidence] = []
        if not items:
            return [], notes, f"no {label} recorded", f"{label} dated {describe_window(window)}"
        anchor_day, oldest = self._bounds(window)
        if window.anchor and anchor_day is None:
            what = _ANCHOR_LABEL[window.anchor]
            return [], notes, (
                f"the date of {what} is not known (fewer than 4 dated IV cycles or undated cycles), "
                f"so {label} cannot be dated against it"
            ), f"date of {what}"
        usable: list[T] = []
        for it in items:
            d = date_of(it)
            why = self._set_aside(d, window, anchor_day, oldest)
            if why:
                notes.append(Evidence(label=label, value=_value_of(it), unit=_unit_of(it), date=d,
                                      source=source_of(it), note=why))
            else:
                usable.append(it)
        if not usable:
            return [], notes, f"no usable {label} ({'; '.join(sorted({n.note for n in notes}))})", (
                f"{label} dated {describe_window(window)}"
            )
        if len(usable) == 1:
            return usable, notes, "", ""
        latest = max(date_of(it) for it in usable)  # type: ignore[type-var]
        return [it for it in usable if date_of(it) == latest], notes, "", ""

    def _set_aside(self, d: _dt.date | None, window: Window, anchor_day: _dt.date | None,
                   oldest: _dt.date | None) -> str:
        """Why an item dated ``d`` is not usable in ``window`` ("" when it is)."""
        if d is None:
            return "undated; ignored"
        if d > self.as_of:
            return "dated after the screening date; ignored"
        if anchor_day is not None and (d <= anchor_day if window.strictly_after_anchor else d < anchor_day):
            return f"not after {_ANCHOR_LABEL[window.anchor or '']} ({anchor_day.isoformat()}); ignored"
        if window.min_days_after_anchor is not None and anchor_day is not None and (
            (d - anchor_day).days < window.min_days_after_anchor
        ):
            return "too early after its anchor; ignored"
        if window.max_days_after_anchor is not None and anchor_day is not None and (
            (d - anchor_day).days > window.max_days_after_anchor
        ):
            return f"more than {window.max_days_after_anchor} days after {_ANCHOR_LABEL[window.anchor or '']}; ignored"
        if oldest is not None and d < oldest:
            return f"stale (before {oldest.isoformat()}); ignored"
        return ""

    def select_dated(self, items: Sequence[T], window: Window, date_of: Callable[[T], _dt.date | None]) -> list[T] | None:
        """The items :meth:`pick_dated` chooses, or ``None`` where it gives a reason (nothing explained)."""
        if not items:
            return None
        anchor_day, oldest = self._bounds(window)
        if window.anchor and anchor_day is None:
            return None
        usable = [it for it in items if not self._set_aside(date_of(it), window, anchor_day, oldest)]
        if len(usable) <= 1:
            return usable or None
        latest = max(date_of(it) for it in usable)  # type: ignore[type-var]
        return [it for it in usable if date_of(it) == latest]

    def _bounds(self, window: Window) -> tuple[_dt.date | None, _dt.date | None]:
        """(anchor date, oldest allowed date) of ``window`` for this screening (cached per window).

        The oldest allowed date depends only on the screening date and the window's ages, so it
        is shared across the screenings of a cohort (:func:`_oldest`); profiled.
        """
        key = id(window)
        hit = self._bounds_cache.get(key)
        if hit is None:
            hit = self._bounds_cache[key] = (
                self.anchor_date(window.anchor) if window.anchor else None,
                _oldest(self.as_of, window.max_age_days, window.max_age_months),
            )
        return hit

    # -- measurements ------------------------------------------------------------------
    def measurements(self, analyte: str) -> list[Measurement]:
        return self._by_analyte.get(analyte, [])

    def value(self, analyte: str, window: Window, *, canonical: bool = True) -> tuple[Any, str | None, Measurement] | None:
        """``(value, unit, measurement)`` when the choice is plain, else ``None`` (then use :meth:`pick`).

        Plain: exactly one result of ``analyte``, dated inside ``window``, in a usable unit and
        physically plausible. Then :meth:`pick` chooses the same measurement with the same value
        (it calls this first); ``None`` says nothing about the data, only that :meth:`pick` must
        look closer (and explain). Profiled: the common case of one result per analyte.
        """
        ms = self._by_analyte.get(analyte)
        if ms is None or len(ms) != 1:
            return None
        m = ms[0]
        d = m.date
        if d is None or d > self.as_of or window.min_days_after_anchor is not None or (
            window.max_days_after_anchor is not None
        ):
            return None
        bounds = self._bounds_cache.get(id(window))
        anchor_day, oldest = bounds if bounds is not None else self._bounds(window)
        if window.anchor and (anchor_day is None or (d <= anchor_day if window.strictly_after_anchor else d < anchor_day)):
            return None
        if oldest is not None and d < oldest:
            return None
        if canonical:
            canon = _CANONICAL.get(analyte)
            if canon is not None:
                try:
                    v = _to_canonical(analyte, m.value, m.unit)
                except UnitError:
                    return None  # pick builds the full explanation
                unit_out, lim = canon
                if lim is None or lim[0] <= v <= lim[1]:
                    return v, unit_out, m
                return None
        v = m.value
        if isinstance(v, (int, float)) and math.isfinite(v) and _plausible_raw(analyte, v, m.unit):
            return v, m.unit, m
        return None

    def pick(self, analyte: str, window: Window, label: str, *, canonical: bool = True) -> Pick:
        """The most recent usable measurement of ``analyte`` (canonical unit unless told not to)."""
        plain = self.value(analyte, window, canonical=canonical)
        if plain is not None:
            v, unit_out, m = plain
            note = "" if unit_out == m.unit or not (canonical and analyte in ANALYTES) else f"= {v:.4g} {unit_out}"
            return _new(Pick, (v, unit_out, m, "", "", (_new(Evidence, (label, m.value, m.unit, m.date, m.source, note)),)))
        chosen, notes, reason, need = self.pick_dated(
            self.measurements(analyte), window, label, lambda m: m.date, lambda m: m.source
        )
        if reason:
            return Pick(reason=reason, need=need, evidence=tuple(notes))
        unit_out: str | None = None
        values: list[float] = []
        if canonical and analyte in ANALYTES:
            a = ANALYTES[analyte]
            unit_out = a.canonical_unit
            for m in chosen:
                try:
                    values.append(_to_canonical(a.name, m.value, m.unit))
                except UnitError:
                    ev = Evidence(label=label, value=m.value, unit=m.unit, date=m.date, source=m.source,
                                  note="unit not usable")
                    return Pick(
                        reason=f"{label} unit {m.unit!r} is unknown or incompatible with {label}; cannot be compared",
                        need=f"{label} in a recognised unit (e.g. {a.canonical_unit})",
                        evidence=(ev, *notes),
                    )
        else:
            bad = [m for m in chosen if not isinstance(m.value, (int, float)) or not math.isfinite(m.value)]
            if bad:
                return Pick(reason=f"{label} value {bad[0].value!r} is not a finite number",
                            need=f"a numeric {label}", evidence=tuple(_ev(label, m) for m in bad) + tuple(notes))
            values = [m.value for m in chosen]
            unit_out = chosen[0].unit
            if len({m.unit for m in chosen}) > 1:
                return Pick(reason=f"{label} reported in different units on the same date",
                            need=f"one {label} result", evidence=tuple(_ev(label, m) for m in chosen) + tuple(notes))
        # Physical plausibility (lutarterial.plausibility): a value no living patient can have is a
        # typing, unit or export error; it screens as unknown, never as a pass or a fail.
        lim = _LIMITS.get(analyte)
        for m, v in zip(chosen, values):
            if lim is None:
                break
            if canonical and analyte in ANALYTES:
                if lim[0] <= v <= lim[1]:  # profiled: two comparisons in the common case
                    continue
            elif _plausible_raw(analyte, v, m.unit):
                continue
            why = _implausible(analyte, m.value, m.unit)
            if why:
                return Pick(
                    reason=f"{label} value {m.value!r}{' ' + m.unit if m.unit else ''} is implausible: {why}; "
                           f"cannot be compared",
                    need=f"a corrected {label} result (check the value and its unit)",
                    evidence=(_ev(label, m, "implausible value"), *notes),
                )
        if len(values) > 1 and len({round(v, 6) for v in values}) > 1:
            return Pick(
                reason=f"conflicting {label} values on {chosen[0].date}: {', '.join(f'{m.value:g} {m.unit}' for m in chosen)}",
                need=f"one confirmed {label} value for {chosen[0].date}",
                evidence=tuple(_ev(label, m, "conflict") for m in chosen) + tuple(notes),
            )
        m = chosen[0]
        note = ""
        if canonical and unit_out and m.unit != unit_out:
            note = f"= {values[0]:.4g} {unit_out}"
        if len(chosen) > 1:
            note = (note + "; " if note else "") + f"{len(chosen)} identical results that day"
        return Pick(value=values[0], canonical_unit=unit_out, item=m,
                    evidence=(_ev(label, m, note), *notes))

    def uln(self, m: Measurement, label: str) -> tuple[float | None, str]:
        """The upper limit of normal of result ``m`` in its analyte's canonical unit."""
        if m.reference_high is None:
            return None, f"{label} result has no upper reference limit (ULN) from its lab"
        if not isinstance(m.reference_high, (int, float)) or not math.isfinite(m.reference_high) or m.reference_high <= 0:
            return None, f"{label} upper reference limit {m.reference_high!r} is not a positive number"
        unit = m.reference_unit or m.unit
        try:
            uln = _to_canonical(m.analyte, m.reference_high, unit)
        except UnitError:
            return None, f"{label} reference range unit {unit!r} is unknown or incompatible"
        lim = _LIMITS.get(m.analyte)
        why = "" if lim is None or lim[0] <= uln <= lim[1] else _implausible(
            m.analyte, uln, ANALYTES[m.analyte].canonical_unit)
        if why:
            return None, f"{label} upper reference limit {m.reference_high!r} {unit} is implausible: {why}"
        return uln, ""


#: Physical limits (canonical unit) of each analyte, read once: the fast path compares two floats.
_LIMITS: dict[str, tuple[float, float]] = {
    k: (r.low, r.high) for k, r in plausibility_table().items() if k in ANALYTES
}  # ECOG is range-checked by its own rule (an integer 0-5), with its own reason


#: Analyte -> (canonical unit, physical limits or None): what :meth:`Context.value` reads, in one lookup.
_CANONICAL: dict[str, tuple[str, tuple[float, float] | None]] = {
    k: (a.canonical_unit, _LIMITS.get(k)) for k, a in ANALYTES.items()
}


def _implausible(analyte: str, value: Any, unit: str | None) -> str:
    """Why ``value unit`` of ``analyte`` is physically implausible, or ``""`` (no limits: ``""``)."""
    if analyte not in _LIMITS:
        return ""
    try:
        check_quantity(analyte, value, unit or "1")
    except ImplausibleValueError:
        r = limits_for(analyte)
        try:
            shown = "" if (unit or "1") == r.unit else f"= {_to_canonical(analyte, value, unit):.4g} {r.unit}, "
        except (UnitError, TypeError):
            shown = ""
        return f"{shown}outside the physical limits {r.describe()}"
    except UnitError:
        return ""  # unit problems are reported by the unit check with their own reason
    return ""


def _plausible_raw(analyte: str, value: float, unit: str | None) -> bool:
    lim = _LIMITS.get(analyte)
    if lim is None:
        return True
    if unit == ANALYTES[analyte].canonical_unit:  # the common case: two float comparisons
        return lim[0] <= value <= lim[1]
    return not _implausible(analyte, value, unit)


@lru_cache(maxsize=2048)
def _canonical_factor(analyte: str, unit: str) -> float:
    a = ANALYTES[analyte]
    return convert(1.0, unit, a.canonical_unit, molar_mass_g_per_mol=a.molar_mass_g_per_mol)


def _to_canonical(analyte: str, value: float, unit: str | None) -> float:
    """``value unit`` in the analyte's canonical unit (every supported unit is a pure scale factor)."""
    if unit is None:
        if ANALYTES[analyte].canonical_unit == "1":  # a pure ratio such as the INR
            unit = "1"
        else:
            raise UnitError(f"{analyte}: value without a unit")
    if not math.isfinite(value):
        raise UnitError(f"{analyte}: value {value!r} is not a finite number")
    return value * _canonical_factor(analyte, unit)


def _value_of(item: Any) -> Any:
    for attr in ("value", "residual_uptake", "kind"):
        if hasattr(item, attr):
            return getattr(item, attr)
    return None


def _unit_of(item: Any) -> str | None:
    return getattr(item, "unit", None)


def _ev(label: str, m: Measurement, note: str = "") -> Evidence:
    return _new(Evidence, (label, m.value, m.unit, m.date, m.source, note))


#: Builds a NamedTuple from its complete field tuple in C (the generated ``__new__`` is a Python call).
_new = tuple.__new__
