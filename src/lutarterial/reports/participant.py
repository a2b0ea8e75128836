"""One participant's report for the medical file: screening, timeline, imaging, dosimetry, safety, response.

Pseudonymised: the trial number is the only reference to the person.
"""

from __future__ import annotations

from typing import Any

from lutarterial.reports import figures as F

__all__ = ["participant_context", "signature_rows"]


def _utc(iso: str | None) -> str:
    """``2024-05-02T09:14:03.123Z`` -> ``2024-05-02 09:14:03 UTC`` (stored date-times are UTC)."""
    return "" if not iso else iso.replace("T", " ")[:19] + " UTC"


def signature_rows(signatures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Signatures (``list_signatures(..., describe=True)``) as printed (21 CFR 11.50): the signer's
    printed name, date-time with its time zone, meaning, what it covers and whether it still holds."""
    rows = []
    for s in signatures:
        if s.get("voided_at"):
            status, note = "voided", f"on {_utc(s['voided_at'])}, why: {s.get('void_reason') or 'no reason stored'}"
        elif s.get("valid"):
            status, note = "valid", "(the signed data are unchanged: content hash verified)"
        else:
            status, note = "not valid", "(the signed data differ from what was signed: content hash differs)"
        rows.append({"printed_name": s["printed_name"], "signer": s["signer"], "signed_at": _utc(s["signed_at"]),
                     "meaning": s["meaning"], "covers": s.get("covers") or (
                         "whole casebook" if not s.get("table_name") else f"{s['table_name']} #{s['row_id']}"),
                     "casebook": not s.get("table_name"), "status": status, "note": note,
                     "hash": str(s.get("content_hash") or "")[:16]})
    return rows


def participant_context(*, trial_number: str, site: str, status: str, screening: dict[str, Any] | None,
                        timeline: list[dict[str, Any]], imaging: dict[str, Any] | None,
                        dosimetry: dict[str, Any] | None, safety: dict[str, Any], recist: dict[str, Any] | None,
                        assessments: list[dict[str, Any]],
                        engine_figures: dict[str, list[dict[str, str]]] | None = None,
                        signatures: list[dict[str, Any]] | None = None,
                        other_signatures: int = 0) -> dict[str, Any]:
    vois = (imaging or {}).get("result", {}).get("vois") or []
    dres = (dosimetry or {}).get("result", {})
    summary = ((imaging or {}).get("result", {}).get("summary") or {}).get("lesions", {}).get("suv_mean")
    fig = {"uptake": F.uptake_bars(vois), "tac": F.tac_plot(dres.get("tacs") or []),
           "limits": F.limits_plot(dres.get("cumulative") or [])}
    dvh = [v for v in dres.get("vois") or [] if v.get("dvh")]
    sigs = signature_rows(signatures or [])
    casebook = [x for x in sigs if x["casebook"]]
    return {"trial_number": trial_number, "site": site, "status": status, "screening": screening,
            "timeline": timeline, "imaging": imaging, "vois": vois, "lesion_summary": summary,
            "dosimetry": dosimetry, "dose_vois": dres.get("vois") or [], "cumulative": dres.get("cumulative") or [],
            "has_dvh": bool(dvh), "safety": safety, "recist": recist, "assessments": assessments, "fig": fig,
            "engine_figures": engine_figures or {"imaging": [], "dosimetry": []},
            "signatures": sigs, "other_signatures": other_signatures,
            "casebook_signature": next((x for x in reversed(casebook) if x["status"] == "valid"),
                                       casebook[-1] if casebook else None),
            "title": f"participant report {trial_number}"}
