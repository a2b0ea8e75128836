"""Issue 10 on the web pages: the CTCAE baseline rule (safety page) and the protocol version
configuration of the participant's site (screening page). Read-only helpers over the backend."""

from __future__ import annotations

from typing import Any

__all__ = ["safety_flags", "screening_protocol_info"]


def safety_flags(backend: Any, p: dict[str, Any]) -> dict[str, Any]:
    """The registry's ``ctcae_require_baseline`` setting and, per lab id, whether a missing
    baseline was assumed normal when it was graded (from the stored grading)."""
    from sqlalchemy import select

    from lutarterial.registry import models as m
    from lutarterial.registry.services.settings import ctcae_require_baseline

    with backend.read() as s:
        strict = ctcae_require_baseline(s)
        ids = [lab["id"] for lab in p.get("labs", [])]
        assumed: dict[int, bool] = {}
        if ids:
            for lab_id, grading in s.execute(select(m.LabResult.id, m.LabResult.grading).where(m.LabResult.id.in_(ids))):
                assumed[lab_id] = bool((grading or {}).get("baseline_assumed"))
    return {"require_baseline": strict, "baseline_assumed": assumed}


def screening_protocol_info(backend: Any, p: dict[str, Any], on: str | None) -> dict[str, Any]:
    """The participant's site configuration, and which version applies on ``on`` and why."""
    import datetime as dt

    from lutarterial.registry import models as m
    from lutarterial.registry.services.settings import protocol_choice_for_site, site_protocol_configs

    with backend.read() as s:
        site_id = s.get(m.Participant, p["id"]).site_id
        configs = [{"protocol_version": r.protocol_version, "effective_date": r.effective_date.isoformat(),
                    "source": r.source} for r in site_protocol_configs(s, site_id)]
        try:
            day = dt.date.fromisoformat(str(on)) if on else dt.date.today()
        except ValueError:
            day = dt.date.today()
        version, why = protocol_choice_for_site(s, site_id, day)
    return {"configs": configs, "version": version, "why": why, "on": day.isoformat()}
