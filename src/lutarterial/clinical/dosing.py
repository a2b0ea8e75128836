"""Dose decision support for the next LUTATHERA administration (IV or IAH).

Reads the label's dose-modification rules from ``data/lutathera_dose_modifications.yaml`` (US PI
section 2.4 / EU SmPC 4.2) and returns one of ``proceed_full`` (7.4 GBq), ``resume_reduced``
(3.7 GBq), ``withhold`` or ``discontinue``, always with the rule IDs and the values behind them.

Model (documented in docs/clinical.md):
* The *interval* is the time after the last administration (labs dated on an administration day
  are pre-dose and belong to the interval before it).
* A *finding* is a lab value or adverse event that meets a rule (platelets grade >= 2, Hb or ANC
  grade >= 3, renal or hepatic definition, any other AE grade >= 3). Lymphopenia never counts.
* A finding in the interval means the next dose is modified: withhold while the toxicity is
  present (latest values), resume at 3.7 GBq once resolved. A finding of the same category after a
  earlier administration that was reduced for that category is a recurrence: discontinue.
  Toxicity that delays the dose for 16 weeks or more past its due date: discontinue. A reduced
  dose not followed by toxicity: back to 7.4 GBq.
* "Other" toxicity is an adverse *reaction*: an AE recorded as not related or unlikely related
  does not trigger it (warned). A grade 3-4 hypersensitivity reaction after LUTATHERA means no
  rechallenge: discontinue (LUT-DM-HYPERSENS).
This is decision *support*: the investigator decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from lutarterial.clinical.ctcae import compare, grade_lab, resolve_test
from lutarterial.errors import InvalidInputError, ProtocolDefinitionError, UnitError
from lutarterial.plausibility import check_canonical, check_date, check_quantity, plausibility_table, require_finite
from lutarterial.units import convert

__all__ = [
    "Administration",
    "LabValue",
    "AdverseEventRecord",
    "DoseHistory",
    "Finding",
    "RuleHit",
    "DoseDecision",
    "decide_next_dose",
    "parse_history",
    "load_dose_rules",
]

_HAEM_AE_TERMS = {
    "platelet count decreased": "thrombocytopenia",
    "thrombocytopenia": "thrombocytopenia",
    "anemia": "anemia_neutropenia",
    "anaemia": "anemia_neutropenia",
    "neutrophil count decreased": "anemia_neutropenia",
    "neutropenia": "anemia_neutropenia",
    "febrile neutropenia": "anemia_neutropenia",
    "lymphocyte count decreased": "lymphopenia",
    "lymphopenia": "lymphopenia",
}
_PROTHROMBIN_TESTS = {"prothrombin_ratio", "prothrombin_percent", "pt_percent", "tp", "taux_de_prothrombine", "quick"}
_CATEGORY_RULE = {
    "thrombocytopenia": "LUT-DM-THROMBO",
    "anemia_neutropenia": "LUT-DM-ANEMIA-NEUTRO",
    "renal": "LUT-DM-RENAL",
    "hepatic": "LUT-DM-HEPATIC",
    "other": "LUT-DM-OTHER",
}


@lru_cache(maxsize=1)
def load_dose_rules() -> dict[str, Any]:
    """The packaged LUTATHERA dose-modification rulebook (validated)."""
    text = resources.files("lutarterial.clinical").joinpath("data/lutathera_dose_modifications.yaml").read_text("utf-8")
    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loader
    rules = {r["id"]: r for r in doc["rules"]}
    for rid in (*_CATEGORY_RULE.values(), "LUT-DM-RECURRENCE", "LUT-DM-DELAY16", "LUT-DM-RESUME-REDUCED",
                "LUT-DM-RETURN-FULL", "LUT-DM-NO-TOXICITY", "LUT-DM-LYMPHO-EXEMPT", "LUT-DM-HYPERSENS"):
        if rid not in rules:
            raise ProtocolDefinitionError(f"lutathera_dose_modifications.yaml: rule {rid} missing")
    doc["by_id"] = rules
    return doc


@dataclass(frozen=True)
class Administration:
    date: dt.date
    activity_gbq: float
    route: str  # IV | IAH
    cycle: int | None = None
    reduced: bool | None = None


@dataclass(frozen=True)
class LabValue:
    date: dt.date
    test: str
    value: float | None
    unit: str | None
    lln: float | None = None
    uln: float | None = None
    baseline: float | None = None
    baseline_unit: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class AdverseEventRecord:
    id: str
    term: str
    grade: int
    onset: dt.date
    end: dt.date | None = None
    relation: str | None = None  # not_related | unlikely | possible | probable | definite | unknown


@dataclass(frozen=True)
class DoseHistory:
    patient: str | None
    decision_date: dt.date
    administrations: tuple[Administration, ...]
    labs: tuple[LabValue, ...]
    adverse_events: tuple[AdverseEventRecord, ...] = ()
    planned_route: str | None = None
    baseline: dict[str, tuple[float, str]] = field(default_factory=dict)
    interval_weeks: float | None = None


@dataclass(frozen=True)
class Finding:
    """One piece of evidence that meets (or clears) a dose-modification rule."""

    category: str
    date: dt.date
    source: str  # lab | adverse_event
    ref: str
    detail: str
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "date": self.date.isoformat(), "source": self.source, "ref": self.ref,
                "detail": self.detail, "kind": self.kind}


@dataclass(frozen=True)
class RuleHit:
    rule_id: str
    action: str
    text: str
    evidence: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "action": self.action, "text": self.text,
                "evidence": [f.to_dict() for f in self.evidence]}


@dataclass(frozen=True)
class DoseDecision:
    patient: str | None
    decision_date: str
    decision: str  # proceed_full | resume_reduced | withhold | discontinue
    activity_gbq: float | None
    route: str | None
    rules: tuple[RuleHit, ...]
    due_date: str | None
    delay_weeks: float | None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"patient": self.patient, "decision_date": self.decision_date, "decision": self.decision,
                "activity_gbq": self.activity_gbq, "route": self.route, "rules": [r.to_dict() for r in self.rules],
                "due_date": self.due_date, "delay_weeks": self.delay_weeks, "warnings": list(self.warnings)}


# ----------------------------------------------------------------------------- lab findings


def _analyte_name(test: str) -> str | None:
    if test.strip().lower() in _PROTHROMBIN_TESTS:
        return "prothrombin_ratio"
    a = resolve_test(test)
    return a.name if a else None


def _lab_findings(lab: LabValue, baseline: dict[str, tuple[float, str]], params: dict[str, Any],
                  warnings: list[str]) -> list[tuple[str, str, bool, str]]:
    """(category, kind, triggered, detail) for each rule criterion this lab value informs."""
    name = _analyte_name(lab.test)
    out: list[tuple[str, str, bool, str]] = []
    if name is None or lab.value is None:
        return out
    ref = lab.id or f"{lab.test}@{lab.date.isoformat()}"

    def graded(term_min: int) -> tuple[int | None, str]:
        g = grade_lab(lab.test, lab.value, lab.unit, lln=lab.lln, uln=lab.uln, baseline=lab.baseline,
                      baseline_unit=lab.baseline_unit, id=lab.id)
        if g.grade is None and lab.lln is None and "LLN missing" in g.reason:
            # LLN only separates grade 1 from 0 for decrease terms: the grade assuming the value
            # is below LLN is an upper bound, enough to decide "grade >= term_min" or not.
            upper = grade_lab(lab.test, lab.value, lab.unit, lln=1e300).grade
            if upper is not None and upper < term_min:
                return upper, f"{g.term} grade <= {upper} (LLN missing): {lab.value:g} {lab.unit}"
        if g.grade is None and (g.minimum_grade or 0) < term_min:
            warnings.append(f"{ref}: {g.term} not graded ({g.reason})")
            return None, ""
        shown = g.grade if g.grade is not None else f">={g.minimum_grade}"
        return (g.grade if g.grade is not None else g.minimum_grade), f"{g.term} grade {shown}: {lab.value:g} {lab.unit}"

    p = params
    if name == "platelets":
        mg = p["LUT-DM-THROMBO"]["min_grade"]
        g, d = graded(mg)
        if g is not None:
            out.append(("thrombocytopenia", "platelets", g >= mg, d))
    elif name in ("haemoglobin", "neutrophils"):
        mg = p["LUT-DM-ANEMIA-NEUTRO"]["min_grade"]
        g, d = graded(mg)
        if g is not None:
            out.append(("anemia_neutropenia", name, g >= mg, d))
    elif name in ("alt", "ast", "albumin"):
        # a laboratory CTCAE grade >= 3 is an "other grade 3-4 adverse reaction" for the label
        mg = p["LUT-DM-OTHER"]["min_grade"]
        g, d = graded(mg)
        if g is not None:
            out.append(("other", name, g >= mg, d))
    elif name == "lymphocytes":
        g, d = graded(3)
        if g is not None and g >= 3:
            out.append(("lymphopenia", "lymphocytes", True, d))
    elif name == "crcl":
        rp = p["LUT-DM-RENAL"]
        try:
            v = convert(lab.value, lab.unit or "", "mL/min")
        except UnitError:
            try:
                v = convert(lab.value, lab.unit or "", "mL/min/{1.73_m2}")
                warnings.append(f"{ref}: clearance in {lab.unit} compared with the label's 40 mL/min "
                                "(label: Cockcroft-Gault, mL/min, not normalised)")
            except UnitError:
                warnings.append(f"{ref}: unit {lab.unit!r} not usable for creatinine clearance")
                return out
        low = compare(v, "<", rp["crcl_below_ml_min"])
        out.append(("renal", "crcl_absolute", low, f"CrCl {v:.4g} mL/min {'<' if low else '>='} {rp['crcl_below_ml_min']} mL/min"))
        b = _baseline_value(lab, baseline.get("crcl"), "mL/min" if not lab.unit else lab.unit, "crcl")
        if b:
            drop = 100.0 * (b - lab.value) / b
            hit = compare(drop, ">=", rp["crcl_decrease_pct"])
            out.append(("renal", "crcl_decrease", hit, f"CrCl {lab.value:g} vs baseline {b:.4g} {lab.unit}: {drop:.1f} % decrease "
                                      f"({'>=' if hit else '<'} {rp['crcl_decrease_pct']} %)"))
    elif name == "creatinine":
        rp = p["LUT-DM-RENAL"]
        b = _baseline_value(lab, baseline.get("creatinine"), lab.unit or "", "creatinine")
        if b:
            rise = 100.0 * (lab.value - b) / b
            hit = compare(rise, ">=", rp["creatinine_increase_pct"])
            out.append(("renal", "creatinine_increase", hit, f"creatinine {lab.value:g} vs baseline {b:.4g} {lab.unit}: {rise:+.1f} % "
                                      f"({'>=' if hit else '<'} +{rp['creatinine_increase_pct']} %)"))
        else:
            warnings.append(f"{ref}: no baseline creatinine; the 40 % increase rule cannot be checked")
    elif name == "bilirubin":
        hp = p["LUT-DM-HEPATIC"]
        if lab.uln:
            hit = compare(lab.value, ">", hp["bilirubin_above_x_uln"] * lab.uln)
            out.append(("hepatic", "bilirubin", hit, f"bilirubin {lab.value:g} {lab.unit} {'>' if hit else '<='} "
                                        f"{hp['bilirubin_above_x_uln']:g} x ULN ({hp['bilirubin_above_x_uln'] * lab.uln:g})"))
        else:
            warnings.append(f"{ref}: bilirubin without ULN; the > 3 x ULN rule cannot be checked")
    return out


def _baseline_value(lab: LabValue, hist: tuple[float, str] | None, unit: str, analyte: str) -> float | None:
    from lutarterial.units import analyte_by_name

    mm = analyte_by_name(analyte).molar_mass_g_per_mol  # type: ignore[union-attr]
    try:
        if lab.baseline is not None:
            return lab.baseline if not lab.baseline_unit else convert(lab.baseline, lab.baseline_unit, unit,
                                                                       molar_mass_g_per_mol=mm)
        if hist is not None:
            return convert(hist[0], hist[1], unit, molar_mass_g_per_mol=mm)
    except UnitError:
        return None
    return None


def _hepatic_combo(labs: Sequence[LabValue], at: dt.date, params: dict[str, Any]) -> tuple[bool | None, str]:
    """Albumin < 30 g/L together with prothrombin ratio < 70 %, using the latest of each on or before ``at``."""
    hp = params["LUT-DM-HEPATIC"]
    alb = _latest(labs, "albumin", at)
    ptr = _latest(labs, "prothrombin_ratio", at)
    if alb is None or ptr is None or alb.value is None or ptr.value is None:
        return None, ""
    try:
        alb_gl = convert(alb.value, alb.unit or "", "g/L")
        pt_pct = convert(ptr.value, ptr.unit or "%", "%")
    except UnitError:
        return None, ""
    hit = compare(alb_gl, "<", hp["albumin_below_g_l"]) and compare(pt_pct, "<", hp["prothrombin_ratio_below_pct"])
    return hit, (f"albumin {alb_gl:.3g} g/L ({alb.date}) and prothrombin ratio {pt_pct:.3g} % ({ptr.date}): "
                 f"{'both below' if hit else 'not both below'} {hp['albumin_below_g_l']} g/L and "
                 f"{hp['prothrombin_ratio_below_pct']} %")


def _latest(labs: Sequence[LabValue], analyte: str, at: dt.date) -> LabValue | None:
    c = [lab for lab in labs if _analyte_name(lab.test) == analyte and lab.date <= at and lab.value is not None]
    return max(c, key=lambda lab: lab.date) if c else None


def _ae_category(ae: AdverseEventRecord, params: dict[str, Any]) -> str | None:
    cat = _HAEM_AE_TERMS.get(ae.term.strip().lower())
    if cat == "thrombocytopenia":
        return cat if ae.grade >= params["LUT-DM-THROMBO"]["min_grade"] else None
    if cat == "anemia_neutropenia":
        return cat if ae.grade >= params["LUT-DM-ANEMIA-NEUTRO"]["min_grade"] else None
    if cat == "lymphopenia":
        return "lymphopenia" if ae.grade >= 3 else None
    return "other" if ae.grade >= params["LUT-DM-OTHER"]["min_grade"] else None


# ----------------------------------------------------------------------------- decision


def decide_next_dose(h: DoseHistory) -> DoseDecision:
    """Apply the LUTATHERA dose-modification rules to a patient's history; see the module docstring."""
    rb = load_dose_rules()
    rules = rb["by_id"]
    params = {rid: r.get("params", {}) for rid, r in rules.items()}
    full, reduced_act = float(rb["full_activity_gbq"]), float(rb["reduced_activity_gbq"])
    interval_w = float(h.interval_weeks or rb["interval_weeks"])
    max_delay_w = float(rb["max_delay_weeks"])
    warnings: list[str] = []
    at = h.decision_date
    if h.interval_weeks is not None:
        check_quantity("dose_interval", h.interval_weeks, "wk", name="interval_weeks")
    later = [a.date for a in h.administrations if a.date > at]
    if later:
        # Issue 9: a decision dated before an administration it must follow gave a due date in the past.
        raise InvalidInputError(
            f"decision_date {at.isoformat()} is before the last administration ({max(later).isoformat()}); "
            "the next dose is decided after the last one: correct the decision date or the administration dates")
    admins = sorted(h.administrations, key=lambda a: a.date)
    labs = sorted((lab for lab in h.labs if lab.date <= at), key=lambda lab: lab.date)

    def is_reduced(a: Administration) -> bool:
        return a.reduced if a.reduced is not None else a.activity_gbq < float(rb["reduced_threshold_gbq"])

    # All findings with dates.
    findings: list[tuple[Finding, bool]] = []
    for lab in labs:
        for cat, kind, hit, detail in _lab_findings(lab, h.baseline, params, warnings):
            findings.append((Finding(cat, lab.date, "lab", lab.id or lab.test, detail, kind), hit))
        if _analyte_name(lab.test) in ("albumin", "prothrombin_ratio"):
            hit, detail = _hepatic_combo(labs, lab.date, params)
            if hit is not None:
                findings.append((Finding("hepatic", lab.date, "lab", lab.id or lab.test, detail, "albumin+pt"), hit))
    ae_active: list[tuple[Finding, AdverseEventRecord]] = []
    hyp = params["LUT-DM-HYPERSENS"]
    hyp_terms = {str(t).lower() for t in hyp["terms"]}
    not_reactions = {str(r).lower() for r in params["LUT-DM-OTHER"].get("not_reactions", [])}
    hypersensitivity: list[Finding] = []
    for ae in h.adverse_events:
        cat = _ae_category(ae, params)
        if cat is None or ae.onset > at:
            continue
        if ae.term.strip().lower() in hyp_terms and ae.grade >= int(hyp["min_grade"]) and admins \
                and ae.onset >= admins[0].date and ae.relation not in not_reactions:
            hypersensitivity.append(Finding("hypersensitivity", ae.onset, "adverse_event", ae.id,
                                            f"{ae.term} grade {ae.grade} on {ae.onset}", "ae:" + ae.id))
        if cat == "other" and ae.relation in not_reactions:
            warnings.append(f"{ae.id}: {ae.term} grade {ae.grade} recorded as '{ae.relation}' related: "
                            "not an adverse reaction, so LUT-DM-OTHER does not apply "
                            "(check the causality assessment)")
            continue
        f = Finding(cat, ae.onset, "adverse_event", ae.id, f"{ae.term} grade {ae.grade} from {ae.onset}"
                    + (f" to {ae.end}" if ae.end else " (ongoing)"), "ae:" + ae.id)
        findings.append((f, True))
        if ae.end is None or ae.end > at:
            ae_active.append((f, ae))
        else:
            findings.append((Finding(cat, ae.end, "adverse_event", ae.id, f"{ae.term} resolved {ae.end}", "ae:" + ae.id),
                             False))

    def window(lo: dt.date | None, hi: dt.date, strict_hi: bool = False) -> list[Finding]:
        return [f for f, hit in findings if hit and f.category not in ("lymphopenia",)
                and (lo is None or f.date > lo) and (f.date < hi if strict_hi else f.date <= hi)]

    # Current status: latest evidence per (category, source kind) decides.
    def current(cat: str) -> list[Finding]:
        latest: dict[str, tuple[dt.date, bool, Finding]] = {}
        for f, hit in findings:
            if f.category != cat:
                continue
            if f.kind not in latest or f.date >= latest[f.kind][0]:
                latest[f.kind] = (f.date, hit, f)
        return [f for _, hit, f in latest.values() if hit]

    hits: list[RuleHit] = []
    lympho = [f for f, hit in findings if hit and f.category == "lymphopenia"
              and (not admins or f.date > admins[-1].date)]
    if lympho:
        hits.append(RuleHit("LUT-DM-LYMPHO-EXEMPT", "none", rules["LUT-DM-LYMPHO-EXEMPT"]["label_text"], tuple(lympho)))

    route = h.planned_route
    if hypersensitivity:
        hits.append(RuleHit("LUT-DM-HYPERSENS", "discontinue", rules["LUT-DM-HYPERSENS"]["label_text"],
                            tuple(hypersensitivity)))
        return _decision(h, "discontinue", None, route or (admins[-1].route if admins else None), hits,
                         None, None, warnings)
    if not admins:
        present = {c: current(c) for c in _CATEGORY_RULE}
        present = {c: fs for c, fs in present.items() if fs}
        if present:
            for c, fs in present.items():
                hits.append(RuleHit(_CATEGORY_RULE[c], "withhold", rules[_CATEGORY_RULE[c]]["label_text"], tuple(fs)))
            return _decision(h, "withhold", None, route, hits, None, None, warnings)
        hits.append(RuleHit("LUT-DM-NO-TOXICITY", "proceed_full", "first administration: 7.4 GBq (200 mCi)"))
        return _decision(h, "proceed_full", full, route, hits, None, None, warnings)

    last = admins[-1]
    route = route or last.route
    due = last.date + dt.timedelta(weeks=interval_w)
    _check_core_labs(labs, last.date, warnings)
    in_interval = window(last.date, at)
    cats_now = sorted({f.category for f in in_interval} | {f.category for f, _ in ae_active if f.category in _CATEGORY_RULE})

    if at < due:
        warnings.append(f"decision date {at} is before the due date {due} (last administration + {interval_w:g} weeks)")
    # Recurrence: the same category of toxicity again after any earlier dose reduction made for it
    # (on the reduced dose, or later after the return to 7.4 GBq: the label's "recurrent" row).
    reason_cats: set[str] = set()
    for i, a in enumerate(admins):
        if is_reduced(a):
            prev_date = admins[i - 1].date if i > 0 else None
            reason_cats |= {f.category for f in window(prev_date, a.date)}
    if reason_cats:
        recurring = [f for f in in_interval if f.category in reason_cats]
        if recurring:
            hits.append(RuleHit("LUT-DM-RECURRENCE", "discontinue", rules["LUT-DM-RECURRENCE"]["label_text"],
                                tuple(recurring)))
            return _decision(h, "discontinue", None, route, hits, due, None, warnings)

    present = {c: current(c) for c in cats_now}
    present = {c: fs for c, fs in present.items() if fs}
    delay_w = round(max(0.0, (at - due).days / 7.0), 2)
    if present:
        if delay_w >= max_delay_w:
            ev = tuple(f for fs in present.values() for f in fs)
            hits.append(RuleHit("LUT-DM-DELAY16", "discontinue", rules["LUT-DM-DELAY16"]["label_text"]
                                + f" Delay so far: {delay_w:g} weeks past the due date {due}.", ev))
            return _decision(h, "discontinue", None, route, hits, due, delay_w, warnings)
        for c, fs in present.items():
            hits.append(RuleHit(_CATEGORY_RULE[c], "withhold", rules[_CATEGORY_RULE[c]]["label_text"], tuple(fs)))
        return _decision(h, "withhold", None, route, hits, due, delay_w, warnings)

    if in_interval:
        # resolved: when did the delay end? the first clearing evidence after the last finding
        last_hit = max(f.date for f in in_interval)
        clears = [f.date for f, hit in findings if not hit and f.date >= last_hit and f.category in cats_now]
        resolved_on = min(clears) if clears else at
        needed_w = max(0.0, (resolved_on - due).days / 7.0)
        if needed_w >= max_delay_w:
            hits.append(RuleHit("LUT-DM-DELAY16", "discontinue", rules["LUT-DM-DELAY16"]["label_text"]
                                + f" Resolved on {resolved_on}, {needed_w:.3g} weeks past the due date {due}.",
                                tuple(in_interval)))
            return _decision(h, "discontinue", None, route, hits, due, delay_w, warnings)
        for c in cats_now:
            hits.append(RuleHit(_CATEGORY_RULE[c], "withhold", rules[_CATEGORY_RULE[c]]["label_text"]
                                + " (toxicity occurred after the last administration; now resolved)",
                                tuple(f for f in in_interval if f.category == c)))
        latest_clear: dict[str, Finding] = {}
        for f, hit in findings:
            if not hit and f.category in cats_now and f.date >= last_hit:
                if f.kind not in latest_clear or f.date >= latest_clear[f.kind].date:
                    latest_clear[f.kind] = f
        hits.append(RuleHit("LUT-DM-RESUME-REDUCED", "resume_reduced",
                            rules["LUT-DM-RESUME-REDUCED"]["label_text"] + f" Resolved by {resolved_on}.",
                            tuple(latest_clear.values())))
        return _decision(h, "resume_reduced", reduced_act, route, hits, due, delay_w, warnings)

    if is_reduced(last):
        hits.append(RuleHit("LUT-DM-RETURN-FULL", "proceed_full", rules["LUT-DM-RETURN-FULL"]["label_text"]
                            + f" (last administration {last.date}: {last.activity_gbq:g} GBq)"))
    else:
        hits.append(RuleHit("LUT-DM-NO-TOXICITY", "proceed_full", rules["LUT-DM-NO-TOXICITY"]["label_text"]))
    return _decision(h, "proceed_full", full, route, hits, due, delay_w, warnings)


