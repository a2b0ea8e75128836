"""Registry rows -> endpoint tables (the inputs of :mod:`lutarterial.statistics`).

Everything here reads through the actor's site scope (:func:`restrict_to_sites`); identities are
never read (only trial numbers). Functions:

* :func:`lesion_values` — each participant's **current** uptake analysis (the latest analysis
  holding per-VOI IV and IAH metrics whose ``superseded_by_id`` is NULL)
  turned into :class:`~lutarterial.statistics.ratios.LesionValue` rows;
* :func:`primary_endpoint` — :func:`lesion_values` + :func:`~lutarterial.statistics.analyse_ratios`;
* :func:`secondary_endpoints` — CONSORT flow, safety, response, PFS and dosimetry;
* :func:`data_snapshot` — audit head hash, time of the last change and row counts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError
from lutarterial.registry.access import Actor, restrict_to_sites
from lutarterial.registry.models import (
    AdverseEvent,
    AuditEntry,
    Consent,
    DosimetryAnalysis,
    Enrolment,
    ImagingAnalysis,
    LabResult,
    Participant,
    RecistAssessment,
    ScreeningResult,
    Site,
    Visit,
)
from lutarterial.statistics.exact import clopper_pearson
from lutarterial.statistics.ratios import (
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    Exclusion,
    LesionValue,
    analyse_ratios,
)
from lutarterial.statistics.survival import kaplan_meier

__all__ = [
    "UPTAKE_KINDS",
    "scoped_participants",
    "current_analyses",
    "lesion_values",
    "primary_endpoint",
    "secondary_endpoints",
    "data_snapshot",
    "DOSE_REGIONS",
    "consort",
    "safety",
    "response",
    "survival",
    "dosimetry",
    "scope",
]

#: Imaging analysis kinds that hold per-VOI IV and IAH uptake (``*_iah_vs_iv`` kinds are accepted too).
UPTAKE_KINDS = ("pet_iah_vs_iv",)


def scoped_participants(session: Session, actor: Actor) -> list[Participant]:
    """Participants of the actor's sites (all sites for admin/statistician), by trial number."""
    if not actor.roles:
        raise AccessDeniedError(f"user {actor.username!r} has no role")
    stmt = restrict_to_sites(select(Participant), actor, Participant.site_id).order_by(Participant.trial_number)
    return list(session.scalars(stmt))


def _current(model: Any, stmt: Any) -> Any:
    return stmt.where(model.superseded_by_id.is_(None))


def _is_uptake(a: ImagingAnalysis) -> bool:
    """An IAH-vs-IV uptake comparison: kind ``pet_iah_vs_iv`` (or another ``*_iah_vs_iv``) whose
    result holds per-VOI ``iv`` and ``iah`` metrics. Other imaging analyses (e.g. ``pbpk_prediction``)
    never count, even when newer."""
    if a.kind not in UPTAKE_KINDS and not str(a.kind).endswith("_iah_vs_iv"):
        return False
    vois = (a.result or {}).get("vois")
    return isinstance(vois, list) and all(isinstance(v, dict) and "iv" in v and "iah" in v for v in vois)


def current_analyses(session: Session, participants: Sequence[Participant], *,
                     dosimetry: bool = False) -> dict[int, Any]:
    """participant id -> the latest current uptake (or dosimetry) analysis."""
    model = DosimetryAnalysis if dosimetry else ImagingAnalysis
    ids = [p.id for p in participants]
    if not ids:
        return {}
    stmt = _current(model, select(model).where(model.participant_id.in_(ids)))
    out: dict[int, Any] = {}
    for a in session.scalars(stmt.order_by(model.created_at, model.id)):
        if dosimetry or _is_uptake(a):
            out[a.participant_id] = a  # later rows overwrite earlier: the latest wins
    return out


