"""The rule registry: one small function per criterion ID.

Why: each criterion's logic is reviewable on one screen and testable alone, while every
number it compares against comes from the protocol file (``criterion.threshold(...)``,
``criterion.window(...)``). ``tests/unit/eligibility`` proves every ID of every packaged
protocol version has a rule here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import TypeVar

from lutarterial.eligibility.context import Context, Pick, compare, months_before, selection_key
from lutarterial.eligibility.derived import (
    ASCITES_GRADES,
    ENCEPHALOPATHY_GRADES,
    age_range_years,
    child_pugh_pugh1973,
    crcl_cockcroft_gault_1976,
)
from lutarterial.eligibility.patient import EVENT_TYPES
from lutarterial.eligibility.results import CriterionResult, Evidence, Status, combine
from lutarterial.errors import InvalidInputError
from lutarterial.protocol.loader import Criterion, Threshold
from lutarterial.plausibility import check_canonical, limits_for
from lutarterial.units import ANALYTES, BASE_DIMENSIONS, convert, parse_unit

#: Physical limits of an age in years (lutarterial.plausibility), read once.
_AGE_LIMITS = limits_for("age")

__all__ = ["RULES", "rule", "registrar", "evaluate"]

Rule = Callable[[Criterion, Context], CriterionResult]
T = TypeVar("T")
#: Criterion ID -> evaluator.
RULES: dict[str, Rule] = {}

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
#: Bilirubin umol/L -> mg/dL (Child-Pugh scores a mg/dL report on Pugh's mg/dL cut-offs).
_UMOL_TO_MG_DL_BILIRUBIN = convert(1.0, "umol/L", "mg/dL", molar_mass_g_per_mol=ANALYTES["bilirubin"].molar_mass_g_per_mol)
#: Creatinine umol/L -> mg/dL (molar mass from lutarterial.units.ANALYTES; 1 mg/dL = 88.4 umol/L).
_UMOL_TO_MG_DL_CREATININE = convert(1.0, "umol/L", "mg/dL", molar_mass_g_per_mol=ANALYTES["creatinine"].molar_mass_g_per_mol)


def registrar(registry: dict[str, Callable], what: str) -> Callable[[str], Callable[[Callable], Callable]]:
    """A decorator factory registering one function per criterion ID in ``registry`` (once each)."""

    def register(criterion_id: str) -> Callable[[Callable], Callable]:
        def deco(fn: Callable) -> Callable:
            if criterion_id in registry:
                raise RuntimeError(f"two {what} registered for {criterion_id}")
            registry[criterion_id] = fn
            return fn

        return deco

    return register


#: ``@rule("INC01")`` registers the evaluator of INC01.
rule = registrar(RULES, "rules")


def evaluate(criterion: Criterion, ctx: Context) -> CriterionResult:
    """Run the registered rule of ``criterion``."""
    return RULES[criterion.id](criterion, ctx)


# -- small helpers --------------------------------------------------------------------------

#: ``tuple.__new__`` builds a NamedTuple from a complete field tuple in C; the generated
#: ``__new__`` is a Python call (profiled: ~80 result tuples per record).
_new = tuple.__new__


def _r(c: Criterion, status: Status, reason: str, evidence=(), needs=()) -> CriterionResult:
    return _new(CriterionResult, (c.id, status, reason, tuple(evidence), tuple(dict.fromkeys(needs)) if needs else ()))


_CONSTS: dict[tuple[int, str], tuple[Criterion, object]] = {}


def _const(c: Criterion, name: str, make: Callable[[], T]) -> T:
    """A value that depends only on the criterion (its protocol file), computed once per criterion object."""
    hit = _CONSTS.get((id(c), name))
    if hit is None or hit[0] is not c:
        hit = _CONSTS[(id(c), name)] = (c, make())
    return hit[1]  # type: ignore[return-value]


def _fact_ev(ctx: Context, name: str) -> Evidence:
    v = ctx.patient.facts.get(name)
    if isinstance(v, _dt.date):
        v = v.isoformat()
    sources = ctx.patient.fact_sources
    return _new(Evidence, (name, v, None, None, sources.get(name, "") if sources else "", ""))


def _json(v):
    return v.isoformat() if isinstance(v, _dt.date) else v


def _exclusion_flags(c: Criterion, ctx: Context, names: list[str]) -> tuple[Status, list[Evidence], list[str], list[str]]:
    """Any flag true -> fail; all false -> pass; else unknown. Returns (status, evidence, present, missing)."""
    facts = ctx.patient.facts
    present = [n for n in names if facts.get(n) is True]
    missing = [n for n in names if facts.get(n) is None]
    ev = [_fact_ev(ctx, n) for n in names if facts.get(n) is not None]
    if present:
        return F, ev, present, missing
    if missing:
        return U, ev, present, missing
    return P, ev, present, missing


#: Results of flag-only criteria keyed on exactly what they read (see :func:`_flag_key`).
_FLAG_RESULTS: dict[tuple, tuple[Criterion, CriterionResult]] = {}
_FLAG_RESULTS_MAX = 4096


def _flag_key(c: Criterion, ctx: Context, names: tuple[str, ...], extra: tuple = ()) -> tuple | None:
    """Cache key of a flag-only criterion: its facts (value and type) and their sources.

    ``None`` (no caching) unless every value is ``None``, ``True``, ``False`` or a ``str``:
    values that compare equal but are written differently (``1``/``True``/``1.0``,
    ``0.0``/``-0.0``) must never share a cached result.
    """
    facts = ctx.patient.facts
    sources = ctx.patient.fact_sources
    key: list = [id(c), names]
    for n in names:
        v = facts.get(n)
        if not (v is None or v is True or v is False or type(v) is str):
            return None
        key.append(v if v is None or type(v) is str else ("\x00bool", v))
        key.append(sources.get(n, "") if sources else "")
    for v in extra:  # other patient fields the rule reads (sex, menopausal status): same guard
        if not (v is None or v is True or v is False or type(v) is str):
            return None
        key.append(v if v is None or type(v) is str else ("\x00bool", v))
    return tuple(key)


def _cached_flag_result(c: Criterion, ctx: Context, names: tuple[str, ...],
                        make: Callable[[], CriterionResult], extra: tuple = ()) -> CriterionResult:
    """``make()``, memoised on :func:`_flag_key` (flag criteria repeat across a cohort; profiled).

    Only for rules whose result depends on nothing but the facts ``names`` (values and
    sources), the patient fields in ``extra`` and the criterion itself (not the date, not
    measurements).
    """
    key = _flag_key(c, ctx, names, extra)
    if key is None:
        return make()
    hit = _FLAG_RESULTS.get(key)
    if hit is not None and hit[0] is c:
        return hit[1]
    result = make()
    if len(_FLAG_RESULTS) >= _FLAG_RESULTS_MAX:
        _FLAG_RESULTS.clear()
    _FLAG_RESULTS[key] = (c, result)
    return result


def _flags_rule(c: Criterion, ctx: Context, names: list[str]) -> CriterionResult:
    return _cached_flag_result(c, ctx, tuple(names), lambda: _flags_rule_uncached(c, ctx, names))


def _flags_rule_uncached(c: Criterion, ctx: Context, names: list[str]) -> CriterionResult:
    status, ev, present, missing = _exclusion_flags(c, ctx, names)
    if status is F:
        return _r(c, F, f"present: {', '.join(present)}", ev)
    if status is U:
        return _r(c, U, f"not documented: {', '.join(missing)}", ev, [f"{n} (yes/no)" for n in missing])
    return _r(c, P, f"documented absent: {', '.join(names)}", ev)


def _inclusion_flag(c: Criterion, ctx: Context, name: str, yes: str, no: str) -> CriterionResult:
    return _cached_flag_result(c, ctx, (name,), lambda: _inclusion_flag_uncached(c, ctx, name, yes, no))


def _inclusion_flag_uncached(c: Criterion, ctx: Context, name: str, yes: str, no: str) -> CriterionResult:
    v = ctx.patient.fact(name)
    if v is True:
        return _r(c, P, yes, [_fact_ev(ctx, name)])
    if v is False:
        return _r(c, F, no, [_fact_ev(ctx, name)])
    return _r(c, U, f"{name} not documented", needs=[f"{name} (yes/no)"])


def _threshold_check(c: Criterion, ctx: Context, t: Threshold, window_name: str, label: str) -> tuple[Status, Pick, str]:
    """Pick the latest usable value of ``t.analyte`` and compare it with ``t``."""
    pick = ctx.pick(t.analyte or t.name, c.window(window_name), label)
    if not pick.ok:
        return U, pick, pick.reason
    limit = t.canonical_value()
    ok = compare(pick.value, t.operator, limit)
    shown = f"{_human(pick.item.value)} {pick.item.unit}" + _in_threshold_unit(pick, t)
    return (P if ok else F), pick, f"{label} {shown} {'meets' if ok else 'does not meet'} {t.describe()}"


def _human(x: float) -> str:
    """4 significant digits, thousands separators, no exponent for ordinary values (issue 10)."""
    a = abs(x)
    if a == 0 or not (1e-4 <= a < 1e15):
        return f"{x:g}"
    if float(x).is_integer():
        return f"{int(x):,}"
    if a >= 1000:
        return f"{round(x, 3 - len(str(int(a)))):,.0f}"
    text = f"{x:.4g}"
    return text


def _in_threshold_unit(pick: Pick, t: Threshold) -> str:
    """``" (72,000 /mm3)"``: the value converted into the criterion's unit, when that differs (issue 10)."""
    if t.unit is None or t.analyte is None or t.unit == pick.item.unit:
        return ""
    try:
        a = ANALYTES[t.analyte]
        v = convert(pick.value, a.canonical_unit, t.unit, molar_mass_g_per_mol=a.molar_mass_g_per_mol)
    except Exception:  # noqa: BLE001 - the comparison already succeeded in canonical units
        return ""
    return f" ({_human(v)} {t.unit})"


