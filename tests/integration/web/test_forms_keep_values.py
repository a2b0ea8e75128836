"""Issue 13 item 5, "values kept with the message on error": every POST form of the web pages, sent
with a required field missing or a value the services refuse, comes back at once (no redirect) with
the message next to the form and every value typed still in its field — repeating-group rows
included, the password never. (Registration and visits: test_data_management_web.py.)"""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient

PW = "demo-lutarterial"


def _kept(r: Any, status: int, message: str, *shown: str) -> str:
    """The page came back with ``status``, the message (focused, next to its form) and ``shown``."""
    assert r.status_code == status, (r.status_code, r.headers.get("location"), r.text[:300])
    text = html.unescape(r.text)
    assert message in text, message
    assert 'class="flash error kept-error" role="alert" tabindex="-1" autofocus' in r.text
    for value in shown:
        assert value in r.text, value
    return text


def _post(c: TestClient, url: str, data: dict[str, str]) -> Any:
    return c.post(url, data={"csrf_token": c.csrf, **data}, follow_redirects=False)  # type: ignore[attr-defined]


def _register(coord: TestClient, *, consent: bool) -> str:
    body = {"site": "BDX", "reason": "new participant", "sex": "F"}
    if consent:
        body |= {"consent_version": "v3.0", "consent_date": "2024-01-02"}
    r = coord.post("/api/participants", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["trial_number"])


@pytest.fixture
def tn(login: Any, eligible_record: Any, enrolled: Any) -> str:
    return str(enrolled(login("coord.bdx"), login("inv.bdx"), eligible_record))


def test_consent_withdrawal_and_enrolment_forms_keep_values(login: Any, eligible_record: Any) -> None:
    coord, inv = login("coord.bdx"), login("inv.bdx")
    tn = _register(coord, consent=False)
    r = _post(coord, f"/participants/{tn}/consent", {"version": "v4.1", "signed_date": "",
                                                    "reason": "consent signed at the visit"})
    _kept(r, 400, "Not saved", 'value="v4.1"', 'name="signed_date" type="date" required value=""',
          'value="consent signed at the visit"')
    r = _post(coord, f"/participants/{tn}/consent", {"version": "v4.1", "signed_date": "2999-01-01",
                                                    "reason": "consent signed at the visit"})
    _kept(r, 422, "Not saved", 'value="v4.1"', 'value="2999-01-01"')  # implausible: 422

    tn = _register(coord, consent=True)
    r = _post(coord, f"/participants/{tn}/withdraw", {"withdrawal_date": "", "note": "moved abroad",
                                                     "reason": "patient request"})
    _kept(r, 400, "Not saved", "<details open>", 'value="moved abroad"', 'value="patient request"')

    rec, as_of = eligible_record
    r = coord.post(f"/api/participants/{tn}/screenings", json={"record": rec, "as_of": as_of, "reason": "screening"})
    assert r.status_code == 201 and r.json()["overall"] == "eligible", r.text
    r = _post(inv, f"/participants/{tn}/enrol", {"enrolled_date": "", "reason": "eligible at screening"})
    _kept(r, 400, "Not saved", 'id="enrol-form"', 'value="eligible at screening"')
    assert _post(inv, f"/participants/{tn}/enrol", {"enrolled_date": as_of, "reason": "eligible"}).status_code == 303