def lesion_values(session: Session, actor: Actor, metric: str) -> tuple[list[LesionValue], list[Exclusion],
                                                                          dict[str, Any]]:
    """One row per VOI of each participant's current uptake analysis; provenance per participant."""
    parts = scoped_participants(session, actor)
    tn = {p.id: p.trial_number for p in parts}
    rows: list[LesionValue] = []
    prov: dict[str, Any] = {}
    for pid, a in sorted(current_analyses(session, parts).items(), key=lambda kv: tn[kv[0]]):
        prov[tn[pid]] = {"analysis_id": a.id, "kind": a.kind, "software_version": a.software_version,
                         "created_at": a.created_at.isoformat() if a.created_at else None}
        for v in (a.result or {}).get("vois") or []:
            rows.append(LesionValue(tn[pid], str(v.get("name", "?")), str(v.get("kind", "other")),
                                    (v.get("iv") or {}).get(metric), (v.get("iah") or {}).get(metric)))
    return rows, [], prov


def primary_endpoint(session: Session, actor: Actor, *, metric: str = "suv_mean", kind: str = "lesion",
                     seed: int = DEFAULT_SEED, n_boot: int = DEFAULT_N_BOOT) -> dict[str, Any]:
    rows, extra, _ = lesion_values(session, actor, metric)
    return analyse_ratios(rows, metric=metric, kind=kind, seed=seed, n_boot=n_boot, extra_exclusions=extra)


# --------------------------------------------------------------------------------- secondary


def _visits(session: Session, ids: list[int]) -> dict[int, list[Visit]]:
    out: dict[int, list[Visit]] = defaultdict(list)
    for v in session.scalars(select(Visit).where(Visit.participant_id.in_(ids or [-1])).order_by(Visit.id)):
        out[v.participant_id].append(v)
    return out


def _done(vs: list[Visit], kind: str) -> list[Visit]:
    return sorted((v for v in vs if v.kind == kind and v.status == "done"),
                  key=lambda v: (v.visit_date or dt.date.max, v.number))


def consort(session: Session, parts: list[Participant], visits: dict[int, list[Visit]],
            analysed: set[str]) -> dict[str, Any]:
    ids = [p.id for p in parts]
    latest: dict[int, ScreeningResult] = {}
    for s in session.scalars(select(ScreeningResult).where(ScreeningResult.participant_id.in_(ids or [-1]))
                             .order_by(ScreeningResult.created_at, ScreeningResult.id)):
        latest[s.participant_id] = s
    by_crit: Counter[str] = Counter()
    ineligible = incomplete = 0
    for s in latest.values():
        if s.overall == "ineligible":
            ineligible += 1
            for c in (s.result or {}).get("criteria", []):
                if c.get("status") == "fail":
                    by_crit[str(c.get("id"))] += 1
        elif s.overall != "eligible":
            incomplete += 1
    enrolled = set(session.scalars(select(Enrolment.participant_id).where(Enrolment.participant_id.in_(ids or [-1]))))
    pet_pair = {p.id for p in parts if _done(visits[p.id], "pet_after_iv") and _done(visits[p.id], "pet_after_iah")}
    iah = {p.id for p in parts if _done(visits[p.id], "iah_cycle")}
    withdrawn = []
    notes = {c.participant_id: c.withdrawal_note for c in session.scalars(
        select(Consent).where(Consent.participant_id.in_(ids or [-1]), Consent.withdrawal_date.is_not(None)))}
    for p in parts:
        if p.status == "withdrawn" or p.id in notes:
            withdrawn.append({"participant": p.trial_number, "reason": notes.get(p.id) or "not recorded"})
    return {
        "registered": len(parts),
        "screened": len(latest),
        "ineligible": ineligible,
        "ineligible_by_criterion": dict(sorted(by_crit.items())),
        "incomplete": incomplete,
        "eligible": sum(1 for s in latest.values() if s.overall == "eligible"),
        "enrolled": len(enrolled),
        "pet_pair_done": len(pet_pair),
        "iah_given": len(iah),
        "analysed": len(analysed),
        "withdrawn": len(withdrawn),
        "withdrawals": withdrawn,
        "note": "ineligible_by_criterion counts participants failing each criterion (one may fail several)",
    }


