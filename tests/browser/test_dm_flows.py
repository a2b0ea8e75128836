"""Data-management flows in headless Chromium (issue 13): a monitor raises a query on a field,
the coordinator answers, the monitor closes it; an investigator signs and a later change voids the
signature; a data manager locks a participant and a write is refused; an out-of-window visit
opens a query; a refused RECIST form comes back with its lesion rows. Participants are set up through the JSON API; the flows run in the pages."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from lutarterial.web.demo import DEMO_PASSWORD, _records

pytestmark = pytest.mark.browser


def _login(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/participants$"))


def _api(browser: Any, base: str, username: str) -> tuple[Any, dict[str, str]]:
    ctx = browser.new_context(base_url=base)
    r = ctx.request.post("/api/login", data={"username": username, "password": DEMO_PASSWORD})
    assert r.ok, r.text()
    return ctx, {"X-CSRF-Token": r.json()["csrf_token"]}


def _enrolled(browser: Any, base: str) -> tuple[str, dt.date]:
    """Register, consent, screen (eligible, real engine) and enrol a BDX participant via the API."""
    record, as_of = _records()[0][0]
    coord, h = _api(browser, base, "coord.bdx")
    r = coord.request.post("/api/participants", headers=h, data={
        "site": "BDX", "reason": "browser test", "sex": "F", "consent_version": "v3.0",
        "consent_date": (as_of - dt.timedelta(days=7)).isoformat()})
    assert r.status == 201, r.text()
    tn = r.json()["trial_number"]
    r = coord.request.post(f"/api/participants/{tn}/screenings", headers=h,
                           data={"record": record, "as_of": as_of.isoformat(), "reason": "screening"})
    assert r.status == 201, r.text()
    inv, hi = _api(browser, base, "inv.bdx")
    r = inv.request.post(f"/api/participants/{tn}/enrolment", headers=hi,
                         data={"enrolled_date": as_of.isoformat(), "reason": "eligible"})
    assert r.status == 201, r.text()
    coord.close()
    inv.close()
    return tn, as_of


def _as(browser: Any, base: str, username: str) -> Any:
    ctx = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(15000)
    _login(page, username)
    return page


def test_monitor_raises_a_field_query_coordinator_answers_monitor_closes(browser: Any, live_server: str) -> None:
    tn, _ = _enrolled(browser, live_server)
    mon = _as(browser, live_server, "monitor")
    mon.goto(f"/participants/{tn}/data-management")
    mon.select_option("#q-target", label=f"Registration {tn}")
    mon.fill("#q-field", "year_of_birth")
    mon.fill("#q-text", "Year of birth missing: please enter it from the source")
    with mon.expect_navigation():
        mon.click("#open-query button[type=submit]")
    assert "Query opened" in mon.inner_text(".flash.ok")
    card = mon.locator(".query.q-open").first
    qid = card.get_attribute("data-query-id")
    assert "year_of_birth" in card.inner_text()

    coord = _as(browser, live_server, "coord.bdx")
    assert re.search(r"[1-9][0-9]* open", coord.inner_text(f"tr:has-text('{tn}')"))  # counts on the participant list
    coord.goto(f"/participants/{tn}/data-management")
    coord.fill(f"#answer-{qid}", "Entered 1951 from the hospital record")
    with coord.expect_navigation():
        coord.click(f"#q{qid} form[action$='/answer'] button")
    assert "answered" in coord.inner_text(f"#q{qid} .badge")
    assert coord.locator(f"#q{qid} form[action$='/close']").count() == 0  # the site cannot close

    mon.goto(f"/participants/{tn}/data-management")
    mon.fill(f"#close-{qid}", "Checked against source")
    with mon.expect_navigation():
        mon.click(f"#q{qid} form[action$='/close'] button")
    assert "closed" in mon.inner_text(f"#q{qid} .badge")
    assert [t.split(" by ")[0] for t in mon.locator(f"#q{qid} .q-thread li").all_inner_texts()] == \
        ["open", "answer", "close"]


def test_investigator_signs_and_a_later_change_voids_it(browser: Any, live_server: str) -> None:
    tn, as_of = _enrolled(browser, live_server)
    inv = _as(browser, live_server, "inv.bdx")
    inv.goto(f"/participants/{tn}/data-management")
    # first signing of the session: both components (user name and password) are asked for
    assert inv.get_attribute("#sig-username", "required") is not None
    inv.fill("#sig-username", "inv.bdx")
    inv.select_option("#sig-meaning", "reviewed and approved")
    inv.fill("#sig-password", DEMO_PASSWORD)
    with inv.expect_navigation():
        inv.click("#sign-form button[type=submit]")
    assert "Signed." in inv.inner_text(".flash.ok")
    assert inv.locator("#sig-username").count() == 0  # later signings: the password only
    inv.goto(f"/participants/{tn}/safety")
    banner = inv.inner_text(".dm-banner")
    assert "Signed" in banner and "reviewed and approved" in banner and "Demo investigator" in banner

    coord = _as(browser, live_server, "coord.bdx")
    coord.goto(f"/participants/{tn}/safety")
    coord.select_option("#analyte", "platelets")
    coord.fill("#value", "150")
    coord.fill("#unit", "10*9/L")
    coord.fill("#collected_date", (as_of + dt.timedelta(days=20)).isoformat())
    coord.fill("#reason-lab", "cycle labs")
    with coord.expect_navigation():
        coord.click("text=Add value")
    assert coord.locator(".flash.ok").count() == 1
    assert "Signature voided" in coord.inner_text(".dm-banner")
    coord.goto(f"/participants/{tn}/data-management")
    assert "voided" in coord.inner_text("tr.sig-void")


def test_data_manager_locks_and_a_write_is_refused(browser: Any, live_server: str) -> None:
    tn, as_of = _enrolled(browser, live_server)
    dm = _as(browser, live_server, "dm")
    dm.goto(f"/participants/{tn}/data-management")
    dm.fill("#lock-reason", "casebook complete for the interim analysis")
    with dm.expect_navigation():
        dm.click("#lock-form button[type=submit]")
    assert "Locked." in dm.inner_text(".flash.ok")

    coord = _as(browser, live_server, "coord.bdx")
    coord.goto(f"/participants/{tn}")
    assert "Locked by dm" in coord.inner_text(".dm-lock")
    coord.select_option("#kind", "pet_after_iv")
    coord.fill("#visit_date", (as_of + dt.timedelta(days=8)).isoformat())
    coord.fill("#reason-visit", "PET done")
    with coord.expect_navigation():
        coord.click("text=Save visit")
    msg = coord.inner_text(".flash.error")
    assert "locked" in msg and "nothing was saved" in msg


def test_out_of_window_visit_opens_a_query(browser: Any, live_server: str) -> None:
    tn, as_of = _enrolled(browser, live_server)
    coord = _as(browser, live_server, "coord.bdx")
    coord.goto(f"/participants/{tn}")
    coord.select_option("#kind", "pet_after_iv")
    coord.fill("#visit_date", (as_of + dt.timedelta(days=30)).isoformat())  # window: enrolment + 1 .. + 15
    coord.fill("#reason-visit", "PET done late")
    with coord.expect_navigation():
        coord.click("text=Save visit")
    assert coord.locator(".flash.ok").count() == 1
    coord.goto(f"/participants/{tn}/data-management")
    assert "done out of window" in coord.inner_text("#schedule")
    q = coord.locator("#queries .query.q-open", has_text="outside its window")
    assert q.count() == 1 and "automatic" in q.inner_text() and "visit_date" in q.inner_text()


def test_coordinator_enters_cycles_and_scans_without_json(browser: Any, live_server: str) -> None:
    coord_api, h = _api(browser, live_server, "coord.bdx")
    r = coord_api.request.post("/api/participants", headers=h, data={
        "site": "BDX", "reason": "browser test", "sex": "F", "consent_version": "v3.0", "consent_date": "2024-05-20"})
    assert r.status == 201, r.text()
    tn = r.json()["trial_number"]
    page = _as(browser, live_server, "coord.bdx")
    page.goto(f"/participants/{tn}/screening")
    assert page.locator("textarea[data-type=json]").count() == 0  # no list edited as JSON any more
    assert "Administered activity" in page.inner_text("#rep-lutathera_cycles thead")  # dictionary label + unit
    page.fill("#as_of", "2024-06-03")
    for i, day in enumerate(("2023-08-25", "2023-10-20", "2023-12-15", "2024-02-09")):
        page.click("#add-lutathera_cycles")
        row = page.locator("#rep-lutathera_cycles tbody tr").nth(i)
        row.locator("input[name$='.date']").fill(day)
        row.locator("select[name$='.route']").select_option("IV")
        row.locator("input[name$='.activity_mbq']").fill("7400")
    page.click("#add-post_therapy_scans")
    scan = page.locator("#rep-post_therapy_scans tbody tr").first
    scan.locator("input[name$='.date']").fill("2024-02-10")
    scan.locator("select[name$='.residual_uptake']").select_option("true")
    # a mistaken extra row is removed again
    page.click("#add-lutathera_cycles")
    page.locator("#rep-lutathera_cycles tbody tr").nth(4).locator(".rep-remove").click()
    from playwright.sync_api import expect  # locator waits: the CSP forbids evaluated strings

    expect(page.locator("#criteria li", has_text="INC03").locator(".badge")).to_have_text("pass")  # live panel
    page.fill("#reason-screening", "Screening entered from the chart")
    with page.expect_navigation():
        page.click("text=Save screening result")
    assert page.locator(".flash.ok").count() == 1
    stored = coord_api.request.get(f"/api/participants/{tn}").json()["screenings"][-1]["record"]
    assert [c["date"] for c in stored["lutathera_cycles"]] == ["2023-08-25", "2023-10-20", "2023-12-15", "2024-02-09"]
    assert stored["lutathera_cycles"][0]["activity_mbq"] == 7400
    assert stored["post_therapy_scans"] == [{"date": "2024-02-10", "residual_uptake": True}]
    page.goto(f"/participants/{tn}/screening")  # values come back in the rows
    assert page.locator("#rep-lutathera_cycles tbody tr").count() == 4
    coord_api.close()


def test_refused_recist_comes_back_with_its_lesion_rows(browser: Any, live_server: str) -> None:
    """Issue 13, values kept: a baseline with a target's diameter missing comes back with the message
    (focused) and every lesion row as typed; the row is completed, one more added, and it saves."""
    from playwright.sync_api import expect

    tn, _ = _enrolled(browser, live_server)
    page = _as(browser, live_server, "inv.bdx")
    page.goto(f"/participants/{tn}/safety")
    page.fill("#assessment_date", "2024-07-01")
    rows = page.locator("#rep-lesions tbody tr")
    for i, (lid, role, organ, mm) in enumerate((("L1", "target", "liver", "41"), ("L2", "target", "liver", ""),
                                                ("NT1", "non_target", "bone", ""))):
        page.click("#add-lesions")
        rows.nth(i).locator("input[name$='.id']").fill(lid)
        rows.nth(i).locator("select[name$='.role']").select_option(role)
        rows.nth(i).locator("input[name$='.organ']").fill(organ)
        rows.nth(i).locator("input[name$='.diameter_mm']").fill(mm)
    page.fill("#reason-recist", "baseline CT read")
    with page.expect_navigation():
        page.click("#recist-form button[type=submit]")
    error = page.locator("#recist-form .kept-error")
    expect(error).to_have_text("Not saved: target lesion L2: the diameter is required")
    expect(error).to_be_focused()  # the page opens at the form, not at its top
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("input[name$='.diameter_mm']")).to_have_value("41")
    expect(rows.nth(1).locator("input[name$='.id']")).to_have_value("L2")
    expect(rows.nth(2).locator("select[name$='.role']")).to_have_value("non_target")
    expect(rows.nth(2).locator("input[name$='.organ']")).to_have_value("bone")
    expect(page.locator("#assessment_date")).to_have_value("2024-07-01")
    expect(page.locator("#reason-recist")).to_have_value("baseline CT read")
    rows.nth(1).locator("input[name$='.diameter_mm']").fill("23")
    page.click("#add-lesions")  # a row added after the round trip does not collide with the kept ones
    rows.nth(3).locator("input[name$='.id']").fill("L3")
    rows.nth(3).locator("input[name$='.organ']").fill("lung")
    rows.nth(3).locator("input[name$='.diameter_mm']").fill("15")
    with page.expect_navigation():
        page.click("#recist-form button[type=submit]")
    expect(page.locator(".flash.ok")).to_contain_text("RECIST assessment saved")
    api, _h = _api(browser, live_server, "inv.bdx")
    stored = api.request.get(f"/api/participants/{tn}").json()["recist"][-1]
    assert stored["target_sum_mm"] == 79.0  # 41 + 23 + 15
    assert [le["id"] for le in stored["details"]["lesions"]] == ["L1", "L2", "NT1", "L3"]
    api.close()


def test_swagger_ui_renders_offline_after_login(browser: Any, live_server: str) -> None:
    page = _as(browser, live_server, "monitor")
    external: list[str] = []
    page.on("request", lambda req: external.append(req.url) if not req.url.startswith(live_server) else None)
    page.goto("/api/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "LUTARTERIAL" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag")  # the operations are listed from /openapi.json
    assert external == []  # nothing from a CDN
