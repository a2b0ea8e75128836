"""Issue 13 (fast): after a write the edit checks run only where the write can change their result,
and that opens exactly the queries a full run opens (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from lutarterial.registry import Registry, services
from lutarterial.registry.dm_guard import SCHEDULE_INPUTS
from lutarterial.registry.models import AuditEntry, DataQuery, LabResult, ScheduleEntry
from lutarterial.registry.services.queries import build_casebook, run_edit_checks_for

from .conftest import Team, enrolled_participant


def _auto_queries(reg: Registry, pid: int) -> list[tuple[str, str]]:
    with reg.session(readonly=True) as s:
        return sorted((str(k), str(t)) for k, t in s.execute(
            select(DataQuery.check_key, DataQuery.text).where(DataQuery.participant_id == pid,
                                                               DataQuery.source == "check")))


def _write_mixed(reg: Registry, team: Team, pid: int) -> None:
    """Labs with and without reference limits, one implausible, AEs with and without relatedness,
    in separate writes and in one write of several rows."""
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=150, unit="10*9/L",
                            collected_date="2024-02-01", reason="lab", lln=150, uln=400)
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=90, unit="10*9/L",
                            collected_date="2024-02-02", reason="lab without limits")
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="creatinine", value=80, unit="umol/L",
                            collected_date="2024-02-03", reason="lab", uln=110)
        services.record_lab(s, team.coord_bdx, pid, analyte="hemoglobin", value=120, unit="g/L",
                            collected_date="2024-02-03", reason="lab without limits")
    with reg.session() as s:
        services.record_adverse_event(s, team.coord_bdx, pid, term="Nausea", grade=1, onset_date="2024-02-04",
                                      reason="AE")
        services.record_adverse_event(s, team.coord_bdx, pid, term="Fatigue", grade=1, onset_date="2024-02-05",
                                      relatedness="possible", reason="AE")


def test_incremental_runs_open_what_a_full_run_opens(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    _write_mixed(reg, team, pid)
    after_writes = _auto_queries(reg, pid)
    # one query per lab without limits and per AE without relatedness, each on its own row
    keys = [k for k, _ in after_writes]
    assert sum(k.startswith("REQ-LAB-RANGE:lab_results:") for k in keys) == 2
    assert sum(k.startswith("REQ-AE-RELATED:adverse_events:") for k in keys) == 1
    # a full run over every row finds nothing the incremental runs missed
    with reg.session() as s:
        assert run_edit_checks_for(s, pid, touched=None) == []
    assert _auto_queries(reg, pid) == after_writes


def test_incremental_casebook_holds_only_the_rows_written(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    _write_mixed(reg, team, pid)
    with reg.session(readonly=True) as s:
        from lutarterial.registry.models import Participant

        p = s.get(Participant, pid)
        lab_ids = sorted(s.scalars(select(LabResult.id).where(LabResult.participant_id == pid)))
        full = build_casebook(s, p)
        part = build_casebook(s, p, only_rows={"lab_results": {lab_ids[-1]}})
        none = build_casebook(s, p, only_rows={})
    assert [r["id"] for r in full["labs"]] == lab_ids and len(full["adverse_events"]) == 2
    assert [r["id"] for r in part["labs"]] == [lab_ids[-1]] and part["adverse_events"] == []
    assert none["labs"] == [] and none["adverse_events"] == []
    # the cross-form parts are always whole
    assert part["visits"] == full["visits"] and part["screening"] == full["screening"]
    assert part["participant"] == full["participant"] and part["consent"] == full["consent"]


def _schedule_writes(reg: Registry, pid: int) -> int:
    with reg.session(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)
                            .where(AuditEntry.table_name == "schedule_entries",
                                   AuditEntry.participant_id == pid)) or 0)


def test_schedule_recomputed_only_when_its_inputs_change(reg: Registry, team: Team, monkeypatch: Any) -> None:
    assert {"visits", "enrolments", "screening_results", "participants"} == SCHEDULE_INPUTS
    pid = enrolled_participant(reg, team)
    calls: list[int] = []
    from lutarterial.registry.services import schedule as sched

    real = sched.refresh_schedule_for
    monkeypatch.setattr(sched, "refresh_schedule_for", lambda s, p: (calls.append(p), real(s, p))[1])
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=150, unit="10*9/L",
                            collected_date="2024-02-01", reason="lab", lln=150, uln=400)
    assert calls == []  # a laboratory value cannot move a planned visit
    with reg.session() as s:
        services.record_visit(s, team.coord_bdx, pid, kind="pet_after_iv", status="done", visit_date="2024-02-20",
                              reason="PET done")
    assert calls == [pid]
    with reg.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(ScheduleEntry)
                        .where(ScheduleEntry.participant_id == pid)) > 0


@pytest.mark.parametrize("n_labs", [0, 3])
def test_on_demand_run_checks_every_row(reg: Registry, team: Team, n_labs: int, monkeypatch: Any) -> None:
    """The data manager's "run edit checks" is a full run: rows written while the after-write
    follow-ups did not run (here: taken out of the hook list) get their queries."""
    from lutarterial.registry import audit, dm_guard

    pid = enrolled_participant(reg, team)
    monkeypatch.setattr(audit, "POST_WRITE_HOOKS", [h for h in audit.POST_WRITE_HOOKS if h is not dm_guard._follow_up])
    with reg.session() as s:
        for i in range(n_labs):
            services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=100 + i, unit="10*9/L",
                                collected_date="2024-02-01", reason="lab without limits")
    assert not any(k.startswith("REQ-LAB-RANGE") for k, _ in _auto_queries(reg, pid))
    monkeypatch.undo()
    with reg.session() as s:
        opened = run_edit_checks_for(s, pid)
    assert sum((q.check_key or "").startswith("REQ-LAB-RANGE") for q in opened) == n_labs


def test_checks_run_only_where_the_write_changed_their_inputs(reg: Registry, team: Team, monkeypatch: Any) -> None:
    from lutarterial.datamanagement.checks import check_inputs, load_edit_checks
    from lutarterial.registry.services import queries

    inputs = {c.id: check_inputs(c) for c in load_edit_checks()}
    assert inputs["XF-SEX"] == {"participant", "screening"} and inputs["XF-CONSENT"] == {"consent", "screening"}
    assert inputs["REQ-LAB-RANGE"] == {"labs"} and inputs["XF-DICOM-DATE"] == {"visits", "imaging_analyses"}
    pid = enrolled_participant(reg, team)
    built: list[Any] = []
    real = queries.build_casebook
    monkeypatch.setattr(queries, "build_casebook", lambda s, p, **kw: (built.append(kw.get("parts")), real(s, p, **kw))[1])
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=150, unit="10*9/L",
                            collected_date="2024-02-01", reason="lab", lln=150, uln=400)
    assert built == [frozenset({"labs"})]  # only the laboratory checks, on this one value
    built.clear()
    with reg.session() as s:
        services.record_recist(s, team.inv_bdx, pid, assessment_date="2024-03-01", response="SD", reason="RECIST")
    assert built == []  # no check reads RECIST: nothing to build or evaluate
    with reg.session() as s:
        services.record_consent(s, team.coord_bdx, pid, version="v2.0", signed_date="2024-01-11", reason="re-consent")
    assert built == [frozenset({"consent", "screening"})]
