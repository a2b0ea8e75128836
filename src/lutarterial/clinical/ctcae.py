"""CTCAE v5.0 laboratory grading: criteria as data, one generic three-valued evaluator.

Why data: the grade wording of CTCAE v5.0 is kept verbatim next to structured thresholds in
``data/ctcae_v5_labs.yaml`` (the pharmaverse/admiral convention), so a reviewer can check every
threshold against the source text, and every judgement call carries an ``interpretation`` note.

Why three-valued: each criterion evaluates to true, false or unknown (a needed LLN/ULN/baseline
is missing). A grade is given only when it is certain; missing references never produce a
silent grade 0. See :func:`grade_lab`.

Baseline rule (issue 10): when a term's grade depends on the baseline (ALT, AST, bilirubin,
creatinine) and no baseline is given, the value is graded as if the baseline were normal
(the ULN/LLN criteria; the baseline-relative alternatives are not applied), and the row says
so with ``baseline_assumed="normal"`` - the convention of analysis standards (pharmaverse/admiral
toxicity grading, where a missing BASE never matches). ``require_baseline=True`` restores the
strict rule: no grade unless the baseline could not change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from lutarterial.errors import ImplausibleValueError, ProtocolDefinitionError, UnitError
from lutarterial.plausibility import check_quantity, limits_for, plausibility_table
from lutarterial.units import Analyte, analyte_by_loinc, analyte_by_name, convert, parse_unit, to_canonical

__all__ = [
    "Condition",
    "Criterion",
    "CtcaeTerm",
    "LabGrade",
    "load_ctcae_terms",
    "term_for_test",
    "resolve_test",
    "grade_lab",
    "compare",
    "CTCAE_VERSION",
]

CTCAE_VERSION = "5.0"
_OPS = ("<", "<=", ">", ">=")
_REFS = ("lln", "uln", "baseline", "absolute")
_REL_TOL = 1e-9

#: eGFR LOINC codes (not in ``lutarterial.units``): graded under chronic kidney disease.
_EGFR_LOINC = {"33914-3", "48642-3", "48643-1", "62238-1", "77147-7", "98979-8", "50044-7"}


def compare(a: float, op: str, b: float) -> bool:
    """``a op b`` with a relative tolerance of 1e-9, so unit-conversion noise cannot flip a boundary."""
    tol = _REL_TOL * max(abs(a), abs(b))
    equal = abs(a - b) <= tol
    if op == "<":
        return a < b and not equal
    if op == "<=":
        return a < b or equal
    if op == ">":
        return a > b and not equal
    if op == ">=":
        return a > b or equal
    raise ValueError(f"unknown operator {op!r}")


@dataclass(frozen=True)
class Condition:
    """``lhs op ref`` where ref is LLN, ULN or baseline times ``factor``, or an absolute value."""

    op: str
    ref: str
    lhs: str = "value"
    factor: float = 1.0
    values: tuple[tuple[float, str], ...] = ()

    def describe(self) -> str:
        if self.ref == "absolute":
            rhs = " / ".join(f"{v:g} {u}" for v, u in self.values)
        else:
            rhs = self.ref.upper() if self.factor == 1.0 else f"{self.factor:g} x {self.ref.upper()}"
            if self.ref == "baseline":
                rhs = "baseline" if self.factor == 1.0 else f"{self.factor:g} x baseline"
        return f"{self.lhs} {self.op} {rhs}"


@dataclass(frozen=True)
class Criterion:
    """All conditions must hold (AND) for ``grade``; several criteria per grade are alternatives."""

    grade: int
    when: tuple[Condition, ...]


@dataclass(frozen=True)
class CtcaeTerm:
    """One CTCAE term with its verbatim grade text, structured criteria and interpretation notes."""

    key: str
    term: str
    meddra_code: str
    analyte: str
    direction: str
    grade_text: dict[int, str]
    criteria: tuple[Criterion, ...]
    clinical_only_grades: tuple[int, ...]
    interpretation: tuple[str, ...]

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(
            r for c in self.criteria for cond in c.when for r in (cond.ref, cond.lhs) if r in ("lln", "uln", "baseline")
        )

    def threshold_units(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u for c in self.criteria for cond in c.when for _, u in cond.values))


@dataclass(frozen=True)
class LabGrade:
    """The CTCAE grade of one lab value, or ``grade=None`` with the reason it cannot be given."""

    id: str | None
    test: str
    term: str | None
    grade: int | None
    reason: str
    minimum_grade: int | None = None
    grade_text: str | None = None
    value: float | None = None
    unit: str | None = None
    date: str | None = None
    evidence: tuple[str, ...] = field(default_factory=tuple)
    baseline_assumed: str | None = None  # "normal" when a missing baseline was taken as normal

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "test": self.test,
            "term": self.term,
            "grade": self.grade,
            "reason": self.reason,
            "minimum_grade": self.minimum_grade,
            "grade_text": self.grade_text,
            "value": self.value,
            "unit": self.unit,
            "date": self.date,
            "evidence": list(self.evidence),
            "baseline_assumed": self.baseline_assumed,
        }


def _parse_condition(raw: dict[str, Any], where: str) -> Condition:
    op, ref = raw.get("op"), raw.get("ref")
    lhs = raw.get("lhs", "value")
    if op not in _OPS or ref not in _REFS or lhs not in ("value", "baseline"):
        raise ProtocolDefinitionError(f"{where}: bad condition {raw!r}")
    values: tuple[tuple[float, str], ...] = ()
    if ref == "absolute":
        vals = raw.get("values")
        if not vals:
            raise ProtocolDefinitionError(f"{where}: absolute condition without values")
        values = tuple((float(v), str(u)) for v, u in vals)
        for _, u in values:
            parse_unit(u)
    return Condition(op=op, ref=ref, lhs=lhs, factor=float(raw.get("factor", 1.0)), values=values)


@lru_cache(maxsize=1)
def load_ctcae_terms() -> dict[str, CtcaeTerm]:
    """Load the packaged CTCAE v5.0 lab terms, keyed by term key (e.g. ``"anemia"``)."""
    text = resources.files("lutarterial.clinical").joinpath("data/ctcae_v5_labs.yaml").read_text("utf-8")
    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loader
    if str(doc.get("version")) != CTCAE_VERSION:
        raise ProtocolDefinitionError("ctcae_v5_labs.yaml: version must be 5.0")
    terms: dict[str, CtcaeTerm] = {}
    for raw in doc["terms"]:
        key = raw["key"]
        criteria = tuple(
            Criterion(int(c["grade"]), tuple(_parse_condition(w, f"{key} grade {c['grade']}") for w in c["when"]))
            for c in raw["criteria"]
        )
        grade_text = {int(k): str(v) for k, v in raw["grade_text"].items()}
        for c in criteria:
            if c.grade not in grade_text:
                raise ProtocolDefinitionError(f"{key}: grade {c.grade} has criteria but no verbatim text")
        if analyte_by_name(raw["analyte"]) is None:
            raise ProtocolDefinitionError(f"{key}: unknown analyte {raw['analyte']!r}")
        terms[key] = CtcaeTerm(
            key=key,
            term=raw["term"],
            meddra_code=str(raw.get("meddra_code", "")),
            analyte=raw["analyte"],
            direction=raw["direction"],
            grade_text=grade_text,
            criteria=criteria,
            clinical_only_grades=tuple(int(g) for g in raw.get("clinical_only_grades", [])),
            interpretation=tuple(raw.get("interpretation", [])),
        )
    return terms


#: Extra spellings seen in lab exports (normalised: lower case, spaces/hyphens as underscores).
_EXTRA_ALIASES = {
    "platelet_count": "platelets", "thrombocytes": "platelets", "neutrophil_count": "neutrophils",
    "absolute_neutrophil_count": "neutrophils", "neutrophils_absolute": "neutrophils", "pnn": "neutrophils",
    "lymphocyte_count": "lymphocytes", "lymphocytes_absolute": "lymphocytes", "white_blood_cells": "wbc",
    "white_blood_cell_count": "wbc", "leucocytes": "wbc", "wbc_count": "wbc", "haemoglobin_blood": "haemoglobin",
    "serum_creatinine": "creatinine", "creatininemia": "creatinine", "total_bilirubin": "bilirubin",
    "bilirubin_total": "bilirubin", "serum_albumin": "albumin", "albuminemia": "albumin",
    "creatinine_clearance": "crcl", "clcr": "crcl", "cockcroft_gault": "crcl", "egfr": "crcl", "gfr": "crcl",
    "mdrd": "crcl", "ckd_epi": "crcl",
}


def resolve_test(test: str) -> Analyte | None:
    """The analyte for a test name (``hemoglobin``, ``plt``, ``platelet count``...) or LOINC code, else ``None``."""
    t = str(test).strip()
    if t in _EGFR_LOINC:
        return analyte_by_name("crcl")
    found = analyte_by_name(t) or analyte_by_loinc(t)
    if found is None:
        key = "_".join(t.lower().replace("-", " ").split())
        found = analyte_by_name(_EXTRA_ALIASES.get(key, key))
    return found


def term_for_test(test: str) -> CtcaeTerm | None:
    """The CTCAE term graded for a test (e.g. ``platelets`` -> Platelet count decreased)."""
    analyte = resolve_test(test)
    if analyte is None:
        return None
    for term in load_ctcae_terms().values():
        if term.analyte == analyte.name:
            return term
    return None


def _check_unit(term: CtcaeTerm, analyte: Analyte, value: float, unit: str) -> None:
    """Raise UnitError unless ``unit`` is a known unit usable for this analyte/term."""
    try:
        to_canonical(analyte, value, unit)
        return
    except UnitError as first:
        parsed = parse_unit(unit)  # raises for an unknown unit, naming it
        for u in term.threshold_units():
            if parse_unit(u).dim == parsed.dim:
                return
        raise first


def _absolute_threshold(cond: Condition, analyte: Analyte, unit: str) -> tuple[float, str]:
    """The CTCAE threshold expressed in the reported unit (same-dimension alternative first)."""
    target = parse_unit(unit)
    same_dim = [(v, u) for v, u in cond.values if parse_unit(u).dim == target.dim]
    exact = [(v, u) for v, u in same_dim if math.isclose(parse_unit(u).factor, target.factor, rel_tol=1e-12)]
    if exact or same_dim:
        v, u = (exact or same_dim)[0]
        rhs = convert(v, u, unit)
    else:  # e.g. a mass-concentration threshold for a value in mol/L: needs the molar mass
        v, u = cond.values[0]
        rhs = convert(v, u, unit, molar_mass_g_per_mol=analyte.molar_mass_g_per_mol)
    label = f"{v:g} {u}" if exact else f"{v:g} {u} (= {_fmt(rhs)} {unit})"
    return rhs, label


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _implausible(analyte: str, value: float, unit: str) -> str:
    """``"<value unit> is outside ..."`` when physically implausible (lutarterial.plausibility), else ``""``."""
    if analyte not in plausibility_table():
        return ""
    try:
        check_quantity(analyte, value, unit)
    except ImplausibleValueError:
        return f"{value:g} {unit} is outside the physical limits of {analyte} ({limits_for(analyte).describe()})"
    except UnitError:
        return ""
    return ""


def grade_lab(
    test: str,
    value: float | None,
    unit: str | None,
    *,
    lln: float | None = None,
    uln: float | None = None,
    baseline: float | None = None,
    baseline_unit: str | None = None,
    id: str | None = None,
    date: str | None = None,
    require_baseline: bool = False,
) -> LabGrade:
    """Grade one lab value by CTCAE v5.0 (generic evaluator over the packaged criteria).

    ``lln``/``uln`` are in ``unit``; ``baseline`` is in ``unit`` unless ``baseline_unit`` is given.
    Never raises for clinical data problems: an unknown test, unit or a missing reference gives
    ``grade=None`` with a reason naming the problem.

    Without a baseline, terms graded relative to it are graded as if the baseline were normal
    (``baseline_assumed="normal"`` on the result); ``require_baseline=True`` withholds such grades.
    """
    term = term_for_test(test)
    common = {"id": id, "test": str(test), "date": date, "unit": unit}
    if term is None:
        return LabGrade(term=None, grade=None, value=value, reason=f"no CTCAE v5.0 lab term is graded for test {test!r}", **common)
    analyte = analyte_by_name(term.analyte)
    assert analyte is not None
    base = {**common, "term": term.term}
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return LabGrade(grade=None, value=None, reason=f"no grade: value missing or not a number ({value!r})", **base)
    value = float(value)
    if value < 0:
        return LabGrade(grade=None, value=value, reason=f"no grade: negative value {value:g} is not a measurement", **base)
    if not unit:
        return LabGrade(grade=None, value=value, reason="no grade: unit missing (a value without a unit cannot be graded)", **base)
    try:
        _check_unit(term, analyte, value, unit)
    except UnitError as exc:
        hint = ""
        if analyte.name in ("haemoglobin", "albumin") and unit.replace(" ", "").startswith("G/"):
            hint = "; 'G/L' means 10^9 cells per litre (giga), write 'g/L' for grams per litre"
        return LabGrade(grade=None, value=value,
                        reason=f"no grade: unit {unit!r} not usable for {analyte.name} ({exc}){hint}", **base)
    implausible = _implausible(analyte.name, value, unit)
    if implausible:  # issue 9: haemoglobin 1e308 g/dL was graded 0
        return LabGrade(grade=None, value=value, reason=f"no grade: value {implausible}", **base)

    refs: dict[str, float | None] = {"lln": lln, "uln": uln, "baseline": None}
    if baseline is not None:
        if not isinstance(baseline, (int, float)) or isinstance(baseline, bool) or not math.isfinite(baseline):
            return LabGrade(grade=None, value=value, reason=f"no grade: baseline {baseline!r} is not a finite number",
                            **base)
        try:
            refs["baseline"] = float(baseline) if not baseline_unit else convert(
                float(baseline), baseline_unit, unit, molar_mass_g_per_mol=analyte.molar_mass_g_per_mol
            )
        except UnitError as exc:
            return LabGrade(grade=None, value=value, reason=f"no grade: baseline unit {baseline_unit!r} not usable ({exc})", **base)
        implausible = _implausible(analyte.name, refs["baseline"], unit)
        if implausible:
            return LabGrade(grade=None, value=value, reason=f"no grade: baseline {implausible}", **base)
    for name in ("lln", "uln"):
        r = refs[name]
        if r is not None and (not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0):
            return LabGrade(grade=None, value=value, reason=f"no grade: {name.upper()} {r!r} is not a positive number", **base)
        implausible = _implausible(analyte.name, r, unit) if r is not None else ""
        if implausible:
            return LabGrade(grade=None, value=value, reason=f"no grade: {name.upper()} {implausible}", **base)

    assume_normal = refs["baseline"] is None and not require_baseline and "baseline" in term.needs

    def evaluate(cond: Condition) -> tuple[bool | None, str]:
        lhs = value if cond.lhs == "value" else refs["baseline"]
        if lhs is None and assume_normal:
            # "baseline normal": LLN <= baseline <= ULN, whatever its value
            if cond.ref == "uln":
                return cond.op in ("<", "<="), "baseline assumed normal (<= ULN)"
            if cond.ref == "lln":
                return cond.op in (">", ">="), "baseline assumed normal (>= LLN)"
        if lhs is None:
            return None, "baseline missing"
        if cond.ref == "baseline" and refs["baseline"] is None and assume_normal:
            # a multiple of an unknown (normal) baseline: the alternative is not applied
            return False, "baseline-relative criterion not applied (baseline missing, assumed normal)"
        if cond.ref == "absolute":
            rhs, label = _absolute_threshold(cond, analyte, unit)
        else:
            r = refs[cond.ref]
            if r is None:
                return None, f"{cond.ref.upper() if cond.ref != 'baseline' else 'baseline'} missing"
            rhs = cond.factor * r
            label = (cond.ref.upper() if cond.ref != "baseline" else "baseline") if cond.factor == 1.0 else (
                f"{cond.factor:g} x {cond.ref.upper() if cond.ref != 'baseline' else 'baseline'}"
            )
            label = f"{label} = {_fmt(rhs)} {unit}"
        ok = compare(lhs, cond.op, rhs)
        name = "value" if cond.lhs == "value" else "baseline"
        return ok, f"{name} {_fmt(lhs)} {unit} {cond.op if ok else _negate(cond.op)} {label}"

    true_grades: dict[int, list[str]] = {}
    unknown: dict[int, set[str]] = {}
    for crit in term.criteria:
        results = [evaluate(c) for c in crit.when]
        if any(r is False for r, _ in results):
            continue
        if all(r is True for r, _ in results):
            true_grades.setdefault(crit.grade, [s for _, s in results])
        else:
            unknown.setdefault(crit.grade, set()).update(s for r, s in results if r is None)

    assumed = "normal" if assume_normal else None
    assumed_note = ("; baseline missing: graded as if it were normal (ULN/LLN criteria; "
                    "--require-baseline withholds such grades)") if assume_normal else ""
    top_true = max(true_grades, default=0)
    higher_unknown = {g: m for g, m in unknown.items() if g > top_true}
    clinical_note = ""
    if term.clinical_only_grades:
        cg = ", ".join(str(g) for g in term.clinical_only_grades)
        clinical_note = f"; grade(s) {cg} need clinical assessment and are never assigned from a value"
    if higher_unknown:
        missing = sorted({m for ms in higher_unknown.values() for m in ms})
        grades = ", ".join(str(g) for g in sorted(higher_unknown))
        if top_true:
            return LabGrade(
                grade=None, value=value, minimum_grade=top_true,
                reason=f"no grade: at least grade {top_true}, but grade {grades} cannot be excluded ({'; '.join(missing)})",
                grade_text=term.grade_text.get(top_true), evidence=tuple(true_grades[top_true]),
                baseline_assumed=assumed, **base,
            )
        return LabGrade(
            grade=None, value=value,
            reason=f"no grade: {'; '.join(missing)}; needed to decide grade {grades} versus grade 0",
            baseline_assumed=assumed, **base,
        )
    if top_true:
        ev = tuple(true_grades[top_true])
        return LabGrade(
            grade=top_true, value=value, grade_text=term.grade_text.get(top_true), evidence=ev,
            reason=f"grade {top_true}: {' and '.join(ev)} (CTCAE v5.0 {term.term}: "
                   f"'{term.grade_text[top_true]}'){clinical_note}{assumed_note}",
            baseline_assumed=assumed, **base,
        )
    return LabGrade(
        grade=0, value=value,
        reason=f"grade 0: no CTCAE v5.0 {term.term} criterion met{_normal_note(term, value, refs, unit)}{assumed_note}",
        baseline_assumed=assumed, **base,
    )


def _negate(op: str) -> str:
    return {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]


def _normal_note(term: CtcaeTerm, value: float, refs: dict[str, float | None], unit: str) -> str:
    if term.direction == "low" and refs["lln"] is not None:
        return f" (value {_fmt(value)} {unit} >= LLN {_fmt(refs['lln'])} {unit})"
    if term.direction == "high" and refs["uln"] is not None:
        return f" (value {_fmt(value)} {unit} vs ULN {_fmt(refs['uln'])} {unit})"
    return ""
