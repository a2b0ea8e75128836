"""Quick pass checks: is a criterion plainly met, without writing why? (issue 10, speed)

Why: the screening log of a cohort shows, per record, only the criteria that failed or are
unknown, with their reasons. For a criterion that passes, the reason and the evidence (a third
or more of a rule's work: unit conversions for display, number formatting, evidence tuples) are
written for nobody. A quick check answers ``True`` only where the rule's result is certainly
``pass``, reading the same data by the same helpers (``Context.value`` is the first step of
``Context.pick``, ``Context.select_dated`` of ``Context.pick_dated``); on ``False`` the full
rule runs, so any failure, unknown or unusual datum still gets its full explanation.

Each check is built once per criterion of a protocol file (``@quick`` registers a factory that
reads the criterion's thresholds and windows and returns the check), so a screening pays only
for reading the patient. Used only when the caller asks for no detail
(``screen_patient(..., detail=False)``: the log of ``screen`` without ``--json``).
``tests/unit/eligibility/test_quick_checks.py`` checks on varied records that every quick
``True`` is a ``pass`` of the rule and that the log rows are identical.
"""

from __future__ import annotations

from collections.abc import Callable

from lutarterial.eligibility.context import Context, compare, months_before
from lutarterial.eligibility.derived import age_range_years, crcl_cockcroft_gault_1976
from lutarterial.eligibility.patient import EVENT_TYPES
from lutarterial.eligibility.rules import _AGE_LIMITS, _UMOL_TO_MG_DL_CREATININE, registrar
from lutarterial.errors import InvalidInputError, ProtocolDefinitionError
from lutarterial.protocol.loader import Criterion, Window

__all__ = ["QUICK", "quick", "quick_check"]

Check = Callable[[Context], bool]
#: Criterion ID -> factory of its quick pass check (criteria without one always run their rule).
QUICK: dict[str, Callable[[Criterion], Check]] = {}
#: ``@quick("INC07")`` registers the factory of INC07's quick check.
quick = registrar(QUICK, "quick checks")


def quick_check(c: Criterion) -> Check | None:
    """The quick check of ``c``, built from its protocol file; ``None`` when there is none or the
    file lacks a threshold or window it reads (the rule then runs, and names what is missing)."""
    make = QUICK.get(c.id)
    if make is None:
        return None
    try:
        return make(c)
    except ProtocolDefinitionError:
        return None


def _limit(c: Criterion, name: str) -> tuple[str, float]:
    """(operator, limit in the canonical unit) of threshold ``name``."""
    t = c.threshold(name)
    return t.operator, t.canonical_value()


def _plain_and(ctx: Context, analyte: str, window: Window, op: str, limit: float, meets: bool) -> bool:
    """The latest value of ``analyte`` is plain and ``compare(value, op, limit)`` is ``meets``."""
    plain = ctx.value(analyte, window)
    return plain is not None and compare(plain[0], op, limit) is meets


def _flags_absent(names: tuple[str, ...]) -> Check:
    """Every flag documented and not true (an exclusion's flags all absent: ``_exclusion_flags`` pass)."""

    def check(ctx: Context) -> bool:
        get = ctx.patient.facts.get
        for n in names:
            v = get(n)
            if v is None or v is True:
                return False
        return True

    return check


def _date_of(item):
    return item.date


def _one_value(chosen, attr: str):
    """The single value of ``attr`` among the chosen reads (a set, as the rules take it), else ``None``."""
    vals = {getattr(i, attr) for i in chosen}
    return vals.pop() if len(vals) == 1 else None


# -- inclusion criteria ---------------------------------------------------------------------

@quick("INC01")
def inc01(c: Criterion) -> Check:
    origins = frozenset(c.params.get("gep_origins", ()))

    def check(ctx: Context) -> bool:
        get = ctx.patient.facts.get
        proven, diff, origin = get("histologically_proven"), get("differentiation"), get("primary_origin")
        return (proven is not False and proven is not None and diff is not None and not diff != "well"
                and origin is not None and origin in origins)

    return check


@quick("INC02")
def inc02(c: Criterion) -> Check:
    t = c.threshold("hepatic_invasion")
    op, limit = t.operator, float(t.value or 0)
    w = c.window("progression")
    anchor, months = w.anchor or "first_lutathera_cycle", w.max_age_months or 12

    def check(ctx: Context) -> bool:
        get = ctx.patient.facts.get
        inv = get("hepatic_invasion_percent")
        if isinstance(inv, (int, float)) and compare(float(inv), op, limit):
            return True
        prog, pdate = get("progression_on_ssa"), get("progression_date")
        if prog is False or prog is None or pdate is None:
            return False
        first = ctx.anchor_date(anchor)
        return first is not None and months_before(first, months) <= pdate <= first

    return check


