"""Quick pass checks: is a criterion plainly met, without writing why? (issue 10, speed)

Why: the screening log of a cohort shows, per record, only the criteria that failed or are
unknown, with their reasons. For a criterion that passes, the reason and the evidence (a third
or more of a rule's work: unit conversions for display, number formatting, evidence tuples) are
written for nobody. A quick check answers ``True`` only where the rule's result is certainly
``pass``, reading the same data by the same helpers (``Context.value`` is the first step of
``Context.pick``, ``Context.select_dated`` of ``Context.pick_dated``); on ``False`` the full
rule runs, so any failure, unknown or unusual datum still gets its full explanation.

Used only when the caller asks for no detail (``screen_patient(..., detail=False)``: the log of
``screen`` without ``--json``). ``tests/unit/eligibility/test_quick_checks.py`` checks on varied
cohorts that every quick ``True`` is a ``pass`` of the rule and that the log rows are identical.
"""

from __future__ import annotations

from collections.abc import Callable

from lutarterial.eligibility.context import Context, compare, months_before, selection_key
from lutarterial.eligibility.derived import age_range_years, crcl_cockcroft_gault_1976
from lutarterial.eligibility.patient import EVENT_TYPES
from lutarterial.eligibility.rules import _AGE_LIMITS, _UMOL_TO_MG_DL_CREATININE, _const, registrar
from lutarterial.errors import InvalidInputError
from lutarterial.protocol.loader import Criterion

__all__ = ["QUICK", "quick"]

Quick = Callable[[Criterion, Context], bool]
#: Criterion ID -> quick pass check (criteria without one always run their rule).
QUICK: dict[str, Quick] = {}


#: ``@quick("INC07")`` registers the quick pass check of INC07.
quick = registrar(QUICK, "quick checks")


def _threshold(c: Criterion, name: str) -> tuple[str, str, float]:
    """(analyte, operator, limit in the canonical unit) of threshold ``name``, once per criterion."""
    return _const(c, "quick:" + name, lambda: _threshold_parts(c, name))


def _threshold_parts(c: Criterion, name: str) -> tuple[str, str, float]:
    t = c.threshold(name)
    return t.analyte or t.name, t.operator, t.canonical_value()


def _meets(ctx: Context, c: Criterion, name: str, window: str) -> bool:
    """The latest value of threshold ``name``'s analyte is plain and meets the threshold."""
    analyte, op, limit = _threshold(c, name)
    plain = ctx.value(analyte, c.window(window))
    return plain is not None and compare(plain[0], op, limit)


@quick("INC02")
def inc02(c: Criterion, ctx: Context) -> bool:
    f = ctx.patient.facts.get
    inv = f("hepatic_invasion_percent")
    if isinstance(inv, (int, float)):
        t = c.threshold("hepatic_invasion")
        if compare(float(inv), t.operator, float(t.value or 0)):
            return True
    prog, pdate = f("progression_on_ssa"), f("progression_date")
    if prog is False or prog is None or pdate is None:
        return False
    w = c.window("progression")
    first = ctx.anchor_date(w.anchor or "first_lutathera_cycle")
    return first is not None and months_before(first, w.max_age_months or 12) <= pdate <= first


@quick("INC03")
def inc03(c: Criterion, ctx: Context) -> bool:
    return ctx.given_iv is not None and len(ctx.given_iv) >= int(c.params.get("required_cycles", 4))


def _imaging(c: Criterion, ctx: Context):
    """The chosen inclusion imaging read(s), or ``None`` (once per screening for INC04/EXC01/EXC04)."""
    window = c.window("imaging")
    key = ("quick-imaging", selection_key(window))
    memo = ctx.memo
    if key not in memo:
        memo[key] = ctx.select_dated(list(ctx.patient.imaging or ()), window, _date_of)
    return memo[key]


def _date_of(item):
    return item.date


@quick("INC04")
def inc04(c: Criterion, ctx: Context) -> bool:
    chosen = _imaging(c, ctx)
    if chosen is None or len(chosen) != 1:
        return False
    i = chosen[0]
    return all(v is not None and not v != want for v, want in (
        (i.liver_dominant_or_exclusive, True), (i.recist_assessable, True), (i.resectable, False)))


def _one_value(chosen, attr: str):
    """The single value of ``attr`` among the chosen reads (a set, as the rules take it), else ``None``."""
    vals = {getattr(i, attr) for i in chosen}
    return vals.pop() if len(vals) == 1 else None


@quick("INC05")
def inc05(c: Criterion, ctx: Context) -> bool:
    plain = ctx.value("ecog", c.window("ecog"), canonical=False)
    if plain is None:
        return False
    v = plain[0]
    if v != int(v) or not 0 <= v <= 5:
        return False
    t = c.threshold("ecog")
    return compare(float(v), t.operator, float(t.value or 0))


@quick("INC06")
def inc06(c: Criterion, ctx: Context) -> bool:
    return _crcl(c, ctx) and _uln(c, ctx, "alt", "ALT") and _uln(c, ctx, "ast", "AST")