def test_screening_form_keeps_fields_rows_and_the_json_box(login: Any) -> None:
    coord = login("coord.bdx")
    tn = _register(coord, consent=True)
    form = {"as_of": "2024-03-01", "protocol_version": "", "reason": "screening visit", "record_json": "{}",
            "rec.patient.sex": "female", "rec.patient.birth_date": "1951-01-01",
            "grpmark.lutathera_cycles": "1",
            "grp.lutathera_cycles.0.date": "2023-06-01", "grp.lutathera_cycles.0.route": "IV",
            "grp.lutathera_cycles.0.activity_mbq": "lots",
            "grp.lutathera_cycles.1.date": "2023-08-01", "grp.lutathera_cycles.1.route": "IV",
            "grp.lutathera_cycles.1.activity_mbq": "7400", "grp.lutathera_cycles.1.dose_reduced_for_toxicity": "true",
            "meas.0.analyte": "platelets", "meas.0.value": "180", "meas.0.unit": "10*9/L", "meas.0.date": "2024-02-20"}
    r = _post(coord, f"/participants/{tn}/screening", form)  # a row's number is not a number
    _kept(r, 400, "row 1, activity_mbq", 'value="2024-03-01"', 'value="screening visit"', 'value="1951-01-01"',
          '<option value="female" selected', 'name="grp.lutathera_cycles.0.activity_mbq"', 'value="lots"',
          'value="2023-06-01"', 'value="2023-08-01"', 'value="7400.0"', '<option value="true" selected>yes',
          'name="meas.0.value" type="number" step="any" value="180.0"', 'value="10*9/L"')
    r = _post(coord, f"/participants/{tn}/screening", {**form, "grp.lutathera_cycles.0.activity_mbq": "7400",
                                                       "reason": ""})  # the reason missing
    _kept(r, 400, "Not saved", 'value="1951-01-01"', 'value="2023-06-01"', 'name="reason" type="text" required '
          'minlength="3" maxlength="500" value=""')
    r = _post(coord, f"/participants/{tn}/screening", {**form, "record_json": '{"oops": '})
    text = _kept(r, 400, "not valid JSON", 'value="1951-01-01"')
    assert '>{"oops": </textarea>' in text  # the box as typed, to be corrected


def test_lab_adverse_event_and_recist_forms_keep_values(login: Any, tn: str) -> None:
    coord, inv = login("coord.bdx"), login("inv.bdx")
    lab = {"analyte": "platelets", "value": "", "unit": "10*9/L", "collected_date": "2024-09-01",
           "reason": "labs from the visit"}
    r = _post(coord, f"/participants/{tn}/labs", lab)
    _kept(r, 400, "Not saved", '<option value="platelets" selected>', 'value="10*9/L"', 'value="2024-09-01"',
          'value="labs from the visit"', 'id="lab-form"')
    r = _post(coord, f"/participants/{tn}/labs", {**lab, "value": "150", "unit": "furlongs"})
    _kept(r, 400, "furlongs", 'value="150"', 'value="furlongs"')

    ae = {"term": "", "grade": "3", "onset_date": "2024-09-02", "serious": "true", "relatedness": "probable",
          "reason": "AE at the visit"}
    r = _post(coord, f"/participants/{tn}/adverse-events", ae)
    _kept(r, 400, "Not saved", "<option selected>3</option>", '<option value="true" selected>yes</option>',
          "<option selected>probable</option>", 'value="2024-09-02"', 'value="AE at the visit"')

    base = {"assessment_date": "2024-07-01", "reason": "baseline CT",
            "grp.lesions.0.id": "L1", "grp.lesions.0.role": "target", "grp.lesions.0.organ": "liver",
            "grp.lesions.0.nodal": "false", "grp.lesions.0.diameter_mm": "",
            "grp.lesions.1.id": "N7", "grp.lesions.1.role": "target", "grp.lesions.1.organ": "hilar node",
            "grp.lesions.1.nodal": "true", "grp.lesions.1.diameter_mm": "22",
            "grp.lesions.2.id": "NT1", "grp.lesions.2.role": "non_target", "grp.lesions.2.organ": "bone"}
    r = _post(inv, f"/participants/{tn}/recist-lesions", base)
    _kept(r, 400, "target lesion L1: the diameter is required", 'value="2024-07-01"', 'value="baseline CT"',
          'name="grp.lesions.0.id" aria-label="Lesion" placeholder="L1" maxlength="20" value="L1"',
          'value="hilar node"', '<option value="true" selected>yes</option>', 'value="22"', 'value="NT1"',
          '<option value="non_target" selected>non-target</option>', 'value="bone"')
    assert _post(inv, f"/participants/{tn}/recist-lesions", {**base, "grp.lesions.0.diameter_mm": "40"}
                 ).status_code == 303
    follow = {"assessment_date": "2024-09-01", "reason": "CT after IAH", "tgt.L1": "a lot", "tgt.N7": "12",
              "nt.NT1": "present", "grp.new_lesions.0.id": "N1", "grp.new_lesions.0.organ": "lung",
              "grp.new_lesions.0.equivocal": "true"}
    r = _post(inv, f"/participants/{tn}/recist-lesions", follow)
    _kept(r, 400, "not a number", 'name="tgt.L1" id="tgt-L1" aria-label="L1 diameter (mm)" type="number" '
          'step="any" min="0" value="a lot"', 'value="12"', '<option value="present" selected>',
          'name="grp.new_lesions.0.id" aria-label="New lesion" placeholder="N1" maxlength="20" value="N1"',
          'value="lung"', 'value="CT after IAH"')