# -- inclusion criteria ---------------------------------------------------------------------

_INC01_FACTS = ("histologically_proven", "differentiation", "primary_origin")


@rule("INC01")
def inc01(c: Criterion, ctx: Context) -> CriterionResult:
    return _cached_flag_result(c, ctx, _INC01_FACTS, lambda: _inc01(c, ctx))


def _inc01(c: Criterion, ctx: Context) -> CriterionResult:
    f = ctx.patient.fact
    names = ["histologically_proven", "differentiation", "primary_origin"]
    ev = [_fact_ev(ctx, n) for n in names if f(n) is not None]
    origins = _const(c, "gep_origins", lambda: frozenset(c.params.get("gep_origins", ())))
    origin = f("primary_origin")
    if f("histologically_proven") is False:
        return _r(c, F, "not histologically proven", ev)
    if f("differentiation") is not None and f("differentiation") != "well":
        return _r(c, F, f"differentiation {f('differentiation')!r}, not well differentiated", ev)
    if origin is not None and origin not in origins and origin not in ("unknown", "unknown_primary"):
        return _r(c, F, f"primary origin {origin!r} is not gastro-intestinal or pancreatic", ev)
    needs = []
    if f("histologically_proven") is None:
        needs.append("histologically_proven (yes/no)")
    if f("differentiation") is None:
        needs.append("differentiation (well/poor)")
    if origin is None or origin not in origins:
        needs.append("primary_origin (gastro-intestinal or pancreatic site)")
    if needs:
        return _r(c, U, "histology incompletely documented", ev, needs)
    return _r(c, P, f"well-differentiated NET of {origin} origin, histologically proven", ev)


