"""RECIST 1.1 tumour response (Eisenhauer et al., Eur J Cancer 2009;45:228-247).

Implements: baseline selection checks (section 3 and 4.2), per-assessment sum of diameters with
change from baseline and from the nadir (the nadir includes the baseline sum), target response
(section 4.3.1, including the 5 mm absolute rule for PD and the CR rule for nodes < 10 mm short
axis), non-target response (4.3.3), new lesions (4.3.2), overall response (Table 1, and Table 2
for patients with non-target disease only), best overall response with confirmation of CR/PR at
>= 4 weeks and a minimum SD duration measured from the baseline date (4.4, Table 3), and the date
of progression. A restriction to lesions of one organ gives the liver-specific response used for
the intra-arterial hepatic (IAH) arm.

Dates are ISO ``YYYY-MM-DD`` strings; the module never reads the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lutarterial.clinical.ctcae import compare
from lutarterial.errors import InvalidInputError
from lutarterial.plausibility import check_canonical, check_date

__all__ = [
    "BaselineLesion",
    "LesionObservation",
    "NewLesion",
    "Assessment",
    "TimepointResponse",
    "RecistResult",
    "RecistOptions",
    "evaluate_recist",
    "overall_response_table1",
    "overall_response_table2",
    "check_baseline",
    "parse_recist_input",
    "TOO_SMALL_DEFAULT_MM",
    "liver_filter",
    "extrahepatic_filter",
    "evaluate_recist_scopes",
    "NON_CR_NON_PD",
]

TOO_SMALL_DEFAULT_MM = 5.0
_NON_TARGET_STATUS = ("present", "absent", "unequivocal_progression")
#: Non-target response code as written in RECIST 1.1 (Tables 1-2) and in the issue's output format.
NON_CR_NON_PD = "Non-CR/Non-PD"
_ORDER = {"CR": 5, "PR": 4, "SD": 3, NON_CR_NON_PD: 3, "PD": 1, "NE": 0}


@dataclass(frozen=True)
class BaselineLesion:
    """A lesion recorded at baseline. ``diameter_mm`` is the longest diameter, or the short axis for nodes."""

    id: str
    role: str  # "target" | "non_target"
    organ: str
    nodal: bool
    diameter_mm: float | None


@dataclass(frozen=True)
class LesionObservation:
    """A follow-up record of a baseline lesion: a measurement (targets) or a status (non-targets)."""

    id: str
    diameter_mm: float | None = None
    status: str | None = None  # present | absent | unequivocal_progression | too_small


@dataclass(frozen=True)
class NewLesion:
    id: str
    organ: str | None = None
    equivocal: bool = False


@dataclass(frozen=True)
class Assessment:
    date: dt.date
    baseline: bool
    lesions: tuple[Any, ...]  # BaselineLesion at baseline, LesionObservation after
    new_lesions: tuple[NewLesion, ...] = ()


@dataclass(frozen=True)
class TimepointResponse:
    date: str
    baseline: bool
    sum_mm: float | None
    change_from_baseline_pct: float | None
    change_from_nadir_pct: float | None
    nadir_mm: float | None
    target: str | None
    non_target: str | None
    new_lesions: bool | None
    overall: str | None
    notes: tuple[str, ...] = ()
    new_lesions_equivocal: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "baseline": self.baseline,
            "sum_mm": self.sum_mm,
            "change_from_baseline_pct": self.change_from_baseline_pct,
            "change_from_nadir_pct": self.change_from_nadir_pct,
            "nadir_mm": self.nadir_mm,
            "target": self.target,
            "non_target": self.non_target,
            "new_lesions": self.new_lesions,
            "new_lesions_equivocal": self.new_lesions_equivocal,
            "overall": self.overall,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class RecistOptions:
    """Protocol parameters. Defaults: confirmation required (single-arm trial), SD >= 6 weeks."""

    confirmation: bool = True
    confirmation_min_days: int = 28
    sd_min_weeks: float = 6.0
    sd_window_days: int = 0


@dataclass(frozen=True)
class RecistResult:
    patient: str | None
    scope: str
    assessments: tuple[TimepointResponse, ...]
    best_overall_response: str
    best_overall_response_reason: str
    progression_date: str | None
    baseline_issues: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "scope": self.scope,
            "assessments": [a.to_dict() for a in self.assessments],
            "best_overall_response": self.best_overall_response,
            "best_overall_response_reason": self.best_overall_response_reason,
            "progression_date": self.progression_date,
            "baseline_issues": list(self.baseline_issues),
        }


# --------------------------------------------------------------------------- overall tables


def _code(response: str) -> str:
    """Canonical spelling of a response code (``non-cr/non-pd`` -> ``Non-CR/Non-PD``, ``pr`` -> ``PR``)."""
    up = str(response).strip().upper()
    return NON_CR_NON_PD if up == NON_CR_NON_PD.upper() else up


def overall_response_table1(target: str, non_target: str, new_lesions: bool) -> str:
    """RECIST 1.1 Table 1 (patients with target disease, with or without non-target disease).

    ``non_target`` is one of CR, Non-CR/Non-PD, NE, PD, or NA when there was none at baseline
    (case-insensitive).
    """
    target, non_target = _code(target), _code(non_target)
    if target == "PD" or non_target == "PD" or new_lesions:
        return "PD"
    if target == "NE":
        return "NE"
    if target == "CR":
        if non_target in ("CR", "NA"):
            return "CR"
        return "PR"  # CR + non-CR/non-PD, or CR + not evaluated
    if target == "PR":
        return "PR"  # non-PD or not all evaluated
    if target == "SD":
        return "SD"
    raise InvalidInputError(f"unknown target response {target!r}")


def overall_response_table2(non_target: str, new_lesions: bool) -> str:
    """RECIST 1.1 Table 2 (patients with non-target disease only)."""
    non_target = _code(non_target)
    if non_target == "PD" or new_lesions:
        return "PD"
    if non_target == "CR":
        return "CR"
    if non_target == NON_CR_NON_PD:
        return NON_CR_NON_PD
    if non_target == "NE":
        return "NE"
    raise InvalidInputError(f"unknown non-target response {non_target!r}")


# --------------------------------------------------------------------------- baseline checks


def check_baseline(lesions: Sequence[BaselineLesion]) -> tuple[str, ...]:
    """RECIST 1.1 sections 3.1-3.3: target selection rules; returns the violations found."""
    issues: list[str] = []
    targets = [lesion for lesion in lesions if lesion.role == "target"]
    if len(targets) > 5:
        issues.append(f"{len(targets)} target lesions: RECIST 1.1 allows at most 5 in total")
    per_organ: dict[str, int] = {}
    for t in targets:
        per_organ[t.organ] = per_organ.get(t.organ, 0) + 1
    for organ, n in sorted(per_organ.items()):
        if n > 2:
            issues.append(f"{n} target lesions in organ {organ!r}: at most 2 per organ")
    for t in targets:
        if t.diameter_mm is None:
            issues.append(f"target {t.id}: no baseline measurement")
        elif t.nodal and t.diameter_mm < 15:
            issues.append(f"target {t.id}: lymph node short axis {t.diameter_mm:g} mm < 15 mm is not measurable "
                          "(10-<15 mm: pathological, non-target; <10 mm: normal)")
        elif not t.nodal and t.diameter_mm < 10:
            issues.append(f"target {t.id}: longest diameter {t.diameter_mm:g} mm < 10 mm is not measurable")
    for lesion in lesions:
        if lesion.role == "non_target" and lesion.nodal and lesion.diameter_mm is not None and lesion.diameter_mm < 10:
            issues.append(f"non-target node {lesion.id}: short axis {lesion.diameter_mm:g} mm < 10 mm is normal, not a lesion")
    return tuple(issues)


# --------------------------------------------------------------------------- evaluation


def _pct(x: float, ref: float) -> float | None:
    if ref == 0:
        return None
    return round(100.0 * (x - ref) / ref, 2)


def _target_measure(obs: LesionObservation | None) -> float | None:
    if obs is None:
        return None
    if obs.status == "absent":
        return 0.0
    if obs.status == "too_small":
        return TOO_SMALL_DEFAULT_MM
    return obs.diameter_mm


def evaluate_recist(
    assessments: Sequence[Assessment],
    *,
    patient: str | None = None,
    options: RecistOptions = RecistOptions(),
    organ_filter: Callable[[str | None], bool] | None = None,
    scope: str = "all",
) -> RecistResult:
    """Evaluate RECIST 1.1 for one patient.

    ``organ_filter`` keeps only baseline lesions (and new lesions) whose organ it accepts; new
    lesions without an organ are kept (conservatively) in every restricted scope.
    """
    ordered = sorted(assessments, key=lambda a: a.date)
    baselines = [a for a in ordered if a.baseline]
    if len(baselines) != 1:
        raise InvalidInputError(f"exactly one baseline assessment is required, found {len(baselines)}")
    base = baselines[0]
    follow = [a for a in ordered if not a.baseline]
    if any(a.date < base.date for a in follow):
        raise InvalidInputError("a follow-up assessment is dated before the baseline")
    lesions: list[BaselineLesion] = list(base.lesions)
    ids = [lesion.id for lesion in lesions]
    if len(set(ids)) != len(ids):
        raise InvalidInputError("duplicate lesion id at baseline")
    issues = check_baseline(lesions)
    if organ_filter is not None:
        lesions = [lesion for lesion in lesions if organ_filter(lesion.organ)]
    targets = [lesion for lesion in lesions if lesion.role == "target"]
    non_targets = [lesion for lesion in lesions if lesion.role == "non_target"]
    known = set(ids)

    unmeasured = [t.id for t in targets if t.diameter_mm is None]
    if unmeasured:
        raise InvalidInputError(f"baseline target lesion(s) {', '.join(unmeasured)} have no diameter_mm: "
                                "a target must be measured at baseline (or be recorded as non-target)")
    base_sum = sum(t.diameter_mm or 0.0 for t in targets) if targets else None
    out: list[TimepointResponse] = [
        TimepointResponse(
            date=base.date.isoformat(), baseline=True, sum_mm=None if base_sum is None else round(base_sum, 3),
            change_from_baseline_pct=None,
            change_from_nadir_pct=None, nadir_mm=None, target=None, non_target=None, new_lesions=None, overall=None,
        )
    ]
    if not targets and not non_targets:
        return RecistResult(patient, scope, tuple(out), "NE", "no lesion at baseline in this scope", None, issues)

    nadir = base_sum
    last_target_cr = False  # the latest evaluable target response was CR
    seen_new: dict[str, NewLesion] = {}
    new_first_date: dict[str, dt.date] = {}
    progression: dt.date | None = None
    for a in follow:
        notes: list[str] = []
        obs = {}
        for o in a.lesions:
            if o.id not in known:
                raise InvalidInputError(f"{a.date}: lesion {o.id!r} was not recorded at baseline (report it as a new lesion)")
            obs[o.id] = o
        # target lesions
        sum_mm: float | None = None
        target_resp: str | None = None
        if targets:
            values = {t.id: _target_measure(obs.get(t.id)) for t in targets}
            missing = [i for i, v in values.items() if v is None]
            partial = sum(v for v in values.values() if v is not None)
            assert nadir is not None and base_sum is not None
            pd_now = compare(partial, ">=", 1.2 * nadir) and compare(partial - nadir, ">=", 5.0)
            # After a target CR, a non-nodal target that reappears is PD whatever the sum (RECIST
            # 1.1, Eisenhauer 2009, on lesions that disappear and reappear: 'if the patient's
            # tumour had reached a CR status and the lesion reappeared, then the patient would be
            # considered PD at the time of reappearance'). Nodes stay under the sum rule.
            reappeared = [t.id for t in targets
                          if last_target_cr and not t.nodal and (values[t.id] or 0.0) > 0.0]
            if reappeared:
                notes.append(f"target(s) {', '.join(reappeared)} reappeared after a target CR: PD")
                pd_now = True
            if missing:
                notes.append(f"target(s) not measured: {', '.join(missing)}")
                target_resp = "PD" if pd_now else "NE"
                if pd_now:
                    notes.append("PD certain from the measured targets alone (missing ones can only add)")
            else:
                sum_mm = partial  # full precision for the rules; rounded only in the output
                all_gone = all(
                    (values[t.id] < 10.0 if t.nodal else values[t.id] == 0.0) for t in targets  # type: ignore[operator]
                )
                if all_gone and not reappeared:
                    target_resp = "CR"
                elif pd_now:
                    target_resp = "PD"
                elif compare(sum_mm, "<=", 0.7 * base_sum):
                    target_resp = "PR"
                else:
                    target_resp = "SD"
        # non-target lesions
        non_target_resp = "NA"
        if non_targets:
            statuses = []
            for n in non_targets:
                o = obs.get(n.id)
                st = o.status if o is not None else None
                if st is not None and st not in _NON_TARGET_STATUS:
                    raise InvalidInputError(f"{a.date}: non-target {n.id}: status {st!r} not one of {_NON_TARGET_STATUS}")
                statuses.append(st)
            if "unequivocal_progression" in statuses:
                non_target_resp = "PD"
            elif any(s is None for s in statuses):
                non_target_resp = "NE"
                notes.append("non-target lesion(s) not evaluated")
            elif all(s == "absent" for s in statuses):
                non_target_resp = "CR"
            else:
                non_target_resp = NON_CR_NON_PD
        # new lesions
        new_here = [n for n in a.new_lesions if organ_filter is None or n.organ is None or organ_filter(n.organ)]
        unequivocal = False
        for n in new_here:
            new_first_date.setdefault(n.id, a.date)
            if not n.equivocal:
                unequivocal = True
            else:
                notes.append(f"equivocal new lesion {n.id}: not PD unless confirmed later")
            seen_new[n.id] = n
        equivocal_only = bool(new_here) and not unequivocal
        # overall
        if targets:
            assert target_resp is not None
            overall = overall_response_table1(target_resp, non_target_resp, unequivocal)
        else:
            overall = overall_response_table2(non_target_resp, unequivocal)
        if overall == "PD" and progression is None:
            progression = a.date
            if unequivocal and target_resp != "PD" and non_target_resp != "PD":
                firsts = [new_first_date[n.id] for n in new_here if not n.equivocal]
                earliest = min(firsts)
                if earliest < a.date:
                    progression = earliest
                    notes.append(f"progression dated to first observation of the new lesion ({earliest.isoformat()})")
        out.append(
            TimepointResponse(
                date=a.date.isoformat(), baseline=False, sum_mm=None if sum_mm is None else round(sum_mm, 3),
                change_from_baseline_pct=_pct(sum_mm, base_sum) if sum_mm is not None and base_sum else None,
                change_from_nadir_pct=_pct(sum_mm, nadir) if sum_mm is not None and nadir else None,
                nadir_mm=None if nadir is None else round(nadir, 3), target=target_resp, non_target=non_target_resp if non_targets else "NA",
                new_lesions=unequivocal, overall=overall, notes=tuple(notes), new_lesions_equivocal=equivocal_only,
            )
        )
        if sum_mm is not None and nadir is not None and sum_mm < nadir:
            nadir = sum_mm
        if target_resp is not None and target_resp != "NE":
            last_target_cr = target_resp == "CR"
    bor, reason = _best_overall_response(base.date, out[1:], options, has_targets=bool(targets))
    return RecistResult(
        patient, scope, tuple(out), bor, reason, progression.isoformat() if progression else None, issues
    )


def _best_overall_response(
    base_date: dt.date, tps: Sequence[TimepointResponse], opt: RecistOptions, *, has_targets: bool
) -> tuple[str, str]:
    """RECIST 1.1 section 4.4 and Table 3: best overall response, up to the first PD."""
    upto: list[TimepointResponse] = []
    for tp in tps:
        upto.append(tp)
        if tp.overall == "PD":
            break
    if not upto:
        return "NE", "no post-baseline assessment"
    days = [(dt.date.fromisoformat(tp.date) - base_date).days for tp in upto]
    sd_min_days = opt.sd_min_weeks * 7 - opt.sd_window_days
    sd_ok_dates = [
        tp.date for tp, d in zip(upto, days, strict=True)
        if tp.overall in ("CR", "PR", "SD", NON_CR_NON_PD) and d >= sd_min_days
    ]
    if not opt.confirmation:
        best = max((tp.overall or "NE" for tp in upto), key=lambda r: _ORDER[r])
        if best in ("CR", "PR"):
            return best, f"unconfirmed {best} (confirmation not required)"
        if best in ("SD", NON_CR_NON_PD):
            if sd_ok_dates:
                return best, f"{best} at >= {opt.sd_min_weeks:g} weeks from baseline ({sd_ok_dates[0]})"
            return _fallback(upto, opt)
        return _fallback(upto, opt)

    def confirmed(first: set[str], second: set[str], allowed_between: set[str]) -> str | None:
        for i, tp in enumerate(upto):
            if tp.overall not in first:
                continue
            d_i = dt.date.fromisoformat(tp.date)
            for tq in upto[i + 1:]:
                if tq.overall in second and (dt.date.fromisoformat(tq.date) - d_i).days >= opt.confirmation_min_days:
                    return f"{tp.overall} on {tp.date} confirmed by {tq.overall} on {tq.date}"
                if tq.overall not in allowed_between:
                    break
        return None

    why = confirmed({"CR"}, {"CR"}, {"CR", "NE"})
    if why:
        return "CR", why
    why = confirmed({"PR", "CR"}, {"PR", "CR"}, {"PR", "CR", "NE"})
    if why:
        if why.startswith("CR") and " by PR" in why:
            why += " (CR followed by PR: RECIST 1.1 Table 3 footnote a; review whether the first CR was a PR)"
        return "PR", why
    if sd_ok_dates:
        best = "SD" if has_targets else NON_CR_NON_PD
        unconf = [tp.overall for tp in upto if tp.overall in ("CR", "PR")]
        extra = f"; unconfirmed {'/'.join(dict.fromkeys(unconf))} counted as SD" if unconf else ""
        return best, f"stable disease criteria met at >= {opt.sd_min_weeks:g} weeks from baseline ({sd_ok_dates[0]}){extra}"
    return _fallback(upto, opt)


def _fallback(upto: Sequence[TimepointResponse], opt: RecistOptions) -> tuple[str, str]:
    if any(tp.overall == "PD" for tp in upto):
        return "PD", f"progression before the minimum SD duration of {opt.sd_min_weeks:g} weeks was met"
    return "NE", f"no response confirmed and minimum SD duration of {opt.sd_min_weeks:g} weeks not met"


# --------------------------------------------------------------------------- input parsing


def _date(text: Any, where: str) -> dt.date:
    if not isinstance(text, str):
        raise InvalidInputError(f"{where}: date {text!r} is not an ISO date (YYYY-MM-DD)")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{where}: date {text!r} is not an ISO date (YYYY-MM-DD)") from None
    return check_date(f"{where}: date", day)


def _num(x: Any, where: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x or x < 0:
        raise InvalidInputError(f"{where}: diameter_mm {x!r} must be a non-negative number or null")
    return check_canonical("lesion_diameter", x, name=f"{where}: diameter_mm")


def _list(raw: dict[str, Any], key: str, where: str) -> list[Any]:
    items = raw.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidInputError(f"{where}: {key} must be a list, got {type(items).__name__}")
    return items


def parse_recist_input(doc: dict[str, Any]) -> tuple[str | None, list[Assessment]]:
    """Read the ``lutarterial recist`` JSON format (see docs/clinical.md) into assessments."""
    if not isinstance(doc, dict) or not isinstance(doc.get("assessments"), list):
        raise InvalidInputError("RECIST input must be an object with an 'assessments' list")
    out: list[Assessment] = []
    for k, raw in enumerate(doc["assessments"]):
        where = f"assessments[{k}]"
        if not isinstance(raw, dict):
            raise InvalidInputError(f"{where}: must be an object")
        date = _date(raw.get("date"), where)
        is_base = bool(raw.get("baseline", False))
        lesions: list[Any] = []
        for j, le in enumerate(_list(raw, "lesions", where)):
            w = f"{where}.lesions[{j}]"
            if not isinstance(le, dict) or not le.get("id"):
                raise InvalidInputError(f"{w}: a lesion needs an 'id'")
            if is_base:
                role = le.get("role", "target")
                if role not in ("target", "non_target"):
                    raise InvalidInputError(f"{w}: role {role!r} must be 'target' or 'non_target'")
                d = _num(le.get("diameter_mm"), w)
                if le.get("status") == "too_small" and d is None:
                    d = TOO_SMALL_DEFAULT_MM
                lesions.append(BaselineLesion(str(le["id"]), role, str(le.get("organ") or "unknown").lower(),
                                              bool(le.get("nodal", False)), d))
            else:
                st = le.get("status")
                if st is not None and st not in (*_NON_TARGET_STATUS, "too_small"):
                    raise InvalidInputError(f"{w}: status {st!r} not recognised")
                lesions.append(LesionObservation(str(le["id"]), _num(le.get("diameter_mm"), w), st))
        new = []
        for j, n in enumerate(_list(raw, "new_lesions", where)):
            if not isinstance(n, dict) or not n.get("id"):
                raise InvalidInputError(f"{where}.new_lesions[{j}]: a new lesion needs an 'id'")
            organ = n.get("organ")
            new.append(NewLesion(str(n["id"]), str(organ).lower() if organ else None, bool(n.get("equivocal", False))))
        out.append(Assessment(date, is_base, tuple(lesions), tuple(new)))
    return doc.get("patient"), out


def liver_filter(organ: str | None) -> bool:
    return organ is not None and organ.lower() in ("liver", "hepatic")


def extrahepatic_filter(organ: str | None) -> bool:
    return organ is not None and organ.lower() not in ("liver", "hepatic")


def evaluate_recist_scopes(
    assessments: Sequence[Assessment], *, patient: str | None = None, options: RecistOptions = RecistOptions()
) -> dict[str, RecistResult]:
    """Whole-body, liver-only (hepatic lesions, organ 'liver') and extrahepatic responses."""
    res = {"all": evaluate_recist(assessments, patient=patient, options=options)}
    res["liver"] = evaluate_recist(assessments, patient=patient, options=options, organ_filter=liver_filter, scope="liver")
    res["extrahepatic"] = evaluate_recist(
        assessments, patient=patient, options=options, organ_filter=extrahepatic_filter, scope="extrahepatic"
    )
    return res