def _check_core_labs(labs: Sequence[LabValue], since: dt.date, warnings: list[str]) -> None:
    have = {_analyte_name(lab.test) for lab in labs if lab.date > since and lab.value is not None}
    need = {"platelets": "platelet count", "haemoglobin": "haemoglobin", "neutrophils": "neutrophil count",
            "bilirubin": "bilirubin"}
    for k, label in need.items():
        if k not in have:
            warnings.append(f"no {label} since the last administration ({since}): the rule it informs was not checked")
    if not ({"creatinine", "crcl"} & have):
        warnings.append(f"no creatinine or creatinine clearance since the last administration ({since})")


def _decision(h: DoseHistory, decision: str, act: float | None, route: str | None, hits: list[RuleHit],
              due: dt.date | None, delay: float | None, warnings: list[str]) -> DoseDecision:
    return DoseDecision(h.patient, h.decision_date.isoformat(), decision, act, route, tuple(hits),
                        due.isoformat() if due else None, delay, tuple(dict.fromkeys(warnings)))


# ----------------------------------------------------------------------------- input


def _d(x: Any, where: str) -> dt.date:
    if not isinstance(x, str):
        raise InvalidInputError(f"{where}: {x!r} is not an ISO date (YYYY-MM-DD)")
    try:
        day = dt.date.fromisoformat(x)
    except ValueError:
        raise InvalidInputError(f"{where}: {x!r} is not an ISO date (YYYY-MM-DD)") from None
    return check_date(where, day)


