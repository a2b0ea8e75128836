"""RECIST 1.1 entered per lesion (issue 13): the form's context and the time point built from it.

Baseline: one row per lesion (target or non-target, organ, nodal, longest diameter / short axis).
Follow-up: a diameter for each baseline target, a status for each non-target, and new lesions.
The response is computed by ``lutarterial.clinical.recist`` from all stored time points plus this
one; the user never picks it (no preselected response).
"""

from __future__ import annotations

from typing import Any

from lutarterial.errors import InvalidInputError
from lutarterial.web.forms import group_rows

__all__ = ["form_context", "timepoint_from_form", "evaluate_with"]

NON_TARGET_STATUS = ("present", "absent", "unequivocal_progression")


def _stored_docs(p: dict[str, Any]) -> list[dict[str, Any]]:
    docs = []
    for r in p.get("recist") or []:
        det = r.get("details") or {}
        if isinstance(det, dict) and isinstance(det.get("lesions"), list):
            docs.append({"date": str(r["assessment_date"]), "baseline": bool(det.get("baseline")),
                         "lesions": det["lesions"], "new_lesions": det.get("new_lesions") or []})
    return docs


def form_context(p: dict[str, Any]) -> dict[str, Any]:
    """``mode`` baseline (no stored baseline with lesions) or follow_up with the baseline lesions."""
    base = next((d for d in _stored_docs(p) if d["baseline"]), None)
    if base is None:
        return {"mode": "baseline", "statuses": NON_TARGET_STATUS}
    targets = [le for le in base["lesions"] if le.get("role", "target") == "target"]
    non_targets = [le for le in base["lesions"] if le.get("role") == "non_target"]
    return {"mode": "follow_up", "targets": targets, "non_targets": non_targets, "statuses": NON_TARGET_STATUS,
            "baseline_date": base["date"]}


def _num(raw: str, what: str) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        raise InvalidInputError(f"{what}: {raw!r} is not a number (mm)") from None
    if not 0 <= v <= 1000:
        raise InvalidInputError(f"{what}: {v} mm is outside 0-1000 mm")
    return v


def timepoint_from_form(f: dict[str, str], ctx: dict[str, Any]) -> dict[str, Any]:
    """The engine's input document for the submitted time point (validated)."""
    date = (f.get("assessment_date") or "").strip()
    if not date:
        raise InvalidInputError("assessment date is required")
    if ctx["mode"] == "baseline":
        lesions = []
        for n, r in enumerate(group_rows(f, "grp.lesions."), 1):
            role = r.get("role") or "target"
            if role not in ("target", "non_target"):
                raise InvalidInputError(f"lesion {n}: role must be target or non-target")
            le: dict[str, Any] = {"id": r.get("id") or f"L{n}", "role": role, "organ": r.get("organ") or "unknown",
                                  "nodal": r.get("nodal") == "true"}
            d = _num(r.get("diameter_mm", ""), f"lesion {le['id']} diameter")
            if role == "target":
                if d is None:
                    raise InvalidInputError(f"target lesion {le['id']}: the diameter is required")
                le["diameter_mm"] = d
            else:
                le["status"] = "present"
            lesions.append(le)
        if not lesions:
            raise InvalidInputError("add at least one lesion (target or non-target) to the baseline")
        return {"date": date, "baseline": True, "lesions": lesions, "new_lesions": []}
    lesions = []
    for le in ctx["targets"]:
        d = _num(f.get(f"tgt.{le['id']}", ""), f"target {le['id']}")
        lesions.append({"id": le["id"], "diameter_mm": d} if d is not None else {"id": le["id"]})
    for le in ctx["non_targets"]:
        st = (f.get(f"nt.{le['id']}") or "").strip()
        if st and st not in NON_TARGET_STATUS:
            raise InvalidInputError(f"non-target {le['id']}: status {st!r}")
        lesions.append({"id": le["id"], "status": st} if st else {"id": le["id"]})
    new = [{"id": r.get("id") or f"N{n}", "organ": r.get("organ") or None, "equivocal": r.get("equivocal") == "true"}
           for n, r in enumerate(group_rows(f, "grp.new_lesions."), 1)]
    if not new and all(len(le) == 1 for le in lesions):
        raise InvalidInputError("nothing measured: enter the target diameters, the non-target statuses or new lesions")
    return {"date": date, "baseline": False, "lesions": lesions, "new_lesions": new}


def evaluate_with(p: dict[str, Any], doc: dict[str, Any]) -> tuple[str, float | None, dict[str, Any]]:
    """(overall response, sum of diameters, details to store) of ``doc`` evaluated with the stored
    time points by the clinical engine."""
    from lutarterial.clinical.recist import evaluate_recist, parse_recist_input

    docs = sorted([*_stored_docs(p), doc], key=lambda d: d["date"])
    result = evaluate_recist(parse_recist_input({"assessments": docs})[1], patient=p.get("trial_number"))
    tp = next(a for a in result.assessments if str(a.date) == doc["date"])
    details = {"baseline": doc["baseline"], "lesions": doc["lesions"], "new_lesions": doc["new_lesions"],
               "timepoint": tp.to_dict(), "engine": "lutarterial.clinical.recist.evaluate_recist"}
    return tp.overall or "NE", tp.sum_mm, details
