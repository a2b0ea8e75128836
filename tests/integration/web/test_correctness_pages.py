"""Issue 10 on the registry and the web: the CTCAE baseline rule (setting, safety page) and the
site protocol configuration (audited, shown on the screening page, used when screening)."""

from __future__ import annotations

from typing import Any

from lutarterial.cli.registry import _cli_actor
from lutarterial.registry.db import Registry
from lutarterial.registry.services.settings import set_setting, set_site_protocol


def _admin_change(url: str, fn, *args, **kw) -> None:  # type: ignore[no-untyped-def]
    reg = Registry.open(url)
    try:
        with reg.session() as s:
            fn(s, _cli_actor(), *args, **kw)
    finally:
        reg.dispose()


def test_missing_baseline_assumed_normal_then_strict_setting(registry_url: str, login: Any, eligible_record: Any,
                                                             enrolled: Any) -> None:
    coord = login("coord.bdx")
    tn = enrolled(coord, login("inv.bdx"), eligible_record)
    r = coord.post(f"/api/participants/{tn}/labs", json={"analyte": "alt", "value": 120, "unit": "U/L", "uln": 40,
                                                         "collected_date": "2024-09-01", "reason": "follow-up lab"})
    assert r.status_code == 201, r.text
    assert r.json()["ctcae_grade"] == 1  # 3.0 x ULN, baseline taken as normal
    page = coord.get(f"/participants/{tn}/safety").text
    assert "baseline assumed normal" in page and "ctcae_require_baseline</code> is off" in page
    _admin_change(registry_url, set_setting, "ctcae_require_baseline", True, reason="sponsor requires baselines")
    r = coord.post(f"/api/participants/{tn}/labs", json={"analyte": "ast", "value": 900, "unit": "U/L", "uln": 40,
                                                         "collected_date": "2024-09-02", "reason": "follow-up lab"})
    assert r.status_code == 201, r.text
    assert r.json()["ctcae_grade"] is None  # strict: no baseline, no grade
    page = coord.get(f"/participants/{tn}/safety").text
    assert "baseline required" in page


def test_site_protocol_configuration_is_shown_and_used(registry_url: str, login: Any, eligible_record: Any,
                                                       enrolled: Any) -> None:
    coord = login("coord.bdx")
    tn = enrolled(coord, login("inv.bdx"), eligible_record)
    page = coord.get(f"/participants/{tn}/screening").text
    assert "No site configuration" in page and "default version 1" in page
    _admin_change(registry_url, set_site_protocol, "BDX", protocol_version="2", effective_date="2020-01-01",
                  source="ethics approval of amendment 2 (test)", reason="amendment approved")
    page = coord.get(f"/participants/{tn}/screening").text
    assert "version 2 from 2020-01-01" in page and "site configuration" in page
    rec, as_of = eligible_record
    r = coord.post("/api/participants", json={"site": "BDX", "reason": "new participant", "sex": "F",
                                             "consent_version": "v3.0", "consent_date": "2024-01-02"})
    tn2 = r.json()["trial_number"]
    r = coord.post(f"/api/participants/{tn2}/screenings", json={"record": rec, "as_of": as_of, "reason": "screening"})
    assert r.status_code == 201, r.text
    assert r.json()["protocol_version"] == "2"
