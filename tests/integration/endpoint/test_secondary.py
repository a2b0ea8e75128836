"""Secondary endpoints from the registry: CONSORT counts, safety phases, RECIST response, PFS events,
dosimetry per GBq paired IAH vs IV (built through the audited services, known answers)."""

from __future__ import annotations

import pytest

from lutarterial.registry import Registry, services
from lutarterial.registry.services import actor_by_username
from lutarterial.workflows.endpoints import secondary_endpoints

ELIGIBLE = {"verdict": "eligible", "protocol_version": "test", "criteria": [], "missing": []}
INELIGIBLE = {"verdict": "ineligible", "protocol_version": "test", "missing": [],
              "criteria": [{"id": "INC03", "status": "fail", "reason": "3 cycles"},
                           {"id": "EXC05", "status": "fail", "reason": "x"}]}


def _lesions(sizes: dict[str, float], baseline: bool) -> dict:
    if baseline:
        les = [{"id": k, "role": "target", "organ": "liver" if k.startswith("L") else "lung", "diameter_mm": v}
               for k, v in sizes.items()]
    else:
        les = [{"id": k, "diameter_mm": v} for k, v in sizes.items()]
    return {"baseline": baseline, "lesions": les}



@pytest.fixture
def treated(db: str) -> str:
    reg = Registry.open(db)
    try:
        with reg.session() as s:
            admin = actor_by_username(s, "admin")
            # BDX-001 (from the shared fixture) is enrolled and treated here; BDX-003 screen-failed
            services.record_consent(s, admin, "BDX-001", version="v1", signed_date="2024-01-10", reason="t")
            services.record_screening(s, admin, "BDX-001", record={}, result=ELIGIBLE, protocol_version="test",
                                      as_of="2024-01-12", reason="t")
            services.enrol(s, admin, "BDX-001", enrolled_date="2024-01-15", reason="t")
            services.record_visit(s, admin, "BDX-001", kind="iv_cycle", number=1, status="done",
                                  visit_date="2024-02-01", activity_mbq=7400, reason="t")
            services.record_visit(s, admin, "BDX-001", kind="pet_after_iv", status="done", visit_date="2024-02-02",
                                  reason="t")
            services.record_iah_cycle(s, admin, "BDX-001", visit_date="2024-04-01", activity_mbq=7400,
                                      artery="proper hepatic", catheter_position="x", reason="t")
            services.record_visit(s, admin, "BDX-001", kind="pet_after_iah", status="done", visit_date="2024-04-02",
                                  reason="t")
            services.record_adverse_event(s, admin, "BDX-001", term="Nausea", grade=2, onset_date="2024-02-03",
                                          reason="t")
            services.record_adverse_event(s, admin, "BDX-001", term="Nausea", grade=1, onset_date="2024-02-10",
                                          reason="t")
            services.record_adverse_event(s, admin, "BDX-001", term="Nausea", grade=3, onset_date="2024-04-03",
                                          serious=True, reason="t")
            for day, sizes, base, resp in (("2024-03-25", {"L1": 40.0, "N1": 20.0}, True, "NE"),
                                           ("2024-06-01", {"L1": 20.0, "N1": 12.0}, False, "PR"),
                                           ("2024-08-01", {"L1": 30.0, "N1": 12.0}, False, "PD")):
                services.record_recist(s, admin, "BDX-001", assessment_date=day, response=resp,
                                       details=_lesions(sizes, base), reason="t")
            services.attach_dosimetry_analysis(s, admin, "BDX-001", kind="voi_dosimetry", reason="t", result={
                "vois": [{"voi": "kidney left", "cycle": "IV1", "organ": "kidney", "kind": "organ", "dose_gy": 3.7},
                         {"voi": "kidney left", "cycle": "IAH", "organ": "kidney", "kind": "organ", "dose_gy": 2.96},
                         {"voi": "lesion 1", "cycle": "IAH", "kind": "lesion", "dose_gy": 74.0}]})
            p3 = services.register_participant(s, admin, site_code="TLS", reason="t")
            services.record_consent(s, admin, p3.id, version="v1", signed_date="2024-01-10", reason="t")
            services.record_screening(s, admin, p3.id, record={}, result=INELIGIBLE, protocol_version="test",
                                      as_of="2024-01-12", reason="t")
    finally:
        reg.dispose()
    return db


def test_secondary_known_answers(treated: str) -> None:
    reg = Registry.open(treated)
    try:
        with reg.session(readonly=True) as s:
            res = secondary_endpoints(s, actor_by_username(s, "stat"), seed=1, n_boot=200)
            bdx_only = secondary_endpoints(s, actor_by_username(s, "inv.bdx"), seed=1, n_boot=200)
    finally:
        reg.dispose()
    c = res["consort"]
    assert (c["registered"], c["screened"], c["ineligible"], c["enrolled"], c["pet_pair_done"], c["iah_given"]) == \
        (4, 2, 1, 1, 1, 1)
    assert c["ineligible_by_criterion"] == {"EXC05": 1, "INC03": 1}
    assert bdx_only["consort"]["ineligible"] == 0  # the TLS screen failure is out of an investigator's scope
    worst = {(r["term"], r["phase"]): r["worst_grade"] for r in res["safety"]["worst_grade"]}
    assert worst == {("Nausea", "iv_cycles"): 2, ("Nausea", "after_iah"): 3}
    assert res["safety"]["grade3plus"] == {"iv_cycles": {"participants": 0, "participant_terms": 0},
                                           "after_iah": {"participants": 1, "participant_terms": 1}}
    assert [a["term"] for a in res["safety"]["serious"]] == ["Nausea"]
    # RECIST: PR (sum 60 -> 32, -47%) never confirmed, then PD (42 is +31% over the nadir): the engine's
    # BOR is SD (single-arm trial: confirmation required); ORR 0/1, DCR 1/1 (exact: 0.975 = 1 - 0.025)
    r = res["response"]["whole_body"]
    assert r["bor_counts"] == {"SD": 1}
    assert r["orr"]["k"] == 0 and r["orr"]["ci95"] == pytest.approx([0.0, 0.975])
    assert r["dcr"]["k"] == 1 and r["dcr"]["ci95"] == pytest.approx([0.025, 1.0])
    pfs = res["survival"]["pfs"]
    assert pfs["events"] == 1 and pfs["median"] == (pytest.approx(122))  # 2024-04-01 -> 2024-08-01
    # dosimetry: kidney 2.96 Gy / 7.4 GBq = 0.4 Gy/GBq after IAH vs 3.7 / 7.4 = 0.5 after IV1 (activity
    # from the visits); the tumour has no IV dose, so nothing is paired there
    kid = res["dosimetry"]["kidney"]
    assert kid["iah"]["median"] == pytest.approx(0.4) and kid["iv"]["median"] == pytest.approx(0.5)
    assert kid["paired"]["n_lesions"] == 1 and kid["paired"]["primary"]["gmr"] == pytest.approx(0.8)
    assert res["dosimetry"]["tumour"]["paired"]["n_lesions"] == 0
    assert res["dosimetry"]["tumour"]["iah"]["median"] == pytest.approx(10.0)