def _crcl(c: Criterion, ctx: Context) -> bool:
    _, op, limit = _threshold(c, "creatinine_clearance")
    labs = c.window("labs")
    if ctx.measurements("crcl"):
        measured = ctx.value("crcl", labs)
        return measured is not None and compare(measured[0], op, limit)
    p = ctx.patient
    if p.birth_date is None or p.sex not in ("female", "male"):
        return False
    cr = ctx.value("creatinine", labs)
    wt = ctx.value("weight", c.window("weight"))
    if cr is None or wt is None:
        return False
    try:
        youngest, oldest = age_range_years(p.birth_date, p.birth_date_precision, ctx.as_of)
        if not _AGE_LIMITS.contains(youngest):
            return False
        scr_mg_dl = cr[0] * _UMOL_TO_MG_DL_CREATININE
        return all(compare(crcl_cockcroft_gault_1976(age_years=a, weight_kg=wt[0], creatinine_mg_per_dl=scr_mg_dl,
                                                     female=p.sex == "female"), op, limit)
                   for a in {youngest, oldest})
    except InvalidInputError:
        return False


def _uln(c: Criterion, ctx: Context, name: str, label: str) -> bool:
    t = c.threshold(name)
    plain = ctx.value(t.analyte or name, c.window("labs"))
    if plain is None:
        return False
    uln, _why = ctx.uln(plain[2], label)
    return uln is not None and compare(plain[0], t.operator, (t.uln_multiple or 0) * uln)


@quick("INC07")
def inc07(c: Criterion, ctx: Context) -> bool:
    return all(_meets(ctx, c, t.name, "labs") for t in c.thresholds)


@quick("INC08")
def inc08(c: Criterion, ctx: Context) -> bool:
    p = ctx.patient
    if p.birth_date is None or p.birth_date > ctx.as_of:
        return False
    youngest, oldest = age_range_years(p.birth_date, p.birth_date_precision, ctx.as_of)
    if not _AGE_LIMITS.contains(youngest):
        return False
    t = c.threshold("age")
    return compare(youngest, t.operator, t.value or 0) and compare(oldest, t.operator, t.value or 0)


@quick("INC10")
def inc10(c: Criterion, ctx: Context) -> bool:
    f = ctx.patient.facts.get
    signed, when = f("informed_consent_signed"), f("informed_consent_date")
    return signed is not False and signed is not None and when is not None and not when > ctx.as_of


@quick("EXC01")
def exc01(c: Criterion, ctx: Context) -> bool:
    chosen = _imaging(c, ctx)
    return chosen is not None and _one_value(chosen, "complete_response") is False


@quick("EXC02")
def exc02(c: Criterion, ctx: Context) -> bool:
    chosen = ctx.select_dated(list(ctx.patient.scans or ()), c.window("scan"), _date_of)
    return chosen is not None and _one_value(chosen, "residual_uptake") is True


@quick("EXC03")
def exc03(c: Criterion, ctx: Context) -> bool:
    if not ctx.measurements("lvef"):
        return ctx.patient.facts.get("carcinoid_heart_disease") is False
    _, op, limit = _threshold(c, "lvef")
    plain = ctx.value("lvef", c.window("lvef"))
    return plain is not None and not compare(plain[0], op, limit)


@quick("EXC04")
def exc04(c: Criterion, ctx: Context) -> bool:
    chosen = _imaging(c, ctx)
    return chosen is not None and _one_value(chosen, "extrahepatic_dominant_or_threatening") is False


_EXC05_FLAGS = ("coagulation_disorder", "portal_thrombosis", "intrahepatic_biliary_dilatation",
                "digestive_or_biliary_anastomosis_or_fistula")


@quick("EXC05")
def exc05(c: Criterion, ctx: Context) -> bool:
    f = ctx.patient.facts.get
    for n in _EXC05_FLAGS:
        v = f(n)
        if v is None or v is True:
            return False
    cirrhosis = f("cirrhosis")
    if cirrhosis is False:
        return True
    stated = f("child_pugh_score")
    if cirrhosis is None or stated is None:
        return False
    t = c.threshold("child_pugh_score")
    return not compare(float(stated), t.operator, float(t.value or 0))


@quick("EXC06")
def exc06(c: Criterion, ctx: Context) -> bool:
    _, op, limit = _threshold(c, "albumin")
    plain = ctx.value("albumin", c.window("labs"))
    return plain is not None and not compare(plain[0], op, limit)


@quick("EXC07")
def exc07(c: Criterion, ctx: Context) -> bool:
    p = ctx.patient
    if p.cardiovascular_events is None or not p.cardiovascular_history_complete:
        return False
    if p.cardiovascular_events:
        kinds = _const(c, "event_types", lambda: frozenset(c.params.get("event_types", EVENT_TYPES)))
        oldest = months_before(ctx.as_of, c.window("events").max_age_months or 12)
        for e in p.cardiovascular_events:
            if e.kind in kinds and (e.date is None or oldest <= e.date <= ctx.as_of):
                return False  # undated (unknown) or recent (fail)
    bw = c.window("blood_pressure")
    high = False
    for name in ("systolic_bp", "diastolic_bp"):
        _, op, limit = _threshold(c, name)
        if not ctx.measurements(name):
            continue  # a missing blood pressure is no finding
        plain = ctx.value(name, bw)
        if plain is None:
            return False
        high = high or compare(plain[0], op, limit)
    if high:
        treated = p.facts.get("antihypertensive_treatment")
        return treated is not True and treated is not None
    return True


@quick("EXC12")
def exc12(c: Criterion, ctx: Context) -> bool:
    v = ctx.patient.facts.get("lutathera_contraindicated")
    cycles = ctx.patient.lutathera
    if v is None or v is True or cycles is None:
        return False
    for a in cycles:
        if a.dose_reduced_for_toxicity or a.cancelled_for_toxicity or a.dose_reduced_for_toxicity is None or (
            a.cancelled_for_toxicity is None
        ):
            return False
    return True
