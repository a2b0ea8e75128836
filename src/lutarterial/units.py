"""Units of measure: a small, strict UCUM-style parser and analyte-aware conversions.

Why our own parser: clinical feeds mix strict UCUM (``10*9/L``, ``umol/L``, ``mm[Hg]``)
with lab habits (French ``G/L`` for giga-cells per litre, ``/mm³``, ``µmol/l``,
``x10^9/L``). We accept exactly the forms we can interpret without doubt and refuse
everything else with a :class:`~lutarterial.errors.UnitError` naming the unit, so an
unknown unit can never pass a threshold.

Case matters as in UCUM (``G/L`` are cells, ``g/L`` is mass); only the litre accepts
``l`` as well as ``L``. Amount-of-substance and mass convert into each other only when
a molar mass is given (see :data:`ANALYTES`).

Every quantity is reduced to ``(factor, dimension)`` where ``dimension`` is a tuple of
integer exponents over the base dimensions in :data:`BASE_DIMENSIONS`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from lutarterial.errors import UnitError

__all__ = [
    "BASE_DIMENSIONS",
    "ParsedUnit",
    "Analyte",
    "ANALYTES",
    "parse_unit",
    "convert",
    "to_canonical",
    "analyte_by_loinc",
    "analyte_by_name",
]

#: Base dimensions: length (m), mass (g), amount (mol), time (s), enzyme activity (U),
#: pressure in mmHg (kept apart: only mmHg and kPa are accepted), and body-surface
#: normalisation (``/1.73 m2``), which must never silently vanish.
BASE_DIMENSIONS = ("length", "mass", "amount", "time", "enzyme", "pressure", "bsa_norm")
_N = len(BASE_DIMENSIONS)
Dim = tuple[int, ...]


def _dim(**exps: int) -> Dim:
    return tuple(exps.get(name, 0) for name in BASE_DIMENSIONS)


DIMENSIONLESS: Dim = _dim()


@dataclass(frozen=True)
class ParsedUnit:
    """A unit reduced to a factor times base units (e.g. ``mg/dL`` = 10 g/m³... in SI-ish base)."""

    text: str
    factor: float
    dim: Dim

    def is_compatible(self, other: ParsedUnit) -> bool:
        return self.dim == other.dim


# Atoms: symbol -> (factor to base, dimension). Litre = 1e-3 m^3.
_ATOMS: dict[str, tuple[float, Dim]] = {
    "m": (1.0, _dim(length=1)),
    "g": (1.0, _dim(mass=1)),
    "mol": (1.0, _dim(amount=1)),
    "L": (1e-3, _dim(length=3)),
    "l": (1e-3, _dim(length=3)),
    "s": (1.0, _dim(time=1)),
    "sec": (1.0, _dim(time=1)),  # display text of many lab systems (UCUM: s)
    "min": (60.0, _dim(time=1)),
    "h": (3600.0, _dim(time=1)),
    "d": (86400.0, _dim(time=1)),
    "wk": (604800.0, _dim(time=1)),
    "a": (365.25 * 86400.0, _dim(time=1)),
    # Enzyme activity: 1 U = 1 umol/min. Clinically IU/L == U/L for transaminases.
    "U": (1.0, _dim(enzyme=1)),
    "[IU]": (1.0, _dim(enzyme=1)),
    "IU": (1.0, _dim(enzyme=1)),
    "kat": (6.0e7, _dim(enzyme=1)),  # 1 kat = 1 mol/s = 6e7 U
    "mm[Hg]": (1.0, _dim(pressure=1)),
    "mmHg": (1.0, _dim(pressure=1)),
    "Pa": (1.0 / 133.322387415, _dim(pressure=1)),
    "%": (1e-2, DIMENSIONLESS),
    "UI": (1.0, _dim(enzyme=1)),  # French "unites internationales"
    "Bq": (1.0, _dim(time=-1)),
    "Ci": (3.7e10, _dim(time=-1)),
    # Absorbed dose: 1 Gy = 1 J/kg = 1 m2/s2 (no mass dimension left); mGy, cGy by prefix.
    "Gy": (1.0, _dim(length=2, time=-2)),
    "[lb_av]": (453.59237, _dim(mass=1)),
    "lb": (453.59237, _dim(mass=1)),
    "[in_i]": (0.0254, _dim(length=1)),
    "in": (0.0254, _dim(length=1)),
    # French lab habit: "G/L" = 10^9 cells per litre, "T/L" = 10^12 per litre.
    "G": (1e9, DIMENSIONLESS),
    "T": (1e12, DIMENSIONLESS),
    "giga": (1e9, DIMENSIONLESS),
    "tera": (1e12, DIMENSIONLESS),
    # US lab habit: "K/uL" = thousands per microlitre (never kelvin in a lab report).
    "K": (1e3, DIMENSIONLESS),
    "cells": (1.0, DIMENSIONLESS),
}
# Atoms that take a prefix (UCUM metric units).
_METRIC = {"m", "g", "mol", "L", "l", "s", "U", "kat", "Pa", "Bq", "Ci", "Gy"}
_PREFIXES: dict[str, float] = {
    "T": 1e12,
    "G": 1e9,
    "M": 1e6,
    "k": 1e3,
    "h": 1e2,
    "da": 1e1,
    "d": 1e-1,
    "c": 1e-2,
    "m": 1e-3,
    "u": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
    "f": 1e-15,
}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_TEN_POWER = re.compile(r"^10\*(-?\d+)$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_TERM = re.compile(r"^(?P<sym>\[[A-Za-z_]+\]|mm\[Hg\]|[A-Za-z%]+)(?P<exp>-?\d+)?$")
_BSA_ANNOTATION = re.compile(r"/?\{?1\.73_?m2\}?|/?\{BSA\}")
_ANNOTATION = re.compile(r"\{[^{}]*\}")


def _normalise_text(text: str) -> str:
    t = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", lambda m: "10*" + m.group(1).translate(_SUPERSCRIPTS), text.strip())
    t = t.translate(_SUPERSCRIPTS)
    t = t.replace("µ", "u").replace("μ", "u").replace("×", "x").replace(" ", "")
    t = t.replace("^", "*")
    # "10e9/L", "x 10e9/L" (CTCAE's own notation) -> "10*9/L"
    t = re.sub(r"(?<![\d.])10[eE](-?\d+)", r"10*\1", t)
    # "x10*9/L" or "10*9/L" written with a leading multiplier sign.
    t = re.sub(r"^[xX\*](?=10\*)", "", t)
    t = re.sub(r"(?<=\d)[xX](?=10\*)", ".", t)
    return t


def _parse_term(term: str, whole: str) -> tuple[float, Dim]:
    if term in ("", "1"):
        return 1.0, DIMENSIONLESS
    m = _TEN_POWER.match(term)
    if m:
        power = int(m.group(1))
        if abs(power) > 24:
            raise UnitError(f"unknown unit {whole!r}: power of ten {power} is out of range")
        return 10.0**power, DIMENSIONLESS
    if _NUMBER.match(term):
        number = float(term)
        if number <= 0:
            raise UnitError(f"unknown unit {whole!r}: a numeric factor must be positive")
        return number, DIMENSIONLESS
    m = _TERM.match(term)
    if not m:
        raise UnitError(f"unknown unit {whole!r}: cannot read {term!r}")
    sym, exp_text = m.group("sym"), m.group("exp")
    exp = int(exp_text) if exp_text else 1
    if sym in _ATOMS:
        factor, dim = _ATOMS[sym]
    else:
        for plen in (2, 1):
            prefix, atom = sym[:plen], sym[plen:]
            if prefix in _PREFIXES and atom in _METRIC:
                factor = _PREFIXES[prefix] * _ATOMS[atom][0]
                dim = _ATOMS[atom][1]
                break
        else:
            raise UnitError(f"unknown unit {whole!r}: {sym!r} is not a unit we recognise")
    return factor**exp, tuple(d * exp for d in dim)


@lru_cache(maxsize=4096)
def parse_unit(text: str) -> ParsedUnit:
    """Parse a unit string; raise :class:`UnitError` for anything not certainly understood."""
    if not isinstance(text, str) or not text.strip():
        raise UnitError("missing unit: a value without a unit cannot be interpreted")
    t = _normalise_text(text)
    bsa = 0
    if _BSA_ANNOTATION.search(t):
        bsa = 1
        t = _BSA_ANNOTATION.sub("", t)
    t = _ANNOTATION.sub("", t)
    if t.startswith("/"):
        t = "1" + t
    parts = t.split("/")
    factor, dim = 1.0, [0] * _N
    for index, part in enumerate(parts):
        if part == "" and index > 0:
            raise UnitError(f"unknown unit {text!r}: empty denominator")
        sign = 1 if index == 0 else -1
        for term in part.split("."):
            f, d = _parse_term(term, text)
            factor *= f**sign
            for i in range(_N):
                dim[i] += sign * d[i]
    if bsa:
        dim[BASE_DIMENSIONS.index("bsa_norm")] -= 1
    return ParsedUnit(text=text, factor=factor, dim=tuple(dim))


def _to_mass_basis(unit: ParsedUnit, molar_mass: float | None) -> tuple[float, Dim]:
    amount_i = BASE_DIMENSIONS.index("amount")
    n = unit.dim[amount_i]
    if n == 0 or molar_mass is None:
        return unit.factor, unit.dim
    mass_i = BASE_DIMENSIONS.index("mass")
    dim = list(unit.dim)
    dim[amount_i] = 0
    dim[mass_i] += n
    return unit.factor * molar_mass**n, tuple(dim)


def convert(value: float, from_unit: str, to_unit: str, *, molar_mass_g_per_mol: float | None = None) -> float:
    """Convert ``value`` between units; amount <-> mass only with a molar mass.

    Raises :class:`UnitError` when either unit is unknown or the two are incompatible.
    """
    src, dst = parse_unit(from_unit), parse_unit(to_unit)
    if not math.isfinite(value):
        raise UnitError(f"value {value!r} {from_unit} is not a finite number")
    if src.dim == dst.dim:
        return value * src.factor / dst.factor
    fs, ds = _to_mass_basis(src, molar_mass_g_per_mol)
    fd, dd = _to_mass_basis(dst, molar_mass_g_per_mol)
    if ds == dd:
        return value * fs / fd
    raise UnitError(f"unit {from_unit!r} cannot be converted to {to_unit!r}")


@dataclass(frozen=True)
class Analyte:
    """A measured quantity with its canonical unit and, where relevant, its molar mass.

    ``molar_mass_g_per_mol`` allows mol <-> g conversion; ``source`` cites it.
    """

    name: str
    canonical_unit: str
    loinc: tuple[str, ...] = ()
    molar_mass_g_per_mol: float | None = None
    source: str = ""
    aliases: tuple[str, ...] = ()


#: Analytes used by screening and CTCAE grading. Molar masses: creatinine 113.12 g/mol
#: (mg/dL x 88.42 = umol/L); bilirubin 584.66 g/mol (mg/dL x 17.1 = umol/L);
#: haemoglobin per iron-binding monomer 16 114.5 g/mol (g/dL x 0.6206 = mmol/L, the
#: convention of European labs reporting Hb in mmol/L); albumin 66 438 g/mol.
ANALYTES: dict[str, Analyte] = {
    a.name: a
    for a in (
        Analyte("haemoglobin", "g/dL", ("718-7", "20509-6", "59260-0"), 16114.5,
                "Hb monomer (Fe) molar mass; IFCC/ICSH SI conversion 1 g/dL = 0.6206 mmol/L",
                ("hemoglobin", "hb", "hgb")),
        Analyte("neutrophils", "10*9/L", ("751-8", "26499-4", "753-4"), aliases=("anc", "neutrophil")),
        Analyte("platelets", "10*9/L", ("777-3", "26515-7", "778-1"), aliases=("plt", "platelet")),
        Analyte("lymphocytes", "10*9/L", ("731-0", "26474-7"), aliases=("lymphocyte", "alc")),
        Analyte("wbc", "10*9/L", ("6690-2", "26464-8", "804-5"), aliases=("leukocytes", "white_cells")),
        Analyte("creatinine", "umol/L", ("2160-0", "14682-9", "38483-4"), 113.12,
                "creatinine C4H7N3O, 113.12 g/mol", ("creat",)),
        Analyte("alt", "U/L", ("1742-6", "1743-4", "76625-3"), aliases=("sgpt", "alat")),
        Analyte("ast", "U/L", ("1920-8", "30239-8"), aliases=("sgot", "asat")),
        Analyte("bilirubin", "umol/L", ("1975-2", "14631-6", "42719-5"), 584.66,
                "bilirubin C33H36N4O6, 584.66 g/mol", ("total_bilirubin", "tbili")),
        Analyte("albumin", "g/L", ("1751-7", "61151-7", "2862-1"), 66438.0,
                "human serum albumin, 66 438 g/mol", ()),
        Analyte("pt", "s", ("5902-2",), aliases=("prothrombin_time",)),
        Analyte("inr", "1", ("6301-6", "34714-6", "46418-0")),
        Analyte("crcl", "mL/min", ("2164-2", "35591-7"), aliases=("creatinine_clearance",)),
        Analyte("weight", "kg", ("29463-7", "3141-9"), aliases=("body_weight",)),
        Analyte("height", "cm", ("8302-2", "3137-7"), aliases=("body_height",)),
        Analyte("lvef", "%", ("10230-1", "8806-2", "18043-0"), aliases=("ejection_fraction",)),
        Analyte("systolic_bp", "mm[Hg]", ("8480-6",), aliases=("sbp",)),
        Analyte("diastolic_bp", "mm[Hg]", ("8462-4",), aliases=("dbp",)),
    )
}
_BY_LOINC = {code: a for a in ANALYTES.values() for code in a.loinc}
_BY_NAME = {alias: a for a in ANALYTES.values() for alias in (a.name, *a.aliases)}


def analyte_by_loinc(code: str) -> Analyte | None:
    """The analyte a LOINC code measures, or ``None`` if we do not use that code."""
    return _BY_LOINC.get(code.strip())


def analyte_by_name(name: str) -> Analyte | None:
    """The analyte for a name or alias (case-insensitive), or ``None``."""
    return _BY_NAME.get(name.strip().lower())


def to_canonical(analyte: Analyte | str, value: float, unit: str) -> float:
    """Express ``value unit`` in the analyte's canonical unit.

    Raises :class:`UnitError` naming the unit when it is unknown or does not fit the analyte
    (e.g. ``g/L`` for a platelet count).
    """
    a = analyte if isinstance(analyte, Analyte) else analyte_by_name(analyte)
    if a is None:
        raise UnitError(f"unknown analyte {analyte!r}")
    try:
        return convert(value, unit, a.canonical_unit, molar_mass_g_per_mol=a.molar_mass_g_per_mol)
    except UnitError as exc:
        raise UnitError(f"{a.name}: unit {unit!r} is not usable ({exc})") from None
