"""The web form "Add a laboratory value" takes the laboratory's reference range (LLN, ULN), as the
API does: a value entered with its range is stored with it and opens no REQ-LAB-RANGE query (CTCAE
grading by multiples of ULN/LLN can work from web data); without either limit the edit check still
opens its query; a limit that is not a number is refused with the message and every typed value
kept. On SQLite and PostgreSQL (``registry_url`` through the ``app`` fixture)."""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def tn(login: Any, eligible_record: Any, enrolled: Any) -> str:
    return str(enrolled(login("coord.bdx"), login("inv.bdx"), eligible_record))


def _post(c: TestClient, tn: str, data: dict[str, str]) -> Any:
    return c.post(f"/participants/{tn}/labs", data={"csrf_token": c.csrf, **data},  # type: ignore[attr-defined]
                  follow_redirects=False)


def _labs(c: TestClient, tn: str) -> list[dict[str, Any]]:
    return list(c.get(f"/api/participants/{tn}").json()["labs"])


def _range_queries(c: TestClient, tn: str, row_id: int) -> list[dict[str, Any]]:
    return [q for q in c.get(f"/api/participants/{tn}/queries").json()
            if (q["check_key"] or "").startswith("REQ-LAB-RANGE") and q["table_name"] == "lab_results"
            and q["row_id"] == row_id]


LAB = {"analyte": "platelets", "value": "160", "unit": "10*9/L", "collected_date": "2024-09-01",
       "reason": "labs from the visit"}


def test_safety_page_offers_lln_and_uln(login: Any, tn: str) -> None:
    page = login("coord.bdx").get(f"/participants/{tn}/safety").text
    form = page.split('id="lab-form"', 1)[1].split("</form>", 1)[0]
    for name in ("lln", "uln"):
        assert f'id="{name}" name="{name}" type="number" step="any" min="0" aria-describedby="lab-range-help"' in form
        assert f'<input id="{name}" name="{name}" type="number" step="any" min="0" ' \
               f'aria-describedby="lab-range-help" required' not in form  # optional
    assert 'id="lab-range-help"' in form and "laboratory" in form and "CTCAE" in form and "same unit" in form


def test_lab_with_reference_range_is_stored_with_it_and_opens_no_query(login: Any, tn: str) -> None:
    coord, mon = login("coord.bdx"), login("monitor")
    r = _post(coord, tn, {**LAB, "lln": "150", "uln": "400"})
    assert r.status_code == 303, r.text[:300]
    assert "Laboratory value saved." in coord.get(r.headers["location"]).text
    lab = _labs(coord, tn)[-1]
    assert (lab["analyte"], lab["value"], lab["unit"], lab["lln"], lab["uln"]) == ("platelets", 160.0, "10*9/L",
                                                                                  150.0, 400.0)
    assert _range_queries(mon, tn, lab["id"]) == []

    # one limit is enough for the check (creatinine is graded by x ULN)
    r = _post(coord, tn, {**LAB, "analyte": "creatinine", "value": "80", "unit": "umol/L", "lln": "  ", "uln": "110"})
    assert r.status_code == 303, r.text[:300]
    lab = _labs(coord, tn)[-1]
    assert (lab["analyte"], lab["lln"], lab["uln"]) == ("creatinine", None, 110.0)
    assert _range_queries(mon, tn, lab["id"]) == []


def test_lab_without_reference_range_still_opens_the_query(login: Any, tn: str) -> None:
    coord, mon = login("coord.bdx"), login("monitor")
    r = _post(coord, tn, {**LAB, "lln": "", "uln": ""})  # what a browser sends for empty inputs
    assert r.status_code == 303, r.text[:300]
    lab = _labs(coord, tn)[-1]
    assert (lab["lln"], lab["uln"]) == (None, None)
    queries = _range_queries(mon, tn, lab["id"])
    assert len(queries) == 1 and queries[0]["status"] == "open"
    assert "platelets: neither LLN nor ULN given" in queries[0]["text"]

    r = _post(coord, tn, LAB)  # fields absent altogether (an older page, a script)
    assert r.status_code == 303, r.text[:300]
    assert len(_range_queries(mon, tn, _labs(coord, tn)[-1]["id"])) == 1


def test_bad_lln_is_refused_with_every_value_kept(login: Any, tn: str) -> None:
    coord = login("coord.bdx")
    before = len(_labs(coord, tn))
    r = _post(coord, tn, {**LAB, "lln": "abc", "uln": "400"})
    assert r.status_code == 400, (r.status_code, r.headers.get("location"))
    text = html.unescape(r.text)
    assert "Not saved: platelets LLN 'abc' is not a number" in text
    assert 'class="flash error kept-error" role="alert" tabindex="-1" autofocus' in r.text
    form = r.text.split('id="lab-form"', 1)[1].split("</form>", 1)[0]
    for shown in ('<option value="platelets" selected>', 'name="value" type="number" step="any" required value="160"',
                  'value="10*9/L"', 'value="2024-09-01"', 'name="lln" type="number" step="any" min="0" '
                  'aria-describedby="lab-range-help" value="abc"', 'name="uln" type="number" step="any" min="0" '
                  'aria-describedby="lab-range-help" value="400"', 'value="labs from the visit"'):
        assert shown in form, shown
    assert len(_labs(coord, tn)) == before  # nothing stored

    r = _post(coord, tn, {**LAB, "lln": "150", "uln": "-4"})  # a negative limit: refused the same way
    assert r.status_code == 400 and "ULN -4.0 is below the minimum" in html.unescape(r.text)
    assert 'value="-4"' in r.text and len(_labs(coord, tn)) == before