@quick("INC03")
def inc03(c: Criterion) -> Check:
    required = int(c.params.get("required_cycles", 4))
    return lambda ctx: ctx.given_iv is not None and len(ctx.given_iv) >= required


def _imaging_check(c: Criterion, test: Callable[[list], bool]) -> Check:
    """A check on the chosen inclusion imaging read(s) (selected once per screening for INC04/EXC01/EXC04)."""
    window = c.window("imaging")
    key = ("quick-imaging", window.anchor, window.strictly_after_anchor, window.max_age_days, window.max_age_months,
           window.min_days_after_anchor, window.max_days_after_anchor)

    def check(ctx: Context) -> bool:
        memo = ctx.memo
        if key not in memo:
            memo[key] = ctx.select_dated(list(ctx.patient.imaging or ()), window, _date_of)
        chosen = memo[key]
        return chosen is not None and test(chosen)

    return check


def _inc04(chosen) -> bool:
    if len(chosen) != 1:
        return False
    i = chosen[0]
    return all(v is not None and not v != want for v, want in (
        (i.liver_dominant_or_exclusive, True), (i.recist_assessable, True), (i.resectable, False)))


@quick("INC04")
def inc04(c: Criterion) -> Check:
    return _imaging_check(c, _inc04)


@quick("INC05")
def inc05(c: Criterion) -> Check:
    t = c.threshold("ecog")
    op, limit = t.operator, float(t.value or 0)
    window = c.window("ecog")

    def check(ctx: Context) -> bool:
        plain = ctx.value("ecog", window, canonical=False)
        if plain is None:
            return False
        v = plain[0]
        return v == int(v) and 0 <= v <= 5 and compare(float(v), op, limit)

    return check


@quick("INC06")
def inc06(c: Criterion) -> Check:
    op, limit = _limit(c, "creatinine_clearance")
    labs, weight = c.window("labs"), c.window("weight")
    ulns = tuple((t.analyte or name, t.operator, t.uln_multiple or 0, label)
                 for t, name, label in ((c.threshold("alt"), "alt", "ALT"), (c.threshold("ast"), "ast", "AST")))

    def crcl(ctx: Context) -> bool:
        if ctx.measurements("crcl"):
            return _plain_and(ctx, "crcl", labs, op, limit, True)
        p = ctx.patient
        if p.birth_date is None or p.sex not in ("female", "male"):
            return False
        cr, wt = ctx.value("creatinine", labs), ctx.value("weight", weight)
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

    def check(ctx: Context) -> bool:
        if not crcl(ctx):
            return False
        for analyte, uop, multiple, label in ulns:
            plain = ctx.value(analyte, labs)
            if plain is None:
                return False
            uln, _why = ctx.uln(plain[2], label)
            if uln is None or not compare(plain[0], uop, multiple * uln):
                return False
        return True

    return check


@quick("INC07")
def inc07(c: Criterion) -> Check:
    labs = c.window("labs")
    parts = tuple((t.analyte or t.name, t.operator, t.canonical_value()) for t in c.thresholds)

    def check(ctx: Context) -> bool:
        for analyte, op, limit in parts:
            if not _plain_and(ctx, analyte, labs, op, limit, True):
                return False
        return True

    return check


@quick("INC08")
def inc08(c: Criterion) -> Check:
    t = c.threshold("age")
    op, limit = t.operator, t.value or 0

    def check(ctx: Context) -> bool:
        p = ctx.patient
        if p.birth_date is None or p.birth_date > ctx.as_of:
            return False
        youngest, oldest = age_range_years(p.birth_date, p.birth_date_precision, ctx.as_of)
        return _AGE_LIMITS.contains(youngest) and compare(youngest, op, limit) and compare(oldest, op, limit)

    return check


@quick("INC09")
def inc09(c: Criterion) -> Check:
    def check(ctx: Context) -> bool:
        p = ctx.patient
        if p.sex == "female" and p.menopausal_status == "post":
            return True
        return p.sex in ("female", "male") and p.facts.get("contraception_agreed") is True

    return check