def _phase(day: dt.date, first_iv: dt.date | None, iah: dt.date | None) -> str:
    if iah is not None and day >= iah:
        return "after_iah"
    if first_iv is not None and day >= first_iv:
        return "iv_cycles"
    return "before_treatment"


def safety(session: Session, parts: list[Participant], visits: dict[int, list[Visit]]) -> dict[str, Any]:
    ids = [p.id for p in parts]
    tn = {p.id: p.trial_number for p in parts}
    worst: dict[tuple[str, str, str], dict[str, Any]] = {}
    serious = []
    events: list[tuple[int, str, int, dt.date, str]] = []
    for ae in session.scalars(select(AdverseEvent).where(AdverseEvent.participant_id.in_(ids or [-1]))
                              .order_by(AdverseEvent.onset_date, AdverseEvent.id)):
        events.append((ae.participant_id, ae.term, ae.grade, ae.onset_date, "adverse_event"))
        if ae.serious:
            serious.append({"participant": tn[ae.participant_id], "term": ae.term, "grade": ae.grade,
                            "onset_date": ae.onset_date.isoformat(), "relatedness": ae.relatedness,
                            "outcome": ae.outcome})
    for lab in session.scalars(select(LabResult).where(LabResult.participant_id.in_(ids or [-1]),
                                                       LabResult.ctcae_grade.is_not(None))
                               .order_by(LabResult.collected_date, LabResult.id)):
        if lab.ctcae_grade and lab.ctcae_term:
            events.append((lab.participant_id, lab.ctcae_term, int(lab.ctcae_grade), lab.collected_date, "lab"))
    for pid, term, grade, day, source in events:
        ivs, iahs = _done(visits[pid], "iv_cycle"), _done(visits[pid], "iah_cycle")
        phase = _phase(day, ivs[0].visit_date if ivs else None, iahs[0].visit_date if iahs else None)
        key = (tn[pid], term, phase)
        if key not in worst or grade > worst[key]["worst_grade"]:
            worst[key] = {"participant": tn[pid], "term": term, "phase": phase, "worst_grade": grade, "source": source}
    rows = [worst[k] for k in sorted(worst)]
    g3: dict[str, dict[str, int]] = {}
    for phase in ("iv_cycles", "after_iah"):
        sel = [r for r in rows if r["phase"] == phase and r["worst_grade"] >= 3]
        g3[phase] = {"participants": len({r["participant"] for r in sel}), "participant_terms": len(sel)}
    return {"worst_grade": rows, "grade3plus": g3, "serious": serious, "dose_decisions": _dose_decisions(
        session, parts, visits), "phases": {"iv_cycles": "from the first IV cycle to the day before the IAH cycle",
                                            "after_iah": "from the IAH cycle on",
                                            "before_treatment": "before any cycle"}}


def _dose_decisions(session: Session, parts: list[Participant], visits: dict[int, list[Visit]]) -> list[dict[str, Any]]:
    """The LUTATHERA dose-modification engine at each treated participant's latest data."""
    from lutarterial.clinical.dosing import Administration, AdverseEventRecord, DoseHistory, LabValue, decide_next_dose
    from lutarterial.errors import LutarterialError

    out = []
    for p in parts:
        given = [v for v in visits[p.id] if v.kind in ("iv_cycle", "iah_cycle") and v.status == "done"
                 and v.visit_date is not None and v.activity_mbq]
        if not given:
            continue
        admins = tuple(Administration(v.visit_date, float(v.activity_mbq) / 1000.0,  # type: ignore[arg-type]
                                      "IAH" if v.kind == "iah_cycle" else "IV", v.number) for v in given)
        labs = tuple(LabValue(lab.collected_date, lab.analyte, lab.value, lab.unit, lab.lln, lab.uln, id=str(lab.id))
                     for lab in session.scalars(select(LabResult).where(LabResult.participant_id == p.id)))
        aes = tuple(AdverseEventRecord(str(a.id), a.term, a.grade, a.onset_date, a.resolution_date, a.relatedness)
                    for a in session.scalars(select(AdverseEvent).where(AdverseEvent.participant_id == p.id)))
        dates = [a.date for a in admins] + [lab.date for lab in labs] + [a.onset for a in aes]
        try:
            d = decide_next_dose(DoseHistory(p.trial_number, max(dates), admins, labs, aes))
            out.append({"participant": p.trial_number, "decision_date": d.decision_date, "decision": d.decision,
                        "activity_gbq": d.activity_gbq, "rules": [r.rule_id for r in d.rules]})
        except LutarterialError as exc:
            out.append({"participant": p.trial_number, "decision_date": max(dates).isoformat(), "decision": None,
                        "reason": str(exc)})
    return out


