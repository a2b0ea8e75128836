"""Edit checks as data: each type fires on a discrepancy and stays silent on agreement or missing data."""

from __future__ import annotations

import copy

import pytest

from lutarterial.datamanagement.checks import evaluate_checks, load_edit_checks, parse_edit_checks
from lutarterial.errors import ProtocolDefinitionError

CLEAN = {
    "participant": {"id": 5, "trial_number": "BDX-005", "sex": "F", "year_of_birth": 1951,
                    "site_aliases": ["BDX", "CHU de Bordeaux", "Bordeaux"]},
    "consent": {"id": 7, "signed_date": "2024-05-27"},
    "screening": {"id": 3, "record": {"site": "Bordeaux", "patient": {"sex": "female", "birth_date": "1951-01-01"},
                                      "administrative": {"informed_consent_date": "2024-05-27"}}},
    "visits": [{"id": 1, "kind": "iah_cycle", "number": 1, "status": "done", "visit_date": "2024-08-01",
                "activity_mbq": 7400.0},
               {"id": 2, "kind": "pet_after_iah", "number": 1, "status": "done", "visit_date": "2024-08-02"}],
    "labs": [{"id": 9, "analyte": "platelets", "value": 150.0, "unit": "10*9/L", "lln": 150.0, "uln": 400.0}],
    "adverse_events": [{"id": 4, "term": "Nausea", "relatedness": "probable"}],
    "imaging_analyses": [{"id": 2, "study_dates": {"pet_after_iah": "2024-08-02"}}],
}


def ids(cb: dict, **kw: object) -> list[str]:
    return [f.check_id for f in evaluate_checks(load_edit_checks(), cb, **kw)]  # type: ignore[arg-type]


def test_clean_casebook_passes_every_check() -> None:
    assert ids(CLEAN, plausible=lambda k, v, u: True) == []


@pytest.mark.parametrize("path, value, check", [
    (("participant", "year_of_birth"), 1955, "XF-BIRTH"),
    (("participant", "sex"), "M", "XF-SEX"),
    (("participant", "site_aliases"), ["TLS", "Toulouse"], "XF-SITE"),
    (("consent", "signed_date"), "2024-05-20", "XF-CONSENT"),
    (("participant", "sex"), None, "REQ-SEX"),
])
def test_each_cross_form_and_required_check_fires(path: tuple[str, str], value: object, check: str) -> None:
    cb = copy.deepcopy(CLEAN)
    cb[path[0]][path[1]] = value
    assert ids(cb) == [check]


def test_missing_right_side_is_silent_for_compare() -> None:
    cb = copy.deepcopy(CLEAN)
    del cb["screening"]["record"]["patient"]["birth_date"]
    assert ids(cb) == []


def test_activity_range_edges() -> None:
    for value, fires in ((3700.0, False), (3699.0, True), (8000.0, False), (8001.0, True)):
        cb = copy.deepcopy(CLEAN)
        cb["visits"][0]["activity_mbq"] = value
        assert ids(cb) == (["RNG-ACTIVITY"] if fires else []), value


def test_required_lab_range_and_relatedness_and_dicom_date() -> None:
    cb = copy.deepcopy(CLEAN)
    cb["labs"][0].update(lln=None, uln=None)
    cb["adverse_events"][0]["relatedness"] = "unknown"
    cb["imaging_analyses"][0]["study_dates"]["pet_after_iah"] = "2024-08-03"
    found = evaluate_checks(load_edit_checks(), cb)
    assert [(f.check_id, f.table, f.row_id) for f in found] == [
        ("REQ-AE-RELATED", "adverse_events", 4), ("REQ-LAB-RANGE", "lab_results", 9),
        ("XF-DICOM-DATE", "visits", 2)]
    assert "2024-08-03" in found[2].message


def test_plausibility_adapter_result_is_used() -> None:
    assert ids(CLEAN, plausible=lambda k, v, u: False) == ["PLAUS-LAB"]
    assert ids(CLEAN, plausible=lambda k, v, u: None) == []


def test_bad_rulebooks_are_refused() -> None:
    with pytest.raises(ProtocolDefinitionError, match="type"):
        parse_edit_checks({"checks": [{"id": "A", "type": "magic", "message": "x"}]})
    with pytest.raises(ProtocolDefinitionError, match="missing"):
        parse_edit_checks({"checks": [{"id": "A", "type": "compare", "message": "x"}]})
    with pytest.raises(ProtocolDefinitionError, match="duplicate"):
        parse_edit_checks({"checks": [{"id": "A", "type": "dicom_dates", "message": "x"}] * 2})
