"""Registry -> report: gather results through the services, hand them to :mod:`lutarterial.reports`.

Access: the reading user's roles and sites decide what is seen (statistician: all sites);
any active role may read (as for all study data, no permission entry); participants appear by trial number only — the identity
key is never read here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.registry.services._common import require_active_actor
from lutarterial.registry.models import ImagingAnalysis, ScreeningResult
from lutarterial.statistics.ratios import DEFAULT_N_BOOT, DEFAULT_SEED, analyse_ratios, build_log_ratios
from lutarterial.registry.services import actor_by_username, signature_summary_by_site
from lutarterial.workflows.endpoints import (
    current_analyses,
    data_snapshot,
    lesion_values,
    secondary_endpoints,
)

__all__ = ["build_trial_report", "build_participant_report", "trial_report_context", "participant_report_context",
           "REPORT_FORMS"]

#: The forms whose data the participant report shows: their signatures are printed with it (21 CFR 11.50);
#: a signature on another form (the identity key, an import record, DICOM files) is counted, not shown.
REPORT_FORMS = frozenset({"participants", "consents", "screening_results", "enrolments", "visits", "lab_results",
                          "adverse_events", "recist_assessments", "imaging_analyses", "dosimetry_analyses"})


def _versions(session: Session, analyses: list[Any]) -> dict[str, str]:
    from lutarterial import __version__

    protocols = sorted(set(session.scalars(select(ScreeningResult.protocol_version).distinct())))
    soft = sorted({a.software_version for a in analyses if a.software_version})
    return {"Software": f"lutarterial {__version__}",
            "Protocol versions (screenings)": ", ".join(protocols) or "none",
            "Analysis software (imaging analyses used)": ", ".join(soft) or "none",
            "Statistics": "scipy (t, Clopper-Pearson), statsmodels MixedLM (REML), lifelines (Kaplan-Meier), numpy "
                          "default_rng (bootstrap)"}


def _pbpk_section(session: Session, actor: Any) -> dict[str, Any] | None:
    """Bland-Altman of PBPK-predicted vs measured IAH lesion SUV (issue 14's ``pbpk_prediction``
    analyses, the newest current one per participant), or None when there are none / too few."""
    from lutarterial.errors import LutarterialError
    from lutarterial.workflows.endpoints import _current, scoped_participants

    parts = {p.id: p.trial_number for p in scoped_participants(session, actor)}
    stmt = _current(ImagingAnalysis, select(ImagingAnalysis).where(
        ImagingAnalysis.kind == "pbpk_prediction", ImagingAnalysis.participant_id.in_(list(parts) or [-1])))
    newest: dict[int, Any] = {}
    for a in session.scalars(stmt.order_by(ImagingAnalysis.created_at, ImagingAnalysis.id)):
        newest[a.participant_id] = a
    if not newest:
        return None
    try:
        from lutarterial.pbpk.plots import bland_altman_figure, lesion_pairs
        from lutarterial.reports.figures import png_uri

        rows = [{**(a.result or {}), "participant": parts[pid]} for pid, a in sorted(newest.items())]
        png, stats = bland_altman_figure(lesion_pairs(rows))
    except (ImportError, LutarterialError) as exc:
        return {"figure": None, "reason": str(exc), "n_predictions": len(newest)}
    return {"figure": png_uri(png), "n_predictions": len(newest), **stats}


def trial_report_context(session: Session, actor: Any, *, seed: int = DEFAULT_SEED, n_boot: int = DEFAULT_N_BOOT,
                         metric: str = "suv_mean", command: str = "", source: str = "registry") -> dict[str, Any]:
    from lutarterial.reports.trial import lesion_table, trial_context

    require_active_actor(actor)  # reading needs no permission entry: any role, within its sites
    rows, extra, prov = lesion_values(session, actor, metric)
    ep = analyse_ratios(rows, metric=metric, kind="lesion", seed=seed, n_boot=n_boot, extra_exclusions=extra)
    lesions = lesion_table(build_log_ratios(rows, kind="lesion")[0])
    sec = secondary_endpoints(session, actor, seed=seed, n_boot=n_boot)
    snap = data_snapshot(session, actor)
    used = [session.get(ImagingAnalysis, p["analysis_id"]) for p in prov.values()]
    ctx = trial_context(ep, lesions, sec=sec, snapshot=snap, versions=_versions(session, used), command=command,
                        source=source)
    ctx["pbpk"] = _pbpk_section(session, actor)
    ctx["signatures"] = signature_summary_by_site(session, actor)
    return ctx


def build_trial_report(session: Session, username: str, out_dir: Path, *, seed: int = DEFAULT_SEED,
                       n_boot: int = DEFAULT_N_BOOT, metric: str = "suv_mean", command: str = "",
                       source: str = "registry") -> list[Path]:
    """Write ``report.html`` and ``report.pdf`` for the user ``username`` into ``out_dir``."""
    from lutarterial.reports.trial import write_report

    actor = actor_by_username(session, username)
    ctx = trial_report_context(session, actor, seed=seed, n_boot=n_boot, metric=metric, command=command,
                               source=source)
    return write_report(out_dir, ctx)


def _stored_figures(analysis: Any, figure_dir: Path | None) -> list[dict[str, str]]:
    """The engine's stored PNG figures (``result.figures``: sha256 + caption) read from ``figure_dir``."""
    from lutarterial.reports.figures import png_uri

    out = []
    for f in ((analysis.result or {}).get("figures") or []) if analysis is not None and figure_dir else []:
        sha = str(f.get("sha256", ""))
        path = Path(figure_dir) / f"{sha}.png"  # type: ignore[arg-type]
        if len(sha) == 64 and all(c in "0123456789abcdef" for c in sha) and path.is_file():
            out.append({"uri": png_uri(path.read_bytes()), "caption": str(f.get("caption", ""))})
    return out


