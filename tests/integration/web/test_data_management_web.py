"""Data management over HTTP: schedule, queries (monitor raises, site answers, monitor closes),
e-signatures voided by a change, locks (423), SDV; access rules per role as in test_access."""

from __future__ import annotations

from typing import Any

import pytest

PW = "demo-lutarterial"


@pytest.fixture
def tn(login: Any, eligible_record: Any, enrolled: Any) -> str:
    return str(enrolled(login("coord.bdx"), login("inv.bdx"), eligible_record))


def test_schedule_and_dashboard(login: Any, tn: str) -> None:
    mon = login("monitor")
    sched = mon.get(f"/api/participants/{tn}/schedule").json()
    keys = [v["key"] for v in sched]
    assert keys[:5] == ["screening", "iv_cycle_1", "iv_cycle_2", "iv_cycle_3", "iv_cycle_4"]
    assert all(v["status"] == "done_in_window" for v in sched[1:5])  # cycles from the screening record
    iah = next(v for v in sched if v["key"] == "iah_cycle")
    assert iah["target_date"] and iah["window_start"] < iah["target_date"] < iah["window_end"]
    before = mon.get(f"/api/participants/{tn}/schedule", params={"today": iah["window_end"]}).json()
    after = mon.get(f"/api/participants/{tn}/schedule", params={"today": "2099-01-01"}).json()
    assert next(v for v in before if v["key"] == "iah_cycle")["status"] == "due"
    assert next(v for v in after if v["key"] == "iah_cycle")["status"] == "overdue"
    board = login("coord.bdx").get("/api/schedule/dashboard", params={"today": "2099-01-01"}).json()
    assert tn in {o["trial_number"] for o in board["overdue"]}
    assert login("coord.tls").get("/api/schedule/dashboard", params={"today": "2099-01-01"}).json()["overdue"] == []
    assert mon.get(f"/api/participants/{tn}/schedule", params={"today": "not-a-date"}).status_code == 400
    assert login("coord.bdx").get(f"/participants/{tn}/data-management").status_code == 200


def test_query_flow_and_counts(login: Any, tn: str) -> None:
    mon, coord = login("monitor"), login("coord.bdx")
    pid = coord.get(f"/api/participants/{tn}").json()["id"]
    body = {"text": "Birth year differs from the source", "table_name": "participants", "row_id": pid,
            "field": "year_of_birth"}
    assert coord.post(f"/api/participants/{tn}/queries", json=body).status_code == 403
    assert login("coord.tls").post(f"/api/participants/{tn}/queries", json=body).status_code == 403
    r = mon.post(f"/api/participants/{tn}/queries", json=body)
    assert r.status_code == 201, r.text
    qid = r.json()["id"]
    assert mon.post(f"/api/queries/{qid}/answer", json={"text": "x"}).status_code == 403
    assert coord.post(f"/api/queries/{qid}/answer", json={"text": "Corrected from source"}).status_code == 200
    assert coord.post(f"/api/queries/{qid}/close", json={"text": ""}).status_code == 403
    assert mon.post(f"/api/queries/{qid}/close", json={"text": "ok"}).status_code == 200
    thread = mon.get(f"/api/queries/{qid}").json()
    assert [m["action"] for m in thread["messages"]] == ["open", "answer", "close"] and thread["status"] == "closed"
    page = coord.get("/participants").text
    assert "Queries" in page
    summary = mon.get("/api/schedule/dashboard").json()["queries_by_site"]
    assert summary[0]["closed"] >= 1
    assert mon.post(f"/api/participants/{tn}/queries", json={**body, "field": "nope"}).status_code == 400


