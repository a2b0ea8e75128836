"""Issue 9: the API refuses impossible values with 422 and the usual error body, and stores nothing.

Regressions: platelets -150, a collection date of year 1 and NaN inside an imaging result were
accepted (201).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest


@pytest.fixture
def tn(login: Any, eligible_record: Any, enrolled: Any) -> tuple[Any, str]:
    coord, inv = login("coord.bdx"), login("inv.bdx")
    return coord, enrolled(coord, inv, eligible_record)


def _lab(**over: Any) -> dict[str, Any]:
    body = {"analyte": "platelets", "value": 150, "unit": "10*9/L", "collected_date": "2024-09-01", "reason": "lab"}
    body.update(over)
    return body


def _is_422(r: Any, needle: str = "") -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) <= {"error", "detail", "problems"} and body["error"] and body["detail"]
    assert needle in r.text
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"value": -150}, "platelet"),
        ({"value": 5000.5}, "platelet"),
        ({"value": 1e308}, "platelet"),
        ({"uln": 1e9}, "ULN"),
        ({"collected_date": "0001-01-01"}, "1900"),
        ({"collected_date": "1899-12-31"}, "1900"),
        ({"collected_date": (dt.date.today() + dt.timedelta(days=30)).isoformat()}, "today"),
    ],
)
def test_impossible_lab_is_422_and_not_stored(tn: Any, over: dict[str, Any], needle: str) -> None:
    coord, trial_number = tn
    before = len(coord.get(f"/api/participants/{trial_number}").json().get("labs", []))
    _is_422(coord.post(f"/api/participants/{trial_number}/labs", json=_lab(**over)), needle)
    assert len(coord.get(f"/api/participants/{trial_number}").json().get("labs", [])) == before


def test_lab_at_the_limits_is_accepted(tn: Any) -> None:
    coord, trial_number = tn
    for value in (0, 5000):
        r = coord.post(f"/api/participants/{trial_number}/labs", json=_lab(value=value))
        assert r.status_code == 201, r.text
    r = coord.post(f"/api/participants/{trial_number}/labs", json=_lab(collected_date="1900-01-01"))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("labs", '{"analyte": "platelets", "value": NaN, "unit": "10*9/L", "collected_date": "2024-09-01", '
                 '"reason": "lab"}'),
        ("labs", '{"analyte": "platelets", "value": 1e400, "unit": "10*9/L", "collected_date": "2024-09-01", '
                 '"reason": "lab"}'),
        ("imaging-analyses", '{"kind": "pet_iah_vs_iv", "reason": "r", "result": {"vois": [{"suv_mean": NaN}]}}'),
        ("dosimetry-analyses", '{"kind": "voi", "reason": "r", "result": {"dose_gy": -Infinity}}'),
        ("recist", '{"assessment_date": "2024-09-01", "response": "SD", "reason": "r", "details": {"x": Infinity}}'),
    ],
)
def test_non_finite_numbers_anywhere_in_json_are_422(tn: Any, login: Any, path: str, raw: str) -> None:
    _coord, trial_number = tn
    writer = login("admin") if path != "labs" else _coord
    r = writer.post(f"/api/participants/{trial_number}/{path}", content=raw.encode(),
                   headers={"Content-Type": "application/json"})
    _is_422(r, "finite")
    assert r.json()["problems"]


def test_service_refuses_nan_in_results_even_without_the_middleware(tn: Any) -> None:
    """The registry service checks too (shared with the CLI and any other caller)."""
    from lutarterial.errors import ImplausibleValueError
    from lutarterial.registry.services.study_data import _v_analysis

    with pytest.raises(ImplausibleValueError, match=r"analysis result\.vois\[0\]\.suv_mean"):
        _v_analysis({"kind": "k", "result": {"vois": [{"suv_mean": float("nan")}]}})


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("adverse-events", {"term": "Nausea", "grade": 2, "onset_date": "0001-01-01", "reason": "r"}, "1900"),
        ("adverse-events", {"term": "Nausea", "grade": 2, "onset_date": "2999-01-01", "reason": "r"}, "today"),
        ("recist", {"assessment_date": "2024-09-01", "response": "SD", "target_sum_mm": 1e7, "reason": "r"},
         "sum of target diameters"),
        ("recist", {"assessment_date": "2024-09-01", "response": "SD", "target_sum_mm": -3, "reason": "r"}, "minimum"),
        ("visits", {"kind": "follow_up", "number": 10**6, "reason": "r"}, "visit number"),
        ("visits", {"kind": "follow_up", "number": -1, "reason": "r"}, "visit number"),
    ],
)
def test_other_impossible_values_are_refused(tn: Any, login: Any, path: str, body: dict[str, Any],
                                            needle: str) -> None:
    _coord, trial_number = tn
    inv = login("inv.bdx")  # investigators may write visits, adverse events and RECIST
    r = inv.post(f"/api/participants/{trial_number}/{path}", json=body)
    assert r.status_code in (400, 422), r.text
    assert needle in r.text and "Traceback" not in r.text


def test_year_of_birth_in_the_future_is_422(login: Any) -> None:
    coord = login("coord.bdx")
    r = coord.post("/api/participants", json={"site": "BDX", "reason": "new", "year_of_birth": dt.date.today().year + 1})
    _is_422(r, "year of birth")
    r = coord.post("/api/participants", json={"site": "BDX", "reason": "new", "year_of_birth": 1899})
    _is_422(r, "year of birth")


def test_non_finite_json_refused_before_authentication_details_leak(anon: Any) -> None:
    r = anon.post("/api/participants", content=json.dumps({"site": "BDX", "reason": "x", "year_of_birth": 1}).replace(
        "1}", "NaN}").encode(), headers={"Content-Type": "application/json"})
    assert r.status_code in (401, 403, 422) and "Traceback" not in r.text
