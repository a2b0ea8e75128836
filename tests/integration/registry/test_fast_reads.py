"""Issue 13 (fast): the prebuilt Core reads that replaced ORM reads on the hot paths give the same
answers (CTCAE baseline, settings, the write guard's in-force check, the participant row), and a
laboratory reference range must be a range (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.registry import Registry, services
from lutarterial.registry.models import LabResult, Signature
from lutarterial.registry.services._common import ParticipantHiddenError, load_participant, load_participant_row

from .conftest import Team, enrolled_participant


@pytest.mark.parametrize(("lln", "uln", "ok"), [(149.9, 150.0, True), (150.0, 150.0, False), (400.0, 150.0, False),
                                                (None, 150.0, True), (150.0, None, True)])
def test_reference_range_must_be_a_range(reg: Registry, team: Team, lln: float | None, uln: float | None,
                                         ok: bool) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        if ok:
            lab = services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=200, unit="10*9/L",
                                      collected_date="2024-02-01", reason="lab", lln=lln, uln=uln)
            assert (lab.lln, lab.uln) == (lln, uln)
        else:
            with pytest.raises(InvalidInputError, match=r"LLN .* must be below ULN .*swapped"):
                services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=200, unit="10*9/L",
                                    collected_date="2024-02-01", reason="lab", lln=lln, uln=uln)


def test_baseline_sees_values_added_earlier_in_the_same_session(reg: Registry, team: Team) -> None:
    """Two values of one analyte in one unit of work (an import): the later is graded against the
    earlier as its baseline, as the ORM read (autoflush) did."""
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="creatinine", value=60, unit="umol/L",
                            collected_date="2024-02-01", reason="import", uln=110)
        later = services.record_lab(s, team.coord_bdx, pid, analyte="creatinine", value=200, unit="umol/L",
                                    collected_date="2024-03-01", reason="import", uln=110)
        grading, grade = later.grading, later.ctcae_grade
    # 200 > 3 x the earlier 60: grade 3 by baseline; without the baseline it would be grade 2 (x ULN)
    # with the baseline "assumed normal"
    assert grade == 3 and grading["baseline_assumed"] is None and "3 x baseline = 180" in grading["reason"]
    with reg.session(readonly=True) as s:
        assert len(s.scalars(select(LabResult).where(LabResult.participant_id == pid)).all()) == 2


def test_setting_read_after_a_change_in_the_same_session(reg: Registry, team: Team) -> None:
    from lutarterial.registry.services.settings import CTCAE_REQUIRE_BASELINE, get_setting, set_setting

    with reg.session() as s:
        before = get_setting(s, CTCAE_REQUIRE_BASELINE)
        set_setting(s, team.admin, CTCAE_REQUIRE_BASELINE, not before, reason="test")
        assert get_setting(s, CTCAE_REQUIRE_BASELINE) is (not before)


def test_participant_row_has_the_access_rules_of_load_participant(reg: Registry, team: Team) -> None:
    pid = enrolled_participant(reg, team)
    with reg.session(readonly=True) as s:
        obj = load_participant(s, team.coord_bdx, pid)
        for ref in (pid, str(pid), obj.trial_number, f" {obj.trial_number.lower()} "):
            row = load_participant_row(s, team.coord_bdx, ref)
            assert (row.id, row.trial_number, row.site_id, row.status, row.sex, row.year_of_birth, row.created_at) \
                == (obj.id, obj.trial_number, obj.site_id, obj.status, obj.sex, obj.year_of_birth, obj.created_at)
        # another site's participant: the same hidden error (and message) as load_participant
        with pytest.raises(ParticipantHiddenError) as orm_err:
            load_participant(s, team.coord_tls, obj.trial_number)
        with pytest.raises(ParticipantHiddenError) as row_err:
            load_participant_row(s, team.coord_tls, obj.trial_number)
        assert str(orm_err.value) == str(row_err.value)
        with pytest.raises(NotFoundError):
            load_participant_row(s, team.coord_bdx, "BDX-999")
        with pytest.raises(InvalidInputError):
            load_participant_row(s, team.coord_bdx, 1.5)  # type: ignore[arg-type]


def test_guard_still_voids_a_signature_when_one_is_in_force(reg: Registry, team: Team) -> None:
    """The in-force pre-check must not skip the void: a casebook signature, then a lab value."""
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        services.sign(s, team.inv_bdx, pid, password="correct horse battery", meaning="reviewed and approved")
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=200, unit="10*9/L",
                            collected_date="2024-02-01", reason="lab", lln=150, uln=400)
    with reg.session(readonly=True) as s:
        voided_at, reason = s.execute(select(Signature.voided_at, Signature.void_reason)
                                      .where(Signature.participant_id == pid)).one()
    assert voided_at is not None and "lab_results" in (reason or "")


@contextmanager
def _statements(reg: Registry) -> Iterator[list[str]]:
    """The SQL statements sent through the registry's engine inside the block (whitespace folded)."""
    from sqlalchemy import event

    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(reg.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(reg.engine, "before_cursor_execute", count)


@pytest.mark.parametrize("stored", [None, True, False])
def test_baseline_and_setting_read_in_one_statement(reg: Registry, team: Team, stored: bool | None) -> None:
    """The save's single read gives the same baseline (none, the earliest, a corrected row excluded)
    and the same ``ctcae_require_baseline`` as the separate reads, set or not."""
    import datetime as dt

    from lutarterial.registry.services.settings import (CTCAE_REQUIRE_BASELINE, get_setting, set_setting,
                                                        setting_or_default)
    from lutarterial.registry.services.study_data import _BASELINE, _baseline_and_rule

    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        if stored is not None:
            set_setting(s, team.admin, CTCAE_REQUIRE_BASELINE, stored, reason="test")
        first = services.record_lab(s, team.coord_bdx, pid, analyte="creatinine", value=60, unit="umol/L",
                                    collected_date="2024-02-01", reason="lab", uln=110)
        services.record_lab(s, team.coord_bdx, pid, analyte="creatinine", value=70, unit="umol/L",
                            collected_date="2024-02-15", reason="lab", uln=110)
        first_id = first.id
    with reg.session(readonly=True) as s:
        for before, exclude in [("2024-01-01", -1), ("2024-03-01", -1), ("2024-03-01", first_id),
                                ("2024-02-01", -1)]:
            params = {"pid": pid, "analyte": "creatinine", "before": dt.date.fromisoformat(before),
                      "exclude": exclude}
            row = s.execute(_baseline_and_rule(), params).one()
            alone = s.execute(_BASELINE, params).first()
            assert (row.value_canonical, row.unit_canonical) == ((None, None) if alone is None else tuple(alone))
            assert setting_or_default(CTCAE_REQUIRE_BASELINE, row.require_baseline) is \
                get_setting(s, CTCAE_REQUIRE_BASELINE) is (bool(stored) if stored is not None else False)
        # the cases above cover no baseline, the earliest of two, and the excluded (corrected) row
        assert s.execute(_baseline_and_rule(), {"pid": pid, "analyte": "creatinine",
                                                "before": dt.date(2024, 3, 1), "exclude": first_id}
                         ).one().value_canonical == pytest.approx(70)


def test_edit_checks_after_a_lab_save_take_the_row_from_the_session(reg: Registry, team: Team) -> None:
    """The edit checks after a laboratory save use the row the flush wrote (no second SELECT of
    lab_results) and open the same queries as a full run: a value with no reference range opens its
    query, one with a range none; a full run afterwards opens nothing new."""
    from lutarterial.registry.models import DataQuery

    pid = enrolled_participant(reg, team)
    with _statements(reg) as seen, reg.session() as s:
        services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=200, unit="10*9/L",
                            collected_date="2024-02-01", reason="no range")
        services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=90, unit="10*9/L",
                            collected_date="2024-02-02", reason="with range", lln=150, uln=400)
    reads = [q for q in seen if q.startswith("SELECT") and "FROM lab_results" in q]
    assert len(reads) == 2 and all("baseline" in q for q in reads), reads  # the two baseline reads only
    with reg.session(readonly=True) as s:
        texts = sorted(s.scalars(select(DataQuery.text).where(DataQuery.participant_id == pid,
                                                              DataQuery.source == "check",
                                                              DataQuery.table_name == "lab_results")))
    assert len(texts) == 1 and "neither LLN nor ULN" in texts[0], texts
    with reg.session() as s:
        assert services.run_edit_checks(s, team.mon_bdx, pid) == []