_BOR_RANK = {"CR": 0, "PR": 1, "SD": 2, "NON-CR/NON-PD": 2, "PD": 3, "NE": 4}


def _recist_results(session: Session, parts: list[Participant]) -> dict[str, dict[str, Any]]:
    """trial number -> {"all": RecistResult-like dict, "liver": ...} re-evaluated by the RECIST engine."""
    from lutarterial.clinical.recist import evaluate_recist_scopes, parse_recist_input
    from lutarterial.errors import LutarterialError

    out: dict[str, dict[str, Any]] = {}
    for p in parts:
        rows = list(session.scalars(select(RecistAssessment).where(RecistAssessment.participant_id == p.id)
                                    .order_by(RecistAssessment.assessment_date, RecistAssessment.id)))
        if not rows:
            continue
        docs = [{"date": r.assessment_date.isoformat(), "baseline": bool((r.details or {}).get("baseline")),
                 "lesions": (r.details or {}).get("lesions") or []} for r in rows]
        try:
            if not all(d["lesions"] for d in docs) or not docs[0]["baseline"]:
                raise LutarterialError("no lesion measurements stored")
            res = evaluate_recist_scopes(parse_recist_input({"assessments": docs})[1], patient=p.trial_number)
            out[p.trial_number] = {
                scope: {"bor": r.best_overall_response, "progression_date": r.progression_date,
                        "last_assessment": rows[-1].assessment_date.isoformat(), "source": "RECIST engine"}
                for scope, r in res.items() if scope in ("all", "liver")}
        except LutarterialError:
            post = [r for r in rows if not (r.details or {}).get("baseline")]
            best = min((r.response.upper() for r in post), key=lambda x: _BOR_RANK.get(x, 5), default="NE")
            pd_dates = [r.assessment_date.isoformat() for r in post if r.response.upper() == "PD"]
            entry = {"bor": best if best != "NON-CR/NON-PD" else "Non-CR/Non-PD",
                     "progression_date": pd_dates[0] if pd_dates else None,
                     "last_assessment": rows[-1].assessment_date.isoformat(),
                     "source": "stored time-point responses (unconfirmed best)"}
            out[p.trial_number] = {"all": entry, "liver": {**entry, "bor": "NE", "progression_date": None,
                                                           "source": "no lesion measurements: liver-only not evaluable"}}
    return out


def response(recist: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"denominator": "participants with a baseline RECIST assessment",
                           "per_participant": [{"participant": tn, "bor_whole_body": r["all"]["bor"],
                                                "bor_liver": r["liver"]["bor"]} for tn, r in sorted(recist.items())]}
    for scope, key in (("whole_body", "all"), ("liver_only", "liver")):
        bors = [r[key]["bor"].upper() for r in recist.values()]
        n = len(bors)
        counts = Counter(bors)
        responders = counts["CR"] + counts["PR"]
        control = responders + counts["SD"] + counts["NON-CR/NON-PD"]
        out[scope] = {"n": n, "bor_counts": dict(sorted(counts.items())),
                      "orr": clopper_pearson(responders, n).to_dict(), "dcr": clopper_pearson(control, n).to_dict()}
    return out