@rule("INC02")
def inc02(c: Criterion, ctx: Context) -> CriterionResult:
    f = ctx.patient.fact
    ev: list[Evidence] = []
    # Branch 1: hepatic invasion > 50% at diagnosis.
    t = c.threshold("hepatic_invasion")
    inv = f("hepatic_invasion_percent")
    if inv is None:
        b1, why1 = U, "hepatic invasion at diagnosis not documented"
    else:
        ev.append(_fact_ev(ctx, "hepatic_invasion_percent"))
        b1 = P if compare(float(inv), t.operator, float(t.value or 0)) else F
        why1 = f"hepatic invasion {inv:g}% {'meets' if b1 is P else 'does not meet'} {t.describe()}"
    # Branch 2: RECIST progression on cold SSA within the window before the first cycle.
    w = c.window("progression")
    prog, pdate = f("progression_on_ssa"), f("progression_date")
    for n in ("progression_on_ssa", "progression_date"):
        if f(n) is not None:
            ev.append(_fact_ev(ctx, n))
    first = ctx.anchor_date(w.anchor or "first_lutathera_cycle")
    if prog is False:
        b2, why2 = F, "no RECIST progression on cold SSA"
    elif prog is None:
        b2, why2 = U, "progression on cold SSA not documented"
    elif pdate is None:
        b2, why2 = U, "date of progression on cold SSA not documented"
    elif first is None:
        b2, why2 = U, "date of the first LUTATHERA cycle unknown"
    else:
        start = months_before(first, w.max_age_months or 12)
        inside = start <= pdate <= first
        b2 = P if inside else F
        why2 = (f"progression on {pdate.isoformat()} {'within' if inside else 'outside'} the "
                f"{w.max_age_months} months before the first cycle ({first.isoformat()})")
    if P in (b1, b2):
        return _r(c, P, why1 if b1 is P else why2, ev)
    if U in (b1, b2):
        needs = []
        if b1 is U:
            needs.append("hepatic_invasion_percent at diagnosis")
        if b2 is U:
            needs.append("progression_on_ssa with progression_date and LUTATHERA cycle dates")
        return _r(c, U, f"{why1}; {why2}", ev, needs)
    return _r(c, F, f"{why1}; {why2}", ev)


@rule("INC03")
def inc03(c: Criterion, ctx: Context) -> CriterionResult:
    required = int(c.params.get("required_cycles", 4))
    if ctx.given_iv is None:
        return _r(c, U, "LUTATHERA cycle history not documented", needs=["LUTATHERA IV cycles with dates"])
    ev = [_new(Evidence, ("LUTATHERA IV cycle", a.activity_mbq, "MBq" if a.activity_mbq else None, a.date, a.source,
                          "")) for a in ctx.given_iv]
    n = len(ctx.given_iv)
    if n < required:
        return _r(c, F, f"{n} IV LUTATHERA cycle(s) given, {required} required", ev)
    note = "" if n == required else f" (more than {required}: investigator to confirm)"
    return _r(c, P, f"{n} IV LUTATHERA cycles given{note}", ev)


def _imaging(c: Criterion, ctx: Context):
    """The inclusion imaging read(s) in the window (computed once per screening for INC04/EXC01/EXC04)."""
    window = c.window("imaging")
    key = ("imaging", selection_key(window))
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.memo[key] = ctx.pick_dated(
            list(ctx.patient.imaging or ()), window, "inclusion imaging", lambda i: i.date, lambda i: i.source
        )
    return hit


def _imaging_ev(i) -> Evidence:
    return _new(Evidence, ("inclusion imaging", None, None, i.date, i.source, ""))