def participant_report_context(session: Session, actor: Any, trial_number: str, *,
                               figure_dir: Path | None = None) -> dict[str, Any]:
    """Screening, timeline, imaging, dosimetry, safety, response and signatures of one participant (no identity)."""
    from lutarterial.registry import services
    from lutarterial.reports.participant import participant_context
    from lutarterial.workflows.endpoints import _recist_results, _visits, safety

    require_active_actor(actor)  # reading needs no permission entry: any role, within its sites
    p = services.get_participant(session, actor, trial_number)
    screening = session.scalars(select(ScreeningResult).where(ScreeningResult.participant_id == p.id)
                                .order_by(ScreeningResult.created_at.desc(), ScreeningResult.id.desc())).first()
    timeline = [{"date": i.date.isoformat() if i.date else "planned", "label": i.label, "status": i.status}
                for i in services.participant_timeline(session, actor, p.id)]
    imaging = current_analyses(session, [p]).get(p.id)
    dosimetry = current_analyses(session, [p], dosimetry=True).get(p.id)
    visits = _visits(session, [p.id])
    saf = safety(session, [p], visits)
    recist = _recist_results(session, [p]).get(p.trial_number)
    assessments = [{"date": r.assessment_date.isoformat(), "response": r.response, "sum_mm": r.target_sum_mm}
                   for r in services.list_recist(session, actor, p.id)]
    sigs = services.list_signatures(session, actor, p.id, describe=True)  # hashes re-checked
    shown = [x for x in sigs if x["table_name"] is None or x["table_name"] in REPORT_FORMS]
    return participant_context(
        trial_number=p.trial_number, site=p.site.code, status=p.status,
        screening=None if screening is None else {"overall": screening.overall,
                                                  "protocol_version": screening.protocol_version,
                                                  "as_of": screening.as_of.isoformat(),
                                                  "criteria": (screening.result or {}).get("criteria", [])},
        timeline=timeline,
        imaging=None if imaging is None else {"id": imaging.id, "kind": imaging.kind, "result": imaging.result,
                                              "software_version": imaging.software_version},
        dosimetry=None if dosimetry is None else {"id": dosimetry.id, "kind": dosimetry.kind,
                                                  "result": dosimetry.result,
                                                  "software_version": dosimetry.software_version},
        safety=saf, recist=recist, assessments=assessments,
        signatures=shown, other_signatures=len(sigs) - len(shown),
        engine_figures={"imaging": _stored_figures(imaging, figure_dir),
                        "dosimetry": _stored_figures(dosimetry, figure_dir)})


def build_participant_report(session: Session, username: str, trial_number: str, out_dir: Path, *,
                             figure_dir: Path | None = None) -> list[Path]:
    """Write ``<trial number>.html`` and ``<trial number>.pdf`` into ``out_dir``."""
    from lutarterial.reports.trial import write_report

    actor = actor_by_username(session, username)
    ctx = participant_report_context(session, actor, trial_number, figure_dir=figure_dir)
    return write_report(out_dir, ctx, template="participant.html", stem=ctx["trial_number"])