def survival(parts: list[Participant], visits: dict[int, list[Visit]], recist: dict[str, dict[str, Any]],
             deaths: dict[int, dt.date]) -> dict[str, Any]:
    """PFS and hepatic PFS from the IAH cycle: progression (or death) vs censoring at the last assessment."""
    out: dict[str, Any] = {"origin": "date of the IAH cycle", "time_unit": "days"}
    for name, key in (("pfs", "all"), ("hepatic_pfs", "liver")):
        durations, events, rows = [], [], []
        for p in parts:
            iah = _done(visits[p.id], "iah_cycle")
            if not iah or iah[0].visit_date is None or p.trial_number not in recist:
                continue
            origin = iah[0].visit_date
            r = recist[p.trial_number][key]
            ev_dates = [dt.date.fromisoformat(r["progression_date"])] if r.get("progression_date") else []
            if p.id in deaths:
                ev_dates.append(deaths[p.id])
            if ev_dates:
                end, ev = min(ev_dates), True
            else:
                end, ev = dt.date.fromisoformat(r["last_assessment"]), False
            days = max(0, (end - origin).days)
            durations.append(days)
            events.append(ev)
            rows.append({"participant": p.trial_number, "days": days, "event": ev})
        km = kaplan_meier(durations, events, label=name)
        out[name] = {**km.to_dict(), "per_participant": rows,
                     "curve": [list(c) for c in km.curve]}
    return out


DOSE_REGIONS = {"tumour": "lesion", "kidney": "kidney", "spleen": "spleen", "marrow": "marrow"}


def _region(v: dict[str, Any]) -> str | None:
    organ = str(v.get("organ") or "").lower()
    if str(v.get("kind") or "").lower() in ("lesion", "tumour", "tumor", "extrahepatic"):
        return "tumour"
    if organ.startswith("kidney") or str(v.get("voi", "")).lower().startswith("kidney"):
        return "kidney"
    if organ == "spleen":
        return "spleen"
    if "marrow" in organ or "marrow" in str(v.get("voi", "")).lower():
        return "marrow"
    return None


def dosimetry(session: Session, parts: list[Participant], visits: dict[int, list[Visit]], *, seed: int,
              n_boot: int) -> dict[str, Any]:
    """Absorbed dose per administered GBq by region, IAH cycle vs IV cycles (paired where both exist)."""
    import statistics as pystats

    tn = {p.id: p.trial_number for p in parts}
    stmt = _current(DosimetryAnalysis, select(DosimetryAnalysis).where(
        DosimetryAnalysis.participant_id.in_(list(tn) or [-1])))
    latest: dict[tuple[str, str, str], tuple[str, float]] = {}
    for a in session.scalars(stmt.order_by(DosimetryAnalysis.created_at, DosimetryAnalysis.id)):
        res = a.result or {}
        for v in res.get("vois") or []:
            region, dose = _region(v), v.get("dose_gy")
            cycle = str(v.get("cycle") or "").upper()
            if region is None or not isinstance(dose, (int, float)) or not cycle:
                continue
            route = "IAH" if cycle.startswith("IAH") else "IV" if cycle.startswith("IV") else None
            if route is None:
                continue
            act = v.get("activity_mbq") or res.get(f"activity_mbq_{cycle.lower()}")
            if act is None and route == "IAH":
                act = res.get("therapy_activity_mbq")
            if act is None:
                kind = "iah_cycle" if route == "IAH" else "iv_cycle"
                num = int("".join(ch for ch in cycle if ch.isdigit()) or 1)
                match = [x for x in _done(visits[a.participant_id], kind) if x.number == num]
                act = match[0].activity_mbq if match else None
            if not act or act <= 0:
                continue
            latest[(tn[a.participant_id], str(v.get("voi")), cycle)] = (region, float(dose) / (float(act) / 1000.0))
    per: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (participant, voi, route) -> Gy/GBq
    regions: dict[tuple[str, str], str] = {}
    for (p, voi, cycle), (region, gy_gbq) in latest.items():
        route = "IAH" if cycle.startswith("IAH") else "IV"
        per[(p, voi, route)].append(gy_gbq)
        regions[(p, voi)] = region
    out: dict[str, Any] = {"unit": "Gy/GBq", "rows": []}
    for (p, voi, route), vals in sorted(per.items()):
        out["rows"].append({"participant": p, "voi": voi, "region": regions[(p, voi)], "route": route,
                            "gy_per_gbq": sum(vals) / len(vals), "n_cycles": len(vals)})
    for region, kind in DOSE_REGIONS.items():
        block: dict[str, Any] = {}
        for route in ("IAH", "IV"):
            vals = [r["gy_per_gbq"] for r in out["rows"] if r["region"] == region and r["route"] == route]
            block[route.lower()] = {"n_vois": len(vals), "n_patients": len({r["participant"] for r in out["rows"]
                                                                             if r["region"] == region
                                                                             and r["route"] == route}),
                                    "median": pystats.median(vals) if vals else None,
                                    "min": min(vals) if vals else None, "max": max(vals) if vals else None}
        pairs = [LesionValue(p, voi, kind, per[(p, voi, "IV")][0] if (p, voi, "IV") in per else None,
                             sum(per[(p, voi, "IAH")]) / len(per[(p, voi, "IAH")]))
                 for (p, voi), reg in sorted(regions.items()) if reg == region and (p, voi, "IAH") in per
                 and (p, voi, "IV") in per]
        if pairs:
            paired = analyse_ratios(pairs, metric="gy_per_gbq", kind=kind, seed=seed, n_boot=n_boot)
            block["paired"] = {k: paired[k] for k in ("n_patients", "n_lesions", "primary", "mixed_model",
                                                      "per_lesion_paired", "bootstrap")}
        else:
            block["paired"] = {"n_patients": 0, "n_lesions": 0,
                               "reason": "no VOI has both an IAH-cycle and an IV-cycle dose"}
        out[region] = block
    return out