def test_signature_voided_by_a_change_and_shown_with_the_data(login: Any, tn: str) -> None:
    inv, coord = login("inv.bdx"), login("coord.bdx")
    assert coord.post(f"/api/participants/{tn}/signatures",
                      json={"password": PW, "meaning": "reviewed and approved"}).status_code == 403
    r = inv.post(f"/api/participants/{tn}/signatures", json={"password": "wrong", "meaning": "reviewed and approved"})
    assert r.status_code == 403 and "wrong password" in r.json()["detail"]
    r = inv.post(f"/api/participants/{tn}/signatures", json={"password": PW, "meaning": "made up"})
    assert r.status_code == 400
    r = inv.post(f"/api/participants/{tn}/signatures",
                 json={"password": PW, "username": "inv.bdx", "meaning": "reviewed and approved"})
    assert r.status_code == 201, r.text
    page = coord.get(f"/participants/{tn}/safety").text
    assert "Signed" in page and "reviewed and approved" in page and "Demo investigator" in page
    r = coord.post(f"/api/participants/{tn}/labs", json={"analyte": "platelets", "value": 150, "unit": "10*9/L",
                                                        "collected_date": "2024-09-01", "lln": 150, "reason": "labs"})
    assert r.status_code == 201, r.text
    sigs = coord.get(f"/api/participants/{tn}/signatures").json()
    assert sigs[0]["voided_at"] and not sigs[0]["valid"] and "lab_results" in sigs[0]["void_reason"]
    assert "Signature voided" in coord.get(f"/participants/{tn}").text


def test_lock_refuses_writes_with_423(login: Any, tn: str) -> None:
    dm, coord, mon = login("dm"), login("coord.bdx"), login("monitor")
    assert coord.post(f"/api/participants/{tn}/locks", json={"reason": "x"}).status_code == 403
    assert mon.post(f"/api/participants/{tn}/locks", json={"reason": "x"}).status_code == 403
    r = dm.post(f"/api/participants/{tn}/locks", json={"reason": "casebook complete"})
    assert r.status_code == 201, r.text
    lock_id = r.json()["id"]
    lab = {"analyte": "platelets", "value": 150, "unit": "10*9/L", "collected_date": "2024-09-01", "reason": "labs"}
    r = coord.post(f"/api/participants/{tn}/labs", json=lab)
    assert r.status_code == 423 and "locked" in r.json()["detail"], r.text
    assert "Locked by dm" in coord.get(f"/participants/{tn}").text
    assert dm.post(f"/api/participants/{tn}/labs", json=lab).status_code == 403  # data managers never enter data
    assert dm.post(f"/api/locks/{lock_id}/unlock", json={"reason": "query to resolve"}).status_code == 200
    assert coord.post(f"/api/participants/{tn}/labs", json=lab).status_code == 201


def test_sdv_by_monitor_only(login: Any, tn: str) -> None:
    mon, coord = login("monitor"), login("coord.bdx")
    pid = coord.get(f"/api/participants/{tn}").json()["id"]
    body = {"table_name": "participants", "row_id": pid, "field": "sex"}
    assert coord.post(f"/api/participants/{tn}/sdv", json=body).status_code == 403
    assert mon.post(f"/api/participants/{tn}/sdv", json=body).status_code == 201
    assert mon.get(f"/api/participants/{tn}/sdv").json()[0]["active"] is True


def test_anonymous_and_cross_site_are_refused(anon: Any, login: Any, tn: str) -> None:
    for path in (f"/api/participants/{tn}/schedule", "/api/queries", f"/api/participants/{tn}/signatures",
                 "/api/schedule/dashboard"):
        assert anon.get(path).status_code == 401, path
    assert anon.get("/data-management", follow_redirects=False).status_code == 303
    tls = login("coord.tls")
    refused = tls.get(f"/api/participants/{tn}").status_code  # another site's participant: as the core answers
    assert refused in (403, 404)
    for path in (f"/api/participants/{tn}/schedule", f"/api/participants/{tn}/queries",
                 f"/api/participants/{tn}/signatures", f"/api/participants/{tn}/locks",
                 f"/participants/{tn}/data-management"):
        assert tls.get(path).status_code == refused, path
    assert tls.get("/api/queries").json() == []