@rule("INC04")
def inc04(c: Criterion, ctx: Context) -> CriterionResult:
    chosen, notes, reason, need = _imaging(c, ctx)
    if reason:
        return _r(c, U, reason, notes, [need])
    if len(chosen) > 1:
        return _r(c, U, "several inclusion imaging reads on the same date", notes, ["one inclusion imaging read"])
    i = chosen[0]
    parts = {
        "liver_dominant_or_exclusive": (i.liver_dominant_or_exclusive, True),
        "recist_assessable": (i.recist_assessable, True),
        "resectable": (i.resectable, False),
    }
    ev = [_imaging_ev(i)] + [_new(Evidence, (k, v, None, i.date, i.source, "")) for k, (v, _) in parts.items()
                             if v is not None]
    bad = [k for k, (v, want) in parts.items() if v is not None and v != want]
    if bad:
        return _r(c, F, "not satisfied: " + ", ".join(f"{k}={parts[k][0]}" for k in bad), ev)
    missing = [k for k, (v, _) in parts.items() if v is None]
    if missing:
        return _r(c, U, f"inclusion imaging lacks: {', '.join(missing)}", ev, [f"{m} on inclusion imaging" for m in missing])
    return _r(c, P, "liver-dominant/exclusive, RECIST-assessable, not resectable", ev)


@rule("INC05")
def inc05(c: Criterion, ctx: Context) -> CriterionResult:
    pick = ctx.pick("ecog", c.window("ecog"), "ECOG", canonical=False)
    if not pick.ok:
        return _r(c, U, pick.reason, pick.evidence, [pick.need])
    v = pick.value
    if v != int(v) or not 0 <= v <= 5:
        return _r(c, U, f"ECOG value {v!r} is not an integer 0-5", pick.evidence, ["a valid ECOG score"])
    t = c.threshold("ecog")
    ok = compare(float(v), t.operator, float(t.value or 0))
    return _r(c, P if ok else F, f"ECOG {int(v)} {'meets' if ok else 'does not meet'} {t.describe()}", pick.evidence)


def _crcl(c: Criterion, ctx: Context) -> tuple[Status, str, list[Evidence], list[str]]:
    t = c.threshold("creatinine_clearance")
    limit = t.canonical_value()
    if ctx.measurements("crcl"):
        measured = ctx.pick("crcl", c.window("labs"), "measured creatinine clearance")
    else:
        measured = Pick(reason="no measured creatinine clearance recorded")
    ev: list[Evidence] = list(measured.evidence)
    if measured.ok:
        ok = compare(measured.value, t.operator, limit)
        return (P if ok else F), f"measured CrCl {measured.value:.1f} mL/min {t.describe()}: {'yes' if ok else 'no'}", ev, []
    fallback_note = "" if not ctx.measurements("crcl") else f"measured clearance not usable ({measured.reason}); "
    p = ctx.patient
    cr = ctx.pick("creatinine", c.window("labs"), "creatinine")
    wt = ctx.pick("weight", c.window("weight"), "body weight")
    ev += list(cr.evidence) + list(wt.evidence)
    needs = []
    if not cr.ok:
        needs.append(cr.need if "unit" not in cr.reason else f"creatinine in a usable unit ({cr.reason})")
    if not wt.ok:
        needs.append(wt.need)
    if p.birth_date is None:
        needs.append("birth date")
    if p.sex not in ("female", "male"):
        needs.append("sex (female/male)")
    if needs:
        why = "; ".join(x.reason for x in (cr, wt) if not x.ok) or "inputs missing"
        return U, f"{fallback_note}Cockcroft-Gault not computable: {why}", ev, needs
    try:
        youngest, oldest = age_range_years(p.birth_date, p.birth_date_precision, ctx.as_of)  # type: ignore[arg-type]
        if not _AGE_LIMITS.contains(youngest):
            check_canonical("age", youngest, name="age from the birth date")  # raises with the limits
        scr_mg_dl = cr.value * _UMOL_TO_MG_DL_CREATININE
        values = [crcl_cockcroft_gault_1976(age_years=a, weight_kg=wt.value, creatinine_mg_per_dl=scr_mg_dl,
                                            female=p.sex == "female") for a in {youngest, oldest}]
    except InvalidInputError as exc:
        return U, f"Cockcroft-Gault not computable: {exc}", ev, ["plausible creatinine, weight and birth date"]
    oks = {compare(v, t.operator, limit) for v in values}
    lo = min(values)
    ev.append(_new(Evidence, ("CrCl (Cockcroft-Gault 1976)", round(lo, 1), "mL/min", cr.item.date, "",
                              f"age {youngest if youngest == oldest else f'{youngest}-{oldest}'} y, "
                              f"{wt.value:.1f} kg, creatinine {scr_mg_dl:.2f} mg/dL, {p.sex}")))
    if len(oks) > 1:
        return U, "Cockcroft-Gault result straddles the threshold for the possible ages", ev, ["exact birth date"]
    ok = oks.pop()
    return (P if ok else F), f"{fallback_note}Cockcroft-Gault CrCl {lo:.1f} mL/min {t.describe()}: {'yes' if ok else 'no'}", ev, []