def secondary_endpoints(session: Session, actor: Actor, *, seed: int = DEFAULT_SEED,
                        n_boot: int = DEFAULT_N_BOOT) -> dict[str, Any]:
    """CONSORT flow, safety, response, PFS and dosimetry of the participants the actor may see."""
    parts = scoped_participants(session, actor)
    ids = [p.id for p in parts]
    visits = _visits(session, ids)
    rows, _, _ = lesion_values(session, actor, "suv_mean")
    from lutarterial.statistics.ratios import build_log_ratios

    analysed = {x.participant for x in build_log_ratios(rows, kind="lesion")[0]}
    recist = _recist_results(session, parts)
    deaths = {a.participant_id: a.onset_date for a in session.scalars(
        select(AdverseEvent).where(AdverseEvent.participant_id.in_(ids or [-1]), AdverseEvent.grade == 5))}
    return {
        "consort": consort(session, parts, visits, analysed),
        "safety": safety(session, parts, visits),
        "response": response(recist),
        "survival": survival(parts, visits, recist, deaths),
        "dosimetry": dosimetry(session, parts, visits, seed=seed, n_boot=n_boot),
        "scope": scope(session, actor),
    }


def scope(session: Session, actor: Actor) -> dict[str, Any]:
    codes = list(session.scalars(restrict_to_sites(select(Site.code), actor, Site.id).order_by(Site.code)))
    return {"sites": codes, "all_sites": actor.all_sites}


def data_snapshot(session: Session, actor: Actor) -> dict[str, Any]:
    """Audit head (hash, position, time) and counts of the rows the report is built from."""
    head = session.execute(select(AuditEntry.id, AuditEntry.row_hash, AuditEntry.occurred_at)
                           .order_by(AuditEntry.id.desc()).limit(1)).first()
    parts = scoped_participants(session, actor)
    ids = [p.id for p in parts] or [-1]
    counts = {"participants": len(parts)}
    for name, model in (("visits", Visit), ("labs", LabResult), ("adverse_events", AdverseEvent),
                        ("recist_assessments", RecistAssessment), ("imaging_analyses", ImagingAnalysis),
                        ("dosimetry_analyses", DosimetryAnalysis), ("screening_results", ScreeningResult)):
        counts[name] = int(session.scalar(select(func.count()).select_from(model)
                                          .where(model.participant_id.in_(ids))) or 0)
    return {"audit_head_id": head[0] if head else 0, "audit_head_hash": head[1] if head else None,
            "audit_head_time": head[2] if head else None, "counts": counts, **scope(session, actor)}