def test_data_management_forms_keep_values_never_the_password(login: Any, tn: str) -> None:
    mon, coord, inv, dm = login("monitor"), login("coord.bdx"), login("inv.bdx"), login("dm")
    pid = coord.get(f"/api/participants/{tn}").json()["id"]
    target = f"participants:{pid}"
    selected = f'<option value="{target}" selected>'
    r = _post(mon, f"/participants/{tn}/queries", {"target": target, "field": "nope", "assign_to": "coord.bdx",
                                                   "text": "Birth year differs from the source"})
    _kept(r, 400, "no field", selected, 'value="nope"', 'value="coord.bdx"',
          'value="Birth year differs from the source"')

    qid = mon.post(f"/api/participants/{tn}/queries", json={"text": "Consent date?"}).json()["id"]
    r = _post(coord, f"/queries/{qid}/answer", {"tn": tn, "text": ""})
    _kept(r, 400, "answer is required", f'id="answer-{qid}"')
    r = _post(mon, f"/queries/{qid}/close", {"tn": tn, "text": "x" * 4001})
    _kept(r, 400, "Not saved", 'value="' + "x" * 4001 + '"')

    r = _post(inv, f"/participants/{tn}/sign", {"target": target, "meaning": "reviewed and approved",
                                                "username": "inv.bdx", "password": "not-my-password-42"})
    _kept(r, 403, "wrong password", selected, "<option selected>reviewed and approved</option>",
          'name="username" required autocomplete="username" value="inv.bdx"')
    assert "not-my-password-42" not in r.text
    r = _post(inv, f"/participants/{tn}/sign", {"meaning": "reviewed and approved", "password": PW})
    _kept(r, 400, "needs your user name and password", "<option selected>reviewed and approved</option>")

    r = _post(dm, f"/participants/{tn}/lock", {"target": target, "reason": ""})
    _kept(r, 400, "reason", selected)
    lock_id = dm.post(f"/api/participants/{tn}/locks", json={"reason": "casebook complete"}).json()["id"]
    r = _post(coord, f"/participants/{tn}/labs", {"analyte": "platelets", "value": "150", "unit": "10*9/L",
                                                  "collected_date": "2024-09-01", "reason": "late lab"})
    _kept(r, 423, "locked", 'value="150"', 'value="late lab"')  # a lock refuses: the values wait for the unlock
    r = _post(dm, f"/locks/{lock_id}/unlock", {"tn": tn, "reason": ""})
    _kept(r, 400, "Not saved", f'id="unlock-{lock_id}"')

    r = _post(mon, f"/participants/{tn}/sdv", {"target": target, "field": "nope"})
    _kept(r, 400, "no field", selected, 'value="nope"')


def test_token_forms_keep_values(login: Any) -> None:
    coord = login("coord.bdx")
    r = _post(coord, "/account/tokens", {"name": "", "scope": "write", "site": "BDX", "expires_days": "30",
                                         "reason": "nightly lab import"})
    _kept(r, 400, "Not created", '<option value="write" selected>', "<option selected>BDX</option>", 'value="30"',
          'value="nightly lab import"')
    tid = coord.post("/api/tokens", json={"name": "labs", "scope": "read", "reason": "labs"}).json()["id"]
    r = _post(coord, f"/account/tokens/{tid}/revoke", {"reason": ""})
    _kept(r, 400, "Not revoked")


def test_admin_session_end_without_reason_comes_back_to_the_list(login: Any) -> None:
    admin = login("admin")
    sid = admin.get("/api/admin/sessions").json()[0]["id"]
    r = _post(admin, f"/admin/sessions/{sid}/end", {"reason": ""})
    _kept(r, 400, "Not ended: a reason is required", "Sign-in sessions")
    assert _post(admin, f"/admin/sessions/{sid}/end", {"reason": "lost laptop"}).status_code == 303