def _uln_check(c: Criterion, ctx: Context, name: str, label: str) -> tuple[Status, str, list[Evidence], list[str]]:
    t = c.threshold(name)
    pick = ctx.pick(t.analyte or name, c.window("labs"), label)
    ev = list(pick.evidence)
    if not pick.ok:
        return U, pick.reason, ev, [pick.need]
    uln, why = ctx.uln(pick.item, label)
    if uln is None:
        return U, why, ev, [f"{label} upper reference limit (ULN) of the reporting lab"]
    ratio = pick.value / uln
    ok = compare(pick.value, t.operator, (t.uln_multiple or 0) * uln)
    return (P if ok else F), f"{label} {ratio:.2f} x ULN {t.describe()}: {'yes' if ok else 'no'}", ev, []


@rule("INC06")
def inc06(c: Criterion, ctx: Context) -> CriterionResult:
    parts = [_crcl(c, ctx), _uln_check(c, ctx, "alt", "ALT"), _uln_check(c, ctx, "ast", "AST")]
    status = combine([p[0] for p in parts])
    return _r(c, status, "; ".join(p[1] for p in parts), [e for p in parts for e in p[2]],
              [n for p in parts for n in p[3]])


@rule("INC07")
def inc07(c: Criterion, ctx: Context) -> CriterionResult:
    statuses, reasons, ev, needs = [], [], [], []
    for t in c.thresholds:
        st, pick, why = _threshold_check(c, ctx, t, "labs", t.name)
        statuses.append(st)
        reasons.append(why)
        ev += list(pick.evidence)
        if st is U:
            needs.append(pick.need)
    return _r(c, combine(statuses), "; ".join(reasons), ev, needs)


@rule("INC08")
def inc08(c: Criterion, ctx: Context) -> CriterionResult:
    p = ctx.patient
    if p.birth_date is None:
        return _r(c, U, "birth date not documented", needs=["birth date"])
    ev = [_new(Evidence, ("birth date", p.birth_date.isoformat(), None, None, "",
                          f"precision: {p.birth_date_precision}"))]
    if p.birth_date > ctx.as_of:
        return _r(c, U, "birth date after the screening date", ev, ["a valid birth date"])
    youngest, oldest = age_range_years(p.birth_date, p.birth_date_precision, ctx.as_of)
    if not _AGE_LIMITS.contains(youngest):
        return _r(c, U, f"birth date {p.birth_date.isoformat()} gives an age of {youngest} years on "
                        f"{ctx.as_of.isoformat()}, outside the physical limits of age "
                        f"({_AGE_LIMITS.describe()})", ev, ["a valid birth date"])
    t = c.threshold("age")
    lo_ok, hi_ok = compare(youngest, t.operator, t.value or 0), compare(oldest, t.operator, t.value or 0)
    if lo_ok and hi_ok:
        return _r(c, P, f"age {youngest} years on {ctx.as_of.isoformat()}", ev)
    if not lo_ok and not hi_ok:
        return _r(c, F, f"age {oldest} years on {ctx.as_of.isoformat()}, {t.describe()} required", ev)
    return _r(c, U, f"partial birth date: age {youngest}-{oldest} years", ev, ["full birth date"])


@rule("INC09")
def inc09(c: Criterion, ctx: Context) -> CriterionResult:
    p = ctx.patient
    return _cached_flag_result(c, ctx, ("contraception_agreed",), lambda: _inc09(c, ctx),
                               (p.sex, p.menopausal_status))


def _inc09(c: Criterion, ctx: Context) -> CriterionResult:
    p = ctx.patient
    agreed = p.fact("contraception_agreed")
    ev = [_fact_ev(ctx, "contraception_agreed")] if agreed is not None else []
    months = c.window("contraception").min_months_after_last_injection
    if p.sex == "female" and p.menopausal_status == "post":
        return _r(c, P, "post-menopausal woman: not applicable",
                  [_new(Evidence, ("menopausal_status", "post", None, None, "", ""))])
    if p.sex not in ("female", "male"):
        return _r(c, U, "sex not documented", ev, ["sex (female/male)"])
    if agreed is True:
        return _r(c, P, f"agreed to contraception for at least {months} months after the last injection", ev)
    if agreed is False:
        return _r(c, F, "contraception not agreed", ev)
    needs = ["contraception_agreed (yes/no)"]
    if p.sex == "female" and p.menopausal_status is None:
        needs.append("menopausal status")
    return _r(c, U, "contraception not documented", ev, needs)


@rule("INC10")
def inc10(c: Criterion, ctx: Context) -> CriterionResult:
    signed, when = ctx.patient.fact("informed_consent_signed"), ctx.patient.fact("informed_consent_date")
    ev = [_fact_ev(ctx, n) for n in ("informed_consent_signed", "informed_consent_date") if ctx.patient.fact(n) is not None]
    if signed is False:
        return _r(c, F, "informed consent not signed", ev)
    if signed is None:
        return _r(c, U, "informed consent not documented", ev, ["informed consent (signed, date)"])
    if when is None:
        return _r(c, U, "consent signed but its date is not recorded", ev, ["date of signed informed consent"])
    if when > ctx.as_of:
        return _r(c, U, f"consent dated {when.isoformat()}, after the screening date", ev,
                  ["informed consent signed on or before the screening date"])
    return _r(c, P, f"informed consent signed on {when.isoformat()}", ev)


@rule("INC11")
def inc11(c: Criterion, ctx: Context) -> CriterionResult:
    return _inclusion_flag(c, ctx, "social_security", "affiliated to social security", "not affiliated to social security")