@quick("INC10")
def inc10(c: Criterion) -> Check:
    def check(ctx: Context) -> bool:
        get = ctx.patient.facts.get
        signed, when = get("informed_consent_signed"), get("informed_consent_date")
        return signed is not False and signed is not None and when is not None and not when > ctx.as_of

    return check


@quick("INC11")
def inc11(c: Criterion) -> Check:
    return lambda ctx: ctx.patient.facts.get("social_security") is True


# -- exclusion criteria ---------------------------------------------------------------------

@quick("EXC01")
def exc01(c: Criterion) -> Check:
    return _imaging_check(c, lambda chosen: _one_value(chosen, "complete_response") is False)


@quick("EXC02")
def exc02(c: Criterion) -> Check:
    window = c.window("scan")

    def check(ctx: Context) -> bool:
        chosen = ctx.select_dated(list(ctx.patient.scans or ()), window, _date_of)
        return chosen is not None and _one_value(chosen, "residual_uptake") is True

    return check


@quick("EXC03")
def exc03(c: Criterion) -> Check:
    op, limit = _limit(c, "lvef")
    window = c.window("lvef")

    def check(ctx: Context) -> bool:
        if not ctx.measurements("lvef"):
            return ctx.patient.facts.get("carcinoid_heart_disease") is False
        return _plain_and(ctx, "lvef", window, op, limit, False)

    return check


@quick("EXC04")
def exc04(c: Criterion) -> Check:
    return _imaging_check(c, lambda chosen: _one_value(chosen, "extrahepatic_dominant_or_threatening") is False)


@quick("EXC05")
def exc05(c: Criterion) -> Check:
    flags = _flags_absent(("coagulation_disorder", "portal_thrombosis", "intrahepatic_biliary_dilatation",
                           "digestive_or_biliary_anastomosis_or_fistula"))
    t = c.threshold("child_pugh_score")
    op, limit = t.operator, float(t.value or 0)

    def check(ctx: Context) -> bool:
        if not flags(ctx):
            return False
        get = ctx.patient.facts.get
        cirrhosis = get("cirrhosis")
        if cirrhosis is False:
            return True
        stated = get("child_pugh_score")
        return cirrhosis is not None and stated is not None and not compare(float(stated), op, limit)

    return check


@quick("EXC06")
def exc06(c: Criterion) -> Check:
    op, limit = _limit(c, "albumin")
    labs = c.window("labs")
    return lambda ctx: _plain_and(ctx, "albumin", labs, op, limit, False)


@quick("EXC07")
def exc07(c: Criterion) -> Check:
    kinds = frozenset(c.params.get("event_types", EVENT_TYPES))
    months = c.window("events").max_age_months or 12
    bw = c.window("blood_pressure")
    pressures = tuple((name, *_limit(c, name)) for name in ("systolic_bp", "diastolic_bp"))

    def check(ctx: Context) -> bool:
        p = ctx.patient
        if p.cardiovascular_events is None or not p.cardiovascular_history_complete:
            return False
        if p.cardiovascular_events:
            oldest = months_before(ctx.as_of, months)
            for e in p.cardiovascular_events:
                if e.kind in kinds and (e.date is None or oldest <= e.date <= ctx.as_of):
                    return False  # undated (unknown) or recent (fail)
        high = False
        for name, op, limit in pressures:
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

    return check


@quick("EXC08")
def exc08(c: Criterion) -> Check:
    return _flags_absent(("legal_protection", "unable_to_consent"))


@quick("EXC09")
def exc09(c: Criterion) -> Check:
    flags = _flags_absent(("pregnant", "breastfeeding"))
    return lambda ctx: ctx.patient.sex == "male" or (ctx.patient.sex == "female" and flags(ctx))


@quick("EXC10")
def exc10(c: Criterion) -> Check:
    return _flags_absent(("other_interventional_trial",))


@quick("EXC11")
def exc11(c: Criterion) -> Check:
    return _flags_absent(("mri_contraindicated",))


@quick("EXC12")
def exc12(c: Criterion) -> Check:
    flags = _flags_absent(("lutathera_contraindicated",))

    def check(ctx: Context) -> bool:
        cycles = ctx.patient.lutathera
        if cycles is None or not flags(ctx):
            return False
        for a in cycles:
            if a.dose_reduced_for_toxicity or a.cancelled_for_toxicity or a.dose_reduced_for_toxicity is None or (
                a.cancelled_for_toxicity is None
            ):
                return False
        return True

    return check