def _f(x: Any, where: str, required: bool = False) -> float | None:
    if x is None:
        if required:
            raise InvalidInputError(f"{where}: value required")
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        raise InvalidInputError(f"{where}: {x!r} is not a number")
    return require_finite(where, x)


def _objects(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``doc[key]`` as a list of JSON objects (absent or null: empty); anything else names the key."""
    items = doc.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidInputError(f"{key} must be a list of objects, got {type(items).__name__} {items!r:.40}")
    for k, it in enumerate(items):
        if not isinstance(it, dict):
            raise InvalidInputError(f"{key}[{k}] must be an object, got {type(it).__name__}")
    return items


def _plausible_lab(test: str, value: float | None, unit: Any, where: str) -> None:
    """A lab value outside its physical limits is refused (a decision must not rest on it)."""
    if value is None or not isinstance(unit, str):
        return
    analyte = resolve_test(test)
    if analyte is None or analyte.name not in plausibility_table():
        return
    try:
        check_quantity(analyte.name, value, unit, name=f"{where} ({test})")
    except UnitError:
        return  # unit problems are reported by the grading with their own reason


def parse_history(doc: dict[str, Any]) -> DoseHistory:
    """Read the HISTORY.json format of ``lutarterial next-dose`` (see docs/clinical.md)."""
    if not isinstance(doc, dict):
        raise InvalidInputError("history must be a JSON object")
    if "decision_date" not in doc:
        raise InvalidInputError("history: 'decision_date' (the planned date of the next administration) is required")
    admins = []
    for k, a in enumerate(_objects(doc, "administrations")):
        w = f"administrations[{k}]"
        if "activity_gbq" in a:
            act = _f(a["activity_gbq"], w, True)
        elif "activity_mbq" in a:
            act = _f(a["activity_mbq"], w, True) / 1000.0  # type: ignore[operator]
        else:
            raise InvalidInputError(f"{w}: activity_gbq or activity_mbq required")
        check_quantity("injected_activity", act, "GBq", name=f"{w} activity")  # type: ignore[arg-type]
        if a.get("cycle") is not None:
            check_canonical("cycle_number", a["cycle"], name=f"{w}.cycle")
        if a.get("reduced") is not None and not isinstance(a.get("reduced"), bool):
            raise InvalidInputError(f"{w}.reduced must be true or false, got {a.get('reduced')!r}")
        route = str(a.get("route", "")).upper()
        if route not in ("IV", "IAH"):
            raise InvalidInputError(f"{w}: route {a.get('route')!r} must be 'IV' or 'IAH'")
        admins.append(Administration(_d(a.get("date"), w), act, route, a.get("cycle"), a.get("reduced")))  # type: ignore[arg-type]
    labs = []
    for k, lab in enumerate(_objects(doc, "labs")):
        w = f"labs[{k}]"
        _plausible_lab(str(lab.get("test", "")), _f(lab.get("value"), w), lab.get("unit"), w)
        labs.append(LabValue(_d(lab.get("date"), w), str(lab.get("test", "")), _f(lab.get("value"), w), lab.get("unit"),
                             _f(lab.get("lln"), w), _f(lab.get("uln"), w), _f(lab.get("baseline"), w),
                             lab.get("baseline_unit"), lab.get("id")))
    aes = []
    for k, ae in enumerate(_objects(doc, "adverse_events")):
        w = f"adverse_events[{k}]"
        g = ae.get("grade")
        if not isinstance(g, int) or isinstance(g, bool) or not 1 <= g <= 5:
            raise InvalidInputError(f"{w}: grade {g!r} must be an integer 1-5")
        rel = ae.get("relation")
        aes.append(AdverseEventRecord(str(ae.get("id", f"AE{k + 1}")), str(ae.get("term", "")), g,
                                      _d(ae.get("onset"), w), _d(ae["end"], w) if ae.get("end") else None,
                                      str(rel).strip().lower() if rel else None))
    baseline = {}
    base = doc.get("baseline") or {}
    if not isinstance(base, dict):
        raise InvalidInputError(f"baseline must be an object of {{name: {{value, unit}}}}, got {type(base).__name__}")
    for name, v in base.items():
        if not isinstance(v, dict):
            raise InvalidInputError(f"baseline.{name} must be an object {{value, unit}}, got {type(v).__name__}")
        value = _f(v.get("value"), f"baseline.{name}", True)
        _plausible_lab(str(name), value, v.get("unit"), f"baseline.{name}")
        baseline[name] = (value, str(v.get("unit")))
    pr = doc.get("planned_route")
    if pr is not None and str(pr).upper() not in ("IV", "IAH"):
        raise InvalidInputError(f"planned_route {pr!r} must be 'IV' or 'IAH'")
    interval = _f(doc.get("interval_weeks"), "interval_weeks")
    if interval is not None:
        check_quantity("dose_interval", interval, "wk", name="interval_weeks")
    return DoseHistory(doc.get("patient"), _d(doc["decision_date"], "decision_date"), tuple(admins), tuple(labs),
                       tuple(aes), str(pr).upper() if pr else None, baseline,  # type: ignore[arg-type]
                       interval)