# -- exclusion criteria ---------------------------------------------------------------------

@rule("EXC01")
def exc01(c: Criterion, ctx: Context) -> CriterionResult:
    chosen, notes, reason, need = _imaging(c, ctx)
    if reason:
        return _r(c, U, reason, notes, [need])
    vals = {i.complete_response for i in chosen}
    ev = [_new(Evidence, ("complete_response", i.complete_response, None, i.date, i.source, "")) for i in chosen]
    if len(vals) > 1:
        return _r(c, U, "conflicting reads on the same date", ev, ["one inclusion imaging read"])
    v = vals.pop()
    if v is True:
        return _r(c, F, "complete response on inclusion imaging", ev)
    if v is False:
        return _r(c, P, "residual disease on inclusion imaging (no complete response)", ev)
    return _r(c, U, "response on inclusion imaging not documented", ev, ["complete_response on inclusion imaging"])


@rule("EXC02")
def exc02(c: Criterion, ctx: Context) -> CriterionResult:
    w = c.window("scan")
    chosen, notes, reason, need = ctx.pick_dated(
        list(ctx.patient.scans or ()), w, "24 h post-therapy scintigraphy", lambda s: s.date, lambda s: s.source
    )
    if reason:
        return _r(c, U, reason, notes, [f"24 h 177Lu scintigraphy after the last cycle (0-{w.max_days_after_anchor} days)"])
    vals = {s.residual_uptake for s in chosen}
    ev = [_new(Evidence, ("residual uptake", s.residual_uptake, None, s.date, s.source, "")) for s in chosen] + notes
    if len(vals) > 1:
        return _r(c, U, "conflicting scan reads on the same date", ev, ["one scan read"])
    v = vals.pop()
    if v is False:
        return _r(c, F, "no residual uptake on the 24 h scan after the last cycle", ev)
    if v is True:
        return _r(c, P, "residual uptake on the 24 h scan after the last cycle", ev)
    return _r(c, U, "scan read does not state residual uptake", ev, ["residual uptake (yes/no) on the 24 h scan"])


@rule("EXC03")
def exc03(c: Criterion, ctx: Context) -> CriterionResult:
    chd = ctx.patient.fact("carcinoid_heart_disease")
    t = c.threshold("lvef")
    pick = ctx.pick("lvef", c.window("lvef"), "LVEF")
    ev = list(pick.evidence) + ([_fact_ev(ctx, "carcinoid_heart_disease")] if chd is not None else [])
    if pick.ok:
        low = compare(pick.value, t.operator, t.canonical_value())
        if low:
            cause = "carcinoid heart disease" if chd else "cause not documented as carcinoid"
            return _r(c, F, f"LVEF {pick.value:g}% {t.describe()} ({cause})", ev)
        note = " with documented carcinoid heart disease" if chd else ""
        return _r(c, P, f"LVEF {pick.value:g}% not {t.describe()}{note}", ev)
    if chd is False and not ctx.measurements("lvef"):
        return _r(c, P, "carcinoid heart disease documented absent", ev)
    return _r(c, U, pick.reason if chd is not False else f"{pick.reason} (LVEF results present but unusable)", ev,
              [pick.need])


@rule("EXC04")
def exc04(c: Criterion, ctx: Context) -> CriterionResult:
    chosen, notes, reason, need = _imaging(c, ctx)
    if reason:
        return _r(c, U, reason, notes, [need])
    vals = {i.extrahepatic_dominant_or_threatening for i in chosen}
    ev = [_new(Evidence, ("extrahepatic_dominant_or_threatening", i.extrahepatic_dominant_or_threatening, None, i.date,
                          i.source, "")) for i in chosen]
    if len(vals) > 1:
        return _r(c, U, "conflicting reads on the same date", ev, ["one inclusion imaging read"])
    v = vals.pop()
    if v is True:
        return _r(c, F, "dominant or threatening extrahepatic metastases", ev)
    if v is False:
        return _r(c, P, "no dominant or threatening extrahepatic metastases", ev)
    return _r(c, U, "extrahepatic disease not assessed on inclusion imaging", ev,
              ["extrahepatic_dominant_or_threatening on inclusion imaging"])