def test_api_docs_offline_and_behind_login(anon: Any, login: Any) -> None:
    r = anon.get("/api/docs", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert anon.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 401
    user = login("monitor")
    page = user.get("/api/docs")
    assert page.status_code == 200
    assert "/api/docs/assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert "<script>" not in page.text  # no inline script: the bootstrap is /static/api-docs.js
    js = user.get("/api/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000 and "javascript" in js.headers["content-type"]
    assert "redoc.standalone.js" in user.get("/api/docs/redoc").text
    assert user.get("/api/docs/assets/..%2F..%2Fcore.py").status_code == 404
    assert user.get("/api/docs/assets/core.py").status_code == 404
    assert user.get("/static/api-docs.js").status_code == 200


def test_audit_page_paginated_and_filtered(login: Any, tn: str) -> None:
    coord = login("coord.bdx")
    for i in range(35):  # enough audit rows for two pages
        r = coord.post(f"/api/participants/{tn}/labs", json={"analyte": "platelets", "value": 150 + i, "unit": "10*9/L",
                                                            "lln": 150, "collected_date": "2024-09-01", "reason": "labs"})
        assert r.status_code == 201, r.text
    mon = login("monitor")
    first = mon.get("/audit")
    assert first.status_code == 200 and "Page 1 of" in first.text
    total = int(first.text.split(" entr")[0].rsplit("·", 1)[1].strip())
    assert total > 50 and 'rel="next"' in first.text and first.text.count("<tr>") <= 52
    second = mon.get("/audit", params={"page": 2})
    assert "Page 2 of" in second.text and 'rel="prev"' in second.text
    only = mon.get("/audit", params={"participant": tn, "user": "inv.bdx", "table": "enrolments"})
    assert "Page 1 of 1 · 1 entry" in only.text and tn in only.text
    assert "No audit entries" in mon.get("/audit", params={"date_to": "2000-01-01"}).text
    assert mon.get("/audit", params={"date_from": "2030-01-02", "date_to": "2030-01-01"}).status_code == 400
    assert login("coord.bdx").get("/audit").status_code == 403


def test_recist_per_lesion_computed_by_the_engine(login: Any, tn: str) -> None:
    inv = login("inv.bdx")
    page = inv.get(f"/participants/{tn}/safety").text
    assert 'id="recist-form"' in page and "(baseline)" in page
    assert 'name="response"' not in page  # no response to pick, none preselected
    csrf = inv.csrf  # type: ignore[attr-defined]
    base = {"csrf_token": csrf, "assessment_date": "2024-07-01", "reason": "baseline CT",
            "grp.lesions.0.id": "L1", "grp.lesions.0.role": "target", "grp.lesions.0.organ": "liver",
            "grp.lesions.0.nodal": "false", "grp.lesions.0.diameter_mm": "40",
            "grp.lesions.1.id": "L2", "grp.lesions.1.role": "target", "grp.lesions.1.organ": "liver",
            "grp.lesions.1.nodal": "false", "grp.lesions.1.diameter_mm": "30",
            "grp.lesions.2.id": "NT1", "grp.lesions.2.role": "non_target", "grp.lesions.2.organ": "bone"}
    missing = {**base, "grp.lesions.0.diameter_mm": ""}
    r = inv.post(f"/participants/{tn}/recist-lesions", data=missing, follow_redirects=True)
    assert "Not saved: target lesion L1: the diameter is required" in r.text
    r = inv.post(f"/participants/{tn}/recist-lesions", data=base, follow_redirects=False)
    assert r.status_code == 303
    empty = {"csrf_token": csrf, "assessment_date": "2024-08-01", "reason": "nothing"}
    assert "nothing measured" in inv.post(f"/participants/{tn}/recist-lesions", data=empty).text
    page = inv.get(f"/participants/{tn}/safety").text
    assert "(follow-up; baseline 2024-07-01)" in page and 'name="tgt.L1"' in page and 'name="nt.NT1"' in page
    follow = {"csrf_token": csrf, "assessment_date": "2024-09-01", "reason": "CT after IAH", "tgt.L1": "24",
              "tgt.L2": "20", "nt.NT1": "present"}  # 70 -> 44 mm: -37 %: PR
    r = inv.post(f"/participants/{tn}/recist-lesions", data=follow, follow_redirects=False)
    assert r.status_code == 303
    rec = inv.get(f"/api/participants/{tn}").json()["recist"]
    assert [(x["assessment_date"], x["response"], x["target_sum_mm"]) for x in rec] == [
        ("2024-07-01", "NE", 70.0), ("2024-09-01", "PR", 44.0)]
    new = {**follow, "assessment_date": "2024-11-01", "tgt.L1": "24", "tgt.L2": "20",
           "grp.new_lesions.0.id": "N1", "grp.new_lesions.0.organ": "lung", "grp.new_lesions.0.equivocal": "false"}
    inv.post(f"/participants/{tn}/recist-lesions", data=new, follow_redirects=False)
    assert inv.get(f"/api/participants/{tn}").json()["recist"][-1]["response"] == "PD"  # a new lesion is PD


def test_lab_plot_has_reference_lines_grade_bands_and_cycles(login: Any, tn: str) -> None:
    from lutarterial.web import views

    p = {"labs": [{"analyte": "platelets", "value": 100.0, "value_canonical": 100.0, "unit_canonical": "10*9/L",
                   "lln": 150.0, "uln": 400.0, "collected_date": "2024-09-01", "ctcae_grade": 1}],
         "visits": [{"kind": "iv_cycle", "number": 1, "status": "done", "visit_date": "2024-06-01"},
                    {"kind": "iah_cycle", "number": 1, "status": "done", "visit_date": "2024-08-01"},
                    {"kind": "follow_up", "number": 1, "status": "done", "visit_date": "2024-09-01"}]}
    lln, uln, bands, markers = views.lab_plot_context(p, "platelets")
    assert (lln, uln) == (150.0, 400.0)
    edges = {g: (round(lo, 3), round(hi, 3)) for lo, hi, g in bands}
    # CTCAE v5 platelet count decreased: G1 <LLN-75, G2 <75-50, G3 <50-25, G4 <25 (x10^9/L), from the engine
    assert edges[1] == (75.0, 150.0) and edges[2] == (50.0, 75.0) and edges[3] == (25.0, 50.0) and edges[4][1] == 25.0
    assert markers == [("2024-06-01", "IV C1"), ("2024-08-01", "IAH")]
    coord = login("coord.bdx")
    r = coord.post(f"/api/participants/{tn}/labs", json={"analyte": "platelets", "value": 100, "unit": "10*9/L",
                                                        "lln": 150, "uln": 400, "collected_date": "2024-09-01",
                                                        "reason": "labs"})
    assert r.status_code == 201, r.text
    png = coord.get(f"/participants/{tn}/plots/lab-platelets.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_registration_error_keeps_the_values(login: Any) -> None:
    coord = login("coord.bdx")
    data = {"csrf_token": coord.csrf, "site": "BDX", "sex": "F", "year_of_birth": "1951", "family_name": "Martin",  # type: ignore[attr-defined]
            "given_name": "Anne", "birth_date": "", "hospital_id": "H123", "consent_version": "3.0",
            "consent_date": "2024-05-27", "reason": "new patient"}
    r = coord.post("/participants/new", data=data, follow_redirects=False)
    assert r.status_code == 400 and "Not registered" in r.text
    for value in ('value="1951"', 'value="Martin"', 'value="Anne"', 'value="H123"', 'value="2024-05-27"',
                  'value="new patient"', '<option value="F" selected'):
        assert value in r.text, value
    assert 'for="birth_date" class="required"' in r.text


def test_visit_error_keeps_the_values(login: Any, tn: str) -> None:
    coord = login("coord.bdx")
    data = {"csrf_token": coord.csrf, "kind": "iah_cycle", "number": "1", "status": "done",  # type: ignore[attr-defined]
            "visit_date": "2024-08-01", "activity_mbq": "7400", "artery": "proper hepatic artery",
            "catheter_position": "", "notes": "catheter position to be checked", "reason": "IAH given"}
    r = coord.post(f"/participants/{tn}/visits", data=data, follow_redirects=False)
    assert r.status_code == 400 and "Not saved" in r.text and "catheter position" in r.text
    for value in ('value="2024-08-01"', 'value="7400"', 'value="proper hepatic artery"', 'value="IAH given"',
                  '<option value="iah_cycle" selected', ">catheter position to be checked</textarea>"):
        assert value in r.text, value


def test_list_fast_path_equals_the_service_path(app: Any, login: Any, eligible_record: Any, enrolled: Any) -> None:
    """The unfiltered participant list (one statement with correlated subqueries: last verdict,
    open/answered query counts) gives what the filtered, service-based path gives, on both backends,
    for a site user and an all-sites user."""
    coord, inv, mon = login("coord.bdx"), login("inv.bdx"), login("monitor")
    a = enrolled(coord, inv, eligible_record)
    t = enrolled(login("coord.tls"), login("inv.tls"), eligible_record, site="TLS")
    r = coord.post("/api/participants", json={"site": "BDX", "reason": "screened twice", "sex": "F",
                                              "consent_version": "v3.0", "consent_date": "2024-01-02"})
    assert r.status_code == 201
    b = r.json()["trial_number"]
    from lutarterial.web.demo import _records

    ineligible, as_of2 = _records()[1][0]
    rec, as_of = eligible_record
    for record, day in ((rec, as_of), (ineligible, as_of2.isoformat())):  # the last screening wins
        r = coord.post(f"/api/participants/{b}/screenings", json={"record": record, "as_of": day,
                                                                  "reason": "screening"})
        assert r.status_code == 201, r.text
    r = coord.post("/api/participants", json={"site": "BDX", "reason": "not screened yet", "sex": "M"})
    assert r.status_code == 201
    ids = {}
    for tn in (a, b, t):
        ids[tn] = coord.get(f"/api/participants/{tn}").json()["id"] if tn != t else \
            login("coord.tls").get(f"/api/participants/{tn}").json()["id"]

    def raise_query(tn: str, text: str) -> int:
        r = mon.post(f"/api/participants/{tn}/queries", json={"text": text, "table_name": "participants",
                                                              "row_id": ids[tn], "field": "year_of_birth"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    raise_query(a, "open one")
    answered = raise_query(a, "answered one")
    assert coord.post(f"/api/queries/{answered}/answer", json={"text": "fixed"}).status_code == 200
    closed = raise_query(b, "closed one")
    assert coord.post(f"/api/queries/{closed}/answer", json={"text": "fixed"}).status_code == 200
    assert mon.post(f"/api/queries/{closed}/close", json={"text": "ok"}).status_code == 200
    raise_query(t, "other site")

    from sqlalchemy import select

    from lutarterial.registry.models import User

    be = app.state.backend
    statuses = sorted({p["status"] for p in mon.get("/api/participants").json()})
    for username in ("coord.bdx", "monitor"):
        with be.read() as s:
            user = be.load_user(s.scalar(select(User.id).where(User.username == username)))
        fast_rows, fast_counts = be.list_participants_with_queries(user)
        slow_rows: list[dict] = []
        slow_counts: dict = {}
        for st in statuses:
            rows, slow_counts = be.list_participants_with_queries(user, status=st)
            slow_rows += rows
        assert fast_rows == sorted(slow_rows, key=lambda p: p["trial_number"]), username
        assert fast_counts == slow_counts, username
        assert be.list_participants(user) == fast_rows
        if username == "coord.bdx":
            assert fast_counts[a]["open"] >= 1 and fast_counts[a]["answered"] == 1 and t not in fast_counts
            last = {p["trial_number"]: p["last_screening"] for p in fast_rows}
            assert last[a] == "eligible" and last[b] != "eligible" and t not in last
        else:
            assert fast_counts[t]["open"] >= 1 and a in fast_counts


def test_participant_parts_skipped_only_when_empty(app: Any, login: Any, eligible_record: Any,
                                                   enrolled: Any, monkeypatch: Any) -> None:
    """The participant read skips an optional part (enrolment, visits, events, RECIST, analyses) only
    when the row read's EXISTS says it has no row: the JSON and the pages are the same as reading every
    part, for a participant with some parts and one with none, on both backends."""
    import lutarterial.web.backend as backend_mod

    coord, inv = login("coord.bdx"), login("inv.bdx")
    full = enrolled(coord, inv, eligible_record)
    r = coord.post(f"/api/participants/{full}/adverse-events", json={
        "term": "Nausea", "grade": 1, "onset_date": "2024-03-01", "reason": "AE"})
    assert r.status_code == 201, r.text
    bare = coord.post("/api/participants", json={"site": "BDX", "reason": "registered only"}).json()["trial_number"]
    got = {tn: coord.get(f"/api/participants/{tn}").json() for tn in (full, bare)}
    pages = {tn: coord.get(f"/participants/{tn}").text for tn in (full, bare)}
    assert got[full]["enrolment"] and got[full]["adverse_events"] and got[bare]["enrolment"] is None
    assert got[bare]["visits"] == [] and got[bare]["adverse_events"] == [] and got[bare]["imaging"] == []

    monkeypatch.setattr(backend_mod, "_OPTIONAL_PARTS", {})  # no flags: every part read, as before
    monkeypatch.setattr(backend_mod, "_row_extra", lambda banner: "dm_banner_all" if banner else "")
    from lutarterial.registry.services._common import participant_row_columns, participant_row_extra
    from lutarterial.web.dm import banner_columns

    participant_row_columns("dm_banner_all", participant_row_extra(banner_columns()))
    for tn in (full, bare):
        assert coord.get(f"/api/participants/{tn}").json() == got[tn]
        assert coord.get(f"/participants/{tn}").text == pages[tn]


def test_participant_part_rows_are_the_orm_rows_with_iso_dates(app: Any, login: Any, eligible_record: Any,
                                                                enrolled: Any) -> None:
    """``_part_rows`` (fetched at once, only the date columns converted) gives exactly what ``_row``
    gives for the ORM objects of every part: dates and date-times as ISO text, everything else as
    stored, in the same order (an enrolled participant with laboratory values and an AE)."""
    from sqlalchemy import select

    from lutarterial.registry import models as m
    from lutarterial.web import backend as b

    coord, inv = login("coord.bdx"), login("inv.bdx")
    tn = enrolled(coord, inv, eligible_record)
    for i in range(3):
        r = coord.post(f"/api/participants/{tn}/labs", json={
            "analyte": "platelets", "value": 120 + i, "unit": "10*9/L", "collected_date": f"2024-0{3 - i}-01",
            "lln": 150, "uln": 400, "reason": "part rows"})
        assert r.status_code == 201, r.text
    assert coord.post(f"/api/participants/{tn}/adverse-events", json={
        "term": "Nausea", "grade": 1, "onset_date": "2024-03-01", "reason": "AE"}).status_code == 201
    r = coord.post(f"/api/participants/{tn}/visits", json={
        "kind": "follow_up", "number": 1, "status": "done", "visit_date": "2024-04-01", "reason": "visit"})
    assert r.status_code == 201, r.text
    parts = [(m.Consent, b._CONSENT_F, ("id",)), (m.ScreeningResult, b._SCREENING_F, ("id",)),
             (m.Enrolment, b._ENROL_F, ("id",)), (m.Visit, b._VISIT_F, ("visit_date", "id")),
             (m.LabResult, b._LAB_F, ("collected_date", "id")), (m.AdverseEvent, b._AE_F, ("onset_date",))]
    be = app.state.backend
    with be.read() as s:
        pid = s.scalars(select(m.Participant.id).where(m.Participant.trial_number == tn)).one()
        seen_dates = seen_datetimes = 0
        for model, fields, order in parts:
            orm = [b._row(o, fields) for o in s.scalars(
                select(model).where(model.participant_id == pid)
                .order_by(*(getattr(model, f) for f in order)))]
            got = b._part_rows(s, model, fields, order, pid)
            assert got == orm, model.__name__
            assert got, model.__name__  # every part has rows here: the comparison is not empty
            seen_dates += sum(isinstance(r.get("collected_date"), str) for r in got)
            seen_datetimes += sum(str(r.get("created_at", "")).endswith("Z") for r in got)
        assert seen_dates == 3 and seen_datetimes >= 1