def test_flushed_rows_only_for_rows_this_transaction_inserted_and_holds_unchanged(reg: Registry,
                                                                                  team: Team) -> None:
    from lutarterial.registry.dm_guard import INSERTED_KEY
    from lutarterial.registry.services.queries import _LAB_FIELDS, _flushed_rows

    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        lab = services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=200, unit="10*9/L",
                                  collected_date="2024-02-01", reason="lab", lln=150, uln=400)
        lid = lab.id
    want = [{"id": lid, "analyte": "platelets", "value": 200.0, "unit": "10*9/L", "lln": 150.0, "uln": 400.0}]
    with reg.session() as s:
        lab = s.scalars(select(LabResult).where(LabResult.participant_id == pid)).one()
        assert _flushed_rows(s, LabResult, [lid], pid, _LAB_FIELDS) is None  # loaded, not inserted here: read it
        s.info[INSERTED_KEY] = {("lab_results", lid)}  # as if this transaction had inserted it
        assert _flushed_rows(s, LabResult, [lid], pid, _LAB_FIELDS) == want
        assert _flushed_rows(s, LabResult, [lid], pid + 1, _LAB_FIELDS) is None  # another participant's
        assert _flushed_rows(s, LabResult, [lid, lid + 1000], pid, _LAB_FIELDS) is None  # one not held
        assert _flushed_rows(s, LabResult, [], pid, _LAB_FIELDS) == []
        lab.value = 201.0  # changed since: read it (the read flushes first)
        assert _flushed_rows(s, LabResult, [lid], pid, _LAB_FIELDS) is None
        s.expire(lab)  # expired (the change dropped): read it
        assert _flushed_rows(s, LabResult, [lid], pid, _LAB_FIELDS) is None
        s.info.pop(INSERTED_KEY)
        s.rollback()


def test_edit_checks_after_a_correction_read_the_stored_row(reg: Registry, team: Team) -> None:
    """A correction writes only the columns it changed, so the stored row may hold a concurrent
    correction of the others: the edit checks read it (an inserted row they take from the session)."""
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        lid = services.record_lab(s, team.coord_bdx, pid, analyte="platelets", value=200, unit="10*9/L",
                                  collected_date="2024-02-01", reason="lab", lln=150, uln=400).id
    with _statements(reg) as seen, reg.session() as s:
        services.update_record(s, team.coord_bdx, "lab", lid, {"value": 210}, reason="typo")
    rereads = [q for q in seen if q.startswith("SELECT lab_results.id, lab_results.analyte")]
    assert len(rereads) == 1, seen
