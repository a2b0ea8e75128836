"""Pure view helpers: the schedule timeline, number formatting and plots from stored results."""

from __future__ import annotations

from typing import Any

from lutarterial.web import plots, views


def _p(visits: list[dict[str, Any]], enrolled: bool = True) -> dict[str, Any]:
    base = {"kind": None, "number": 1, "status": "done", "planned_date": None, "activity_mbq": None, "artery": None,
            "catheter_position": None, "notes": None}
    return {"consents": [{"version": "v3", "signed_date": "2024-01-01", "withdrawal_date": None}],
            "screenings": [{"protocol_version": "2", "as_of": "2024-01-05", "overall": "eligible"}],
            "enrolment": {"enrolled_date": "2024-01-10"} if enrolled else None,
            "visits": [{**base, **v} for v in visits]}


def test_timeline_in_date_order_with_missing_steps_in_protocol_order() -> None:
    items = views.timeline(_p([
        {"kind": "iah_cycle", "visit_date": "2024-03-01", "activity_mbq": 7400.0, "artery": "proper hepatic"},
        {"kind": "iv_cycle", "visit_date": "2024-02-01", "activity_mbq": 7400.0},
    ]))
    labels = [i["label"] for i in items]
    assert labels[:3] == ["Consent (information sheet v3)", "Screening (protocol v2)", "Enrolment"]
    # PET after IV is missing and belongs between the IV cycle and the IAH cycle
    assert labels.index("IV LUTATHERA cycle 1") < labels.index("PET after IV injection") < labels.index(
        "IAH LUTATHERA cycle")
    assert labels[-2:] == ["PET after IAH injection", "Follow-up visit"]
    missing = [i["label"] for i in items if i["state"] == "missing"]
    assert missing == ["PET after IV injection", "PET after IAH injection", "Follow-up visit"]
    iah = next(i for i in items if i["label"] == "IAH LUTATHERA cycle")
    assert ("Activity", "7400 MBq") in iah["details"] and ("Artery", "proper hepatic") in iah["details"]


def test_timeline_before_enrolment_shows_no_schedule() -> None:
    items = views.timeline(_p([], enrolled=False))
    assert all(i["state"] == "done" for i in items) and len(items) == 2


def test_fmt() -> None:
    assert views.fmt(None) == "—" and views.fmt(True) == "yes"
    assert views.fmt(0.123456) == "0.1235"
    assert views.fmt(84840.4) == "84\u202f840"
    assert views.fmt(7400) == "7400"


def test_plots_pick_comparable_columns_and_find_tacs() -> None:
    rows = [{"region": "liver", "suv_mean_iv": 7.8, "suv_mean_iah": 10.9, "volume_ml": 603.0},
            {"region": "lesion 1", "suv_mean_iv": 31.7, "suv_mean_iah": 106.3, "volume_ml": 15.0}]
    assert plots._comparable(["suv_mean_iv", "suv_mean_iah", "volume_ml"]) == ["suv_mean_iv", "suv_mean_iah"]
    assert plots._comparable(["teff_h", "tia_mbq_h", "dose_gy"]) == ["dose_gy"]
    png = plots.table_bars_png("vois", rows)
    assert png is not None and png[:4] == b"\x89PNG"
    tacs = plots.find_tacs({"tacs": [{"region": "liver", "time_h": [4, 24, 96], "activity_mbq": [9.0, 7.0, 3.0]}]})
    assert tacs == [("liver", [4.0, 24.0, 96.0], [9.0, 7.0, 3.0])]
    assert plots.table_bars_png("labels only", [{"region": "x"}]) is None
