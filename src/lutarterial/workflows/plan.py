"""Choose a participant's stored series for the analyses and run them (``study analyse``, web jobs).

:func:`plan_analyses` reads the registry (series, current analyses) and picks, unless given:

* IV / IAH PET: the participant's single PT series of that route (several or none: an error that
  lists the candidates to choose with ``--iv-series`` / ``--iah-series``);
* their VOIs: the single SEG / RTSTRUCT / label-map series on the PET's frame of reference or in
  its study (or ``voi`` paths: one for both studies, or two = IV then IAH); a ``names.json``
  imported with the VOI series is used unless ``names`` is given;
* SPECT: the NM series of the IAH administration (one administration time), at least two time
  points, with the label map on their frame of reference;
* prior cycles: current dosimetry analyses of other kinds whose VOI cycles start with ``IV``.

:func:`run_plan` materialises the chosen series as folders of links into the store and calls
the pure analyses (:mod:`.analyse`); nothing is written to the registry there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError
from lutarterial.registry.access import Actor
from lutarterial.registry.models import DosimetryAnalysis, ImagingSeries
from lutarterial.registry.services._common import load_participant
from lutarterial.workflows.analyse import DOSIMETRY_KIND, AnalysisOutcome, spect_dosimetry_analysis, uptake_analysis
from lutarterial.workflows.studies import VOI_MODALITIES, materialise_series

__all__ = ["AnalysisPlan", "plan_analyses", "run_plan", "materialise_plan", "compute_plan"]


@dataclass
class AnalysisPlan:
    """What to analyse: stored series ids (materialised at run time) or given paths."""

    participant: str
    iv_series: int | None = None
    iah_series: int | None = None
    iv_voi_series: int | None = None
    iah_voi_series: int | None = None
    voi_paths: list[str] = field(default_factory=list)
    names_path: str | None = None
    spect_series: list[int] = field(default_factory=list)
    spect_labels_series: int | None = None
    calibration: str | None = None
    prior_doses: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    described: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"participant": self.participant, **self.described, "notes": list(self.notes)}


def _label(s: ImagingSeries) -> str:
    return (f"{s.series_instance_uid} ({s.modality}, {s.acquisition_time or 'no date'}, route {s.route or '?'}, "
            f"{s.description or ''})")


def _pick(cands: list[ImagingSeries], what: str, option: str) -> ImagingSeries:
    if len(cands) == 1:
        return cands[0]
    if not cands:
        raise InvalidInputError(f"no {what} series imported; import it or choose one with {option} UID")
    raise InvalidInputError(f"several {what} series; choose one with {option} UID: "
                            + "; ".join(_label(s) for s in cands[:8])
                            + (f" and {len(cands) - 8} more" if len(cands) > 8 else ""))


def _by_uid(series: list[ImagingSeries], uid: str, modality: tuple[str, ...], option: str) -> ImagingSeries:
    for s in series:
        if s.series_instance_uid == uid:
            if s.modality not in modality:
                raise InvalidInputError(f"{option} {uid} is a {s.modality} series, expected {'/'.join(modality)}")
            return s
    raise InvalidInputError(f"{option} {uid}: no such series imported for this participant")


def _voi_for(series: list[ImagingSeries], img: ImagingSeries, what: str) -> ImagingSeries:
    vois = [s for s in series if s.modality in VOI_MODALITIES
            and ((s.frame_of_reference_uid and s.frame_of_reference_uid == img.frame_of_reference_uid)
                 or s.study_id == img.study_id)]
    if len(vois) > 1:
        same_study = [s for s in vois if s.study_id == img.study_id]
        vois = same_study or vois
    if not vois:
        raise InvalidInputError(f"no VOI series (SEG, RTSTRUCT or label map) for the {what} "
                                f"{img.series_instance_uid}; import one or give --voi PATH")
    return _pick(vois, f"VOI for the {what}", "--voi PATH (or import only one)")


def plan_analyses(session: Session, actor: Actor, participant: int | str, *, iv_series: str | None = None,
                  iah_series: str | None = None, voi: list[str] | None = None, names: str | None = None,
                  spect_series: list[str] | None = None, calibration: str | None = None,
                  uptake: bool = True, dosimetry: bool = True) -> AnalysisPlan:
    p = load_participant(session, actor, participant)
    series = list(session.scalars(select(ImagingSeries).where(ImagingSeries.participant_id == p.id)
                                  .order_by(ImagingSeries.acquisition_time, ImagingSeries.id)))
    plan = AnalysisPlan(p.trial_number, names_path=names, calibration=calibration, voi_paths=list(voi or []))
    if len(plan.voi_paths) > 2:
        raise InvalidInputError("--voi: give one path (both PET studies) or two (IV then IAH)")
    if plan.voi_paths and not names:
        plan.notes.append("VOI kinds inferred from the segment labels (no --names)")
    pts = [s for s in series if s.modality == "PT"]
    if uptake:
        iv = (_by_uid(series, iv_series, ("PT",), "--iv-series") if iv_series
              else _pick([s for s in pts if s.route == "iv"], "IV PET", "--iv-series"))
        iah = (_by_uid(series, iah_series, ("PT",), "--iah-series") if iah_series
               else _pick([s for s in pts if s.route == "iah"], "IAH PET", "--iah-series"))
        if iv.id == iah.id:
            raise InvalidInputError("the IV and IAH PET series are the same series")
        plan.iv_series, plan.iah_series = iv.id, iah.id
        if not plan.voi_paths:
            plan.iv_voi_series = _voi_for(series, iv, "IV PET").id
            plan.iah_voi_series = _voi_for(series, iah, "IAH PET").id
        plan.described.update(iv_series=iv.series_instance_uid, iah_series=iah.series_instance_uid)
    if dosimetry:
        nms = [s for s in series if s.modality == "NM"]
        if spect_series:
            chosen = [_by_uid(series, u, ("NM",), "--spect-series") for u in spect_series]
        else:
            groups: dict[str | None, list[ImagingSeries]] = defaultdict(list)
            for s in nms:
                groups[s.injection_time].append(s)
            iah_groups = {k: v for k, v in groups.items() if any(s.route == "iah" for s in v)}
            cand = iah_groups or ({k: v for k, v in groups.items() if all(s.route is None for s in v)})
            if not cand:
                raise InvalidInputError("no SPECT (NM) series of the IAH cycle imported; import the 177Lu SPECT "
                                        "time points or choose them with --spect-series UID ...")
            if len(cand) > 1:
                raise InvalidInputError("SPECT series of several administrations; choose them with --spect-series: "
                                        + "; ".join(f"administration {k}: " + ", ".join(s.series_instance_uid for s in v)
                                                    for k, v in cand.items()))
            chosen = next(iter(cand.values()))
        if len(chosen) < 2:
            raise InvalidInputError(f"SPECT dosimetry needs at least two time points; found {len(chosen)}")
        plan.spect_series = [s.id for s in chosen]
        labels = [s for s in series if s.modality in VOI_MODALITIES
                  and s.frame_of_reference_uid == chosen[0].frame_of_reference_uid]
        plan.spect_labels_series = _pick(labels, "VOI on the SPECT frame of reference", "an import of only one").id
        plan.described.update(spect_series=[s.series_instance_uid for s in chosen],
                              spect_time_after_admin_h=[s.time_after_admin_h for s in chosen])
        prior = []
        for a in session.scalars(select(DosimetryAnalysis).where(DosimetryAnalysis.participant_id == p.id,
                                                                 DosimetryAnalysis.kind != DOSIMETRY_KIND,
                                                                 DosimetryAnalysis.superseded_by_id.is_(None))):
            for v in (a.result or {}).get("vois", []):
                if str(v.get("cycle", "")).upper().startswith("IV") and v.get("dose_gy") is not None:
                    prior.append({"voi": v["voi"], "cycle": v["cycle"], "dose_gy": v["dose_gy"],
                                  "teff_h": v.get("teff_h"), "analysis_id": a.id})
        plan.prior_doses = sorted(prior, key=lambda d: (d["voi"], d["cycle"]))
        if not prior:
            plan.notes.append("no prior IV-cycle dosimetry recorded: cumulative doses are the IAH cycle only")
    return plan


def _names_next_to(path: Path) -> str | None:
    cand = (path if path.is_dir() else path.parent) / "names.json"
    return str(cand) if cand.is_file() else None


def materialise_plan(session: Session, plan: AnalysisPlan, store: str | os.PathLike[str],
                     into: str | os.PathLike[str]) -> dict[str, Any]:
    """Folders of links into the store for every series of the plan (engine inputs), as paths."""
    def mat(sid: int | None) -> str:
        s = session.get(ImagingSeries, sid)
        if s is None:
            raise InvalidInputError(f"series {sid} no longer exists")
        return str(materialise_series(session, s, store, into=into))

    paths: dict[str, Any] = {}
    if plan.iv_series and plan.iah_series:
        paths["iv"], paths["iah"] = mat(plan.iv_series), mat(plan.iah_series)
        if plan.voi_paths:
            paths["iv_voi"], paths["iah_voi"] = plan.voi_paths[0], plan.voi_paths[-1]
            paths["iv_names"] = paths["iah_names"] = plan.names_path
        else:
            paths["iv_voi"], paths["iah_voi"] = mat(plan.iv_voi_series), mat(plan.iah_voi_series)
            paths["iv_names"] = plan.names_path or _names_next_to(Path(paths["iv_voi"]))
            paths["iah_names"] = plan.names_path or _names_next_to(Path(paths["iah_voi"]))
    if plan.spect_series:
        paths["spect"] = [mat(i) for i in plan.spect_series]
        paths["spect_labels"] = mat(plan.spect_labels_series)
        paths["spect_names"] = _names_next_to(Path(paths["spect_labels"]))
    return paths


def compute_plan(plan: AnalysisPlan, paths: dict[str, Any], progress: Any = None,
                 png: bool = False) -> list[AnalysisOutcome]:
    """Run the pure analyses on materialised paths (no database)."""
    outcomes = []
    steps = (1 if "iv" in paths else 0) + (1 if "spect" in paths else 0)
    done = 0
    if "iv" in paths:
        outcomes.append(uptake_analysis(paths["iv"], paths["iv_voi"], paths["iah"], paths["iah_voi"],
                                        paths["iv_names"], iah_names=paths["iah_names"], png=png))
        done += 1
        if progress:
            progress(done / max(steps, 1), "IAH-vs-IV uptake comparison done")
    if "spect" in paths:
        outcomes.append(spect_dosimetry_analysis(paths["spect"], paths["spect_labels"], paths["spect_names"],
                                                 calibration=plan.calibration, prior_doses=plan.prior_doses))
        done += 1
        if progress:
            progress(done / max(steps, 1), "SPECT dosimetry done")
    return outcomes


def run_plan(session: Session, plan: AnalysisPlan, store: str | os.PathLike[str],
             progress: Any = None, png: bool = False) -> list[AnalysisOutcome]:
    """Materialise the plan's series and run the analyses (pure engines); returns the outcomes."""
    tmp_parent = Path(store) / "tmp"
    tmp_parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="analyse-", dir=tmp_parent))
    try:
        paths = materialise_plan(session, plan, store, tmp)
        return compute_plan(plan, paths, progress, png=png)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
