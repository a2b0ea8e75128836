"""One participant's report for the medical file: screening, timeline, imaging, dosimetry, safety, response.

Pseudonymised: the trial number is the only reference to the person.
"""

from __future__ import annotations

from typing import Any

from lutarterial.reports import figures as F

__all__ = ["participant_context"]


def participant_context(*, trial_number: str, site: str, status: str, screening: dict[str, Any] | None,
                        timeline: list[dict[str, Any]], imaging: dict[str, Any] | None,
                        dosimetry: dict[str, Any] | None, safety: dict[str, Any], recist: dict[str, Any] | None,
                        assessments: list[dict[str, Any]],
                        engine_figures: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    vois = (imaging or {}).get("result", {}).get("vois") or []
    dres = (dosimetry or {}).get("result", {})
    summary = ((imaging or {}).get("result", {}).get("summary") or {}).get("lesions", {}).get("suv_mean")
    fig = {"uptake": F.uptake_bars(vois), "tac": F.tac_plot(dres.get("tacs") or []),
           "limits": F.limits_plot(dres.get("cumulative") or [])}
    dvh = [v for v in dres.get("vois") or [] if v.get("dvh")]
    return {"trial_number": trial_number, "site": site, "status": status, "screening": screening,
            "timeline": timeline, "imaging": imaging, "vois": vois, "lesion_summary": summary,
            "dosimetry": dosimetry, "dose_vois": dres.get("vois") or [], "cumulative": dres.get("cumulative") or [],
            "has_dvh": bool(dvh), "safety": safety, "recist": recist, "assessments": assessments, "fig": fig,
            "engine_figures": engine_figures or {"imaging": [], "dosimetry": []},
            "title": f"participant report {trial_number}"}
