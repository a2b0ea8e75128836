"""Physical plausibility of input numbers: no silent wrong number, anywhere.

Why a separate layer: a platelet count of 1e308, an injected activity of +inf or a time of
1e300 h are not measurements; they are typing, unit or export errors. Before this layer they
flowed through the arithmetic and came out as a confident number (``eligible``, SUV 0.0, a
dose). Every input quantity now has physical limits, written as data with their reasoning in
``lutarterial/data/plausibility.yaml`` next to the units (:mod:`lutarterial.units`), and every
edge (screening, imaging, dosimetry, clinical, registry, API) checks its numbers here.

The limits are physical, not clinical: deliberately wide, so a true extreme value is never
refused. Screening turns an implausible value into ``unknown`` with a reason; everything else
raises :class:`~lutarterial.errors.ImplausibleValueError` (exit 2 on the CLI, 422 on the API).

Pure and typed: no I/O beyond reading the packaged table once, no clock.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from numbers import Real
from types import MappingProxyType
from typing import Any

import yaml

from lutarterial.errors import ImplausibleValueError, UnitError
from lutarterial.units import ANALYTES, convert, parse_unit

__all__ = [
    "PlausibleRange",
    "ImplausibleValueError",
    "EARLIEST_DATE",
    "plausibility_table",
    "limits_for",
    "check_quantity",
    "check_canonical",
    "is_plausible",
    "require_finite",
    "check_date",
    "require_finite_tree",
    "kinds",
    "limits_table_markdown",
]

#: No date lutarterial handles (birth, lab, administration, visit) is before this day.
EARLIEST_DATE = _dt.date(1900, 1, 1)


@dataclass(frozen=True, slots=True)
class PlausibleRange:
    """The physical limits of one quantity, in its canonical ``unit``.

    ``low``/``high`` are inclusive unless ``low_exclusive``/``high_exclusive``; ``integer``
    requires a whole number; ``source`` says where the limit comes from or why.
    """

    kind: str
    label: str
    unit: str
    low: float
    high: float
    low_exclusive: bool = False
    high_exclusive: bool = False
    integer: bool = False
    source: str = ""

    def contains(self, value: float) -> bool:
        """Whether ``value`` (already in :attr:`unit`) is finite and within the limits."""
        if not math.isfinite(value):
            return False
        if value < self.low or (self.low_exclusive and value == self.low):
            return False
        if value > self.high or (self.high_exclusive and value == self.high):
            return False
        return not (self.integer and value != int(value))

    def describe(self) -> str:
        """The limits in words, e.g. ``0 to 5000 10*9/L`` or ``above 0 and at most 100000 MBq``."""
        if self.low_exclusive or self.high_exclusive:
            lo = f"above {self.low:g}" if self.low_exclusive else f"at least {self.low:g}"
            hi = f"below {self.high:g}" if self.high_exclusive else f"at most {self.high:g}"
            text = f"{lo} and {hi}"
        else:
            text = f"{self.low:g} to {self.high:g}"
        unit = "" if self.unit == "1" else f" {self.unit}"
        return f"{text}{unit}" + (" (a whole number)" if self.integer else "")


def _parse_table(data: Any) -> Mapping[str, PlausibleRange]:
    table: dict[str, PlausibleRange] = {}
    for kind, row in data["quantities"].items():
        low, high = float(row["low"]), float(row["high"])
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"plausibility.yaml: {kind}: bad limits {low!r}..{high!r}")
        parse_unit(row["unit"])  # an unknown canonical unit is a data bug: fail at load
        table[kind] = PlausibleRange(
            kind=kind,
            label=str(row.get("label", kind)),
            unit=str(row["unit"]),
            low=low,
            high=high,
            low_exclusive=bool(row.get("low_exclusive", False)),
            high_exclusive=bool(row.get("high_exclusive", False)),
            integer=bool(row.get("integer", False)),
            source=str(row.get("source", "")),
        )
    return MappingProxyType(table)


@lru_cache(maxsize=1)
def plausibility_table() -> Mapping[str, PlausibleRange]:
    """Every known quantity kind and its limits (read once from the packaged YAML)."""
    text = resources.files("lutarterial").joinpath("data/plausibility.yaml").read_text("utf-8")
    return _parse_table(yaml.safe_load(text))


def kinds() -> tuple[str, ...]:
    """The quantity kinds with limits, in table order."""
    return tuple(plausibility_table())


def limits_for(kind: str) -> PlausibleRange:
    """The limits of ``kind``; :class:`KeyError` names the known kinds when it has none."""
    table = plausibility_table()
    try:
        return table[kind]
    except KeyError:
        raise KeyError(f"no plausibility limits for {kind!r}; known: {', '.join(table)}") from None


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ImplausibleValueError(f"{name}: {value!r} is not a number; give a finite number")
    return float(value)


def require_finite(name: str, value: object) -> float:
    """``value`` as a float; :class:`ImplausibleValueError` naming ``name`` if it is NaN, ±inf or no number."""
    v = _as_float(name, value)
    if not math.isfinite(v):
        raise ImplausibleValueError(f"{name}: {value!r} is not a finite number; give a finite number")
    return v


def _molar_mass(kind: str) -> float | None:
    a = ANALYTES.get(kind)
    return a.molar_mass_g_per_mol if a is not None else None


def _refuse(r: PlausibleRange, value: object, unit: str, canonical: float | None, name: str | None) -> ImplausibleValueError:
    shown = f"{value!r} {unit}".rstrip() if unit not in ("", "1") else f"{value!r}"
    conv = f" (= {canonical:g} {r.unit})" if canonical is not None and unit != r.unit and math.isfinite(canonical) else ""
    what = name or r.label
    return ImplausibleValueError(
        f"{what}: {shown}{conv} is outside the physical limits of {r.label} ({r.describe()}); "
        f"check the value and its unit"
        + (f" [limits: {r.source}]" if r.source else "")
    )


def check_quantity(kind: str, value: float, unit: str, *, name: str | None = None) -> float:
    """``value unit`` of quantity ``kind`` converted to its canonical unit, if physically plausible.

    Raises :class:`ImplausibleValueError` (naming the quantity or ``name``, the value, the limits
    and what to fix) for NaN, ±inf, non-numbers and values outside the limits;
    :class:`UnitError` for a unit that is unknown or does not fit the quantity (an unknown unit
    never passes); :class:`KeyError` for an unknown ``kind`` (a programming error).
    """
    r = limits_for(kind)
    v = _as_float(name or r.label, value)
    if not math.isfinite(v):
        raise _refuse(r, value, unit, None, name)
    try:
        canonical = convert(v, unit, r.unit, molar_mass_g_per_mol=_molar_mass(kind))
    except UnitError as exc:
        raise UnitError(f"{name or r.label}: unit {unit!r} is not usable for {r.label} ({exc})") from None
    if not r.contains(canonical):
        raise _refuse(r, value, unit, canonical, name)
    return canonical


def check_canonical(kind: str, value: float, *, name: str | None = None) -> float:
    """Like :func:`check_quantity` for a value already in the canonical unit of ``kind``."""
    r = limits_for(kind)
    v = _as_float(name or r.label, value)
    if not r.contains(v):
        raise _refuse(r, value, r.unit, None, name)
    return v


def is_plausible(kind: str, value: float, unit: str) -> bool:
    """Whether ``value unit`` passes :func:`check_quantity` (an unknown unit or kind is not plausible)."""
    try:
        check_quantity(kind, value, unit)
    except (ImplausibleValueError, UnitError, KeyError):
        return False
    return True


def check_date(
    name: str,
    value: _dt.date,
    *,
    not_before: _dt.date = EARLIEST_DATE,
    not_after: _dt.date | None = None,
    not_after_label: str = "",
) -> _dt.date:
    """``value`` if it lies in ``[not_before, not_after]``; otherwise :class:`ImplausibleValueError`.

    ``not_after`` is passed by the caller (the domain reads no clock): today for dates that
    cannot lie in the future, a visit date for results of that visit.
    """
    if not isinstance(value, _dt.date):
        raise ImplausibleValueError(f"{name}: {value!r} is not a date; give YYYY-MM-DD")
    day = value.date() if isinstance(value, _dt.datetime) else value
    if day < not_before:
        raise ImplausibleValueError(
            f"{name}: {day.isoformat()} is before {not_before.isoformat()}; check the year"
        )
    if not_after is not None and day > not_after:
        what = not_after_label or not_after.isoformat()
        raise ImplausibleValueError(f"{name}: {day.isoformat()} is after {what}; check the date")
    return value


def require_finite_tree(value: Any, where: str = "value") -> None:
    """Refuse NaN or ±inf anywhere inside nested JSON-like data (dicts, lists, tuples), naming the path.

    For stored analysis results, screening records and other free-form JSON: Python's ``json``
    accepts ``NaN`` and ``Infinity``, and a stored NaN later reads back as a silent wrong number.
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        v, path = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                raise ImplausibleValueError(f"{path}: {v!r} is not a finite number; JSON data must hold finite numbers")
        elif isinstance(v, dict):
            stack.extend((sub, f"{path}.{k}") for k, sub in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((sub, f"{path}[{i}]") for i, sub in enumerate(v))


def limits_table_markdown() -> str:
    """The limits as a Markdown table (docs/plausibility.md embeds this output verbatim; a test checks it)."""
    rows = ["| quantity | kind | limits | source or reasoning |", "|---|---|---|---|"]
    for r in plausibility_table().values():
        src = r.source.replace("|", "\\|")
        rows.append(f"| {r.label} | `{r.kind}` | {r.describe()} | {src} |")
    return "\n".join(rows) + "\n"
