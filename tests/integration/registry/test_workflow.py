"""The participant workflow through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text, update

from lutarterial.errors import AccessDeniedError, InvalidInputError, NotFoundError, UnitError
from lutarterial.registry import Registry, services, verify_audit_chain
from lutarterial.registry.models import AuditEntry, Participant, ScreeningResult

from .conftest import ELIGIBLE_RESULT, Team, enrolled_participant


def test_trial_numbers_are_allocated_per_site(reg: Registry, team: Team) -> None:
    with reg.session() as s:
        a = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new")
        b = services.register_participant(s, team.coord_bdx, site_code="bdx", reason="new")
        c = services.register_participant(s, team.coord_tls, site_code="TLS", reason="new")
        assert (a.trial_number, b.trial_number, c.trial_number) == ("BDX-001", "BDX-002", "TLS-001")
        assert services.get_participant(s, team.coord_bdx, "bdx-002").id == b.id


def test_full_workflow_sets_status_and_audits_every_change(reg: Registry, team: Team) -> None:
    with reg.session() as s:
        p = services.register_participant(
            s, team.coord_bdx, site_code="BDX", reason="new participant", sex="F", year_of_birth=1961,
            identity=services.IdentityInput("Martin", "Claire", "1961-04-02", "BDX123456"))
        assert p.status == "registered"
        with pytest.raises(InvalidInputError, match="consent"):
            services.record_screening(s, team.coord_bdx, p.id, record={}, result=ELIGIBLE_RESULT,
                                      protocol_version="test", as_of="2024-01-12", reason="screening")
        services.record_consent(s, team.coord_bdx, p.id, version="v1.0", signed_date="2024-01-10", reason="signed")
        assert p.status == "consented"
        with pytest.raises(InvalidInputError, match="eligible screening"):
            services.enrol(s, team.inv_bdx, p.id, enrolled_date="2024-01-15", reason="x")
        services.record_screening(s, team.coord_bdx, p.id, record={"a": 1}, result=ELIGIBLE_RESULT,
                                  protocol_version="test", as_of="2024-01-12", reason="screening")
        assert p.status == "eligible"
        with pytest.raises(InvalidInputError, match="enrolled participant"):
            services.record_iah_cycle(s, team.inv_bdx, p.id, visit_date="2024-02-01", activity_mbq=7400,
                                      artery="right hepatic artery", catheter_position="proper hepatic", reason="x")
        services.enrol(s, team.inv_bdx, p.id, enrolled_date="2024-01-15", reason="eligible")
        assert p.status == "enrolled"
        with pytest.raises(InvalidInputError, match="already enrolled"):
            services.enrol(s, team.inv_bdx, p.id, enrolled_date="2024-01-15", reason="again")
        for n in (1, 2):
            services.record_visit(s, team.coord_bdx, p.id, kind="iv_cycle", number=n, status="done",
                                  visit_date=f"2023-0{n + 5}-01", activity_mbq=7400, reason="prior cycle")
        services.record_visit(s, team.coord_bdx, p.id, kind="iah_cycle", planned_date="2024-02-01", reason="plan")
        visit = services.record_iah_cycle(s, team.inv_bdx, p.id, visit_date="2024-02-01", activity_mbq=7350.5,
                                          artery="right hepatic artery", catheter_position="proper hepatic artery",
                                          reason="administered")
        assert visit.status == "done" and visit.activity_mbq == 7350.5
        assert p.status == "treated"
        services.record_visit(s, team.phys_bdx, p.id, kind="pet_after_iah", status="done",
                              visit_date="2024-02-02", reason="imaging")
        timeline = services.participant_timeline(s, team.mon_bdx, p.id)
        assert [i.kind for i in timeline] == ["iv_cycle", "iv_cycle", "consent", "screening", "enrolment",
                                              "iah_cycle", "pet_after_iah"]
        pid = p.id
    with reg.session(readonly=True) as s:
        trail = services.participant_audit_trail(s, team.mon_bdx, pid)
        actions = [(e.table_name, e.action) for e in trail]
        assert actions[0] == ("participants", "create")
        assert trail[0].row_id == str(pid) and trail[0].participant_id == pid
        assert all(e.row_id for e in trail)
        assert ("participant_identities", "create") in actions
        assert all(e.reason for e in trail)
        # Identity values never reach the audit trail that monitors read.
        ident = next(e for e in trail if e.table_name == "participant_identities")
        assert "Martin" not in (ident.new_values or "") and "hmac:" in (ident.new_values or "")  # keyed digest
        upd = [e for e in trail if e.table_name == "visits" and e.action == "update"]
        assert json.loads(upd[0].old_values)["status"] == "planned"
        assert json.loads(upd[0].new_values)["status"] == "done"
        assert upd[0].actor_username == "inv.bdx" and upd[0].occurred_at.endswith("Z")
        assert verify_audit_chain(s).ok


def test_change_without_reason_is_refused_and_nothing_is_stored(reg: Registry, team: Team) -> None:
    for reason in (None, "", "   "):
        with pytest.raises(InvalidInputError, match="reason"):
            with reg.session() as s:
                services.register_participant(s, team.coord_bdx, site_code="BDX", reason=reason)  # type: ignore[arg-type]
    with reg.session(readonly=True) as s:
        assert services.list_participants(s, team.admin) == []


def test_orm_changes_outside_services_are_refused(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with pytest.raises(InvalidInputError, match="registry services"):
        with reg.session() as s:
            p = s.get(Participant, pid)
            assert p is not None
            p.status = "completed"
            s.flush()
    with pytest.raises(InvalidInputError, match="bulk update"):
        with reg.session() as s:
            s.execute(update(Participant).values(status="completed"))
    for sql in ("UPDATE participants SET status = 'completed'", "delete from \"visits\"",
                "INSERT INTO audit_entries (id) VALUES (999)"):
        with pytest.raises(InvalidInputError, match="raw SQL"):
            with reg.session() as s:
                s.execute(text(sql))
    with pytest.raises(InvalidInputError, match="registry services"):
        with reg.session() as s:
            s.add(Participant(trial_number="BDX-999", site_id=1, site_seq=999))
            s.flush()
    with reg.session(readonly=True) as s:
        assert s.get(Participant, pid).status == "enrolled"  # type: ignore[union-attr]


def test_update_and_delete_records_are_validated_and_audited(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        ae = services.record_adverse_event(s, team.coord_bdx, pid, term="Nausea", grade=1, onset_date="2024-02-02",
                                           relatedness="probable", reason="reported")
        with pytest.raises(InvalidInputError, match="grade 6"):
            services.update_record(s, team.inv_bdx, "adverse_event", ae.id, {"grade": 6}, reason="typo")
        with pytest.raises(InvalidInputError, match="cannot change"):
            services.update_record(s, team.inv_bdx, "adverse_event", ae.id, {"participant_id": 99}, reason="x")
        services.update_record(s, team.inv_bdx, "adverse_event", ae.id, {"grade": 2}, reason="worsened")
        aid = ae.id
    with reg.session() as s:
        services.delete_record(s, team.inv_bdx, "adverse_event", aid, reason="entered on wrong participant")
        with pytest.raises(NotFoundError):
            services.get_record(s, team.inv_bdx, "adverse_event", aid)
    with reg.session(readonly=True) as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.table_name == "adverse_events")
                         .order_by(AuditEntry.id)).all()
        assert [r.action for r in rows] == ["create", "update", "delete"]
        assert json.loads(rows[1].old_values) == {"grade": 1} and json.loads(rows[1].new_values) == {"grade": 2}
        assert json.loads(rows[2].old_values)["grade"] == 2 and rows[2].new_values is None
        assert rows[2].reason == "entered on wrong participant"


def test_visit_validation_boundaries(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        services.record_visit(s, team.coord_bdx, pid, kind="iv_cycle", number=4, reason="plan")
        with pytest.raises(InvalidInputError, match="at most 4"):
            services.record_visit(s, team.coord_bdx, pid, kind="iv_cycle", number=5, reason="plan")
        with pytest.raises(InvalidInputError, match="already has"):
            services.record_visit(s, team.coord_bdx, pid, kind="iv_cycle", number=4, reason="plan")
        with pytest.raises(InvalidInputError, match="maximum"):
            services.record_visit(s, team.coord_bdx, pid, kind="iv_cycle", number=1, status="done",
                                  visit_date="2023-01-01", activity_mbq=15000.1, reason="kBq typed")
        services.record_visit(s, team.coord_bdx, pid, kind="iv_cycle", number=1, status="done",
                              visit_date="2023-01-01", activity_mbq=15000.0, reason="boundary")
        with pytest.raises(InvalidInputError, match="artery"):
            services.record_iah_cycle(s, team.inv_bdx, pid, visit_date="2024-02-01", activity_mbq=7400,
                                      artery="", catheter_position="proper", reason="x")
        with pytest.raises(InvalidInputError, match="activity"):
            services.record_visit(s, team.coord_bdx, pid, kind="follow_up", activity_mbq=10, reason="x")
        with pytest.raises(InvalidInputError, match="not a date"):
            services.record_visit(s, team.coord_bdx, pid, kind="follow_up", planned_date="2024-13-01", reason="x")
        with pytest.raises(InvalidInputError, match="visit kind"):
            services.record_visit(s, team.coord_bdx, pid, kind="lunch", reason="x")


def test_labs_are_converted_and_graded_by_the_domain_engines(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        lab = services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=40, unit="G/L",
                                  collected_date="2024-03-01", reason="lab report")
        assert lab.value_canonical == pytest.approx(40.0) and lab.unit_canonical == "10*9/L"
        # CTCAE v5 platelet count decreased: grade 3 is <50 - 25 x 10^9/L.
        assert lab.ctcae_grade == 3 and lab.grading and lab.grading["term"]
        hb = services.record_lab(s, team.coord_bdx, pid, analyte=None, loinc="718-7", value=12.1, unit="g/dL",
                                 collected_date="2024-03-01", reason="lab report")
        assert hb.analyte == "haemoglobin"
        with pytest.raises(UnitError):
            services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=40, unit="g/L",
                                collected_date="2024-03-01", reason="x")
        with pytest.raises(InvalidInputError, match="not known"):
            services.record_lab(s, team.coord_bdx, pid, analyte="unobtainium", value=1, unit="g/L",
                                collected_date="2024-03-01", reason="x")


def test_analyses_keep_input_identifiers_and_are_checked(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    digest = "a" * 64
    with reg.session() as s:
        img = services.attach_imaging_analysis(
            s, team.phys_bdx, pid, kind="pet_iah_vs_iv", result={"suv_ratio": 1.8},
            study_instance_uid="1.2.826.0.1.3680043.8.498.1", series_instance_uids=["1.2.3.4"],
            input_hashes={"pet.dcm": digest}, reason="analysis")
        dos = services.attach_dosimetry_analysis(s, team.phys_bdx, pid, kind="lesion_dose", result={"dose_gy": 30.2},
                                                 imaging_analysis_id=img.id, reason="dosimetry")
        assert dos.imaging_analysis_id == img.id
        with pytest.raises(InvalidInputError, match="DICOM UID"):
            services.attach_imaging_analysis(s, team.phys_bdx, pid, kind="x", result={},
                                             study_instance_uid="1.2.abc", reason="x")
        with pytest.raises(InvalidInputError, match="SHA-256"):
            services.attach_imaging_analysis(s, team.phys_bdx, pid, kind="x", result={},
                                             input_hashes={"f": "zz"}, reason="x")
    other = enrolled_participant(reg, team)
    with reg.session() as s, pytest.raises(InvalidInputError, match="not a record of"):
        services.attach_dosimetry_analysis(s, team.phys_bdx, other, kind="x", result={},
                                           imaging_analysis_id=img.id, reason="x")


def test_withdrawal_blocks_later_data(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        services.withdraw_consent(s, team.coord_bdx, pid, withdrawal_date="2024-03-01", reason="patient request")
        services.record_adverse_event(s, team.coord_bdx, pid, term="Fatigue", grade=1, onset_date="2024-02-20",
                                      reason="before withdrawal")
        with pytest.raises(InvalidInputError, match="withdrew"):
            services.record_adverse_event(s, team.coord_bdx, pid, term="Fatigue", grade=1,
                                          onset_date="2024-03-02", reason="after")
        assert services.get_participant(s, team.coord_bdx, pid).status == "withdrawn"


def test_screening_with_the_engine_is_stored_and_reproduced(reg: Registry, team: Team) -> None:
    from lutarterial.records.synthetic import make_records

    records = make_records(6, seed=1)
    with reg.session() as s:
        stored = []
        for record in records:
            p = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new")
            services.record_consent(s, team.coord_bdx, p.id, version="v1", signed_date="2024-06-01", reason="signed")
            row = services.screen_participant(s, team.coord_bdx, p.id, record, reason="screening")
            assert row.record == record and row.protocol_version and row.as_of.isoformat() == record["screening_date"]
            assert row.overall == row.result["verdict"]
            assert p.status == {"eligible": "eligible", "ineligible": "screen_failed"}.get(row.overall, "consented")
            stored.append(row.id)
        verdicts = {services.rescreen(s, team.mon_bdx, sid).stored_verdict for sid in stored}
        assert verdicts == {"eligible", "ineligible", "incomplete"}  # the fixture covers all three
    with reg.session(readonly=True) as s:
        for sid in stored:
            report = services.rescreen(s, team.mon_bdx, sid)
            assert report.reproduced, report.differences
        with pytest.raises(AccessDeniedError):
            services.rescreen(s, team.mon_tls, stored[0])
    # A stored result that the engine does not produce is reported, item by item.
    with reg.session() as s:
        p = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new")
        services.record_consent(s, team.coord_bdx, p.id, version="v1", signed_date="2024-06-01", reason="signed")
        original = services.rescreen(s, team.admin, stored[0])
        forged = dict(s.get(ScreeningResult, stored[0]).result)  # type: ignore[union-attr]
        forged["verdict"] = "ineligible" if forged["verdict"] == "eligible" else "eligible"
        row = services.record_screening(s, team.coord_bdx, p.id, record=records[0], result=forged,
                                        protocol_version=original.protocol_version, as_of=records[0]["screening_date"],
                                        reason="imported from paper CRF")
        report = services.rescreen(s, team.admin, row.id)
        assert not report.reproduced and any(d.startswith("verdict:") for d in report.differences)


def test_screening_record_with_direct_identifiers_is_refused(reg: Registry, team: Team) -> None:
    with reg.session() as s:
        p = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new")
        services.record_consent(s, team.coord_bdx, p.id, version="v1", signed_date="2024-06-01", reason="signed")
        with pytest.raises(InvalidInputError, match=r"record\.patient\.family_name"):
            services.record_screening(s, team.coord_bdx, p.id, record={"patient": {"family_name": "Martin"}},
                                      result=ELIGIBLE_RESULT, protocol_version="2", as_of="2024-06-03", reason="x")


def test_completion_closes_the_participant(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        with pytest.raises(AccessDeniedError):
            services.complete_participation(s, team.mon_bdx, pid, end_date="2025-01-01", reason="end")
        visit = services.complete_participation(s, team.inv_bdx, pid, end_date="2025-01-01", reason="end of follow-up")
        assert visit.kind == "end_of_study" and services.get_participant(s, team.inv_bdx, pid).status == "completed"
        with pytest.raises(InvalidInputError, match="only an enrolled"):
            services.complete_participation(s, team.inv_bdx, pid, end_date="2025-01-02", reason="again")


def test_corrections_obey_the_same_cross_record_rules(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        services.record_visit(s, team.coord_bdx, pid, kind="follow_up", number=1, reason="plan")
        v2 = services.record_visit(s, team.coord_bdx, pid, kind="follow_up", number=2, reason="plan")
        with pytest.raises(InvalidInputError, match="already has"):
            services.update_record(s, team.coord_bdx, "visit", v2.id, {"number": 1}, reason="renumber")
        services.update_record(s, team.coord_bdx, "visit", v2.id, {"number": 3}, reason="renumber")
        with pytest.raises(InvalidInputError, match="participant status"):
            services.list_participants(s, team.coord_bdx, status="sleeping")
    with reg.session() as s:
        p = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new")
        with pytest.raises(InvalidInputError, match="enrolled participant"):
            services.record_visit(s, team.coord_bdx, p.id, kind="iah_cycle", planned_date="2024-05-01", reason="plan")
        other = services.record_visit(s, team.coord_bdx, p.id, kind="follow_up", reason="plan")
        with pytest.raises(InvalidInputError, match="enrolled participant"):
            services.update_record(s, team.coord_bdx, "visit", other.id, {"kind": "iah_cycle"}, reason="x")
