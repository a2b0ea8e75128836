"""The demo's data-management story (issue 13).

The demo data pass every edit check — registration agrees with the screening record (sex, birth
year, site), the consent form with the record's consent date, IV cycles 1-4 are recorded from the
record's cycle history, visits fall in their windows — except a few deliberate discrepancies a
newcomer finds as open queries:

* ``BDX/iah_given`` (BDX-005): registered as born 1955, the screening record says 1951-01-01
  (``XF-BIRTH``);
* ``TLS/follow_up``: follow-up 1 done 10 days after its window closed (``SCH-WINDOW``);
* ``TLS/eligible``: consent form dated 2 days after the consent date in the screening record
  (``XF-CONSENT``).

And one worked example on ``BDX/follow_up`` (BDX-006): a monitor's query on a lab value answered
by the coordinator and closed, the registration form source-verified, and the casebook signed by
the investigator ("reviewed and approved").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["DISCREPANCIES", "record_for", "registration_from_record", "record_iv_history", "follow_up_1_day",
           "story"]

DISCREPANCIES = {
    "BDX/iah_given": "XF-BIRTH: registered as born 1955, screening record 1951-01-01",
    "TLS/follow_up": "SCH-WINDOW: follow-up 1 done 10 days after its window",
    "TLS/eligible": "XF-CONSENT: consent form dated 2 days after the record's consent date",
}


def record_for(rec: dict[str, Any], label: str) -> dict[str, Any]:
    """The screening record as the demo stores it (BDX-005's birth date set to 1951-01-01)."""
    if label == "BDX/iah_given":
        return {**rec, "patient": {**(rec.get("patient") or {}), "birth_date": "1951-01-01"}}
    return rec


def registration_from_record(rec: dict[str, Any], label: str, *, default_consent: str) -> tuple[str | None, int | None, str]:
    """(sex, year of birth, consent date) for the registration and consent forms, from the record."""
    patient = rec.get("patient") or {}
    sex = {"female": "F", "male": "M"}.get(str(patient.get("sex", "")).lower())
    birth = str(patient.get("birth_date") or "")
    yob = int(birth[:4]) if birth[:4].isdigit() else None
    consent = str((rec.get("administrative") or {}).get("informed_consent_date") or default_consent)
    if label == "BDX/iah_given":
        yob = 1955
    if label == "TLS/eligible":
        consent = (dt.date.fromisoformat(consent) + dt.timedelta(days=2)).isoformat()
    return sex, yob, consent


def record_iv_history(s: Any, services: Any, coord: Any, tn: str, rec: dict[str, Any]) -> None:
    """IV LUTATHERA cycles 1-4 as visits, dated and dosed as in the screening record's history."""
    cycles = sorted((c for c in rec.get("lutathera_cycles") or []
                     if str(c.get("route", "IV")).upper() == "IV" and not c.get("cancelled_for_toxicity")),
                    key=lambda c: str(c.get("date")))
    for n, c in enumerate(cycles[:4], start=1):
        services.record_visit(s, coord, tn, kind="iv_cycle", number=n, status="done", visit_date=c["date"],
                              activity_mbq=float(c.get("activity_mbq") or 7400.0),
                              reason=f"demo: IV LUTATHERA cycle {n} (standard of care, from the screening record)")


def follow_up_1_day(label: str) -> int:
    """Days after screening of follow-up 1: IAH (day 70) + 56; 10 days late for the deliberate one."""
    return 136 + 7 if label == "TLS/follow_up" else 126


def story(reg: Any, tn: str, stage: str, site: str) -> None:
    """The worked example on BDX-006 (follow-up stage at Bordeaux); nothing for the others."""
    if (site, stage) != ("BDX", "follow_up"):
        return
    from sqlalchemy import select

    from lutarterial.registry import services
    from lutarterial.registry.models import User
    from lutarterial.web.demo import DEMO_PASSWORD

    def actor(username: str) -> Any:
        with reg.session(readonly=True) as s:
            uid = s.scalars(select(User.id).where(User.username == username)).one()
            return services.actor_for(s, uid)

    mon, coord, inv = actor("monitor"), actor("coord.bdx"), actor("inv.bdx")
    with reg.session() as s:
        p = services.get_participant(s, mon, tn)
        low = [lab for lab in services.list_labs(s, mon, tn) if lab.analyte == "platelets"]
        lab = min(low, key=lambda x: x.value) if low else None
        q = services.open_query(s, mon, tn, text="Platelets this low: please confirm against the laboratory report",
                                table_name="lab_results" if lab else None, row_id=lab.id if lab else None,
                                field="value" if lab else None, assign_to="coord.bdx")
        services.answer_query(s, coord, q.id, text="Confirmed on the lab report; grade 1 AE recorded")
        services.close_query(s, mon, q.id, text="Confirmed against source")
        services.mark_verified(s, mon, tn, table_name="participants", row_id=p.id)
    with reg.session() as s:
        services.sign(s, inv, tn, password=DEMO_PASSWORD, username="inv.bdx", meaning="reviewed and approved")
