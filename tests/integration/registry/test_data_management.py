"""Data management through the registry services (SQLite and PostgreSQL): schedule, queries and
edit checks, electronic signatures, locks and SDV, each enforced on every write path."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import select

from lutarterial.errors import AccessDeniedError, InvalidInputError
from lutarterial.registry import Registry, services, verify_audit_chain
from lutarterial.registry.access import Actor
from lutarterial.registry.models import AuditEntry, Role

from .conftest import Team

PW = "correct horse battery"
D = dt.date


def _dm(team: Team) -> Actor:
    """A data manager of BDX (an actor; locks need no stored user)."""
    return replace(team.mon_bdx, username="dm.bdx", roles=frozenset({Role.DATA_MANAGER}))


def _enrolled(reg: Registry, team: Team, *, sex: str = "F", yob: int = 1951) -> str:
    rec = {"record_id": "x", "site": "Bordeaux", "patient": {"sex": "female", "birth_date": "1951-01-01"},
           "administrative": {"informed_consent_date": "2024-01-10"},
           "lutathera_cycles": [{"date": d, "route": "IV"} for d in
                                ("2023-06-01", "2023-08-01", "2023-10-01", "2023-12-01")]}
    with reg.session() as s:
        p = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new", sex=sex, year_of_birth=yob)
        services.record_consent(s, team.coord_bdx, p.id, version="v1", signed_date="2024-01-10", reason="consent")
        services.record_screening(s, team.coord_bdx, p.id, record=rec, protocol_version="2", as_of="2024-01-12",
                                  result={"verdict": "eligible", "criteria": [], "missing": []}, reason="screening")
        services.enrol(s, team.inv_bdx, p.id, enrolled_date="2024-01-15", reason="eligible")
        return p.trial_number


def _queries(reg: Registry, actor: Actor, tn: str) -> list[tuple[str | None, str]]:
    with reg.session(readonly=True) as s:
        return [(q.check_key, q.status) for q, _ in services.list_queries(s, actor, participant=tn)]


def test_schedule_planned_at_enrolment_recomputed_when_the_anchor_moves(reg: Registry, team: Team) -> None:
    tn = _enrolled(reg, team)
    with reg.session(readonly=True) as s:
        sched = {v.key: v for v in services.participant_schedule(s, team.mon_bdx, tn, today=D(2024, 1, 20))}
    assert [sched[f"iv_cycle_{i}"].visit_date for i in range(1, 5)] == [
        D(2023, 6, 1), D(2023, 8, 1), D(2023, 10, 1), D(2023, 12, 1)]
    assert all(sched[f"iv_cycle_{i}"].status == "done_in_window" for i in range(1, 5))
    assert sched["iah_cycle"].target_date == D(2024, 3, 18)  # enrolment + 63 days
    assert sched["pet_after_iah"].target_date == D(2024, 3, 18) and sched["pet_after_iah"].status == "due"
    with reg.session(readonly=True) as s:
        late = {v.key: v for v in services.participant_schedule(s, team.mon_bdx, tn, today=D(2024, 4, 2))}
    assert late["iah_cycle"].status == "overdue"  # window end 2024-04-01
    with reg.session() as s:
        services.record_iah_cycle(s, team.inv_bdx, tn, visit_date="2024-03-25", activity_mbq=7400,
                                  artery="proper hepatic", catheter_position="distal GDA", reason="IAH given")
    with reg.session(readonly=True) as s:
        moved = {v.key: v for v in services.participant_schedule(s, team.mon_bdx, tn, today=D(2024, 3, 26))}
        trail = [e.reason for e in s.scalars(select(AuditEntry).where(AuditEntry.table_name == "schedule_entries",
                                                                      AuditEntry.action == "update"))]
        assert verify_audit_chain(s).ok
    assert moved["iah_cycle"].status == "done_in_window"
    assert moved["pet_after_iah"].target_date == D(2024, 3, 25)  # re-anchored on the actual IAH date
    assert trail and all("anchor changed" in r for r in trail)
    with reg.session(readonly=True) as s:
        board = services.schedule_dashboard(s, team.coord_bdx, today=D(2024, 3, 26))
        assert [u["visit_key"] for u in board["upcoming"]][:1] == ["pet_after_iah"]
        assert [o["visit_key"] for o in board["overdue"]] == ["pet_after_iv"]
        assert services.schedule_dashboard(s, team.coord_tls, today=D(2024, 3, 26)) == {"upcoming": [], "overdue": []}


def test_out_of_window_visit_opens_one_query(reg: Registry, team: Team) -> None:
    tn = _enrolled(reg, team)
    with reg.session() as s:
        services.record_visit(s, team.coord_bdx, tn, kind="pet_after_iv", status="done", visit_date="2024-01-30",
                              reason="PET done late")  # window 2024-01-16 .. 2024-01-30: in
    assert [k for k, _ in _queries(reg, team.mon_bdx, tn)] == []
    with reg.session() as s:
        v = services.list_visits(s, team.coord_bdx, tn)[0]
        services.update_record(s, team.coord_bdx, "visit", v.id, {"visit_date": "2024-01-31"}, reason="date typo")
        services.update_record(s, team.coord_bdx, "visit", v.id, {"notes": "late"}, reason="note")
    qs = _queries(reg, team.mon_bdx, tn)
    assert qs == [(f"SCH-WINDOW:visits:{v.id}:visit_date", "open")]


def test_edit_checks_open_deduplicated_queries_and_never_block(reg: Registry, team: Team) -> None:
    tn = _enrolled(reg, team, yob=1955)  # screening record says 1951
    keys = [k for k, _ in _queries(reg, team.mon_bdx, tn)]
    assert keys == [f"XF-BIRTH:participants:{keys[0].split(':')[2]}:year_of_birth"]
    with reg.session() as s:  # another write: no duplicate
        services.record_lab(s, team.coord_bdx, tn, analyte="platelets", value=150, unit="10*9/L",
                            collected_date="2024-02-01", reason="labs")
    assert [k.split(":")[0] for k, _ in _queries(reg, team.mon_bdx, tn)] == ["XF-BIRTH", "REQ-LAB-RANGE"]


def test_query_life_cycle_and_access(reg: Registry, team: Team) -> None:
    tn = _enrolled(reg, team)
    with reg.session() as s:
        p = services.get_participant(s, team.mon_bdx, tn)
        with pytest.raises(AccessDeniedError):
            services.open_query(s, team.coord_bdx, tn, text="coordinators do not raise queries")
        with pytest.raises(AccessDeniedError):
            services.open_query(s, team.mon_tls, tn, text="other site")
        with pytest.raises(InvalidInputError, match="no field"):
            services.open_query(s, team.mon_bdx, tn, text="x", table_name="participants", row_id=p.id, field="nope")
        q = services.open_query(s, team.mon_bdx, tn, text="Birth year?", table_name="participants", row_id=p.id,
                                field="year_of_birth", assign_to="coord.bdx")
        qid = q.id
    with reg.session() as s:
        with pytest.raises(AccessDeniedError):
            services.answer_query(s, team.mon_bdx, qid, text="monitors do not answer")
        services.answer_query(s, team.coord_bdx, qid, text="1951 per source")
    with reg.session() as s:
        with pytest.raises(AccessDeniedError):
            services.close_query(s, team.coord_bdx, qid)
        services.close_query(s, team.mon_bdx, qid, text="confirmed")
        services.reopen_query(s, team.mon_bdx, qid, text="still wrong in registration")
        services.close_query(s, team.mon_bdx, qid, text="fine")
        steps = [m.action for m in services.query_messages(s, team.coord_bdx, qid)]
    assert steps == ["open", "answer", "close", "reopen", "close"]
    with reg.session(readonly=True) as s:
        reasons = [e.reason for e in s.scalars(select(AuditEntry).where(AuditEntry.table_name == "dm_queries"))]
        summary = services.query_summary_by_site(s, team.mon_bdx, today=D(2030, 1, 1))
    assert any(r.startswith(f"query {qid} answered") for r in reasons)
    assert summary[0]["site"] == "BDX" and summary[0]["closed"] >= 1


def test_signature_needs_password_and_is_voided_by_a_change(reg: Registry, team: Team) -> None:
    tn = _enrolled(reg, team)
    with reg.session() as s:
        lab = services.record_lab(s, team.coord_bdx, tn, analyte="platelets", value=150, unit="10*9/L",
                                  collected_date="2024-02-01", lln=150, uln=400, reason="labs")
        lab_id = lab.id
    with reg.session() as s:
        with pytest.raises(AccessDeniedError, match="wrong password"):
            services.sign(s, team.inv_bdx, tn, password="nope", meaning="reviewed and approved")
        with pytest.raises(AccessDeniedError, match="user name"):
            services.sign(s, team.inv_bdx, tn, password=PW, username="someone", meaning="reviewed and approved")
        with pytest.raises(AccessDeniedError):
            services.sign(s, team.coord_bdx, tn, password=PW, meaning="reviewed and approved")
        services.sign(s, team.inv_bdx, tn, password=PW, username="inv.bdx", meaning="reviewed and approved")
        services.sign(s, team.inv_bdx, tn, password=PW, meaning="reviewed and approved", table_name="lab_results",
                      row_id=lab_id)
    with reg.session(readonly=True) as s:
        sigs = services.list_signatures(s, team.mon_bdx, tn)
    assert [x["valid"] for x in sigs] == [True, True]
    with reg.session() as s:
        services.record_adverse_event(s, team.coord_bdx, tn, term="Nausea", grade=1, onset_date="2024-02-02",
                                      relatedness="probable", reason="AE")
    with reg.session(readonly=True) as s:
        sigs = services.list_signatures(s, team.mon_bdx, tn)
    assert [x["valid"] for x in sigs] == [False, True]  # the casebook changed, the lab form did not
    assert "adverse_events" in sigs[0]["void_reason"]
    with reg.session() as s:
        services.update_record(s, team.coord_bdx, "lab", lab_id, {"value": 140}, reason="corrected")
    with reg.session(readonly=True) as s:
        sigs = services.list_signatures(s, team.mon_bdx, tn)
        voids = [e.reason for e in s.scalars(select(AuditEntry).where(AuditEntry.table_name == "signatures",
                                                                      AuditEntry.action == "update"))]
    assert [x["valid"] for x in sigs] == [False, False] and "value" in sigs[1]["void_reason"]
    assert len(voids) == 2 and voids[-1] == "corrected"


def test_lock_refuses_every_write_until_unlocked(reg: Registry, team: Team) -> None:
    tn = _enrolled(reg, team)
    dm = _dm(team)
    with reg.session() as s:
        with pytest.raises(AccessDeniedError):
            services.lock_record(s, team.coord_bdx, tn, reason="no")
        lk = services.lock_record(s, dm, tn, reason="database lock for interim analysis")
        lock_id = lk.id
    with pytest.raises(services.RecordLockedError, match="locked") as err, reg.session() as s:
        services.record_lab(s, team.coord_bdx, tn, analyte="platelets", value=150, unit="10*9/L",
                            collected_date="2024-02-01", reason="labs")
    assert err.value.http_status == 423
    with pytest.raises(services.RecordLockedError), reg.session() as s:
        services.update_participant(s, team.coord_bdx, tn, sex="M", reason="change")
    with reg.session() as s:  # queries still work on a locked participant
        services.open_query(s, team.mon_bdx, tn, text="question during lock")
    with reg.session() as s:
        with pytest.raises(InvalidInputError):
            services.unlock_record(s, dm, lock_id, reason=" ")
        services.unlock_record(s, dm, lock_id, reason="query resolved, reopening")
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, tn, analyte="platelets", value=150, unit="10*9/L", lln=150,
                            collected_date="2024-02-01", reason="labs")


def test_form_lock_and_sdv_cleared_when_value_changes(reg: Registry, team: Team) -> None:
    tn = _enrolled(reg, team)
    with reg.session() as s:
        lab = services.record_lab(s, team.coord_bdx, tn, analyte="platelets", value=150, unit="10*9/L", lln=150,
                                  collected_date="2024-02-01", reason="labs")
        ae = services.record_adverse_event(s, team.coord_bdx, tn, term="Nausea", grade=1, onset_date="2024-02-02",
                                           relatedness="probable", reason="AE")
        lab_id, ae_id = lab.id, ae.id
    with reg.session() as s:
        with pytest.raises(AccessDeniedError):
            services.mark_verified(s, team.coord_bdx, tn, table_name="lab_results", row_id=lab_id)
        services.mark_verified(s, team.mon_bdx, tn, table_name="lab_results", row_id=lab_id, field="value")
        services.mark_verified(s, team.mon_bdx, tn, table_name="lab_results", row_id=lab_id, field="unit")
        services.mark_verified(s, team.mon_bdx, tn, table_name="adverse_events", row_id=ae_id)
        services.lock_record(s, _dm(team), tn, table_name="adverse_events", row_id=ae_id, reason="AE reviewed")
    with pytest.raises(services.RecordLockedError), reg.session() as s:
        services.update_record(s, team.coord_bdx, "adverse_event", ae_id, {"grade": 2}, reason="worse")
    with reg.session() as s:
        services.update_record(s, team.coord_bdx, "lab", lab_id, {"value": 140}, reason="corrected")
        marks = {(m.field, m.cleared_at is None) for m in services.list_sdv(s, team.mon_bdx, tn)}
    assert marks == {("value", False), ("unit", True), (None, True)}


def test_odm_export_carries_valid_signatures_and_validates_against_the_xsd(reg: Registry, team: Team) -> None:
    import xml.etree.ElementTree as ET

    import xmlschema
    from odmlib.schema_manager import get_schema_path

    from lutarterial.registry.exports import odm_document

    tn = _enrolled(reg, team)
    with reg.session() as s:
        lab = services.record_lab(s, team.coord_bdx, tn, analyte="platelets", value=150, unit="10*9/L", lln=150,
                                  collected_date="2024-02-01", reason="labs")
        lab_id = lab.id
    with reg.session() as s:
        services.sign(s, team.inv_bdx, tn, password=PW, meaning="reviewed and approved", table_name="lab_results",
                      row_id=lab_id)
        services.sign(s, team.inv_bdx, tn, password=PW, meaning="responsibility: investigator sign-off of the casebook")
    schema = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
    ns = {"o": "http://www.cdisc.org/ns/odm/v1.3"}
    with reg.session() as s:
        doc = odm_document(s, team.admin)
    assert schema.is_valid(doc.decode("utf-8")), list(schema.iter_errors(doc.decode("utf-8")))[:3]
    root = ET.fromstring(doc)
    assert len(root.findall(".//o:AdminData/o:SignatureDef", ns)) == 2
    # the screening record's data dictionary is in the metadata (labels, units, record paths)
    item = root.find(".//o:ItemDef[@OID='IT.SR.LUTATHERA_CYCLES_ACTIVITY_MBQ']", ns)
    assert item is not None and item.find("o:Question/o:TranslatedText", ns).text == "Administered activity"
    assert item.find("o:MeasurementUnitRef", ns).get("MeasurementUnitOID") == "MU.MBq"
    assert root.find(".//o:BasicDefinitions/o:MeasurementUnit[@OID='MU.MBq']", ns) is not None
    assert root.find(".//o:ItemGroupDef[@OID='IG.SR.LUTATHERA_CYCLES']", ns).get("Repeating") == "Yes"
    assert root.find(".//o:SubjectData/o:Signature/o:SignatureRef", ns) is not None
    assert len(root.findall(".//o:ItemGroupData/o:Signature", ns)) == 1
    with reg.session() as s:
        services.record_adverse_event(s, team.coord_bdx, tn, term="Nausea", grade=1, onset_date="2024-02-02",
                                      relatedness="probable", reason="AE")
        doc = odm_document(s, team.admin)
    root = ET.fromstring(doc)
    assert root.find(".//o:SubjectData/o:Signature", ns) is None  # voided: gone from the data, kept in the audit
    assert len(root.findall(".//o:ItemGroupData/o:Signature", ns)) == 1
    assert any("signatures/" in (e.text or "") for e in root.findall(".//o:AuditRecords/o:AuditRecord/o:SourceID", ns))


def test_visit_date_differing_from_the_dicom_study_date_opens_a_query(reg: Registry, team: Team) -> None:
    from lutarterial.registry.access import SYSTEM_ACTOR
    from lutarterial.registry.audit import audited
    from lutarterial.registry.models import ImagingSeries, ImagingStudy

    tn = _enrolled(reg, team)
    with reg.session() as s:
        v = services.record_visit(s, team.coord_bdx, tn, kind="pet_after_iv", status="done", visit_date="2024-01-23",
                                  reason="PET")
        pid, vid = v.participant_id, v.id
    with reg.session() as s, audited(s, SYSTEM_ACTOR, "study imported (test)"):
        st = ImagingStudy(participant_id=pid, study_instance_uid="1.2.3.4", study_date=D(2024, 1, 24))
        s.add(st)
        s.flush()
        s.add(ImagingSeries(study_id=st.id, participant_id=pid, visit_id=vid, series_instance_uid="1.2.3.4.1",
                            modality="PT", content_sha256="0" * 64))
    found = [k for k, _ in _queries(reg, team.mon_bdx, tn) if k.startswith("XF-DICOM-DATE")]
    assert found == [f"XF-DICOM-DATE:visits:{vid}:visit_date"]