def _child_pugh(c: Criterion, ctx: Context) -> tuple[Status, str, list[Evidence], list[str]]:
    p = ctx.patient
    cirrhosis = p.fact("cirrhosis")
    t = c.threshold("child_pugh_score")
    if cirrhosis is False:
        return P, "no cirrhosis", [], []
    if cirrhosis is None:
        return U, "cirrhosis status not documented", [], ["cirrhosis (yes/no)"]
    stated = p.fact("child_pugh_score")
    if stated is not None:
        ok = not compare(float(stated), t.operator, float(t.value or 0))
        return (P if ok else F), f"cirrhosis Child-Pugh score {stated} (stated)", [_fact_ev(ctx, "child_pugh_score")], []
    w = c.window("labs")
    picks = {a: ctx.pick(a, w, a) for a in ("bilirubin", "albumin", "inr")}
    ev = [e for pk in picks.values() for e in pk.evidence]
    needs = [pk.need for pk in picks.values() if not pk.ok]
    asc, enc = p.fact("ascites"), p.fact("encephalopathy")
    if asc not in ASCITES_GRADES:
        needs.append("ascites grade (none/mild/moderate_severe)")
    if enc not in ENCEPHALOPATHY_GRADES:
        needs.append("encephalopathy grade (none/grade_1_2/grade_3_4)")
    if needs:
        return U, "cirrhosis: Child-Pugh score not stated and not computable", ev, needs
    try:
        bili = picks["bilirubin"]
        reported = parse_unit(bili.item.unit or "umol/L")
        mass_based = reported.dim[BASE_DIMENSIONS.index("mass")] != 0
        bili_kw = ({"bilirubin_mg_per_dl": bili.value * _UMOL_TO_MG_DL_BILIRUBIN} if mass_based
                   else {"bilirubin_umol_per_l": bili.value})
        cp = child_pugh_pugh1973(**bili_kw, albumin_g_per_l=picks["albumin"].value,
                                 inr=picks["inr"].value, ascites=asc, encephalopathy=enc)
    except InvalidInputError as exc:
        return U, f"Child-Pugh not computable: {exc}", ev, ["plausible bilirubin, albumin and INR"]
    ev.append(_new(Evidence, ("Child-Pugh (Pugh 1973)", cp.score, None, None, "", f"{cp.label}; points {cp.points}")))
    bad = compare(float(cp.score), t.operator, float(t.value or 0))
    return (F if bad else P), f"cirrhosis Child-Pugh {cp.label} (computed)", ev, []


@rule("EXC05")
def exc05(c: Criterion, ctx: Context) -> CriterionResult:
    names = ["coagulation_disorder", "portal_thrombosis", "intrahepatic_biliary_dilatation",
             "digestive_or_biliary_anastomosis_or_fistula"]
    s1, ev1, present, missing = _exclusion_flags(c, ctx, names)
    s2, why2, ev2, needs2 = _child_pugh(c, ctx)
    status = combine([s1, s2])
    reasons = []
    if present:
        reasons.append(f"present: {', '.join(present)}")
    if missing:
        reasons.append(f"not documented: {', '.join(missing)}")
    if s1 is P:
        reasons.append("no coagulation disorder, portal thrombosis, biliary dilatation, anastomosis or fistula")
    reasons.append(why2)
    return _r(c, status, "; ".join(reasons), ev1 + ev2, [f"{m} (yes/no)" for m in missing] + needs2)


@rule("EXC06")
def exc06(c: Criterion, ctx: Context) -> CriterionResult:
    t = c.threshold("albumin")
    alb = ctx.pick("albumin", c.window("labs"), "albumin")
    if not alb.ok:
        return _r(c, U, alb.reason, alb.evidence, [alb.need])
    if not compare(alb.value, t.operator, t.canonical_value()):
        return _r(c, P, f"albumin {alb.value:.1f} g/L, not {t.describe()}", alb.evidence)
    pt = ctx.pick("pt", c.window("labs"), "prothrombin time", canonical=False)
    ev = list(alb.evidence) + list(pt.evidence)
    if not pt.ok:
        return _r(c, U, f"albumin {alb.value:.1f} g/L {t.describe()}; {pt.reason}", ev, [pt.need + " with its reference range"])
    m = pt.item
    if m.reference_low is None and m.reference_high is None:
        return _r(c, U, "albumin low and the prothrombin time has no reference range", ev,
                  ["prothrombin time reference range of the reporting lab"])
    if m.reference_unit not in (None, m.unit):
        return _r(c, U, f"PT reference range unit {m.reference_unit!r} differs from result unit {m.unit!r}", ev,
                  ["prothrombin time with its reference range in the same unit"])
    inside = (m.reference_low is None or m.value >= m.reference_low) and (m.reference_high is None or m.value <= m.reference_high)
    rng = f"[{'' if m.reference_low is None else f'{m.reference_low:g}'}-{'' if m.reference_high is None else f'{m.reference_high:g}'}]"
    if inside:
        return _r(c, P, f"albumin {alb.value:.1f} g/L {t.describe()} but PT {m.value:g} {m.unit} within normal range {rng}", ev)
    return _r(c, F, f"albumin {alb.value:.1f} g/L {t.describe()} and PT {m.value:g} {m.unit} outside normal range {rng}", ev)


@rule("EXC07")
def exc07(c: Criterion, ctx: Context) -> CriterionResult:
    p = ctx.patient
    w = c.window("events")
    kinds = _const(c, "event_types", lambda: frozenset(c.params.get("event_types", EVENT_TYPES)))
    statuses: list[Status] = []
    reasons: list[str] = []
    ev: list[Evidence] = []
    needs: list[str] = []
    if p.cardiovascular_events is None:
        statuses.append(U)
        reasons.append("cardiovascular history of the last 12 months not documented")
        needs.append("cardiovascular history (events with dates, or none)")
    else:
        oldest = months_before(ctx.as_of, w.max_age_months or 12)
        recent, undated = [], []
        for e in p.cardiovascular_events:
            if e.kind not in kinds:
                continue
            if e.date is None:
                undated.append(e)
            elif e.date > ctx.as_of:
                ev.append(_new(Evidence, (e.kind, None, None, e.date, e.source, "after the screening date; ignored")))
            elif e.date >= oldest:
                recent.append(e)
                ev.append(_new(Evidence, (e.kind, True, None, e.date, e.source, "")))
        if recent:
            statuses.append(F)
            reasons.append("within 12 months: " + ", ".join(f"{e.kind} ({e.date})" for e in recent))
        elif not p.cardiovascular_history_complete:
            statuses.append(U)
            reasons.append("no recent event among those coded, but the cardiovascular history is not documented as complete")
            needs.append("cardiovascular history of the last 12 months (reviewed: events or none)")
        elif undated:
            statuses.append(U)
            reasons.append("undated event(s): " + ", ".join(e.kind for e in undated))
            needs.append("dates of " + ", ".join(e.kind for e in undated))
            ev += [_new(Evidence, (e.kind, True, None, None, e.source, "undated")) for e in undated]
        else:
            statuses.append(P)
            reasons.append("no listed cardiovascular event within 12 months")
    # Uncontrolled hypertension under treatment from the latest blood pressure.
    sys_t, dia_t = c.threshold("systolic_bp"), c.threshold("diastolic_bp")
    bw = c.window("blood_pressure")
    sbp, dbp = ctx.pick("systolic_bp", bw, "systolic BP"), ctx.pick("diastolic_bp", bw, "diastolic BP")
    for pk in (sbp, dbp):
        if pk.reason and " is implausible" in pk.reason:  # a missing BP is no finding; an impossible one is unknown
            statuses.append(U)
            reasons.append(pk.reason)
            needs.append(pk.need)
            ev += list(pk.evidence)
    high = [pk for pk, t in ((sbp, sys_t), (dbp, dia_t)) if pk.ok and compare(pk.value, t.operator, t.canonical_value())]
    if high:
        ev += [e for pk in high for e in pk.evidence]
        treated = p.fact("antihypertensive_treatment")
        if treated is True:
            statuses.append(F)
            reasons.append("blood pressure >= 160/95 mmHg under antihypertensive treatment")
        elif treated is None:
            statuses.append(U)
            reasons.append("blood pressure >= 160/95 mmHg; antihypertensive treatment not documented")
            needs.append("antihypertensive_treatment (yes/no)")
        else:
            reasons.append("blood pressure >= 160/95 mmHg without antihypertensive treatment (not this exclusion; investigator to review)")
    return _r(c, combine(statuses), "; ".join(reasons), ev, needs)


@rule("EXC08")
def exc08(c: Criterion, ctx: Context) -> CriterionResult:
    return _flags_rule(c, ctx, ["legal_protection", "unable_to_consent"])


@rule("EXC09")
def exc09(c: Criterion, ctx: Context) -> CriterionResult:
    if ctx.patient.sex == "male":
        return _r(c, P, "male: not applicable", [_new(Evidence, ("sex", "male", None, None, "", ""))])
    if ctx.patient.sex != "female":
        return _r(c, U, "sex not documented", needs=["sex (female/male)"])
    return _flags_rule(c, ctx, ["pregnant", "breastfeeding"])


@rule("EXC10")
def exc10(c: Criterion, ctx: Context) -> CriterionResult:
    return _flags_rule(c, ctx, ["other_interventional_trial"])


@rule("EXC11")
def exc11(c: Criterion, ctx: Context) -> CriterionResult:
    return _flags_rule(c, ctx, ["mri_contraindicated"])


@rule("EXC12")
def exc12(c: Criterion, ctx: Context) -> CriterionResult:
    s1, ev, present, missing = _exclusion_flags(c, ctx, ["lutathera_contraindicated"])
    cycles = ctx.patient.lutathera
    statuses, reasons, needs = [s1], [], [f"{m} (yes/no)" for m in missing]
    if present:
        reasons.append("LUTATHERA contraindicated")
    elif missing:
        reasons.append("LUTATHERA contraindication not documented")
    if cycles is None:
        statuses.append(U)
        reasons.append("IV cycle toxicity not documented")
        needs.append("for each IV cycle: dose reduced or cancelled for toxicity (yes/no)")
    else:
        tox = [a for a in cycles if a.dose_reduced_for_toxicity or a.cancelled_for_toxicity]
        undocumented = [a for a in cycles if a.dose_reduced_for_toxicity is None or a.cancelled_for_toxicity is None]
        for a in tox:
            what = "dose reduced" if a.dose_reduced_for_toxicity else "cancelled"
            ev.append(_new(Evidence, ("IV cycle toxicity", what, None, a.date, a.source, "")))
        if tox:
            statuses.append(F)
            reasons.append(f"{len(tox)} IV cycle(s) reduced or cancelled for toxicity")
        elif undocumented:
            statuses.append(U)
            reasons.append(f"{len(undocumented)} IV cycle(s) without toxicity documentation")
            needs.append("for each IV cycle: dose reduced or cancelled for toxicity (yes/no)")
        else:
            statuses.append(P)
            reasons.append("no IV cycle reduced or cancelled for toxicity")
    status = combine(statuses)
    if status is P:
        reasons.insert(0, "LUTATHERA not contraindicated")
    return _r(c, status, "; ".join(reasons), ev, needs)

